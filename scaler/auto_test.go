package scaler_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/scaler"
)

// autoConfig: the autoscaler on, short intervals, memory the only signal
// (CPU and ops on a busy 2-core test machine would be noise).
func autoConfig(cfg *scaler.Config) {
	cfg.Enabled = true
	cfg.Interval = 250 * time.Millisecond
	cfg.UpCycles, cfg.DownCycles = 3, 6
	cfg.Stabilization, cfg.UpCooldown, cfg.DownCooldown = 3*time.Second, 2*time.Second, 4*time.Second
	cfg.MinMasters, cfg.MaxMasters = 3, 5
	cfg.Thresholds = scaler.Thresholds{MemoryPct: 50, EmergencyMemoryPct: 95}
	cfg.RebalanceCycles = 1000
}

// hookReceiver is a webhook receiver that fails its first answer with 500.
type hookReceiver struct {
	mu    sync.Mutex
	calls int
	got   []map[string]any
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	if h.calls == 1 {
		http.Error(w, "try again", http.StatusInternalServerError)
		return
	}
	var m map[string]any
	if json.Unmarshal(body, &m) == nil {
		h.got = append(h.got, m)
	}
}

func (h *hookReceiver) kinds() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]int{}
	for _, m := range h.got {
		k, _ := m["kind"].(string)
		out[k]++
	}
	return out
}

// fillKeys x 20 kB is ~61 % of 3 x 20 MB (baseline included): over
// memory_pct 50 beyond the 10 % band; spread over 4 masters ~48 %, inside
// it, so one scale out is enough.
const fillKeys = 1600

// fill writes n values of size bytes through the proxy.
func fill(t *testing.T, rc *redis.Client, prefix string, n, size int) {
	t.Helper()
	ctx := context.Background()
	val := strings.Repeat("x", size)
	for start := 0; start < n; start += 200 {
		_, err := rc.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := start; i < min(n, start+200); i++ {
				p.Set(ctx, prefix+strconv.Itoa(i), val, 0)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("fill: %v", err)
		}
	}
}

func masterCount(t *testing.T, c *redistest.Cluster) int {
	ms, err := c.Masters(context.Background())
	if err != nil {
		return -1
	}
	n := 0
	for _, m := range ms {
		if rs, err := c.SlotRanges(context.Background(), m); err == nil && len(rs) > 0 {
			n++
		}
	}
	return n
}

// logTimeline writes the autoscaler's events (the note quotes them).
func logTimeline(t *testing.T, s *testScaler, since time.Time) []scaler.Event {
	var out []scaler.Event
	for _, ev := range s.Events(context.Background(), 1000) {
		switch ev.Kind {
		case "threshold_breach", "decision", "dry_run", "scale_success", "scale_failure", "resume":
			t.Logf("%6.1fs %-16s %-13s masters=%d %s %s", ev.Time.Sub(since).Seconds(), ev.Kind, ev.Action, ev.Masters, ev.Node, ev.Reason)
			out = append(out, ev)
		}
	}
	return out
}

func countEvents(evs []scaler.Event, kind, action string) int {
	n := 0
	for _, ev := range evs {
		if ev.Kind == kind && ev.Action == action {
			n++
		}
	}
	return n
}

// TestAutoscalerScalesOutAndIn: memory filled through Slotway takes the
// cluster from 3 to 4 masters, deleting it back to 3 — one action each
// way, nothing lost, a webhook told (after a 500).
func TestAutoscalerScalesOutAndIn(t *testing.T) {
	c := redistest.New(t, redistest.Options{Masters: 3, Spares: 2, ExtraConfig: []string{"maxmemory 20mb"}})
	p := startProxyServer(t, c)
	addr := p.Addr().String()
	hook := &hookReceiver{}
	hs := httptest.NewServer(hook)
	defer hs.Close()
	reg := prometheus.NewRegistry()
	start := time.Now()
	s := startScaler(t, c, func(cfg *scaler.Config) {
		autoConfig(cfg)
		cfg.Notify.Webhook = hs.URL
	}, nil, func(o *scaler.Options) { o.Registerer = reg })
	rc := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2})
	defer rc.Close()
	var res string
	checked := during(t, addr, func() {
		fill(t, rc, "fill:", fillKeys, 20_000)
		redistest.WaitFor(t, 2*time.Minute, "a scale out to 4 masters", func() bool { return masterCount(t, c) == 4 })
		redistest.WaitFor(t, 2*time.Minute, "the scale out to finish", func() bool {
			st := s.Operation()
			return st.State == "done" || st.State == "failed"
		})
		if st := s.Operation(); st.State != "done" {
			t.Fatalf("scale out: %+v", st)
		}
		counts := slotCounts(t, c)
		for a, n := range counts {
			if n < 4000 || n > 4200 {
				t.Errorf("after the scale out %s has %d slots: %v", a, n, counts)
			}
		}
		ctx := context.Background()
		for i := 0; i < fillKeys; i += 100 {
			keys := make([]string, 0, 100)
			for j := i; j < min(fillKeys, i+100); j++ {
				keys = append(keys, "fill:"+strconv.Itoa(j))
			}
			if err := rc.Del(ctx, keys...).Err(); err != nil {
				t.Fatal(err)
			}
		}
		redistest.WaitFor(t, 3*time.Minute, "a scale in back to 3 masters", func() bool { return masterCount(t, c) == 3 })
		redistest.WaitFor(t, 2*time.Minute, "the scale in to finish", func() bool {
			st := s.Operation()
			return st.Kind != "" && (st.State == "done" || st.State == "failed")
		})
		// A few more evaluations: no flapping back out.
		after := s.AutoStatus().Evaluated.Add(3 * time.Second)
		redistest.WaitFor(t, time.Minute, "more evaluations", func() bool { return s.AutoStatus().Evaluated.After(after) })
		res = s.AutoStatus().Reason
	}).String()
	t.Log(checked)
	if !strings.HasPrefix(checked, "written") || !strings.Contains(checked, " lost 0,") || !strings.Contains(checked, "stale 0") {
		t.Errorf("check: %s", checked)
	}
	evs := logTimeline(t, s, start)
	t.Logf("last evaluation: %s", res)
	if n := countEvents(evs, "decision", "scale_out"); n != 1 {
		t.Errorf("%d scale_out decisions; want 1", n)
	}
	if n := countEvents(evs, "decision", "scale_in"); n != 1 {
		t.Errorf("%d scale_in decisions; want 1", n)
	}
	if countEvents(evs, "scale_success", "scale_out") != 1 || countEvents(evs, "scale_success", "scale_in") != 1 {
		t.Errorf("want one scale_success each way")
	}
	if v := metricValue(t, reg, "slotway_scaler_actions_total", "scale_out", "ok"); v != 1 {
		t.Errorf("slotway_scaler_actions_total{scale_out,ok} = %v", v)
	}
	redistest.WaitFor(t, 30*time.Second, "the webhook to get the breach and both successes", func() bool {
		k := hook.kinds()
		return k["threshold_breach"] >= 1 && k["scale_success"] == 2
	})
	hook.mu.Lock()
	for _, m := range hook.got {
		if txt, _ := m["text"].(string); txt == "" {
			t.Errorf("webhook body without text: %v", m)
		}
	}
	hook.mu.Unlock()
}

// metricValue is the value of the series of name whose label values are
// labels (in the metric's label order).
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for i, l := range m.GetLabel() {
				if l.GetValue() != labels[i] {
					continue metrics
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}
