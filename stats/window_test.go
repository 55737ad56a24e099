package stats

import (
	"math"
	"slices"
	"testing"
	"time"
)

// hist builds a histogram over the proxy's first bounds (ms): counts[i]
// commands in bucket i, the last bucket open.
func hist(counts ...uint64) []LatencyBucket {
	bounds := []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500}
	out := make([]LatencyBucket, len(bounds)+1)
	for i := range out {
		out[i].UpperMS = math.Inf(1)
		if i < len(bounds) {
			out[i].UpperMS = bounds[i]
		}
		if i < len(counts) {
			out[i].Count = counts[i]
		}
	}
	return out
}

func TestWindowQuantile(t *testing.T) {
	// A failover: 1000 commands took 2.5-5 s (open bucket) long ago.
	slow := hist()
	slow[15].Count = 1000
	slowThenFast := hist(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1000)
	slowThenFast[1].Count = 5000
	for _, tc := range []struct {
		name          string
		older, newer  []LatencyBucket
		q             float64
		wantMS        float64
		wantN         uint64
		wantNoCommand bool
	}{
		{name: "idle window: no value, not the old one", older: hist(0, 100, 0, 0, 0, 0, 0, 20), newer: hist(0, 100, 0, 0, 0, 0, 0, 20),
			q: 0.99, wantNoCommand: true},
		{name: "after a failover only the recent fast commands count", older: slow, newer: slowThenFast,
			q: 0.99, wantMS: 0.05 + 0.05*0.99, wantN: 5000},
		{name: "since start without an older snapshot", newer: hist(100), q: 0.5, wantMS: 0.025, wantN: 100},
		{name: "p99 in the bucket of the slow 2%", older: hist(10, 0, 0, 0, 0, 0, 0, 0), newer: hist(10, 98, 0, 0, 0, 0, 0, 2),
			q: 0.99, wantMS: 5 + 5*0.5, wantN: 100},
		{name: "open bucket reads up to twice its lower bound", newer: hist(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4),
			q: 0.5, wantMS: 2500 + 2500*0.5, wantN: 4},
		{name: "a counter that went back counts from zero", older: hist(50, 50), newer: hist(10, 60),
			q: 0.75, wantMS: 0.075, wantN: 20},
		{name: "different bucket layouts count since start", older: hist(5)[:3], newer: hist(4),
			q: 1, wantMS: 0.05, wantN: 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms, n := windowQuantile(tc.older, tc.newer, tc.q)
			if tc.wantNoCommand {
				if n != 0 {
					t.Errorf("n = %d (%.3f ms), want no command", n, ms)
				}
				return
			}
			if n != tc.wantN || math.Abs(ms-tc.wantMS) > 1e-9 {
				t.Errorf("= %.6f ms over %d, want %.6f ms over %d", ms, n, tc.wantMS, tc.wantN)
			}
		})
	}
}

// histSource reports a settable histogram.
type histSource struct {
	readySource
	h []LatencyBucket
}

func (s *histSource) Status() Status { return Status{Proxy: ProxyStatus{Latency: slices.Clone(s.h)}} }

// TestSamplerLatencyWindow: the tiles and the series show the commands of
// the last seconds, and nothing once the proxy is idle.
func TestSamplerLatencyWindow(t *testing.T) {
	var sm sampler
	src := &histSource{h: hist()}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	// 0-10 s: slow commands (a failover), 10-20 s: fast ones, then idle.
	for s := 0; s <= 40; s++ {
		switch {
		case s > 0 && s <= 10:
			src.h[15].Count += 100
		case s > 10 && s <= 20:
			src.h[0].Count += 1000
		}
		sm.sample(src, at(s))
		_, p99, secs := sm.latency(at(s), src.Status().Proxy.Latency)
		switch {
		case s == 8 && (p99 == nil || *p99 < 2500):
			t.Errorf("%ds: p99 %v during the slow commands, want over 2500 ms", s, p99)
		case s == 18 && (p99 == nil || *p99 > 0.05):
			t.Errorf("%ds: p99 %v ms after the failover, want the fast commands' (<= 0.05 ms)", s, deref(p99))
		case s >= 26 && p99 != nil:
			t.Errorf("%ds: p99 %.3f ms while idle, want none", s, *p99)
		}
		if s >= 5 && secs != latencyWindow.Seconds() {
			t.Errorf("%ds: window %.1f s, want %.1f", s, secs, latencyWindow.Seconds())
		}
	}
	pts := sm.snapshot().Points
	if len(pts) != 9 {
		t.Fatalf("%d points, want 9", len(pts))
	}
	for _, p := range pts {
		s := int(p.T.Sub(t0) / time.Second)
		switch {
		case s == 0 || s > 20:
			if p.P99MS != nil {
				t.Errorf("point at %ds: p99 %.3f ms with no command since the point before", s, *p.P99MS)
			}
		case s <= 10:
			if p.P99MS == nil || *p.P99MS < 2500 {
				t.Errorf("point at %ds: p99 %v, want the slow commands'", s, deref(p.P99MS))
			}
		default:
			if p.P99MS == nil || *p.P99MS > 0.05 {
				t.Errorf("point at %ds: p99 %v, want the fast commands'", s, deref(p.P99MS))
			}
		}
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}
