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
	if now.Sub(sm.lastPush) < seriesEvery {
		return
	}
	sm.lastPush = now
	p := SeriesPoint{T: now, OpsPerSec: sm.perSec, P99MS: st.Proxy.P99MS,
		MemoryByMaster: map[string]int64{}, OpsByMaster: map[string]int64{}}
	for _, n := range st.Cluster.Nodes {
		if n.Role == "master" {
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

func (sm *sampler) snapshot() SeriesStatus {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	return SeriesStatus{IntervalSeconds: int(seriesEvery / time.Second), Points: append([]SeriesPoint{}, sm.points...)}
}
