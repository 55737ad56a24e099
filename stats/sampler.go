package stats

import (
	"context"
	"sync"
	"time"
)

// The page keeps 15 minutes of history, one point every seriesEvery.
const (
	seriesEvery  = 5 * time.Second
	seriesPoints = int(15 * time.Minute / seriesEvery)
)

// sampler turns counters into rates and keeps the recent series in memory.
type sampler struct {
	mu       sync.Mutex
	lastT    time.Time
	lastN    uint64
	perSec   float64
	points   []SeriesPoint
	lastPush time.Time
	// hist holds the latency histogram of the last ticks (about
	// latencyWindow of them, oldest first) for the p50/p99 tiles;
	// pushHist is the one of the last series point, so each point's p99
	// covers exactly the commands since the point before.
	hist     []histSnap
	pushHist histSnap
}

func (sm *sampler) run(ctx context.Context, src Source) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	sm.sample(src, time.Now())
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			sm.sample(src, now)
		}
	}
}

func (sm *sampler) sample(src Source, now time.Time) {
	st := src.Status()
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if !sm.lastT.IsZero() && st.Proxy.CommandsTotal >= sm.lastN {
		sm.perSec = float64(st.Proxy.CommandsTotal-sm.lastN) / now.Sub(sm.lastT).Seconds()
	}
	sm.lastT, sm.lastN = now, st.Proxy.CommandsTotal
	snap := histSnap{t: now, b: st.Proxy.Latency}
	// Keep the newest tick at least latencyWindow old and those after it.
	sm.hist = append(sm.hist, snap)
	for len(sm.hist) > 1 && now.Sub(sm.hist[1].t) >= latencyWindow {
		sm.hist = sm.hist[1:]
	}
	if now.Sub(sm.lastPush) < seriesEvery {
		return
	}
	sm.lastPush = now
	base := sm.pushHist
	if base.t.IsZero() {
		base = sm.hist[0]
	}
	sm.pushHist = snap
	_, p99, _ := latencyOver(base, now, snap.b)
	p := SeriesPoint{T: now, OpsPerSec: sm.perSec, P99MS: p99,
		MemoryByMaster: map[string]int64{}, OpsByMaster: map[string]int64{}}
	for _, n := range st.Cluster.Nodes {
		// A node whose last check failed has no current memory or ops/s:
		// leave a gap rather than repeat what it said before.
		if n.Role == "master" && !n.Stale {
			p.MemoryByMaster[n.Addr] = n.UsedMemory
			p.OpsByMaster[n.Addr] = n.OpsPerSec
		}
	}
	sm.points = append(sm.points, p)
	if len(sm.points) > seriesPoints {
		sm.points = append(sm.points[:0], sm.points[len(sm.points)-seriesPoints:]...)
	}
}

func (sm *sampler) rate() float64 {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	return sm.perSec
}

// latency returns the p50/p99 of the commands in cur (the histogram now)
// that the sampler had not seen latencyWindow ago, and the window in
// seconds; nil when no command completed in it.
func (sm *sampler) latency(now time.Time, cur []LatencyBucket) (p50, p99 *float64, secs float64) {
	sm.mu.Lock()
	var base histSnap
	for _, h := range sm.hist {
		if now.Sub(h.t) < latencyWindow && !base.t.IsZero() {
			break
		}
		base = h
	}
	sm.mu.Unlock()
	if base.t.IsZero() {
		// No tick yet: count since start.
		return latencyOver(histSnap{}, now, cur)
	}
	return latencyOver(base, now, cur)
}

func (sm *sampler) snapshot() SeriesStatus {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	return SeriesStatus{IntervalSeconds: int(seriesEvery / time.Second), Points: append([]SeriesPoint{}, sm.points...)}
}
