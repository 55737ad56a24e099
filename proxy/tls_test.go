package proxy_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/internal/testcert"
	"github.com/slotway/slotway/proxy"
)

// TestClientTLS: the listener speaks TLS 1.2+ with the configured
// certificate, and with a client CA it requires a client certificate.
func TestClientTLS(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	dir := t.TempDir()
	ca := testcert.NewCA(t, "slotway test CA")
	caFile := ca.WriteCA(t, dir, "ca.pem")
	srvCert, srvKey := ca.Issue(t, dir, "server", x509.ExtKeyUsageServerAuth)
	cliCert, cliKey := ca.Issue(t, dir, "client", x509.ExtKeyUsageClientAuth)
	p := startProxy(t, c, func(cfg *proxy.Config) {
		cfg.TLS = proxy.TLSConfig{CertFile: srvCert, KeyFile: srvKey, ClientCAFile: caFile}
	})
	roots := ca.Pool()
	pair := testcert.KeyPair(t, cliCert, cliKey)
	ctx := context.Background()
	good := p.client(t, func(o *redis.Options) {
		o.TLSConfig = &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	})
	if err := good.Set(ctx, "tls:k", "v", 0).Err(); err != nil {
		t.Fatalf("SET over TLS: %v", err)
	}
	if v := good.Get(ctx, "tls:k").Val(); v != "v" {
		t.Fatalf("GET over TLS = %q", v)
	}
	noCert := p.client(t, func(o *redis.Options) { o.TLSConfig = &tls.Config{RootCAs: roots} })
	if err := noCert.Ping(ctx).Err(); err == nil {
		t.Error("a client without a certificate was accepted")
	}
	plain := p.client(t)
	if err := plain.Ping(ctx).Err(); err == nil {
		t.Error("a plaintext client was accepted on the TLS listener")
	}
	old := p.client(t, func(o *redis.Options) {
		o.TLSConfig = &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}, MaxVersion: tls.VersionTLS11}
	})
	if err := old.Ping(ctx).Err(); err == nil {
		t.Error("TLS 1.1 was accepted")
	}
}
