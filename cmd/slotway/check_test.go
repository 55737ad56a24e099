package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slotway/slotway/internal/redistest"
)

func TestCheckUsage(t *testing.T) {
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	nobody := fmt.Sprintf("127.0.0.1:%d", port)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"check"}, 2, "-addr HOST:PORT or -config FILE is required"},
		{[]string{"check", "-addr", nobody, "-config", "x.yaml"}, 2, "not both"},
		{[]string{"check", "-addr", nobody, "-workers", "5", "-keys", "4"}, 2, "exceeds -keys"},
		{[]string{"check", "-addr", nobody, "-rate", "0"}, 2, "must be positive"},
		{[]string{"check", "-addr", nobody, "extra"}, 2, "unexpected argument"},
		{[]string{"check", "-config", "/nonexistent/slotway.yaml"}, 1, "/nonexistent/slotway.yaml"},
		{[]string{"check", "-addr", nobody, "-duration", "1s"}, 1, "PING"},
		{[]string{"check", "-h"}, 0, "errors alone, e.g. during a\nfailover, do not fail the check"},
	} {
		var out, errb strings.Builder
		code := runMain(tc.args, &out, &errb)
		if code != tc.code || !strings.Contains(errb.String(), tc.want) || out.Len() != 0 {
			t.Errorf("%v: exit %d, stdout %q, stderr:\n%s\nwant exit %d and stderr containing %q", tc.args, code, out.String(), errb.String(), tc.code, tc.want)
		}
	}
}

func TestCheckAddrFromConfig(t *testing.T) {
	for listen, want := range map[string]string{
		"0.0.0.0:7100":  "127.0.0.1:7100",
		"[::]:7100":     "[::1]:7100",
		"10.0.0.5:7100": "10.0.0.5:7100",
	} {
		path := filepath.Join(t.TempDir(), "slotway.yaml")
		yaml := fmt.Sprintf("proxy:\n  listen: %q\n  cluster:\n    seeds: [\"127.0.0.1:7000\"]\n", listen)
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := checkAddrFromConfig(path); got != want || err != nil {
			t.Errorf("listen %s: got %q, %v; want %q", listen, got, err, want)
		}
	}
}

// TestCheckCommand runs `slotway check -config FILE` against an in-process
// Slotway in front of a 3-master cluster (exit 0), then again while every
// master is flushed mid-run (exit 1).
func TestCheckCommand(t *testing.T) {
	requireRedis(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf("proxy:\n  listen: 0.0.0.0:%d\n  cluster:\n    seeds: [%q]\nstats:\n  listen: 127.0.0.1:0\n", port, c.Seeds()[0])
	path := filepath.Join(t.TempDir(), "slotway.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := newInstance(cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := inst.run(ctx); err != nil {
			t.Error(err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	redistest.WaitFor(t, 30*time.Second, "proxy ready", inst.proxy.Ready)

	var out, errb strings.Builder
	code := runMain([]string{"check", "-config", path, "-duration", "1500ms", "-rate", "400", "-v"}, &out, &errb)
	t.Logf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	if code != 0 || !strings.HasPrefix(out.String(), "written ") || !strings.Contains(out.String(), ", lost 0, stale 0, errors 0\n") {
		t.Errorf("clean run: exit %d, stdout:\n%s", code, out.String())
	}
	if !regexp.MustCompile(`^elapsed \d+s, written \d+, errors 0\n`).MatchString(errb.String()) {
		t.Errorf("-v: no progress line on stderr:\n%s", errb.String())
	}

	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		// Flush once the run has acknowledged writes (its keys exist).
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		giveUp := time.After(10 * time.Second)
	wait:
		for {
			select {
			case <-tick.C:
			case <-giveUp:
				break wait
			}
			keys := 0
			for _, nd := range c.Nodes() {
				k, _ := nd.Client().DBSize(context.Background()).Result()
				keys += int(k)
			}
			if keys >= 100 {
				break wait
			}
		}
		for _, n := range c.Nodes() {
			if err := n.Client().FlushAll(context.Background()).Err(); err != nil {
				t.Error(err)
			}
		}
	}()
	out.Reset()
	errb.Reset()
	code = runMain([]string{"check", "-addr", inst.proxy.Addr().String(), "-duration", "2s", "-prefix", "other:"}, &out, &errb)
	<-flushed
	t.Logf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	if code != 1 || !strings.HasPrefix(out.String(), "written ") || !strings.Contains(errb.String(), "slotway check: inconsistent: ") {
		t.Errorf("run with FLUSHALL: exit %d, want 1 and the verdict on stderr", code)
	}
}
