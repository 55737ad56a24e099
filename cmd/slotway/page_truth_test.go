package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/stats"
)

// sampleSource serves the page's sample status (stats/web/testdata),
// widened to many masters, with its clock at now.
type sampleSource struct{ st stats.Status }

func (s *sampleSource) Ready() bool          { return true }
func (s *sampleSource) Status() stats.Status { return s.st }

// wideSample is sample.json with n masters, each in every signal's
// per_master, one of them down with stale values, and the autoscaler
// paused. It edits the JSON, not the structs, so the test also builds
// against a Status without some of the fields.
func wideSample(t *testing.T, n int) stats.Status {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "stats", "web", "testdata", "sample.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	stamp := func(d time.Duration) string { return now.Add(-d).UTC().Format(time.RFC3339Nano) }
	cluster := m["cluster"].(map[string]any)
	tmpl := cluster["nodes"].([]any)[0].(map[string]any)
	var nodes, slots []any
	per := 16384 / n
	for i := range n {
		nd := map[string]any{}
		for k, v := range tmpl {
			nd[k] = v
		}
		addr := fmt.Sprintf("10.77.0.%d:6379", 100+i)
		start, end := i*per, (i+1)*per-1
		if i == n-1 {
			end = 16383
		}
		nd["id"], nd["addr"] = fmt.Sprintf("%040d", i), addr
		nd["slot_ranges"], nd["slot_count"] = [][2]int{{start, end}}, end-start+1
		nd["last_check"], nd["last_ok"], nd["stale"] = stamp(0), stamp(0), false
		slots = append(slots, map[string]any{"start": start, "end": end, "owner": addr})
		nodes = append(nodes, nd)
	}
	down := nodes[1].(map[string]any)
	down["status"], down["since"], down["last_error"] = "DOWN", stamp(12*time.Second), "dial tcp 10.77.0.101:6379: connect: connection refused"
	down["stale"], down["last_ok"], down["stale_seconds"] = true, stamp(12*time.Second), 12
	cluster["nodes"], cluster["slots"], cluster["masters"] = nodes, slots, n
	auto := m["scaler"].(map[string]any)["auto"].(map[string]any)
	auto["paused"] = true
	for _, sg := range auto["signals"].([]any) {
		pm := map[string]any{}
		for i, nd := range nodes {
			pm[nd.(map[string]any)["addr"].(string)] = 1234.5 * float64(i+1)
		}
		sg.(map[string]any)["per_master"] = pm
	}
	b, err = json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var st stats.Status
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestStatsPageLayoutInChromium renders a 12-master status at 1024 px (the
// narrowest width with two columns of panels) and checks that the Scaling panel's per-master column fits its panel (it
// wraps), that the down node's stale values are not shown, and that the
// paused autoscaler is shown paused. The screenshot is left in
// SLOTWAY_SCREENSHOT_DIR when set.
func TestStatsPageLayoutInChromium(t *testing.T) {
	chromium := requireChromium(t)
	src := &sampleSource{st: wideSample(t, 12)}
	srv, err := stats.New(stats.Config{Listen: "127.0.0.1:0"}, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), src, stats.Parts{})
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(sctx) }()
	t.Cleanup(func() {
		scancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	ctx := chromiumContext(t, chromium, 1024, 2400)
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+srv.Addr().String()+"/")); err != nil {
		t.Fatal(err)
	}
	poll := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			dump, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
				const w = document.querySelector('#scaler-signals').closest('.table-wrap');
				const cols = Array.from(document.querySelectorAll('#scaler-signals th')).map((th) => th.textContent + ' ' + Math.round(th.getBoundingClientRect().width) + 'px');
				return 'signals table ' + w.scrollWidth + 'px in ' + w.clientWidth + 'px: ' + cols.join(', ') + '\n' +
					document.getElementById("scaler").innerText.slice(0, 400) + '\n---\n' + document.getElementById("cluster").innerText.slice(0, 1500);
			})()`))
			t.Fatalf("%s: %v\n%s", what, err, dump)
		}
	}
	poll("every master in the per-master column",
		`document.querySelectorAll('#scaler-signals tr[data-signal="memory_pct"] .pm').length === 12`)
	// The table fits its panel: nothing to scroll sideways, and no cell
	// sticks out of the card.
	poll("the signals table fits the Scaling panel", `(() => {
		const w = document.querySelector('#scaler-signals').closest('.table-wrap'), card = document.getElementById('scaler');
		const t = document.getElementById('scaler-signals').getBoundingClientRect(), c = card.getBoundingClientRect();
		return w.scrollWidth <= w.clientWidth + 1 && t.right <= c.right + 1;
	})()`)
	down := `document.querySelector('[data-addr="10.77.0.101:6379"]')`
	poll("the down node's values left empty and its last check marked stale with its age", `(() => {
		const r = `+down+`; if (!r) return false;
		const c = Array.from(r.cells).map((td) => td.textContent.trim());
		return r.classList.contains('stale') && c[8] === '–' && c[9] === '–' && c[11] === '–' && /^stale (\d+m)?\d+s$/.test(c[12]);
	})()`)
	poll("the paused autoscaler shown paused, and enabled in both places",
		`document.getElementById('scaler-auto-state').textContent.includes('paused') && document.getElementById('scaler-enabled').textContent.includes('yes')`)
	poll("no p99 without commands", `document.getElementById('proxy-p99').textContent === '–'`)
	saveScreenshot(t, ctx, "stats-page-wide.png")
}

// chromiumContext starts headless Chromium with a w x h window for the
// test; it ends with the test.
func chromiumContext(t *testing.T, chromium string, w, h int) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(w, h))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	t.Cleanup(func() { cancel(); bcancel(); acancel() })
	return ctx
}

// saveScreenshot writes a full-page screenshot to the test's temp dir and,
// when SLOTWAY_SCREENSHOT_DIR is set, there too.
func saveScreenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG, not JPEG
	if err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv("SLOTWAY_SCREENSHOT_DIR"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, name), png, 0o644)
	}
	t.Logf("screenshot: %s", shot)
}

// pairToken is the admin token of the instances startPair runs.
const pairToken = "page-test-admin-token-0123456789"

func writePairToken(t *testing.T) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(f, []byte(pairToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// postAdmin POSTs to an admin endpoint of in with the pair's token and
// fails the test unless it answers 200.
func postAdmin(t *testing.T, in *instance, path string) {
	t.Helper()
	req, err := http.NewRequest("POST", "http://"+in.stats.Addr().String()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+pairToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s = %d %s", path, resp.StatusCode, b)
	}
}

// rawStatus is GET /api/v1/status of in as plain JSON (nil on an error),
// so the test reads fields by name.
func rawStatus(in *instance) map[string]any {
	resp, err := http.Get("http://" + in.stats.Addr().String() + "/api/v1/status")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var m map[string]any
	if json.NewDecoder(resp.Body).Decode(&m) != nil {
		return nil
	}
	return m
}

// path walks a decoded JSON object: path(m, "scaler", "auto", "paused").
func path(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func nodeOf(st map[string]any, addr string) map[string]any {
	nodes, _ := path(st, "cluster", "nodes").([]any)
	for _, n := range nodes {
		if m, ok := n.(map[string]any); ok && m["addr"] == addr {
			return m
		}
	}
	return nil
}

// TestStatusStaleNodeAndPause: a pause shows as paused in the API of the
// instance that took it at once, and on the other within an evaluation
// interval; a node whose health checks fail is marked stale with the age
// of its values, and left out of the per-master series.
func TestStatusStaleNodeAndPause(t *testing.T) {
	requireRedis(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	insts := startPair(t, c)
	masters, err := c.Masters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Ask the second instance (either may lead): its own status says
	// paused as soon as the POST is answered.
	postAdmin(t, insts[1], "/api/v1/scaler/pause")
	if got := path(rawStatus(insts[1]), "scaler", "auto", "paused"); got != true {
		t.Errorf("right after POST /api/v1/scaler/pause: scaler.auto.paused = %v", got)
	}
	redistest.WaitFor(t, 30*time.Second, "the other instance to show the pause", func() bool {
		return path(rawStatus(insts[0]), "scaler", "auto", "paused") == true
	})
	postAdmin(t, insts[1], "/api/v1/scaler/resume")
	if got := path(rawStatus(insts[1]), "scaler", "auto", "paused"); got != false {
		t.Errorf("right after POST /api/v1/scaler/resume: scaler.auto.paused = %v", got)
	}

	victim := masters[0]
	redistest.WaitFor(t, 30*time.Second, "the master checked and fresh", func() bool {
		n := nodeOf(rawStatus(insts[0]), victim.Addr)
		return n != nil && n["stale"] == false && n["last_ok"] != "0001-01-01T00:00:00Z"
	})
	if err := c.Kill(victim); err != nil {
		t.Fatal(err)
	}
	var n map[string]any
	redistest.WaitFor(t, 30*time.Second, "the killed master marked stale with the age of its values", func() bool {
		n = nodeOf(rawStatus(insts[0]), victim.Addr)
		age, _ := n["stale_seconds"].(float64)
		return n != nil && n["stale"] == true && age > 0
	})
	lastOK, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(n["last_ok"]))
	lastCheck, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(n["last_check"]))
	if !lastOK.Before(lastCheck) {
		t.Errorf("last_ok %v not before last_check %v", n["last_ok"], n["last_check"])
	}
	staleSince := time.Now()
	redistest.WaitFor(t, 30*time.Second, "a series point without the stale master", func() bool {
		pts, _ := path(rawStatus(insts[0]), "series", "points").([]any)
		if len(pts) == 0 {
			return false
		}
		p := pts[len(pts)-1]
		at, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(path(p, "t")))
		return at.After(staleSince) && path(p, "ops_by_master", victim.Addr) == nil && path(p, "memory_by_master", victim.Addr) == nil
	})
}

// pagePoll waits up to timeout for the JavaScript expr to be true on the
// page, and fails the test with what and the value of show otherwise.
func pagePoll(t *testing.T, ctx context.Context, what, expr, show string, timeout time.Duration) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(timeout))); err != nil {
		got, _ := chromedp.Run(ctx, chromedp.Evaluate[string](show))
		t.Fatalf("%s: %v (%q)", what, err, got)
	}
}

// checkPageLatencyWindow sends commands through in's proxy, waits for the
// page's p99 tile to show a figure, then, with the proxy idle, for the
// tile to show none ("–") rather than keep the old figure.
func checkPageLatencyWindow(t *testing.T, ctx context.Context, in *instance) {
	t.Helper()
	rc := redis.NewClient(&redis.Options{Addr: in.proxy.Addr().String(), Protocol: 2, DisableIdentity: true})
	defer rc.Close()
	for i := range 200 {
		if err := rc.Set(context.Background(), fmt.Sprintf("k%d", i), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	rc.Close()
	tile := `document.getElementById('proxy-p99').textContent`
	pagePoll(t, ctx, "the p99 tile to show the commands' latency", `/\d ms$/.test(`+tile+`)`, tile, 20*time.Second)
	pagePoll(t, ctx, "the p99 tile to show no figure once the proxy is idle", tile+` === '–'`, tile, 30*time.Second)
}

// checkPagePause pauses the autoscaler through in's admin API and waits
// for the page to show it paused (in the autoscaler's line and next to
// Enabled, which never says yes while the line says disabled), then
// resumes it.
func checkPagePause(t *testing.T, ctx context.Context, in *instance) {
	t.Helper()
	state, enabled := `document.getElementById('scaler-auto-state').textContent`, `document.getElementById('scaler-enabled').textContent`
	show := state + ` + ' | ' + ` + enabled
	postAdmin(t, in, "/api/v1/scaler/pause")
	pagePoll(t, ctx, "the page to show the autoscaler paused",
		state+`.includes('paused') && `+enabled+`.includes('paused') && `+enabled+`.includes('yes') && !`+state+`.includes('disabled')`, show, 20*time.Second)
	postAdmin(t, in, "/api/v1/scaler/resume")
	pagePoll(t, ctx, "the page to show the autoscaler resumed", `!(`+state+`.includes('paused'))`, show, 20*time.Second)
}

// checkPageStaleNode waits for the row of the node at addr, whose checks
// fail, to show no ops/s, hit ratio or ping and its last check as stale
// with an age.
func checkPageStaleNode(t *testing.T, ctx context.Context, addr string) {
	t.Helper()
	row := fmt.Sprintf(`document.querySelector('[data-addr="%s"]')`, addr)
	cells := `Array.from((` + row + ` || {cells: []}).cells).map((td) => td.textContent.trim())`
	pagePoll(t, ctx, "the down node's ops/s, hit ratio and ping left empty and its last check marked stale",
		`(() => { const c = `+cells+`; return c[8] === '–' && c[9] === '–' && c[11] === '–' && /^stale (\d+m)?\d+s$/.test(c[12]); })()`,
		cells+`.join(' | ')`, 30*time.Second)
}
