package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/slotway/slotway/internal/config"
)

// Token rules, as stats.New and ha.New enforce them at start.
const (
	minAdminToken = 16 // characters, surrounding whitespace trimmed
	gossipKeySize = 32 // bytes, exactly
)

// checkConfig checks what loading the file does not, and what would
// otherwise fail only once components start: the files it names are
// readable and hold what they must, and the listen addresses are free.
// It starts nothing and dials nothing; it binds each address and closes
// it again. Every problem is listed with its field path and line.
func checkConfig(path string, cfg fileConfig) error {
	var errs []error
	add := func(field string, err error) {
		if err != nil {
			errs = append(errs, config.Errorf(field, "%v", err))
		}
	}
	if f := cfg.Stats.AdminTokenFile; f != "" {
		add("stats.admin_token_file", checkFile(f, func(b []byte) error {
			if n := len(strings.TrimSpace(string(b))); n < minAdminToken {
				return fmt.Errorf("%s: the token must be at least %d characters, got %d", f, minAdminToken, n)
			}
			return nil
		}))
	}
	if cfg.HA != nil && cfg.HA.SecretKeyFile != "" {
		f := cfg.HA.SecretKeyFile
		add("ha.secret_key_file", checkFile(f, func(b []byte) error {
			if len(b) != gossipKeySize {
				return fmt.Errorf("%s: must hold exactly %d bytes (raw, no newline), has %d", f, gossipKeySize, len(b))
			}
			return nil
		}))
	}
	// proxy.cluster.tls is checked by Validate; the listener's TLS only
	// when the proxy starts.
	if t := cfg.Proxy.TLS; !cfg.WitnessOnly() && t.CertFile != "" && t.KeyFile != "" {
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			add("proxy.tls.cert_file", fmt.Errorf("%s, %s: %w", t.CertFile, t.KeyFile, err))
		}
		if f := t.ClientCAFile; f != "" {
			add("proxy.tls.client_ca_file", checkFile(f, func(b []byte) error {
				if !x509.NewCertPool().AppendCertsFromPEM(b) {
					return fmt.Errorf("%s: no PEM certificate", f)
				}
				return nil
			}))
		}
	}
	errs = append(errs, checkListen(cfg)...)
	if err := errors.Join(errs...); err != nil {
		data, rerr := os.ReadFile(path)
		if rerr == nil {
			err = config.Locate(data, err)
		}
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// checkFile reads path and checks its contents with ok.
func checkFile(path string, ok func([]byte) error) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return ok(b)
}

// checkListen binds every address the instance will listen on (memberlist
// takes both TCP and UDP on ha.bind) and closes them all once all are
// bound, so two fields with the same address are caught too.
func checkListen(cfg fileConfig) []error {
	type addr struct{ field, network, addr string }
	var addrs []addr
	if !cfg.WitnessOnly() {
		addrs = append(addrs, addr{"proxy.listen", "tcp", cfg.Proxy.Listen})
	}
	addrs = append(addrs, addr{"stats.listen", "tcp", cfg.Stats.Listen})
	if cfg.HA != nil {
		addrs = append(addrs, addr{"ha.bind", "tcp", cfg.HA.Bind}, addr{"ha.bind", "udp", cfg.HA.Bind})
	}
	var errs []error
	var open []func() error
	defer func() {
		for _, c := range open {
			_ = c()
		}
	}()
	for _, a := range addrs {
		if a.network == "udp" {
			pc, err := net.ListenPacket(a.network, a.addr)
			if err != nil {
				errs = append(errs, config.Errorf(a.field, "%v", err))
				continue
			}
			open = append(open, pc.Close)
			continue
		}
		ln, err := net.Listen(a.network, a.addr)
		if err != nil {
			errs = append(errs, config.Errorf(a.field, "%v", err))
			continue
		}
		open = append(open, ln.Close)
	}
	return errs
}
