package scaler

// Operations only the autoscaler starts: the traffic rebalance, the
// vertical step and the completion of a drain a previous leader began.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/slotway/slotway/internal/hashslot"
	"github.com/slotway/slotway/internal/ownkeys"
)

// rebalanceLoad moves hot slots so the masters' ops come within ±5 % of
// their average (loadAim), planned on a fresh view of the slot owners.
func (s *Scaler) rebalanceLoad(ctx context.Context, slotOps []float64) error {
	if len(slotOps) != hashslot.Count {
		return errors.New("traffic rebalance: no per-slot traffic measured")
	}
	v, err := s.healthyView(ctx)
	if err != nil {
		return err
	}
	in := LoadPlanInput{Owner: v.Owner, Ops: slotOps, Tolerance: loadAim}
	for _, m := range v.Masters() {
		in.Masters = append(in.Masters, m.ID)
	}
	last := Slot(EventsKey)
	in.LastSlot = &last
	plan, err := PlanByLoad(in)
	if err != nil {
		return err
	}
	s.log.Info("scaler: traffic rebalance planned", "moves", len(plan.Moves), "reachable", plan.Reachable)
	return s.executePlan(ctx, v, plan.Moves)
}

// loadTolerance: a traffic rebalance starts only when some slot move
// would bring a master outside ±10 % of the average closer to it.
// loadAim: once started, it plans towards ±5 %. Stopping at the ±10 %
// edge left masters on it (30 equal hot slots ended 11/10/9), and the
// next measurement, a few per cent of sampling noise later, found them
// outside again: the rebalance would start over on nothing.
const (
	loadTolerance = 0.10
	loadAim       = 0.05
)

// setMaxmemory sets maxmemory on every node (replicas too, so a failover
// keeps the plan).
func (s *Scaler) setMaxmemory(ctx context.Context, bytes int64) error {
	v, err := ReadView(ctx, s.opts.Nodes, s.opts.Seeds())
	if err != nil {
		return err
	}
	if len(v.Unreachable) > 0 {
		return fmt.Errorf("nodes unreachable: %v", v.Unreachable)
	}
	var errs []error
	for _, id := range v.sortedIDs() {
		n := v.Nodes[id]
		if !v.Reached[id] || n.Addr == "" {
			continue
		}
		if err := s.opts.Nodes.Client(n.Addr).ConfigSet(ctx, "maxmemory", strconv.FormatInt(bytes, 10)).Err(); err != nil {
			errs = append(errs, fmt.Errorf("CONFIG SET maxmemory on %s: %w", n.Addr, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// Nodes that restart get it back from the proxies (as every parameter
	// kept there); a client's older CONFIG SET maxmemory is superseded.
	if err := s.rc.HSet(ctx, ownkeys.Config, "maxmemory", bytes).Err(); err != nil {
		s.log.Warn("scaler: could not keep maxmemory for restarted nodes", "key", ownkeys.Config, "err", err)
	}
	s.event(ctx, Event{Kind: "maxmemory", Slot: -1, Reason: fmt.Sprintf("maxmemory set to %d bytes on every node", bytes)})
	return nil
}

// resumeDrain finishes a scale-in that a previous leader started: drain
// the node if it still serves slots, remove it if it is left empty in the
// cluster, nothing if it is gone already.
func (s *Scaler) resumeDrain(ctx context.Context, addr string) error {
	v, err := ReadView(ctx, s.opts.Nodes, s.opts.Seeds())
	if err != nil {
		return err
	}
	nd := v.ByAddr(addr)
	switch {
	case nd == nil:
		return nil
	case nd.IsMaster():
		return s.drain(ctx, addr)
	case slices.Contains(v.Owner[:], nd.ID):
		return fmt.Errorf("%s still owns slots", addr)
	}
	// The drained master turned into a replica when its last slot left.
	return s.forget(ctx, nd.ID, addr)
}
