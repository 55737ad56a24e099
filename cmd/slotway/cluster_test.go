package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/redistest"
)

// TestClusterCommand: `slotway cluster` drives the scaler of a running
// instance through the admin API: scale out, drain, status, and a clear
// failure with a wrong token.
func TestClusterCommand(t *testing.T) {
	requireRedis(t)
	c := redistest.New(t, redistest.Options{Masters: 3, Spares: 1})
	bin := buildBinary(t)
	ports := freePorts(t, 2)
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("0123456789abcdef-test-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`proxy:
  listen: 127.0.0.1:%d
  cluster:
    seeds: [%q]
stats:
  listen: 127.0.0.1:%d
  admin_token_file: %s
scaler:
  provider: {kind: pool, pool: [%q]}
  rebalance: {threshold: 2%%, batch_keys: 50}
`, ports[0], c.Seeds()[0], ports[1], tokenFile, c.Spares()[0].Addr)
	path := filepath.Join(dir, "slotway.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "-c", path)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("slotway output:\n%s", out.String())
		}
	})
	rc := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", ports[0]), MaxRetries: -1})
	defer rc.Close()
	ctx := context.Background()
	redistest.WaitFor(t, 30*time.Second, "slotway to serve", func() bool {
		return rc.Set(ctx, "cli:key", "v", 0).Err() == nil
	})
	run := func(args ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		code := runMain(append([]string{"cluster", "-config", path}, args...), &stdout, &stderr)
		return code, stdout.String() + stderr.String()
	}
	if code, o := run("scale", "4"); code != 0 || !strings.Contains(o, "scale done: slots ") {
		t.Fatalf("scale 4: exit %d\n%s", code, o)
	}
	if code, o := run("status"); code != 0 || !strings.Contains(o, "scale done") {
		t.Fatalf("status: exit %d\n%s", code, o)
	}
	if v := rc.Get(ctx, "cli:key").Val(); v != "v" {
		t.Fatalf("key after scale out = %q", v)
	}
	if code, o := run("drain", c.Spares()[0].Addr); code != 0 || !strings.Contains(o, "drain done") {
		t.Fatalf("drain: exit %d\n%s", code, o)
	}
	if code, o := run("drain", "127.0.0.1:1"); code != 1 || !strings.Contains(o, "not a master") {
		t.Fatalf("drain of a stranger: exit %d\n%s", code, o)
	}
	if code, o := run("scale", "x"); code != 2 {
		t.Fatalf("scale x: exit %d\n%s", code, o)
	}
	if err := os.WriteFile(tokenFile, []byte("wrong-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, o := run("rebalance"); code != 1 || !strings.Contains(o, "403") {
		t.Fatalf("wrong token: exit %d\n%s", code, o)
	}
	if v := rc.Get(ctx, "cli:key").Val(); v != "v" {
		t.Fatalf("key after drain = %q", v)
	}
}
