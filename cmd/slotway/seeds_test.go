package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/stats"
)

// TestSeedsLeftOnStatusAndPage: an instance whose first seed knows only
// itself (as after a scale in reset it) serves the cluster, lists the seed
// in /api/v1/status cluster.seeds_left, and the page shows it.
func TestSeedsLeftOnStatusAndPage(t *testing.T) {
	requireRedis(t)
	c := redistest.New(t, redistest.Options{Masters: 3, Spares: 1})
	reset := c.Spares()[0].Addr
	cfg := defaultConfig()
	cfg.Proxy.Listen, cfg.Stats.Listen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Proxy.Cluster.Seeds = []string{reset, c.Seeds()[0]}
	cfg.Proxy.HealthInterval = 200 * time.Millisecond
	in, err := newInstance(cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := in.run(ctx); err != nil {
			t.Error(err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	base := "http://" + in.stats.Addr().String()
	var st stats.Status
	redistest.WaitFor(t, 30*time.Second, "the reset seed in /api/v1/status cluster.seeds_left", func() bool {
		resp, err := http.Get(base + "/api/v1/status")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		st = stats.Status{}
		if json.NewDecoder(resp.Body).Decode(&st) != nil {
			return false
		}
		return len(st.Cluster.SeedsLeft) == 1 && st.Cluster.SeedsLeft[0].Addr == reset
	})
	if st.Cluster.SlotsServed != 16384 || !slices.Equal(st.Cluster.Seeds, cfg.Proxy.Cluster.Seeds) {
		t.Errorf("status: %d slots served, seeds %v", st.Cluster.SlotsServed, st.Cluster.Seeds)
	}

	chromium := requireChromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	pctx, pcancel := context.WithTimeout(bctx, 60*time.Second)
	defer pcancel()
	if err := chromedp.Do(pctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	warn := `(function(){const e=document.getElementById("seeds-left");return !!e && !e.hidden && e.textContent.includes("` + reset + `") && e.textContent.includes("knows only itself")})()`
	if _, err := chromedp.Run(pctx, chromedp.Poll[bool](warn, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		text, _ := chromedp.Run(pctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("the page does not warn about seed %s: %v\n%s", reset, err, text)
	}
}

// TestGroupSeeds: the leader learns every member's proxy.cluster.seeds
// from their /api/v1/status, for the scale in.
func TestGroupSeeds(t *testing.T) {
	requireRedis(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	insts := startPair(t, c)
	seeds := groupSeeds([]string{"own.example:6379"}, "p1", insts[0].group, &http.Client{Timeout: 3 * time.Second}, slog.New(slog.DiscardHandler))
	got := seeds(context.Background())
	for _, want := range append([]string{"own.example:6379"}, c.Seeds()...) {
		if !slices.Contains(got, want) {
			t.Errorf("member seeds %v lack %s", got, want)
		}
	}
}
