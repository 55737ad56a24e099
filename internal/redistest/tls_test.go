package redistest_test

import (
	"crypto/x509"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/internal/testcert"
)

// TestTLSCluster: with Options.TLS the nodes serve TLS only, form the
// cluster over a TLS bus, replicate over TLS and migrate keys (MIGRATE opens
// a TLS connection to the target); plaintext clients get nowhere.
func TestTLSCluster(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "redistest CA")
	cert, key := ca.Issue(t, dir, "node", x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
	files := &redistest.TLSFiles{CAFile: ca.WriteCA(t, dir, "ca.crt"), CertFile: cert, KeyFile: key}
	c := redistest.New(t, redistest.Options{Masters: 2, Replicas: 1, TLS: files})
	ctx := t.Context()

	masters, err := c.Masters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(masters) != 2 {
		t.Fatalf("len(Masters()) = %d, want 2", len(masters))
	}
	src, dst := masters[0], masters[1]
	// CLUSTER NODES over TLS shows the TLS ports, which are the nodes' ports.
	out, err := src.Client().ClusterNodes(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes() {
		if !strings.Contains(out, n.Addr+"@") {
			t.Errorf("CLUSTER NODES does not list %s:\n%s", n.Addr, out)
		}
	}

	tag := tagForSlot(t, 0)
	if err := src.Client().Set(ctx, "{"+tag+"}k", "v", 0).Err(); err != nil {
		t.Fatalf("SET over TLS: %v", err)
	}
	if err := c.MoveSlot(ctx, 0, src, dst); err != nil {
		t.Fatalf("MoveSlot over TLS: %v", err)
	}
	if v, err := dst.Client().Get(ctx, "{"+tag+"}k").Result(); err != nil || v != "v" {
		t.Fatalf("GET after MoveSlot = %q, %v", v, err)
	}

	plain := redis.NewClient(&redis.Options{Addr: src.Addr, Protocol: 2, DisableIdentity: true, MaxRetries: -1, DialerRetries: 1})
	defer plain.Close()
	if err := plain.Ping(ctx).Err(); err == nil {
		t.Error("a plaintext client got PONG from a TLS-only node")
	}
}
