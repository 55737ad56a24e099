package scaler

// The autoscaler's memory: flags and policy state in a hash next to the
// event stream (same slot), the last actions rebuilt from the stream when
// this instance becomes the leader, and the status every instance shows.

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/slotway/slotway/internal/ownkeys"
	"github.com/slotway/slotway/stats"
)

// autoKey holds paused, dry_run, state (the policy's counters) and status
// (the leader's last AutoStatus, for the other instances).
const autoKey = ownkeys.Autoscaler

// restore rebuilds the policy state: counters from the hash, the last
// actions from the event stream, and an action that a previous leader
// decided but did not finish becomes the first thing to do.
func (a *autoscaler) restore(ctx context.Context, now time.Time) {
	var st PolicyState
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if raw, err := a.s.rc.HGet(rctx, autoKey, "state").Result(); err == nil {
		_ = json.Unmarshal([]byte(raw), &st)
	}
	evs := a.s.ev.recent(rctx, maxEvents)
	st.LastUp, st.LastDown = time.Time{}, time.Time{}
	var last *Event
	finished := false
	var tl []stats.TimelinePoint
	for i := range evs {
		ev := evs[i]
		switch ev.Kind {
		case "decision":
			switch ev.Action {
			case "scale_out", "vertical_up":
				st.LastUp = ev.Time
			case "scale_in", "vertical_down":
				st.LastDown = ev.Time
			}
			last, finished = &evs[i], false
		case "scale_success", "scale_failure":
			if last != nil && ev.Action == last.Action {
				finished = true
			}
			result := "ok"
			if ev.Kind == "scale_failure" {
				result = "failed"
			}
			tl = append(tl, stats.TimelinePoint{Time: ev.Time, Masters: ev.Masters, Action: actionName(ev.Action), Result: result, Reason: ev.Reason})
		}
	}
	a.mu.Lock()
	a.st, a.breached = st, nil
	if len(tl) > 0 && len(a.timeline) == 0 {
		a.timeline = tl
	}
	a.mu.Unlock()
	if last == nil || finished || now.Sub(last.Time) > time.Hour || last.Action == "rebalance" {
		return
	}
	// The lease's term fences the old leader: whatever it was doing has
	// stopped, and the slot it was moving is finished by the fix that runs
	// on every leadership change. What is left is the rest of its action.
	a.log.Info("scaler: resuming an action the previous leader started", "action", last.Action, "masters", last.Masters,
		"node", last.Node, "decided", last.Time)
	a.s.event(ctx, Event{Kind: "resume", Slot: -1, Action: last.Action, Masters: last.Masters, Node: last.Node,
		Reason: "finishing " + last.Action + " decided by " + last.Actor + ": " + last.Reason})
	req := a.request(*last)
	a.mu.Lock()
	a.resume = &req
	a.mu.Unlock()
}

// tryResume starts the interrupted action once the scaler is free (the
// leadership fix runs first). True while one is pending or running.
func (a *autoscaler) tryResume() bool {
	a.mu.Lock()
	req := a.resume
	a.mu.Unlock()
	if req == nil {
		return false
	}
	a.s.mu.Lock()
	err := a.s.enqueueLocked(*req)
	a.s.mu.Unlock()
	if err == nil {
		a.mu.Lock()
		a.resume = nil
		a.mu.Unlock()
	}
	return true
}

func actionName(action string) string {
	return strings.TrimSuffix(strings.TrimSuffix(action, "_up"), "_down")
}

// flags reads paused and dry_run (group-wide, set through Control);
// dry_run falls back to the config.
func (a *autoscaler) flags(ctx context.Context) (paused, dryRun bool) {
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	at := time.Now()
	vals, err := a.s.rc.HMGet(rctx, autoKey, "paused", "dry_run").Result()
	dryRun = a.cfg.DryRun
	if err != nil || len(vals) != 2 {
		return false, dryRun
	}
	if v, ok := vals[0].(string); ok {
		paused = v == "1"
	}
	if v, ok := vals[1].(string); ok && v != "" {
		dryRun = v == "1"
	}
	a.mu.Lock()
	a.known.note("paused", paused, at)
	a.known.note("dry_run", dryRun, at)
	a.mu.Unlock()
	return paused, dryRun
}

// knownFlags is the newest value of each flag with when it was learnt:
// a read counts from when it was sent, a Control from when the cluster
// acknowledged it, so a read that may have missed a Control is older.
type knownFlags struct {
	paused, dryRun     bool
	pausedAt, dryRunAt time.Time
}

func (k *knownFlags) note(field string, on bool, at time.Time) {
	switch {
	case field == "paused" && !at.Before(k.pausedAt):
		k.paused, k.pausedAt = on, at
	case field == "dry_run" && !at.Before(k.dryRunAt):
		k.dryRun, k.dryRunAt = on, at
	}
}

// pausedHold is the hold a pause puts on the policy.
const pausedHold = "paused by an operator"

// over puts the known flags over st, which is never newer (the leader
// reads them at the start of the evaluation it publishes), and keeps its
// hold in step with paused.
func (k *knownFlags) over(st *stats.AutoStatus) {
	if !k.pausedAt.IsZero() && st.Paused != k.paused {
		st.Paused = k.paused
		var holds []string
		for h := range strings.SplitSeq(st.Hold, "; ") {
			if h != "" && h != pausedHold {
				holds = append(holds, h)
			}
		}
		if st.Paused {
			holds = append(holds, pausedHold)
		}
		st.Hold = strings.Join(holds, "; ")
	}
	if !k.dryRunAt.IsZero() {
		st.DryRun = k.dryRun
	}
}

// Control pauses or resumes the autoscaler, or turns dry-run on or off,
// for the whole group (the flags live in the cluster).
func (s *Scaler) Control(op string, on bool) error {
	field, val := "", "0"
	switch op {
	case "pause":
		field, val = "paused", "1"
	case "resume":
		field = "paused"
	case "dry_run":
		field = "dry_run"
		if on {
			val = "1"
		}
	default:
		return fmt.Errorf("unknown autoscaler control %q", op)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.rc.HSet(ctx, autoKey, field, val).Err(); err != nil {
		return fmt.Errorf("store %s in the cluster: %w", field, err)
	}
	s.auto.mu.Lock()
	s.auto.known.note(field, val == "1", time.Now())
	s.auto.mu.Unlock()
	reason := op
	if op == "dry_run" {
		reason = fmt.Sprintf("dry_run %v", on)
	}
	s.event(ctx, Event{Kind: "control", Slot: -1, Reason: reason + " by an operator on " + s.opts.Name})
	return nil
}

// publish keeps st for AutoStatus and stores it, with the policy's
// counters, in the cluster: the status for the other instances, the
// counters for the next leader.
func (a *autoscaler) publish(ctx context.Context, st stats.AutoStatus) {
	a.mu.Lock()
	st.Timeline = slices.Clone(a.timeline)
	a.status = st
	state, _ := json.Marshal(a.st)
	a.mu.Unlock()
	raw, _ := json.Marshal(st)
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	_ = a.s.rc.HSet(wctx, autoKey, "status", raw, "state", state).Err()
}

// loadPublished takes the leader's last status (on other instances).
func (a *autoscaler) loadPublished(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	raw, err := a.s.rc.HGet(rctx, autoKey, "status").Result()
	var st stats.AutoStatus
	if err != nil || json.Unmarshal([]byte(raw), &st) != nil {
		st = stats.AutoStatus{Enabled: a.cfg.Enabled, Interval: a.cfg.Interval, Decision: "none", Reason: "no evaluation published yet"}
	}
	a.mu.Lock()
	a.status = st
	a.mu.Unlock()
}

// AutoStatus is the autoscaler's last evaluation (the leader's, also on
// the other instances).
func (s *Scaler) AutoStatus() stats.AutoStatus {
	a := s.auto
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.status
	a.known.over(&st)
	st.Signals = slices.Clone(st.Signals)
	st.Timeline = slices.Clone(st.Timeline)
	if st.Enabled && st.Leader == "" {
		// Nothing published yet: the leader is known all the same.
		if leader, _ := s.opts.Leader(); leader {
			st.Leader = s.opts.Name
		}
	}
	return st
}

// maxTimeline bounds the chart's points.
const maxTimeline = 500

// point adds a chart point when the master count changes or an action
// happens.
func (a *autoscaler) point(p stats.TimelinePoint) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if n := len(a.timeline); p.Action == "" && n > 0 && a.timeline[n-1].Masters == p.Masters {
		return
	}
	a.timeline = append(a.timeline, p)
	if len(a.timeline) > maxTimeline {
		a.timeline = a.timeline[len(a.timeline)-maxTimeline:]
	}
}

// observe exports the signals and thresholds.
func (a *autoscaler) observe(d Decision) {
	for _, sv := range d.Signals {
		if sv.Off != "" {
			continue
		}
		a.s.m.signal.WithLabelValues(sv.Name).Set(sv.Average)
		a.s.m.threshold.WithLabelValues(sv.Name).Set(sv.Threshold)
	}
}

// breaches records signals crossing their threshold (rising edge only).
func (a *autoscaler) breaches(ctx context.Context, d Decision, prev map[string]bool, masters int) {
	now := map[string]bool{}
	for _, name := range d.Breached {
		now[name] = true
		if prev[name] {
			continue
		}
		for _, sv := range d.Signals {
			if sv.Name == name {
				a.s.event(ctx, Event{Kind: "threshold_breach", Slot: -1, Action: name, Masters: masters,
					Reason: fmt.Sprintf("%s average %.1f, peak %.1f > threshold %.1f", name, sv.Average, sv.Peak, sv.Threshold)})
			}
		}
	}
	a.mu.Lock()
	a.breached = now
	a.mu.Unlock()
}

func statusSignals(in []SignalValue) []stats.SignalStatus {
	out := make([]stats.SignalStatus, 0, len(in))
	for _, sv := range in {
		out = append(out, stats.SignalStatus(sv))
	}
	return out
}
