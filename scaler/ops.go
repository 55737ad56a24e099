package scaler

// Operations: scale out, scale in and drain, and removing a node.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slotway/slotway/internal/clusternodes"
	"github.com/slotway/slotway/internal/ownkeys"
)

// scale brings the cluster to n masters.
func (s *Scaler) scale(ctx context.Context, n int) error {
	v, err := ReadView(ctx, s.opts.Nodes, s.opts.Seeds())
	if err != nil {
		return err
	}
	masters := v.Masters()
	switch {
	case n > len(masters):
		return s.scaleOut(ctx, v, n-len(masters))
	case n < len(masters):
		for range len(masters) - n {
			victim, err := s.leastLoaded(ctx)
			if err != nil {
				return err
			}
			if err := s.drain(ctx, victim); err != nil {
				return err
			}
		}
	}
	return nil
}

// leastLoaded picks the master a scale in drains: never a seed of a group
// member, a master the provider gave before an original one, then the
// fewest keys (ties: by address).
func (s *Scaler) leastLoaded(ctx context.Context) (string, error) {
	v, err := ReadView(ctx, s.opts.Nodes, s.opts.Seeds())
	if err != nil {
		return "", err
	}
	g := s.guard(ctx)
	best, bestKeys, bestProvided := "", int64(-1), false
	var seeds []string
	for _, m := range v.Masters() {
		if g.seed(m.Addr) {
			seeds = append(seeds, m.Addr)
			continue
		}
		k, err := s.opts.Nodes.Client(m.Addr).DBSize(ctx).Result()
		if err != nil {
			return "", fmt.Errorf("DBSIZE on %s: %w", m.Addr, err)
		}
		p := g.provided[m.Addr]
		if bestKeys < 0 || (p && !bestProvided) || (p == bestProvided && k < bestKeys) {
			best, bestKeys, bestProvided = m.Addr, k, p
		}
	}
	if best == "" {
		return "", fmt.Errorf("every master is a seed of a group member (%s): drain one by name", strings.Join(seeds, ", "))
	}
	return best, nil
}

func (s *Scaler) scaleOut(ctx context.Context, v *View, add int) error {
	withReplicas := false
	for _, m := range v.Masters() {
		if len(v.ReplicasOf(m.ID)) > 0 {
			withReplicas = true
		}
	}
	var newIDs []string
	for range add {
		id, err := s.join(ctx, v, "")
		if err != nil {
			return err
		}
		newIDs = append(newIDs, id)
		if withReplicas {
			if _, err := s.join(ctx, v, id); err != nil {
				return err
			}
		}
	}
	return s.rebalance(ctx, nil, fmt.Sprintf("scale out: %d new masters", len(newIDs)))
}

// join acquires a node, introduces it with CLUSTER MEET and waits until
// every node knows it. With master set, it becomes that master's replica.
func (s *Scaler) join(ctx context.Context, v *View, master string) (string, error) {
	addr, err := s.prov.Acquire(ctx)
	if err != nil {
		return "", fmt.Errorf("acquire a node: %w", err)
	}
	s.event(ctx, Event{Kind: "acquire", Slot: -1, Node: addr})
	if err := checkEmptyNode(ctx, s.opts.Nodes, addr); err != nil {
		return "", fmt.Errorf("acquired node is not usable: %w", err)
	}
	id, err := s.opts.Nodes.Client(addr).ClusterMyID(ctx).Result()
	if err != nil {
		return "", fmt.Errorf("CLUSTER MYID on %s: %w", addr, err)
	}
	host, port, _ := splitHostPort(addr)
	var via *clusternodes.NodeInfo
	for _, m := range v.Masters() {
		if v.Reached[m.ID] {
			via = m
			break
		}
	}
	if via == nil {
		return "", errors.New("no reachable master to introduce the new node")
	}
	if err := s.opts.Nodes.Client(via.Addr).ClusterMeet(ctx, host, fmt.Sprint(port)).Err(); err != nil {
		return "", fmt.Errorf("CLUSTER MEET %s via %s: %w", addr, via.Addr, err)
	}
	if err := s.applyKeptConfig(ctx, addr); err != nil {
		return "", err
	}
	// With a maxmemory ladder the new node starts on the current plan.
	if len(s.cfg.Plans) > 0 {
		if mm, err := s.opts.Nodes.Client(via.Addr).ConfigGet(ctx, "maxmemory").Result(); err == nil && mm["maxmemory"] != "" {
			if err := s.opts.Nodes.Client(addr).ConfigSet(ctx, "maxmemory", mm["maxmemory"]).Err(); err != nil {
				return "", fmt.Errorf("CONFIG SET maxmemory on %s: %w", addr, err)
			}
		}
	}
	s.event(ctx, Event{Kind: "meet", Slot: -1, Node: addr})
	deadline := time.Now().Add(60 * time.Second)
	for {
		nv, err := ReadView(ctx, s.opts.Nodes, s.opts.Seeds())
		if err == nil && nv.Reached[id] && nv.KnownByAll(id) && len(nv.known[id]) >= len(nv.Reached) {
			break
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("node %s not known by every node after 60s", addr)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	if master != "" {
		if err := s.opts.Nodes.Client(addr).Do(ctx, "CLUSTER", "REPLICATE", master).Err(); err != nil {
			return "", fmt.Errorf("CLUSTER REPLICATE on %s: %w", addr, err)
		}
		s.event(ctx, Event{Kind: "replica", Slot: -1, Node: addr, Reason: "replica of " + master})
	}
	return id, nil
}

// applyKeptConfig gives a new node the parameters clients set through
// Slotway (CONFIG SET, kept in ownkeys.Config), so it behaves like the
// others. With a maxmemory ladder (scaler.plans) the ladder's current
// plan is applied right after, so it wins over a client's maxmemory.
func (s *Scaler) applyKeptConfig(ctx context.Context, addr string) error {
	kept, err := s.rc.HGetAll(ctx, ownkeys.Config).Result()
	if err != nil {
		return fmt.Errorf("read the parameters set through Slotway (%s): %w", ownkeys.Config, err)
	}
	if len(kept) == 0 {
		return nil
	}
	args := []any{"CONFIG", "SET"}
	for _, k := range slices.Sorted(maps.Keys(kept)) {
		args = append(args, k, kept[k])
	}
	if err := s.opts.Nodes.Client(addr).Do(ctx, args...).Err(); err != nil {
		return fmt.Errorf("CONFIG SET of the parameters set through Slotway on %s: %w", addr, err)
	}
	return nil
}

// drain moves every slot off the master at addr straight to their final
// owners, then removes it from the cluster and gives it back.
func (s *Scaler) drain(ctx context.Context, addr string) error {
	v, err := ReadView(ctx, s.opts.Nodes, s.opts.Seeds())
	if err != nil {
		return err
	}
	nd := v.ByAddr(addr)
	if nd == nil || !nd.IsMaster() {
		return fmt.Errorf("%s is not a master of the cluster", addr)
	}
	if len(v.Masters()) < 2 {
		return errors.New("cannot drain the only master")
	}
	s.event(ctx, Event{Kind: "drain", Slot: -1, Node: addr})
	if err := s.rebalance(ctx, map[string]float64{nd.ID: 0}, "drain "+addr); err != nil {
		return err
	}
	v, err = ReadView(ctx, s.opts.Nodes, s.opts.Seeds())
	if err != nil {
		return err
	}
	// A master that lost its last slot may already have turned into a
	// replica of the new owner (Redis does that by itself) and copy its
	// data; only a node still a master must be empty.
	if me := v.Nodes[nd.ID]; me != nil && me.IsMaster() {
		if n, err := s.opts.Nodes.Client(addr).DBSize(ctx).Result(); err != nil || n != 0 {
			return fmt.Errorf("drained %s still holds %d keys (%v); not removing it", addr, n, err)
		}
	}
	for slot, owner := range v.Owner {
		if owner == nd.ID {
			return fmt.Errorf("drained %s still owns slot %d; not removing it", addr, slot)
		}
	}
	// Re-home its replicas on the master with the fewest.
	for _, r := range v.ReplicasOf(nd.ID) {
		to := s.fewestReplicas(v, nd.ID)
		if to == nil {
			break
		}
		if err := s.opts.Nodes.Client(r.Addr).Do(ctx, "CLUSTER", "REPLICATE", to.ID).Err(); err != nil {
			return fmt.Errorf("re-home replica %s: %w", r.Addr, err)
		}
		s.event(ctx, Event{Kind: "replica", Slot: -1, Node: r.Addr, Reason: "re-homed to " + to.Addr})
	}
	// Every proxy must stop routing to it before it disappears.
	if s.opts.RefreshProxies != nil {
		s.opts.RefreshProxies()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(2 * time.Second):
	}
	return s.forget(ctx, nd.ID, addr)
}

func (s *Scaler) fewestReplicas(v *View, except string) *clusternodes.NodeInfo {
	var best *clusternodes.NodeInfo
	bestN := -1
	for _, m := range v.Masters() {
		if m.ID == except || !v.Reached[m.ID] {
			continue
		}
		if n := len(v.ReplicasOf(m.ID)); bestN < 0 || n < bestN {
			best, bestN = m, n
		}
	}
	return best
}

// forget removes a slot-less node: CLUSTER FORGET on every other node in
// parallel (within the 60 s ban window), CLUSTER RESET HARD on it, then
// back to the provider, and a check after the window.
func (s *Scaler) forget(ctx context.Context, id, addr string) error {
	v, err := ReadView(ctx, s.opts.Nodes, s.opts.Seeds())
	if err != nil {
		return err
	}
	if _, err := s.lease.Renew(ctx); err != nil {
		return err
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for oid, o := range v.Nodes {
		if oid == id || !v.Reached[oid] {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.opts.Nodes.Client(o.Addr).ClusterForget(ctx, id).Err(); err != nil && !strings.Contains(err.Error(), "Unknown node") {
				mu.Lock()
				errs = append(errs, fmt.Errorf("CLUSTER FORGET on %s: %w", o.Addr, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	s.event(ctx, Event{Kind: "forget", Slot: -1, Node: addr})
	if _, err := s.lease.Renew(ctx); err != nil {
		return err
	}
	if err := s.opts.Nodes.Client(addr).ClusterResetHard(ctx).Err(); err != nil {
		return fmt.Errorf("CLUSTER RESET HARD on %s: %w", addr, err)
	}
	s.event(ctx, Event{Kind: "reset", Slot: -1, Node: addr})
	if err := s.prov.Release(ctx, addr); err != nil {
		return err
	}
	s.event(ctx, Event{Kind: "release", Slot: -1, Node: addr})
	go func() {
		select {
		case <-ctx.Done():
			return
		case <-time.After(65 * time.Second):
		}
		v, err := ReadView(ctx, s.opts.Nodes, s.opts.Seeds())
		if err != nil {
			return
		}
		if n := v.Nodes[id]; n != nil {
			s.event(ctx, Event{Kind: "failure", Slot: -1, Node: addr, Reason: "a node still lists the removed node after the ban window"})
		}
	}()
	return nil
}
