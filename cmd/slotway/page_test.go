package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/slotway/slotway/ha"
	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/internal/testutil"
	"github.com/slotway/slotway/scaler"
	"github.com/slotway/slotway/stats"
)

var regexpMetric = regexp.MustCompile(`slotway_[a-z_]+`)

func requireChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testutil.Missing(t, "chromium not installed (apt-get install -y chromium chromium-driver)")
	return ""
}

// startPair runs two in-process instances in one group (status mode) in
// front of c, like the demo.
func startPair(t *testing.T, c *redistest.Cluster) []*instance {
	t.Helper()
	var gossip []string
	for range 2 {
		p, err := redistest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		gossip = append(gossip, fmt.Sprintf("127.0.0.1:%d", p))
	}
	tokenFile := writePairToken(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var insts []*instance
	for i := range 2 {
		cfg := defaultConfig()
		cfg.Proxy.Listen, cfg.Stats.Listen = "127.0.0.1:0", "127.0.0.1:0"
		cfg.Stats.AdminTokenFile = tokenFile
		cfg.Proxy.Cluster.Seeds = c.Seeds()
		cfg.Proxy.HealthInterval = 200 * time.Millisecond
		hc := ha.DefaultConfig()
		hc.Name, hc.Bind, hc.Peers, hc.Priority = fmt.Sprintf("p%d", i+1), gossip[i], []string{gossip[1-i]}, 150-50*i
		hc.VIP = ha.VIPConfig{Mode: "status"}
		cfg.HA = &hc
		// The autoscaler evaluates (on the leader) for the page; no spare
		// node, and min_masters 3: it has nothing to act on.
		sc := scaler.DefaultConfig()
		sc.Enabled, sc.Interval, sc.NodeMemory = true, 300*time.Millisecond, 64<<20
		cfg.Scaler = &sc
		in, err := newInstance(cfg, slog.New(slog.DiscardHandler), nil)
		if err != nil {
			t.Fatal(err)
		}
		insts = append(insts, in)
		wg.Go(func() {
			if err := in.run(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	// Either may win: the first whose proxy is ready is the only healthy
	// candidate, and the holder is sticky after that.
	redistest.WaitFor(t, 30*time.Second, "one holder, agreed by both, and both proxies ready", func() bool {
		h0, h1 := insts[0].group.State().Holder, insts[1].group.State().Holder
		return h0 != "" && h0 == h1 && insts[0].proxy.Ready() && insts[1].proxy.Ready()
	})
	return insts
}

// TestStatsPageInChromium loads the page in headless Chromium, checks the
// group and every master with its slot count, kills a master and waits for
// the page to show it DOWN without a reload, and saves a screenshot.
func TestStatsPageInChromium(t *testing.T) {
	requireRedis(t)
	chromium := requireChromium(t)
	c := redistest.New(t, redistest.Options{Masters: 3, Replicas: 1})
	insts := startPair(t, c)
	url := "http://" + insts[0].stats.Addr().String() + "/"

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 2400))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()

	masters, err := c.Masters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rowText := func(addr string) string {
		return fmt.Sprintf(`((document.querySelector('[data-addr="%s"]')||{}).textContent||"")`, addr)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	poll := func(expr string, timeout time.Duration) error {
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(timeout)))
		return err
	}
	text := func(expr string) string {
		s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		return s
	}
	if err := poll(`document.body.innerText.includes("VIP holder") && document.body.innerText.includes("p2")`, 20*time.Second); err != nil {
		t.Fatalf("the group is not shown: %v\n%s", err, text(`document.body.innerText`))
	}
	for _, m := range masters {
		if err := poll(`/5,?46[12]/.test(`+rowText(m.Addr)+`)`, 20*time.Second); err != nil {
			t.Fatalf("master %s with its slot count is not shown: %v (row %q)", m.Addr, err, text(rowText(m.Addr)))
		}
	}
	// The autoscaler panel: the signals against their thresholds, the
	// cycle counters and the last decision, published by the leader.
	sig := `((document.querySelector('#scaler-signals [data-signal="memory_pct"]')||{}).textContent||"")`
	if err := poll(sig+`.includes("%") && document.getElementById("scaler-decision").textContent.includes("3 masters")`, 20*time.Second); err != nil {
		t.Fatalf("the autoscaler panel is not shown: %v (memory row %q, decision %q)", err, text(sig),
			text(`document.getElementById("scaler-decision").textContent`))
	}
	checkPageLatencyWindow(t, ctx, insts[0])
	checkPagePause(t, ctx, insts[0])
	victim := masters[0]
	if err := c.Kill(victim); err != nil {
		t.Fatal(err)
	}
	statusCell := fmt.Sprintf(`((document.querySelector('[data-addr="%s"] .status')||{}).textContent||"")`, victim.Addr)
	if err := poll(statusCell+`.match(/DOWN|FAIL/) !== null`, 30*time.Second); err != nil {
		t.Fatalf("the killed master is not shown DOWN without a reload: %v (status %q)", err, text(statusCell))
	}
	status := text(statusCell)
	checkPageStaleNode(t, ctx, victim.Addr)
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(90))
	if err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(t.TempDir(), "stats-page.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv("SLOTWAY_SCREENSHOT_DIR"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, "stats-page.png"), png, 0o644)
	}
	t.Logf("killed master %s shown as %q; screenshot: %s", victim.Addr, status, shot)
}

// TestStatusJSONSchema checks that /api/v1/status carries every field of
// the schema (the page reads nothing else) and real values.
func TestStatusJSONSchema(t *testing.T) {
	requireRedis(t)
	c := redistest.New(t, redistest.Options{Masters: 3, Replicas: 1})
	insts := startPair(t, c)
	resp, err := http.Get("http://" + insts[0].stats.Addr().String() + "/api/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	checkFields(t, "", reflect.TypeOf(stats.Status{}), raw)
	var st stats.Status
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if st.Cluster.Masters != 3 || st.Cluster.SlotsServed != 16384 || len(st.Cluster.Nodes) != 6 {
		t.Errorf("cluster: %d masters, %d slots, %d nodes", st.Cluster.Masters, st.Cluster.SlotsServed, len(st.Cluster.Nodes))
	}
	if st.Group == nil || (st.Group.Holder != "p1" && st.Group.Holder != "p2") || len(st.Group.Members) != 2 {
		t.Errorf("group: %+v", st.Group)
	}
	covered := 0
	for _, r := range st.Cluster.Slots {
		covered += r.End - r.Start + 1
	}
	if covered != 16384 {
		t.Errorf("slot map covers %d slots", covered)
	}

	// A slot opened for migration is marked on the slot map.
	ctx := context.Background()
	src, err := c.MasterOf(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	masters, _ := c.Masters(ctx)
	dst := masters[len(masters)-1]
	if err := c.BeginMigration(ctx, 100, src, dst); err != nil {
		t.Fatal(err)
	}
	redistest.WaitFor(t, 10*time.Second, "slot 100 marked migrating and importing", func() bool {
		resp, err := http.Get("http://" + insts[0].stats.Addr().String() + "/api/v1/status")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var st stats.Status
		if json.NewDecoder(resp.Body).Decode(&st) != nil {
			return false
		}
		for _, r := range st.Cluster.Slots {
			if r.Start == 100 && r.End == 100 && r.Migrating && r.Importing && r.Owner == src.Addr {
				return true
			}
		}
		return false
	})
}

// checkFields walks the JSON against the struct's json tags: every field
// must be present (omitempty ones may be missing).
func checkFields(t *testing.T, path string, typ reflect.Type, v any) {
	t.Helper()
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	switch typ.Kind() {
	case reflect.Struct:
		if typ == reflect.TypeOf(time.Time{}) {
			return
		}
		m, ok := v.(map[string]any)
		if !ok {
			if v == nil {
				return // a null section (e.g. no group)
			}
			t.Errorf("%s: want an object, got %T", path, v)
			return
		}
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue // not in the JSON (proxy.Latency, the histogram)
			}
			fv, ok := m[name]
			if !ok {
				if !strings.Contains(opts, "omitempty") {
					t.Errorf("%s.%s missing from /api/v1/status", path, name)
				}
				continue
			}
			checkFields(t, path+"."+name, f.Type, fv)
		}
	case reflect.Slice:
		if l, ok := v.([]any); ok && len(l) > 0 {
			checkFields(t, path+"[0]", typ.Elem(), l[0])
		}
	}
}

// TestDashboardUsesRealMetrics checks that every metric the Grafana
// dashboard queries is exposed by a running instance.
func TestDashboardUsesRealMetrics(t *testing.T) {
	requireRedis(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	insts := startPair(t, c)
	rc := exec.Command("redis-cli", "-p", strings.Split(insts[0].proxy.Addr().String(), ":")[1], "set", "k", "v")
	if out, err := rc.CombinedOutput(); err != nil {
		t.Fatalf("redis-cli: %v %s", err, out)
	}
	dash, err := os.ReadFile(filepath.Join("..", "..", "deploy", "grafana", "slotway.json"))
	if err != nil {
		t.Fatal(err)
	}
	var exposed string
	redistest.WaitFor(t, 10*time.Second, "node metrics from the health checker", func() bool {
		resp, err := http.Get("http://" + insts[0].stats.Addr().String() + "/metrics")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		exposed = string(b)
		return strings.Contains(exposed, "slotway_proxy_node_memory_bytes{")
	})
	problems, err := promlint.New(strings.NewReader(exposed)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	names := map[string]bool{}
	for _, m := range regexpMetric.FindAllString(string(dash), -1) {
		names[m] = true
	}
	if len(names) < 10 {
		t.Fatalf("only %d metric names found in the dashboard", len(names))
	}
	for n := range names {
		if !strings.Contains(exposed, "\n"+n+" ") && !strings.Contains(exposed, "\n"+n+"{") {
			t.Errorf("the dashboard queries %s, which /metrics does not expose", n)
		}
	}
}

// TestReadyzFollowsMasters: /readyz fails while every master is down and
// recovers when they are back.
func TestReadyzFollowsMasters(t *testing.T) {
	requireRedis(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	insts := startPair(t, c)
	url := "http://" + insts[0].stats.Addr().String() + "/readyz"
	code := func() int {
		resp, err := http.Get(url)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := code(); got != 200 {
		t.Fatalf("/readyz = %d with the cluster up", got)
	}
	masters, err := c.Masters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range masters {
		if err := c.Kill(m); err != nil {
			t.Fatal(err)
		}
	}
	redistest.WaitFor(t, 30*time.Second, "/readyz to fail with every master down", func() bool { return code() == 503 })
	for _, m := range masters {
		if err := c.Restart(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	redistest.WaitFor(t, 60*time.Second, "/readyz to recover", func() bool { return code() == 200 })
}
