package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/slotway/slotway/internal/bench"
	"github.com/slotway/slotway/internal/redistest"
)

func TestBenchUsage(t *testing.T) {
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	nobody := fmt.Sprintf("127.0.0.1:%d", port)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"bench"}, 2, "-endpoint HOST:PORT is required"},
		{[]string{"bench", "-endpoint", "localhost"}, 2, `endpoint "localhost": want HOST:PORT`},
		{[]string{"bench", "-endpoint", nobody, "extra"}, 2, "unexpected argument"},
		{[]string{"bench", "-endpoint", nobody, "-sizes", "16,abc"}, 2, `-sizes: invalid size "abc"`},
		{[]string{"bench", "-endpoint", nobody, "-sizes", "16,0"}, 2, "size 0: must be at least 1 byte"},
		{[]string{"bench", "-endpoint", nobody, "-sizes", "600000000"}, 2, "size 600000000 bytes: exceeds 512 MB"},
		{[]string{"bench", "-endpoint", nobody, "-sizes", "1gb"}, 2, "exceeds 512 MB"},
		{[]string{"bench", "-endpoint", nobody, "-sizes", "1kb,1024"}, 2, "size 1024 listed twice"},
		{[]string{"bench", "-endpoint", nobody, "-clients", "0"}, 2, "must be positive"},
		{[]string{"bench", "-endpoint", nobody, "-pipeline", "-1"}, 2, "must be positive"},
		{[]string{"bench", "-endpoint", nobody, "-duration", "0s"}, 2, "must be positive"},
		{[]string{"bench", "-endpoint", nobody, "-rate", "-1"}, 2, "-rate not negative"},
		{[]string{"bench", "-endpoint", nobody, "-clients", "20000"}, 2, "clients must be 1..10000"},
		{[]string{"bench", "-endpoint", nobody, "-out", filepath.Join(file, "sub")}, 1, "slotway bench: -out: "},
		{[]string{"bench", "-endpoint", nobody, "-out", t.TempDir(), "-duration", "1s"}, 1, "bench: " + nobody + ": PING: "},
		{[]string{"bench", "-h"}, 0, "each latency counts from the command's scheduled time"},
	} {
		var out, errb strings.Builder
		code := runMain(tc.args, &out, &errb)
		if code != tc.code || !strings.Contains(errb.String(), tc.want) || out.Len() != 0 {
			t.Errorf("%v: exit %d, stdout %q, stderr:\n%s\nwant exit %d and stderr containing %q", tc.args, code, out.String(), errb.String(), tc.code, tc.want)
		}
	}
}

// startProxy runs one in-process Slotway (no group) in front of c and
// returns its address once it is ready.
func startProxy(t *testing.T, c *redistest.Cluster) string {
	t.Helper()
	cfg := defaultConfig()
	cfg.Proxy.Listen, cfg.Stats.Listen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Proxy.Cluster.Seeds = c.Seeds()
	inst, err := newInstance(cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- inst.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	redistest.WaitFor(t, 30*time.Second, "proxy ready", inst.proxy.Ready)
	return inst.proxy.Addr().String()
}

// runBench runs `slotway bench` with args plus -out and returns the output
// directory, failing the test unless it exits 0.
func runBench(t *testing.T, args ...string) (dir, stdout, stderr string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "results")
	var out, errb strings.Builder
	code := runMain(append([]string{"bench", "-out", dir}, args...), &out, &errb)
	t.Logf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	if code != 0 {
		t.Fatalf("slotway bench %v: exit %d", args, code)
	}
	return dir, out.String(), errb.String()
}

func readReport(t *testing.T, dir string) bench.Report {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, bench.FileJSON))
	if err != nil {
		t.Fatal(err)
	}
	var rep bench.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestBenchCommand runs `slotway bench` through an in-process Slotway in
// front of a 3-master cluster, as against the demo: one CSV row per size
// and command, the JSON with the config, the SVG, a line per phase on a
// non-terminal stderr, the table on stdout, and no key left behind.
func TestBenchCommand(t *testing.T) {
	requireRedis(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	addr := startProxy(t, c)
	dir, stdout, stderr := runBench(t, "-endpoint", addr, "-duration", "300ms", "-sizes", "16,1kb", "-clients", "4")

	raw, err := os.ReadFile(filepath.Join(dir, bench.FileCSV))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("results.csv:\n%s", raw)
	rows, err := csv.NewReader(bytes.NewReader(raw)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"size_bytes", "command"}, {"16", "SET"}, {"16", "GET"}, {"1024", "SET"}, {"1024", "GET"}}
	if len(rows) != len(want) {
		t.Fatalf("%d CSV rows, want %d: %v", len(rows), len(want), rows)
	}
	for i, w := range want {
		if rows[i][0] != w[0] || rows[i][1] != w[1] || len(rows[i]) != 11 {
			t.Errorf("CSV row %d = %v, want it to start %v and have 11 columns", i, rows[i], w)
		}
		if i > 0 && (rows[i][2] == "0" || rows[i][10] != "0") {
			t.Errorf("CSV row %d = %v: want ops and no errors", i, rows[i])
		}
	}
	rep := readReport(t, dir)
	if rep.Config.Endpoint != addr || rep.Config.Clients != 4 || rep.Config.Duration != "300ms" ||
		len(rep.Results) != 4 || rep.Interrupted || rep.Cleanup.Error != "" || rep.Results[3].Misses != 0 {
		t.Errorf("results.json: %+v", rep)
	}
	if svg, err := os.ReadFile(filepath.Join(dir, bench.FileSVG)); err != nil || !strings.HasPrefix(string(svg), "<svg ") {
		t.Errorf("results.svg: %v %.80q", err, svg)
	}
	if n := len(regexp.MustCompile(`(?m)^\[\d/4\] (16 B|1 KiB) (SET|GET): \d+ ops/s`).FindAllString(stderr, -1)); n != 4 || strings.Contains(stderr, "\r") {
		t.Errorf("stderr: %d phase lines, want 4 and no carriage returns", n)
	}
	if !strings.Contains(stdout, "p99 ms") || !strings.Contains(stdout, "wrote "+filepath.Join(dir, bench.FileSVG)) {
		t.Errorf("stdout lacks the table or the file list")
	}
	var keys int64
	for _, nd := range c.Nodes() {
		n, err := nd.Client().DBSize(context.Background()).Result()
		if err != nil {
			t.Fatal(err)
		}
		keys += n
	}
	if keys != 0 || rep.Cleanup.Deleted == 0 {
		t.Errorf("%d keys left in the cluster; cleanup %+v", keys, rep.Cleanup)
	}
}

// TestBenchRate: with -rate every command due in a phase is sent or
// reported unsent, never more (300ms at 200/s is 60 per phase).
func TestBenchRate(t *testing.T) {
	s := redistest.StartStandalone(t)
	dir, _, _ := runBench(t, "-endpoint", s.Addr, "-duration", "300ms", "-sizes", "64", "-clients", "2", "-rate", "200", "-pipeline", "2")
	rep := readReport(t, dir)
	if rep.Config.Mode != "open-loop" || rep.Config.Rate != 200 || len(rep.Results) != 2 {
		t.Fatalf("results.json: %+v", rep)
	}
	for _, r := range rep.Results {
		if r.Ops+r.Errors+r.Unsent != 60 || r.Ops == 0 {
			t.Errorf("%s: ops %d, errors %d, unsent %d; want 60 in all", r.Command, r.Ops, r.Errors, r.Unsent)
		}
	}
}

// TestBenchSVGInChromium renders a real run's results.svg in headless
// Chromium: both charts drawn with visible lines, the p99 chart titled.
func TestBenchSVGInChromium(t *testing.T) {
	chromium := requireChromium(t)
	s := redistest.StartStandalone(t)
	dir, _, _ := runBench(t, "-endpoint", s.Addr, "-duration", "150ms", "-sizes", "16,128,1kb", "-clients", "2")

	actx, acancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.UserDataDir(t.TempDir()))...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	ctx, cancel := context.WithTimeout(bctx, 60*time.Second)
	defer cancel()
	url := "file://" + filepath.Join(dir, bench.FileSVG)
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	type state struct {
		Root    string  `json:"root"`
		Lines   int     `json:"lines"`
		Drawn   int     `json:"drawn"`
		Charts  int     `json:"charts"`
		P99     bool    `json:"p99"`
		Width   float64 `json:"width"`
		Circles int     `json:"circles"`
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[state](`(() => {
		const root = document.documentElement;
		const lines = [...document.querySelectorAll('svg path, svg polyline')];
		return {
			root: root.localName,
			lines: lines.length,
			drawn: lines.filter(l => l.getTotalLength() > 0 && l.getBoundingClientRect().width > 0).length,
			charts: document.querySelectorAll('svg g.chart').length,
			p99: root.textContent.includes('p99'),
			width: root.getBoundingClientRect().width,
			circles: document.querySelectorAll('svg circle').length,
		};
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	// 2 charts x 2 commands; 3 sizes x 2 commands x 2 charts points.
	if got.Root != "svg" || got.Lines != 4 || got.Drawn != 4 || got.Charts != 2 || !got.P99 || got.Width < 900 || got.Circles != 12 {
		t.Errorf("rendered SVG: %+v", got)
	}
	if shotDir := os.Getenv("SLOTWAY_SCREENSHOT_DIR"); shotDir != "" {
		if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(90)); err == nil {
			_ = os.WriteFile(filepath.Join(shotDir, "bench-results.png"), png, 0o644)
		}
	}
}
