package scaler

// The autoscaler's loop: on the leader, every interval, measure the
// cluster, let the policy decide, and act through the scaler's operations.
// Every decision and outcome goes to the event stream first, so a new
// leader knows what was done and what was interrupted.

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/slotway/slotway/stats"
)

type autoscaler struct {
	s   *Scaler
	cfg Config
	pol PolicyConfig
	col *collector
	log *slog.Logger

	mu       sync.Mutex
	leader   bool
	st       PolicyState
	breached map[string]bool
	status   stats.AutoStatus
	timeline []stats.TimelinePoint
	resume   *request  // an interrupted action to finish before deciding anew
	slotOps  []float64 // the last evaluation's per-slot ops/s
	// known is the newest view of the group-wide flags (read at a tick,
	// or set here by Control); AutoStatus shows it over the published
	// status, which is only as new as the leader's last evaluation.
	known knownFlags
}

func newAutoscaler(s *Scaler, slotOps SlotOpsFunc) *autoscaler {
	reason := "the autoscaler is off (scaler.enabled: false)"
	if s.cfg.Enabled {
		reason = "no evaluation yet"
	}
	return &autoscaler{s: s, cfg: s.cfg, pol: s.cfg.policy(), log: s.log,
		col:    &collector{nodes: s.opts.Nodes, seeds: s.opts.Seeds, slotOps: slotOps, timeout: 3 * time.Second},
		status: stats.AutoStatus{Enabled: s.cfg.Enabled, DryRun: s.cfg.DryRun, Interval: s.cfg.Interval, Decision: "none", Reason: reason}}
}

// run evaluates every interval; it only runs with scaler.enabled, so an
// instance with the autoscaler off does no cluster I/O for it.
func (a *autoscaler) run(ctx context.Context) {
	t := time.NewTicker(a.cfg.Interval)
	defer t.Stop()
	for {
		a.tick(ctx, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *autoscaler) tick(ctx context.Context, now time.Time) {
	leader, _ := a.s.opts.Leader()
	if !leader {
		a.mu.Lock()
		if a.leader {
			a.leader, a.st, a.breached, a.resume = false, PolicyState{}, nil, nil
		}
		a.mu.Unlock()
		a.loadPublished(ctx)
		a.flags(ctx) // for AutoStatus: a pause shows before the leader's next evaluation
		return
	}
	a.mu.Lock()
	gained := !a.leader
	a.leader = true
	a.mu.Unlock()
	if gained {
		a.restore(ctx, now)
	}
	paused, dryRun := a.flags(ctx)
	cfg, pol := a.policy() // a reload may change them (reload.go)
	st := stats.AutoStatus{Enabled: a.cfg.Enabled, Paused: paused, DryRun: dryRun, Leader: a.s.opts.Name, Interval: a.cfg.Interval,
		Evaluated: now, Cycles: stats.CycleStatus{UpNeeded: cfg.UpCycles, DownNeeded: cfg.DownCycles, ImbalanceNeeds: cfg.RebalanceCycles}}
	defer func() { a.publish(ctx, st) }()
	if a.tryResume() {
		st.Decision, st.Reason = "none", "finishing an action the previous leader started"
		return
	}
	ms, err := a.col.collect(ctx, now)
	if err != nil {
		st.Decision, st.Hold = "none", err.Error()
		a.s.m.signal.WithLabelValues("masters_unreachable").Set(1)
		return
	}
	sample := ms.sample
	var holds []string
	if sample.Hold != "" {
		holds = append(holds, sample.Hold)
	}
	if op := a.s.Operation(); op.State == "running" || op.State == "queued" {
		holds = append(holds, "a "+op.Kind+" operation is running")
	}
	if paused {
		holds = append(holds, pausedHold)
	}
	sample.Hold = strings.Join(holds, "; ")
	// Which masters a scale in may drain: only read (the events, every
	// member's seeds) when this evaluation may decide one.
	a.mu.Lock()
	mayScaleIn := a.st.Down+1 >= a.pol.DownCycles
	a.mu.Unlock()
	if mayScaleIn {
		a.s.guard(ctx).mark(&sample)
	}
	a.s.m.signal.WithLabelValues("masters_unreachable").Set(float64(ms.unreachable))
	a.mu.Lock()
	d, next := Decide(pol, a.st, sample)
	a.st = next // unchanged by a held evaluation
	prevBreached := a.breached
	a.mu.Unlock()
	if sample.Hold != "" {
		// The signals are still shown (and breaches still reported).
		d.Signals, d.Breached = Measure(pol, sample)
	}
	// Masters the cluster has, answering or not (the sample has only
	// those that answered).
	n := len(ms.view.Masters())
	st.Masters, st.Desired, st.Hold, st.Signals = n, n, sample.Hold, statusSignals(d.Signals)
	a.observe(d)
	a.breaches(ctx, d, prevBreached, n)
	d = a.checkRebalance(d, ms)
	switch d.Kind {
	case "scale_out":
		st.Desired = n + d.Count
	case "scale_in":
		st.Desired = n - 1
	}
	a.s.m.decisions.WithLabelValues(d.Kind).Inc()
	a.s.m.masters.Set(float64(n))
	a.s.m.desired.Set(float64(st.Desired))
	a.mu.Lock()
	ps := a.st
	a.mu.Unlock()
	st.Cycles.Up, st.Cycles.Down, st.Cycles.Imbalanced = ps.Up, ps.Down, ps.Imbalanced
	st.UpCooldownLeft = left(ps.LastUp, cfg.UpCooldown, now)
	st.DownCooldownLeft = left(ps.LastDown, cfg.DownCooldown, now)
	st.Decision, st.Reason = d.Kind, d.Reason
	a.point(stats.TimelinePoint{Time: now, Masters: n})
	if d.Kind == "none" {
		return
	}
	a.act(ctx, d, n, st.Desired, dryRun, minMaxmemory(sample))
}

// act records the decision, then starts it (unless dry_run).
func (a *autoscaler) act(ctx context.Context, d Decision, n, desired int, dryRun bool, curMax int64) {
	action := d.Kind
	if d.Kind == "vertical" {
		action = "vertical_up"
		if d.MaxMemory < curMax {
			action = "vertical_down"
		}
	}
	ev := Event{Kind: "decision", Slot: -1, Action: action, Masters: desired, Node: d.Node, MaxMemory: d.MaxMemory, Reason: d.Reason}
	if dryRun {
		ev.Kind = "dry_run"
		a.s.event(ctx, ev)
		a.s.m.actions.WithLabelValues(d.Kind, "dry_run").Inc()
		a.point(stats.TimelinePoint{Time: time.Now(), Masters: n, Action: d.Kind, Result: "dry_run", Reason: d.Reason})
		return
	}
	a.s.event(ctx, ev)
	req := a.request(ev)
	a.s.mu.Lock()
	err := a.s.enqueueLocked(req)
	a.s.mu.Unlock()
	if err != nil {
		req.done(ctx, fmt.Errorf("could not start: %w", err))
	}
}

// request turns a decision event into the operation that carries it out;
// done reports the outcome to the stream, the metrics and the webhooks.
func (a *autoscaler) request(ev Event) request {
	var req request
	switch ev.Action {
	case "scale_out":
		req = request{kind: "resume_scale", n: ev.Masters}
	case "scale_in":
		req = request{kind: "resume_drain", target: ev.Node}
	case "vertical_up", "vertical_down":
		req = request{kind: "vertical", maxmemory: ev.MaxMemory}
	case "rebalance":
		a.mu.Lock()
		req = request{kind: "rebalance_load", slotOps: a.slotOps}
		a.mu.Unlock()
	}
	kind := strings.TrimSuffix(strings.TrimSuffix(ev.Action, "_up"), "_down")
	req.done = func(ctx context.Context, err error) {
		if ctx.Err() != nil {
			return // shutting down: the next leader finishes it
		}
		out := Event{Kind: "scale_success", Slot: -1, Action: ev.Action, Masters: ev.Masters, Node: ev.Node, MaxMemory: ev.MaxMemory,
			Reason: ev.Action + " done: " + ev.Reason}
		result := "ok"
		if err != nil {
			out.Kind, out.Reason, result = "scale_failure", ev.Action+" failed: "+err.Error(), "failed"
		}
		a.s.m.actions.WithLabelValues(kind, result).Inc()
		a.s.event(ctx, out)
		masters := ev.Masters
		if err != nil || masters == 0 {
			a.mu.Lock()
			masters = a.status.Masters
			a.mu.Unlock()
		}
		a.point(stats.TimelinePoint{Time: time.Now(), Masters: masters, Action: kind, Result: result, Reason: out.Reason})
	}
	return req
}

// checkRebalance keeps a traffic rebalance only when per-slot traffic is
// known and some slot move improves the spread.
func (a *autoscaler) checkRebalance(d Decision, ms *measurement) Decision {
	a.mu.Lock()
	a.slotOps = ms.slotOps
	a.mu.Unlock()
	if d.Kind != "rebalance" {
		return d
	}
	if ms.slotOps == nil {
		return Decision{Kind: "none", Reason: d.Reason + "; no per-slot traffic measured yet", Signals: d.Signals}
	}
	in := LoadPlanInput{Owner: ms.view.Owner, Ops: ms.slotOps, Tolerance: loadTolerance}
	for _, m := range ms.view.Masters() {
		in.Masters = append(in.Masters, m.ID)
	}
	plan, err := PlanByLoad(in)
	if err != nil || len(plan.Moves) == 0 {
		return Decision{Kind: "none", Reason: d.Reason + "; no slot move evens the traffic out", Signals: d.Signals}
	}
	d.Reason += fmt.Sprintf("; moving %d hot slots", len(plan.Moves))
	return d
}

func left(last time.Time, cooldown time.Duration, now time.Time) time.Duration {
	if last.IsZero() {
		return 0
	}
	return max(0, cooldown-now.Sub(last))
}

func minMaxmemory(s Sample) int64 {
	var m int64
	for _, x := range s.Masters {
		if x.MaxMemory > 0 && (m == 0 || x.MaxMemory < m) {
			m = x.MaxMemory
		}
	}
	return m
}
