package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/internal/testutil"
)

func TestConfigErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"unknown key", "proxy:\n  listen: 127.0.0.1:7100\n  cluster:\n    seeds: [\"127.0.0.1:7000\"]\n    sedes: []\n", "line 5: unknown key proxy.cluster.sedes"},
		{"bad address", "proxy:\n  listen: 127.0.0.1\n  cluster:\n    seeds: [\"127.0.0.1:7000\"]\n", "line 2: proxy.listen: want host:port"},
		{"bad seed", "proxy:\n  cluster:\n    seeds: [\"127.0.0.1:7000\", \"300.1.2.3:7001\"]\n", "line 3: proxy.cluster.seeds[1]: bad IP address"},
		{"empty seeds", "proxy:\n  listen: 127.0.0.1:7100\n  cluster:\n    seeds: []\n", "line 4: proxy.cluster.seeds: at least one cluster node"},
		{"no seeds at all", "stats:\n  listen: 127.0.0.1:8100\n", "proxy.cluster.seeds: at least one cluster node"},
		{"bad stats listen", "proxy:\n  cluster:\n    seeds: [\"a:1\"]\nstats:\n  listen: x\n", "line 5: stats.listen"},
		{"bad duration", "proxy:\n  retry_timeout: soon\n  cluster:\n    seeds: [\"a:1\"]\n", "line 2"},
		{"bad limit", "proxy:\n  cluster:\n    seeds: [\"a:1\"]\n  limits:\n    max_bulk_len: 0\n", "line 5: proxy.limits.max_bulk_len: must be 1b..4gb"},
		{"backend tls ca_file", "proxy:\n  cluster:\n    seeds: [\"a:1\"]\n    tls:\n      enabled: true\n      ca_file: /nonexistent/ca.pem\n", "line 6: proxy.cluster.tls.ca_file: open /nonexistent/ca.pem"},
		{"scaler bounds", "proxy:\n  cluster:\n    seeds: [\"a:1\"]\nscaler:\n  enabled: true\n  min_masters: 4\n  max_masters: 3\n", "line 7: scaler.max_masters: must be at least min_masters (4), got 3"},
		{"scaler threshold", "proxy:\n  cluster:\n    seeds: [\"a:1\"]\nscaler:\n  thresholds:\n    memory_pct: 150\n", "line 6: scaler.thresholds.memory_pct: must be 0..100"},
		{"scaler plans order", "proxy:\n  cluster:\n    seeds: [\"a:1\"]\nscaler:\n  plans: [1gb, 512mb]\n", "scaler.plans[1]: plans must be positive sizes in ascending order"},
		{"scaler webhook", "proxy:\n  cluster:\n    seeds: [\"a:1\"]\nscaler:\n  notify:\n    webhook: ftp://x\n", "line 6: scaler.notify.webhook"},
		{"scaler unknown key", "proxy:\n  cluster:\n    seeds: [\"a:1\"]\nscaler:\n  up_cycle: 3\n", "line 5: unknown key scaler.up_cycle"},
		{"int for duration", "proxy:\n  cluster:\n    seeds: [\"a:1\"]\n  retry_timeout: 3\n", "line 4: proxy.retry_timeout: want a duration such as 3s, got 3"},
		{"ha type error", "proxy:\n  cluster:\n    seeds: [\"a:1\"]\nha:\n  name: p1\n  bind: 127.0.0.1:7946\n  priority: high\n", "line 7: ha.priority: want an integer, got high"},
		{"scaler percentage", "proxy:\n  cluster:\n    seeds: [\"a:1\"]\nscaler:\n  imbalance: lots\n", "line 5: scaler.imbalance: want a percentage like 2%, got \"lots\""},
		{"backend tls cert without key", "proxy:\n  cluster:\n    seeds: [\"a:1\"]\n    tls:\n      enabled: true\n      cert_file: x.crt\n", "line 4: proxy.cluster.tls.key_file: required when cert_file is set"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "slotway.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := loadConfig(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant it to contain %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error does not name the file: %v", err)
			}
		})
	}
}

// TestExampleConfigs loads every example config shipped in deploy/ and
// every YAML block of the README and docs/*.md that is a whole Slotway
// config.
func TestExampleConfigs(t *testing.T) {
	root := filepath.Join("..", "..")
	var files []string
	err := filepath.WalkDir(filepath.Join(root, "deploy"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			b, rerr := os.ReadFile(p)
			if rerr == nil && regexp.MustCompile(`(?m)^proxy:`).Match(b) {
				files = append(files, p)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range append([]string{filepath.Join(root, "README.md")}, docs...) {
		text, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		// Fragments (a scaler: section alone) are not whole files.
		for i, b := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(text, -1) {
			if !regexp.MustCompile(`(?m)^proxy:`).Match(b[1]) {
				continue
			}
			p := filepath.Join(t.TempDir(), fmt.Sprintf("%s-%d.yaml", filepath.Base(doc), i+1))
			if err := os.WriteFile(p, b[1], 0o600); err != nil {
				t.Fatal(err)
			}
			files = append(files, p)
		}
	}
	if len(files) < 2 {
		t.Fatalf("found only %d example configs: %v", len(files), files)
	}
	for _, f := range files {
		if _, err := loadConfig(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "slotway")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func requireRedis(t *testing.T) { t.Helper(); requireTool(t, "redis-server", "redis-server") }

// requireTool skips without the command, or fails under CI=true.
func requireTool(t *testing.T, cmd, pkg string) {
	t.Helper()
	testutil.RequireTool(t, cmd, "apt-get install -y "+pkg)
}

// TestDemoEndToEnd runs the binary's demo, talks to the printed endpoint and
// stats URL, then stops it with SIGINT and expects exit 0 and a clean dir.
func TestDemoEndToEnd(t *testing.T) {
	requireRedis(t)
	bin := buildBinary(t)
	tmp := t.TempDir()
	cmd := exec.Command(bin, "demo", "-listen", "127.0.0.1:0", "-stats", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var endpoint, statsURL string
	timeout := time.After(90 * time.Second)
	for endpoint == "" || statsURL == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("demo exited before printing its endpoint; stderr:\n%s", stderr.String())
			}
			t.Log(l)
			if v, ok := strings.CutPrefix(l, "endpoint: "); ok {
				endpoint = v
			}
			if v, ok := strings.CutPrefix(l, "stats: "); ok {
				statsURL = v
			}
		case <-timeout:
			t.Fatalf("no endpoint after 90s; stderr:\n%s", stderr.String())
		}
	}
	if !regexp.MustCompile(`^127\.0\.0\.1:\d+$`).MatchString(endpoint) || !regexp.MustCompile(`^http://127\.0\.0\.1:\d+/$`).MatchString(statsURL) {
		t.Fatalf("endpoint %q, stats %q", endpoint, statsURL)
	}
	rc := redis.NewClient(&redis.Options{Addr: endpoint})
	defer rc.Close()
	ctx := context.Background()
	if err := rc.Set(ctx, "demo:key", "hello", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := rc.Get(ctx, "demo:key").Result(); err != nil || v != "hello" {
		t.Fatalf("GET = %q, %v", v, err)
	}
	for _, path := range []string{"healthz", "readyz", "metrics"} {
		resp, err := http.Get(statsURL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s%s: %d %s", statsURL, path, resp.StatusCode, body)
		}
		if path == "metrics" && !strings.Contains(string(body), `slotway_proxy_commands_total{command="set",result="ok"} 1`) {
			t.Errorf("/metrics does not count the SET:\n%s", body)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		for range lines {
		}
		done <- cmd.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo exit: %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("demo did not exit after SIGINT")
	}
	left, _ := filepath.Glob(filepath.Join(tmp, "slotway-demo-*"))
	if len(left) > 0 {
		t.Errorf("demo left %v behind", left)
	}
}

// TestRunSIGTERM runs `slotway run -c FILE` against a real cluster and
// expects a clean exit 0 on SIGTERM.
func TestRunSIGTERM(t *testing.T) {
	requireRedis(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	bin := buildBinary(t)
	ports := freePorts(t, 2)
	cfg := fmt.Sprintf("proxy:\n  listen: 127.0.0.1:%d\n  cluster:\n    seeds: [%q]\nstats:\n  listen: 127.0.0.1:%d\n", ports[0], c.Seeds()[0], ports[1])
	path := filepath.Join(t.TempDir(), "slotway.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "-c", path)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	rc := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", ports[0]), MaxRetries: -1})
	defer rc.Close()
	ctx := context.Background()
	redistest.WaitFor(t, 30*time.Second, "slotway to serve", func() bool {
		return rc.Set(ctx, "run:key", "v", 0).Err() == nil
	})
	if v := rc.Get(ctx, "run:key").Val(); v != "v" {
		t.Fatalf("GET = %q", v)
	}
	sigtermAndWait(t, cmd, &out)
	if !strings.Contains(out.String(), "slotway stopped") {
		t.Errorf("log lacks the stop line:\n%s", out.String())
	}
}

func TestUsage(t *testing.T) {
	var out, errb strings.Builder
	if code := runMain([]string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "slotway ") {
		t.Errorf("version: %d %q", code, out.String())
	}
	if code := runMain([]string{"nope"}, &out, &errb); code != 2 {
		t.Errorf("unknown command exit %d", code)
	}
	if code := runMain([]string{"run"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "-config FILE is required") {
		t.Errorf("run without config: %d %q", code, errb.String())
	}
}

// freePorts picks n free loopback ports.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		p, err := redistest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = p
	}
	return ports
}

// sigtermAndWait sends SIGTERM to cmd and fails the test unless it exits
// 0 within 30 s; out is the process's output, shown on failure.
func sigtermAndWait(t *testing.T, cmd *exec.Cmd, out fmt.Stringer) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, out)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no exit after SIGTERM\n%s", out)
	}
}
