package proxy_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/internal/testcert"
	"github.com/slotway/slotway/internal/testutil"
	"github.com/slotway/slotway/proxy"
)

// TestBackendTLS runs Slotway in front of a TLS-only cluster (port 0,
// tls-cluster yes) whose nodes also require client certificates.
func TestBackendTLS(t *testing.T) {
	shortIf(t)
	dir := t.TempDir()
	ca := testcert.NewCA(t, "cluster CA")
	caFile := ca.WriteCA(t, dir, "ca.crt")
	nodeCert, nodeKey := ca.Issue(t, dir, "node", x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
	cliCert, cliKey := ca.Issue(t, dir, "slotway", x509.ExtKeyUsageClientAuth)
	c := redistest.New(t, redistest.Options{
		Masters:     3,
		TLS:         &redistest.TLSFiles{CAFile: caFile, CertFile: nodeCert, KeyFile: nodeKey},
		ExtraConfig: []string{"tls-auth-clients yes"},
	})
	good := proxy.BackendTLSConfig{Enabled: true, CAFile: caFile, CertFile: cliCert, KeyFile: cliKey}
	ctx := context.Background()

	t.Run("ca_file", func(t *testing.T) {
		p := startProxy(t, c, func(cfg *proxy.Config) { cfg.Cluster.TLS = good })
		var addrs []string
		for _, n := range p.Nodes() {
			addrs = append(addrs, n.Addr)
		}
		if want := c.Seeds(); !sameSet(addrs, want) {
			t.Fatalf("proxy sees nodes %v, want the TLS ports %v", addrs, want)
		}
		cl := p.client(t)
		var keys []string
		for i := range 60 {
			k := fmt.Sprintf("tls:%d", i) // spread over all three masters
			keys = append(keys, k)
			if err := cl.Set(ctx, k, "v"+k, 0).Err(); err != nil {
				t.Fatalf("SET %s: %v", k, err)
			}
		}
		for _, k := range keys {
			if v, err := cl.Get(ctx, k).Result(); err != nil || v != "v"+k {
				t.Fatalf("GET %s = %q, %v", k, v, err)
			}
		}
		vals, err := cl.MGet(ctx, keys...).Result()
		if err != nil {
			t.Fatalf("MGET across slots: %v", err)
		}
		for i, v := range vals {
			if v != "v"+keys[i] {
				t.Fatalf("MGET[%d] (%s) = %v", i, keys[i], v)
			}
		}
		// Large values are written to the node in place (one Write per
		// segment on TLS, no writev) and handed back without a copy.
		_, err = cl.Pipelined(ctx, func(pl redis.Pipeliner) error {
			for _, size := range []int{15 << 10, 16 << 10, 64<<10 + 1, 512 << 10, 4 << 20} {
				k := fmt.Sprintf("tls:big:%d", size)
				pl.Set(ctx, k, bytes.Repeat([]byte(k), size/len(k)), 0)
				pl.Set(ctx, k+":small", k, 0)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("SET large values: %v", err)
		}
		for _, size := range []int{15 << 10, 16 << 10, 64<<10 + 1, 512 << 10, 4 << 20} {
			k := fmt.Sprintf("tls:big:%d", size)
			if v, err := cl.Get(ctx, k).Bytes(); err != nil || !bytes.Equal(v, bytes.Repeat([]byte(k), size/len(k))) {
				t.Fatalf("GET %s: %d bytes, %v", k, len(v), err)
			}
			if v, err := cl.Get(ctx, k+":small").Result(); err != nil || v != k {
				t.Fatalf("GET %s:small = %q, %v", k, v, err)
			}
		}
		// The health checks (go-redis control clients) pass over TLS too.
		redistest.WaitFor(t, 20*time.Second, "every node healthy", func() bool {
			h := p.Health()
			for _, n := range c.Seeds() {
				if !h[n].Up {
					return false
				}
			}
			return true
		})
	})

	t.Run("server_name", func(t *testing.T) {
		tc := good
		tc.ServerName = "localhost" // a DNS SAN of the node certificate
		p := startProxy(t, c, func(cfg *proxy.Config) { cfg.Cluster.TLS = tc })
		if err := p.client(t).Set(ctx, "tls:sn", "v", 0).Err(); err != nil {
			t.Fatalf("SET: %v", err)
		}
	})

	failing := []struct {
		name string
		mod  func(*proxy.BackendTLSConfig)
		want string
	}{
		{"wrong CA", func(tc *proxy.BackendTLSConfig) {
			tc.CAFile = testcert.NewCA(t, "other CA").WriteCA(t, t.TempDir(), "other.crt")
		}, "certificate signed by unknown authority"},
		{"wrong server_name", func(tc *proxy.BackendTLSConfig) { tc.ServerName = "redis.example" }, "not redis.example"},
		{"no client certificate", func(tc *proxy.BackendTLSConfig) { tc.CertFile, tc.KeyFile = "", "" }, "certificate required"},
	}
	for _, f := range failing {
		t.Run(f.name, func(t *testing.T) {
			tc := good
			f.mod(&tc)
			s, logs := runProxy(t, c, func(cfg *proxy.Config) { cfg.Cluster.TLS = tc })
			redistest.WaitFor(t, 20*time.Second, "a TLS error in the log", func() bool {
				return strings.Contains(logs.String(), f.want)
			})
			if s.Ready() {
				t.Error("proxy is ready although it cannot verify (or be verified by) the nodes")
			}
			if n := s.Nodes(); len(n) != 0 {
				t.Errorf("proxy read a topology over failing TLS: %v", n)
			}
		})
	}

	t.Run("insecure_skip_verify", func(t *testing.T) {
		tc := good
		tc.CAFile = ""
		tc.InsecureSkipVerify = true
		s, logs := runProxy(t, c, func(cfg *proxy.Config) { cfg.Cluster.TLS = tc })
		redistest.WaitFor(t, 20*time.Second, "proxy ready", s.Ready)
		if !strings.Contains(logs.String(), "insecure_skip_verify") {
			t.Errorf("no warning about insecure_skip_verify in the log:\n%s", logs.String())
		}
	})
}

// runProxy starts a proxy in front of c without waiting until it is ready,
// and returns its warnings and errors as they are logged.
func runProxy(t *testing.T, c *redistest.Cluster, mod func(*proxy.Config)) (*proxy.Server, *testutil.Buffer) {
	t.Helper()
	cfg := proxy.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Cluster.Seeds = c.Seeds()
	cfg.HealthInterval = 200 * time.Millisecond
	cfg.Cluster.RefreshInterval = 200 * time.Millisecond
	mod(&cfg)
	logs := &testutil.Buffer{}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(logs, testutil.Writer(t)), &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := proxy.New(cfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("proxy Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("proxy did not stop")
		}
	})
	return s, logs
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestBackendTLSConfig: proxy.cluster.tls is checked by Validate, with the
// field path in every error.
func TestBackendTLSConfig(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "CA")
	caFile := ca.WriteCA(t, dir, "ca.crt")
	cert, key := ca.Issue(t, dir, "client", x509.ExtKeyUsageClientAuth)
	_, otherKey := ca.Issue(t, dir, "other", x509.ExtKeyUsageClientAuth)
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	notPEM := write("not.pem", "hello\n")
	badCert := write("bad.pem", "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n")
	missing := filepath.Join(dir, "missing.pem")

	tests := []struct {
		name string
		tls  proxy.BackendTLSConfig
		want string // "" means valid
	}{
		{"off", proxy.BackendTLSConfig{}, ""},
		{"system roots", proxy.BackendTLSConfig{Enabled: true}, ""},
		{"ca_file", proxy.BackendTLSConfig{Enabled: true, CAFile: caFile}, ""},
		{"everything", proxy.BackendTLSConfig{Enabled: true, CAFile: caFile, ServerName: "redis.internal", CertFile: cert, KeyFile: key}, ""},
		{"insecure", proxy.BackendTLSConfig{Enabled: true, InsecureSkipVerify: true}, ""},
		{"ip server_name", proxy.BackendTLSConfig{Enabled: true, ServerName: "10.0.0.1"}, ""},
		{"set but disabled", proxy.BackendTLSConfig{CAFile: caFile, InsecureSkipVerify: true},
			"cluster.tls: ca_file, insecure_skip_verify set but enabled is false"},
		{"missing ca_file", proxy.BackendTLSConfig{Enabled: true, CAFile: missing}, "cluster.tls.ca_file: open " + missing},
		{"ca_file not PEM", proxy.BackendTLSConfig{Enabled: true, CAFile: notPEM}, "cluster.tls.ca_file: no PEM certificate in " + notPEM},
		{"ca_file bad certificate", proxy.BackendTLSConfig{Enabled: true, CAFile: badCert}, "cluster.tls.ca_file: certificate 1 in " + badCert},
		{"server_name with port", proxy.BackendTLSConfig{Enabled: true, ServerName: "redis:6379"}, "cluster.tls.server_name: want a host name or IP address (no port)"},
		{"cert without key", proxy.BackendTLSConfig{Enabled: true, CertFile: cert}, "cluster.tls.key_file: required when cert_file is set"},
		{"key without cert", proxy.BackendTLSConfig{Enabled: true, KeyFile: key}, "cluster.tls.cert_file: required when key_file is set"},
		{"missing cert_file", proxy.BackendTLSConfig{Enabled: true, CertFile: missing, KeyFile: key}, "cluster.tls.cert_file: open " + missing},
		{"cert_file not PEM", proxy.BackendTLSConfig{Enabled: true, CertFile: notPEM, KeyFile: key}, "cluster.tls.cert_file: no PEM certificate"},
		{"missing key_file", proxy.BackendTLSConfig{Enabled: true, CertFile: cert, KeyFile: missing}, "cluster.tls.key_file: open " + missing},
		{"key_file is a certificate", proxy.BackendTLSConfig{Enabled: true, CertFile: cert, KeyFile: caFile}, "cluster.tls.key_file: " + caFile},
		{"key of another certificate", proxy.BackendTLSConfig{Enabled: true, CertFile: cert, KeyFile: otherKey}, "cluster.tls.key_file: " + otherKey + ": tls: private key does not match public key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := proxy.DefaultConfig()
			cfg.Cluster.Seeds = []string{"127.0.0.1:7000"}
			cfg.Cluster.TLS = tc.tls
			err := cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}
