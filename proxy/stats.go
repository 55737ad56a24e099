package proxy

import (
	"slices"
	"time"
)

// Stats is the data path's counters for the stats page.
type Stats struct {
	Clients       int
	CommandsTotal uint64
	ErrorsTotal   uint64
	Redirects     map[string]uint64 // moved, ask, tryagain, clusterdown
	P50, P99      time.Duration
	Families      []FamilyStats
	TopologyAge   time.Duration
	// Parked commands now (retried through a failover or slot move), how
	// long the oldest has waited, and how long one may (the retry budget).
	Parked        int
	ParkedLongest time.Duration
	RetryBudget   time.Duration

	// Latency counts every command since start by latency bucket: the
	// i-th took at most LatencyBounds[i] seconds (and more than the
	// bound before); the last, one more than the bounds, is the rest.
	Latency       []uint64
	LatencyBounds []float64
}

// FamilyStats is one command family.
type FamilyStats struct {
	Family        string
	Calls, Errors uint64
	P50, P99      time.Duration
}

// Stats returns the counters since start.
func (s *Server) Stats() Stats {
	st := Stats{Clients: s.clientCount(), Redirects: map[string]uint64{}}
	for _, k := range []redirect{redirMoved, redirAsk, redirTryAgain, redirClusterDown} {
		st.Redirects[k.String()] = s.redirCount[k].Load()
	}
	var calls, errs [16]uint64
	add := func(ci *cmdInfo) {
		c, e := ci.stats.calls.Load(), ci.stats.errors.Load()
		calls[ci.family] += c
		errs[ci.family] += e
		st.CommandsTotal += c
		st.ErrorsTotal += e
	}
	if t := s.table.Load(); t != nil {
		for _, ci := range t.cmds {
			if ci.kind == kindLocal {
				continue
			}
			add(ci)
			for _, sub := range ci.subs {
				add(sub)
			}
		}
	}
	for _, ci := range localStats() {
		add(ci)
	}
	var all latencyHist
	for f := range s.latency {
		h := &s.latency[f]
		if calls[f] == 0 && h.counts[15].Load() == 0 {
			continue
		}
		st.Families = append(st.Families, FamilyStats{Family: familyNames[f], Calls: calls[f], Errors: errs[f],
			P50: h.quantile(0.5), P99: h.quantile(0.99)})
		for i := range h.counts {
			all.counts[i].Add(h.counts[i].Load())
		}
	}
	st.P50, st.P99 = all.quantile(0.5), all.quantile(0.99)
	st.Latency = make([]uint64, len(all.counts))
	for i := range all.counts {
		st.Latency[i] = all.counts[i].Load()
	}
	st.LatencyBounds = slices.Clone(latencyBuckets)
	if t := s.topo.load(); !t.at.IsZero() {
		st.TopologyAge = time.Since(t.at)
	}
	st.Parked, st.ParkedLongest = s.parked(time.Now())
	st.RetryBudget = s.retryBudget()
	return st
}
