package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/slotway/slotway/internal/config"
)

// clientTLS checks proxy.cluster.tls and builds the TLS config Slotway
// dials the nodes with; nil when TLS is off. Errors are *config.FieldError
// with paths relative to proxy (cluster.tls.ca_file, ...). Validate calls
// it to check the files; New builds the config once with it.
func (t BackendTLSConfig) clientTLS() (*tls.Config, error) {
	const f = "cluster.tls."
	if !t.Enabled {
		var set []string
		for _, kv := range []struct {
			key string
			on  bool
		}{
			{"ca_file", t.CAFile != ""},
			{"server_name", t.ServerName != ""},
			{"cert_file", t.CertFile != ""},
			{"key_file", t.KeyFile != ""},
			{"insecure_skip_verify", t.InsecureSkipVerify},
		} {
			if kv.on {
				set = append(set, kv.key)
			}
		}
		if len(set) > 0 {
			return nil, config.Errorf("cluster.tls", "%s set but enabled is false (set enabled: true, or remove them)", strings.Join(set, ", "))
		}
		return nil, nil
	}
	var errs []error
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify,
	}
	if t.CAFile != "" {
		pool, err := loadCAPool(t.CAFile)
		if err != nil {
			errs = append(errs, config.Errorf(f+"ca_file", "%v", err))
		}
		cfg.RootCAs = pool
	}
	if t.ServerName != "" {
		if _, _, err := net.SplitHostPort(t.ServerName); err == nil || strings.ContainsAny(t.ServerName, " /[]") {
			errs = append(errs, config.Errorf(f+"server_name", "want a host name or IP address (no port), got %q", t.ServerName))
		}
	}
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		errs = append(errs, config.Errorf(f+"key_file", "required when cert_file is set"))
	case t.CertFile == "" && t.KeyFile != "":
		errs = append(errs, config.Errorf(f+"cert_file", "required when key_file is set"))
	case t.CertFile != "":
		pair, err := loadKeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			errs = append(errs, err)
		} else {
			cfg.Certificates = []tls.Certificate{pair}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return cfg, nil
}

// loadCAPool reads a PEM bundle; every CERTIFICATE block must parse and
// there must be at least one.
func loadCAPool(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	certs, err := parseCerts(data, path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

func parseCerts(data []byte, path string) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d in %s: %w", len(certs)+1, path, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("no PEM certificate in %s", path)
	}
	return certs, nil
}

// loadKeyPair loads the client certificate, blaming the right field.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	const f = "cluster.tls."
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, config.Errorf(f+"cert_file", "%v", err)
	}
	if _, err := parseCerts(certPEM, certFile); err != nil {
		return tls.Certificate{}, config.Errorf(f+"cert_file", "%v", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, config.Errorf(f+"key_file", "%v", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// The certificate parsed above, so this is about the key (missing,
		// unparsable, or not cert_file's).
		return tls.Certificate{}, config.Errorf(f+"key_file", "%s: %v", keyFile, err)
	}
	return pair, nil
}

// nodeTLS returns the TLS config to dial the node at addr: cfg itself when
// it names the server (server_name), else a copy that verifies addr's host
// (an IP host is checked against the certificate's IP SANs). nil: no TLS.
func nodeTLS(cfg *tls.Config, addr string) *tls.Config {
	if cfg == nil || cfg.ServerName != "" {
		return cfg
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	c := cfg.Clone()
	c.ServerName = host
	return c
}
