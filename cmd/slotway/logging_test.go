package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/internal/testutil"
)

// TestRunLogsJSON runs `slotway run -log-format json` against a seed
// nobody listens on: every stderr line is a JSON object, go-redis's own
// warnings come through slog with component=go-redis (not as "redis:
// 2026/12/02 ... pool.go:770: ..."), and the topology refresh that fails
// every second is written fewer times than it fails.
func TestRunLogsJSON(t *testing.T) {
	bin := buildBinary(t)
	ports := freePorts(t, 3)
	cfg := fmt.Sprintf("proxy:\n  listen: 127.0.0.1:%d\n  cluster:\n    seeds: [\"127.0.0.1:%d\"]\n    refresh_interval: 200ms\nstats:\n  listen: 127.0.0.1:%d\nlog:\n  format: text\n",
		ports[0], ports[1], ports[2])
	path := filepath.Join(t.TempDir(), "slotway.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "-c", path, "-log-format", "json") // the flag wins over log.format
	var stderr testutil.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	failures := 0
	re := regexp.MustCompile(`(?m)^slotway_proxy_topology_refreshes_total\{result="error"\} (\d+)$`)
	redistest.WaitFor(t, 60*time.Second, "10 failed topology refreshes and a go-redis line", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[2]))
		if err != nil {
			return false
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if m := re.FindSubmatch(body); m != nil {
			failures, _ = strconv.Atoi(string(m[1]))
		}
		return failures >= 10 && strings.Contains(stderr.String(), `"component":"go-redis"`)
	})
	sigtermAndWait(t, cmd, &stderr)
	out := stderr.String()
	refreshLines := 0
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Errorf("not a JSON line: %v: %s", err, l)
			continue
		}
		for k, v := range m {
			if v == "" {
				t.Errorf("empty field %s: %s", k, l)
			}
		}
		if m["msg"] == "topology refresh failed" {
			refreshLines++
		}
	}
	if refreshLines == 0 || refreshLines >= failures {
		t.Errorf("%d 'topology refresh failed' lines for %d failed refreshes; want at least 1 and fewer\n%s", refreshLines, failures, out)
	}
	t.Logf("%d failed refreshes, %d lines", failures, refreshLines)
}

// TestStdLogRouted: lines of the standard log package (net/http's server
// errors) come out in the -log-format too.
func TestStdLogRouted(t *testing.T) {
	old := slog.Default()
	t.Cleanup(func() {
		slog.SetDefault(old)
		log.SetOutput(os.Stderr)
		log.SetFlags(log.LstdFlags)
	})
	var buf testutil.Buffer
	f := &logFlags{level: "info", format: "json"}
	if err := f.check(flag.NewFlagSet("t", flag.ContinueOnError)); err != nil {
		t.Fatal(err)
	}
	f.logger(&buf, f.lvl, "text")
	log.Printf("http: TLS handshake error from %s: EOF", "10.0.0.9:51234")
	var m map[string]any
	if err := json.Unmarshal([]byte(buf.String()), &m); err != nil || m["msg"] != "http: TLS handshake error from 10.0.0.9:51234: EOF" {
		t.Errorf("got %q (%v)", buf.String(), err)
	}
}
