package scaler

// Resume and fix: rolling half-done slot moves forward.

import (
	"context"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/clusternodes"
)

// fix rolls forward every half-done slot move it finds (docs/scaling.md): it
// runs on every new leadership and on request. It returns the slots fixed.
func (s *Scaler) fix(ctx context.Context) (int, error) {
	s.mover.reset()
	v, err := ReadView(ctx, s.opts.Nodes, s.opts.Seeds())
	if err != nil {
		return 0, err
	}
	if h := v.Healthy(); h != "" {
		return 0, fmt.Errorf("not fixing while the cluster is unhealthy: %s", h)
	}
	type job struct {
		slot     int
		src, dst string
		force    bool
		why      string
	}
	var jobs []job
	seen := map[int]bool{}
	type marker struct {
		slot int
		addr string
	}
	var stale []marker
	// Migrating markers first: a slot both migrating and importing is one
	// move to finish, whatever order the nodes come in.
	for _, id := range v.sortedIDs() {
		nd := v.Nodes[id]
		if !v.Reached[id] {
			continue
		}
		for slot, dst := range nd.Migrating {
			if seen[slot] {
				continue
			}
			if !nd.IsMaster() || v.Owner[slot] != id {
				// A marker on a node that does not serve the slot: an old
				// source restarted from its nodes.conf after its replica
				// took over. Finishing "its" move would hand the slot over
				// without the keys the new master holds; the rules below
				// (importing, disputed, keys on a non-owner) go by key
				// counts instead, and the marker is cleared after them.
				stale = append(stale, marker{slot, nd.Addr})
				continue
			}
			seen[slot] = true
			if t := v.Nodes[dst]; t == nil || !t.IsMaster() {
				// The target is gone: the source keeps the slot.
				if err := s.opts.Nodes.Client(nd.Addr).Do(ctx, "CLUSTER", "SETSLOT", slot, "STABLE").Err(); err != nil {
					return 0, fmt.Errorf("slot %d: SETSLOT STABLE on %s: %w", slot, nd.Addr, err)
				}
				s.event(ctx, Event{Kind: "fix", Slot: slot, Node: nd.Addr, Reason: "migrating to a node that is gone: stable"})
				continue
			}
			jobs = append(jobs, job{slot, id, dst, false, "migrating"})
		}
	}
	for _, id := range v.sortedIDs() {
		nd := v.Nodes[id]
		if !v.Reached[id] {
			continue
		}
		for slot, src := range nd.Importing {
			if seen[slot] {
				continue
			}
			seen[slot] = true
			n, err := s.opts.Nodes.Client(nd.Addr).ClusterCountKeysInSlot(ctx, slot).Result()
			if err != nil {
				return 0, fmt.Errorf("slot %d: COUNTKEYSINSLOT on %s: %w", slot, nd.Addr, err)
			}
			owner := v.Owner[slot]
			if n == 0 {
				if err := s.opts.Nodes.Client(nd.Addr).Do(ctx, "CLUSTER", "SETSLOT", slot, "STABLE").Err(); err != nil {
					return 0, fmt.Errorf("slot %d: SETSLOT STABLE on %s: %w", slot, nd.Addr, err)
				}
				s.event(ctx, Event{Kind: "fix", Slot: slot, Node: nd.Addr, Reason: "importing with no keys: stable"})
				continue
			}
			if owner == "" {
				owner = src
			}
			jobs = append(jobs, job{slot, owner, id, false, "importing with keys"})
		}
	}
	for _, slot := range v.Disputed {
		if seen[slot] {
			continue
		}
		seen[slot] = true
		// Two masters claim it: the one without keys yields.
		var claim []string
		for _, id := range v.sortedIDs() {
			if v.Reached[id] && v.Nodes[id].IsMaster() && ownsSlot(v.Nodes[id], slot) {
				claim = append(claim, id)
			}
		}
		if len(claim) < 2 {
			continue
		}
		counts := map[string]int64{}
		for _, id := range claim {
			counts[id], _ = s.opts.Nodes.Client(v.Nodes[id].Addr).ClusterCountKeysInSlot(ctx, slot).Result()
		}
		slices.SortFunc(claim, func(a, b string) int { return int(counts[b] - counts[a]) })
		for _, loser := range claim[1:] {
			jobs = append(jobs, job{slot, loser, claim[0], true, "owners disagree"})
		}
	}
	// Keys on a master that does not own their slot (left by an
	// interrupted tool or a hand-made move): one pipelined count per
	// master over the slots it does not own.
	for _, m := range v.Masters() {
		if !v.Reached[m.ID] {
			continue
		}
		var slots []int
		for slot, owner := range v.Owner {
			if owner != m.ID && owner != "" && !seen[slot] {
				slots = append(slots, slot)
			}
		}
		cmds, err := s.opts.Nodes.Client(m.Addr).Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, slot := range slots {
				p.ClusterCountKeysInSlot(ctx, slot)
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("count keys on %s: %w", m.Addr, err)
		}
		for i, cmd := range cmds {
			if n, _ := cmd.(*redis.IntCmd).Result(); n > 0 {
				slot := slots[i]
				seen[slot] = true
				jobs = append(jobs, job{slot, m.ID, v.Owner[slot], true, fmt.Sprintf("%d keys on a non-owner", n)})
			}
		}
	}
	fixed := 0
	for _, j := range jobs {
		mode := modeFix
		if j.force {
			mode |= modeForce
		}
		keys, err := s.mover.moveSlot(ctx, j.slot, j.src, j.dst, mode)
		if err != nil {
			return fixed, fmt.Errorf("fix slot %d (%s): %w", j.slot, j.why, err)
		}
		if j.force {
			// Make every node agree on the owner once the loser is empty.
			for _, m := range v.Masters() {
				if v.Reached[m.ID] {
					s.opts.Nodes.Client(m.Addr).Do(ctx, "CLUSTER", "SETSLOT", j.slot, "NODE", j.dst)
				}
			}
		}
		fixed++
		s.event(ctx, Event{Kind: "fix", Slot: j.slot, Node: addrOf(v, j.dst), Keys: keys, Reason: j.why + ": finished from " + addrOf(v, j.src)})
	}
	for _, m := range stale {
		if err := s.opts.Nodes.Client(m.addr).Do(ctx, "CLUSTER", "SETSLOT", m.slot, "STABLE").Err(); err == nil {
			s.event(ctx, Event{Kind: "fix", Slot: m.slot, Node: m.addr, Reason: "migrating marker on a node that does not serve the slot: stable"})
		}
	}
	return fixed, nil
}

func ownsSlot(n *clusternodes.NodeInfo, slot int) bool {
	for _, r := range n.Slots {
		if slot >= r.Start && slot <= r.End {
			return true
		}
	}
	return false
}
