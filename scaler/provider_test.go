package scaler

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestExecProvider: acquire's last word is the node's address; release
// gets the address as $1; failures and timeouts carry the output.
func TestExecProvider(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "released")
	p := &execProvider{acquire: `echo "starting node..."; echo 127.0.0.1:7010`,
		release: `echo "$1" >> ` + log, timeout: 5 * time.Second}
	ctx := context.Background()
	addr, err := p.Acquire(ctx)
	if err != nil || addr != "127.0.0.1:7010" {
		t.Fatalf("Acquire = %q, %v", addr, err)
	}
	if err := p.Release(ctx, addr); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(log); strings.TrimSpace(string(b)) != addr {
		t.Fatalf("release got %q", b)
	}
	cases := []struct {
		acquire, want string
	}{
		{`echo no address here`, `address "here"`},
		{`echo boom >&2; exit 3`, "boom"},
		{`true`, "printed no host:port"},
		{`sleep 10`, "signal: killed"},
	}
	for _, c := range cases {
		p := &execProvider{acquire: c.acquire, release: "true", timeout: 300 * time.Millisecond}
		if _, err := p.Acquire(ctx); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("acquire %q: %v, want an error with %q", c.acquire, err, c.want)
		}
	}
}
