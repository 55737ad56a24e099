package main

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/slotway/slotway/ha"
	"github.com/slotway/slotway/proxy"
	"github.com/slotway/slotway/scaler"
	"github.com/slotway/slotway/stats"
)

// statusSource maps the proxy's and the scaler's views onto the stats
// page's schema (holderAPI the group's); stats imports neither package.
type statusSource struct {
	name  string
	proxy *proxy.Server // nil for a witness
	// scaler is nil without a scaler: section; set before the server runs.
	scaler *scaler.Scaler
}

func (s *statusSource) Ready() bool { return s.proxy == nil || s.proxy.Ready() }

func (s *statusSource) Status() stats.Status {
	st := stats.Status{Instance: stats.InstanceStatus{Name: s.name, Version: proxy.Version, Ready: s.Ready()}}
	if s.scaler != nil {
		op := s.scaler.Operation()
		auto := s.scaler.AutoStatus()
		st.Scaler = stats.ScalerStatus{Enabled: true, State: op.State, Auto: &auto}
		if op.Kind != "" {
			st.Scaler.State = fmt.Sprintf("%s %s: %d/%d slots, %d keys", op.Kind, op.State, op.SlotsDone, op.SlotsAll, op.Keys)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		for _, ev := range s.scaler.Events(ctx, 50) {
			reason := ev.Reason
			if ev.Action != "" && !strings.HasPrefix(reason, ev.Action) {
				reason = ev.Action + ": " + reason
			}
			if ev.Node != "" && !strings.Contains(reason, ev.Node) {
				reason = ev.Node + " " + reason
			}
			if ev.Slot >= 0 {
				reason = fmt.Sprintf("slot %d: %s", ev.Slot, reason)
			}
			st.Scaler.Events = append(st.Scaler.Events, stats.ScalerEvent{T: ev.Time, Kind: ev.Kind, Term: ev.Term, Actor: ev.Actor, Reason: reason})
		}
		cancel()
	}
	if s.proxy == nil {
		st.Cluster.Nodes = []stats.NodeStatus{}
		st.Cluster.Slots = []stats.SlotRange{}
		st.Cluster.Seeds, st.Cluster.SeedsLeft = []string{}, []stats.SeedLeft{}
		st.Proxy.Redirects = map[string]uint64{}
		st.Proxy.Families = []stats.FamilyStatus{}
		return st
	}
	st.Instance.ProxyAddr = s.proxy.Addr().String()
	ps := s.proxy.Stats()
	st.Proxy = stats.ProxyStatus{
		Clients: int64(ps.Clients), CommandsTotal: ps.CommandsTotal, ErrorsTotal: ps.ErrorsTotal,
		Latency: latencyBuckets(ps.Latency, ps.LatencyBounds), Redirects: ps.Redirects,
		Families: []stats.FamilyStatus{}, Parked: int64(ps.Parked), ParkedLongest: ps.ParkedLongest.Seconds(),
		RetryBudget: ps.RetryBudget.Seconds(),
	}
	for _, f := range ps.Families {
		st.Proxy.Families = append(st.Proxy.Families, stats.FamilyStatus{Family: f.Family, Calls: f.Calls, Errors: f.Errors,
			P50MS: ms(f.P50.Seconds()), P99MS: ms(f.P99.Seconds())})
	}
	st.Cluster.TopologyAge = ps.TopologyAge.Seconds()
	st.Cluster.Seeds = s.proxy.Seeds()
	st.Cluster.SeedsLeft = []stats.SeedLeft{}
	for _, l := range s.proxy.SeedsLeft() {
		st.Cluster.SeedsLeft = append(st.Cluster.SeedsLeft, stats.SeedLeft{Addr: l.Addr, Reason: l.Reason, Since: l.Since})
	}
	health := s.proxy.Health()
	st.Cluster.Nodes = []stats.NodeStatus{}
	st.Cluster.Slots = []stats.SlotRange{}
	for _, n := range s.proxy.Nodes() {
		h, checked := health[n.Addr]
		ns := stats.NodeStatus{
			ID: n.ID, Addr: n.Addr, Role: n.Role, MasterID: n.MasterID, Status: "UP", Since: h.Since,
			SlotRanges: n.Slots, Keys: h.Info.Keys, UsedMemory: h.Info.UsedMemory, MaxMemory: h.Info.MaxMemory,
			Clients: h.Info.Clients, OpsPerSec: h.Info.OpsPerSec, HitRatio: -1, ReplLag: h.Info.ReplLag,
			LatencyMS: ms(h.Latency.Seconds()), LastCheck: h.LastCheck, LastError: h.LastError,
		}
		if checked {
			ns.LastOK = h.LastOK
			// The values above are what the node said at its last good
			// check; say so when a later one failed.
			if ns.Stale = h.Failures > 0; ns.Stale && !h.LastOK.IsZero() {
				ns.StaleSeconds = time.Since(h.LastOK).Seconds()
			}
		}
		if ns.SlotRanges == nil {
			ns.SlotRanges = [][2]int{}
		}
		switch {
		case n.Health == "fail" || n.Health == "failed":
			ns.Status = "FAIL"
		case checked && !h.Up:
			ns.Status = "DOWN"
		}
		if lookups := h.Info.Hits + h.Info.Misses; lookups > 0 {
			ns.HitRatio = float64(h.Info.Hits) / float64(lookups)
		}
		if n.Role == "replica" {
			ns.ReplLink = h.Info.LinkStatus
		}
		for _, r := range n.Slots {
			ns.SlotCount += r[1] - r[0] + 1
			if n.Role == "master" {
				st.Cluster.Slots = append(st.Cluster.Slots, stats.SlotRange{Start: r[0], End: r[1], Owner: n.Addr})
			}
		}
		if n.Role == "master" && ns.SlotCount > 0 {
			st.Cluster.Masters++
			st.Cluster.SlotsServed += ns.SlotCount
		}
		st.Cluster.Nodes = append(st.Cluster.Nodes, ns)
	}
	sort.Slice(st.Cluster.Slots, func(i, j int) bool { return st.Cluster.Slots[i].Start < st.Cluster.Slots[j].Start })
	st.Cluster.Slots = markMigrations(st.Cluster.Slots, health)
	return st
}

// markMigrations splits the owner ranges so slots being migrated or
// imported stand alone with their flag.
func markMigrations(ranges []stats.SlotRange, health map[string]proxy.NodeHealth) []stats.SlotRange {
	migrating, importing := map[int]bool{}, map[int]bool{}
	for _, h := range health {
		for _, s := range h.Info.Migrating {
			migrating[s] = true
		}
		for _, s := range h.Info.Importing {
			importing[s] = true
		}
	}
	if len(migrating)+len(importing) == 0 {
		return ranges
	}
	var out []stats.SlotRange
	for _, r := range ranges {
		start := r.Start
		for s := r.Start; s <= r.End; s++ {
			if !migrating[s] && !importing[s] {
				continue
			}
			if s > start {
				out = append(out, stats.SlotRange{Start: start, End: s - 1, Owner: r.Owner})
			}
			out = append(out, stats.SlotRange{Start: s, End: s, Owner: r.Owner, Migrating: migrating[s], Importing: importing[s]})
			start = s + 1
		}
		if start <= r.End {
			out = append(out, stats.SlotRange{Start: start, End: r.End, Owner: r.Owner})
		}
	}
	return out
}

// holderAPI is the HA group as the stats server uses it (stats.Holder).
type holderAPI struct{ *ha.Group }

// GroupStatus maps the group's state onto the stats page's schema.
func (h holderAPI) GroupStatus() *stats.GroupStatus { return groupStatus(h.State()) }

func groupStatus(s ha.State) *stats.GroupStatus {
	g := &stats.GroupStatus{Self: s.Self, Holder: s.Holder, Leader: s.Leader, Term: s.Term, Role: s.Role,
		Quorum: s.Quorum, Reason: s.Reason, Members: []stats.GroupMember{}}
	for _, m := range s.Members {
		var roles []string
		switch {
		case m.Witness:
			roles = append(roles, "witness")
		case m.Role == ha.RoleDraining:
			roles = append(roles, "draining")
		case m.Name == s.Holder:
			roles = append(roles, "VIP holder")
		}
		if m.Name == s.Leader && s.Quorum {
			roles = append(roles, "leader")
		}
		if len(roles) == 0 {
			roles = append(roles, "backup")
		}
		g.Members = append(g.Members, stats.GroupMember{Name: m.Name, Role: strings.Join(roles, "+"), Term: m.Term,
			Priority: m.Priority, Effective: m.Effective, Alive: m.Alive, LastHeard: m.LastHeard,
			ProxyAddr: m.ProxyAddr, StatsAddr: m.StatsAddr, Gossip: m.Addr})
	}
	return g
}

func ms(seconds float64) float64 { return seconds * 1000 }

// latencyBuckets maps the proxy's latency histogram onto the stats
// server's, which takes windowed quantiles from it.
func latencyBuckets(counts []uint64, bounds []float64) []stats.LatencyBucket {
	out := make([]stats.LatencyBucket, len(counts))
	for i, c := range counts {
		out[i] = stats.LatencyBucket{UpperMS: math.Inf(1), Count: c}
		if i < len(bounds) {
			out[i].UpperMS = ms(bounds[i])
		}
	}
	return out
}
