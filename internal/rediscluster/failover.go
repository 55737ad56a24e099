package rediscluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// WaitForFailover waits until the slots the dead master served are served by
// another node, every other alive cluster node agrees on that, and the new
// owner (a promoted replica, in a failover) sees itself as master and
// reports cluster_state:ok. It returns the new master.
//
// The dead master's slots are read from its nodes.conf, which Redis rewrites
// before acknowledging any change of slot ownership, so it holds the node's
// last view of itself. dead need not be reaped: a SIGSTOPped master works too.
// If ctx has no deadline, the wait is limited to 30s.
func (c *Cluster) WaitForFailover(ctx context.Context, dead *Node) (*Node, error) {
	if err := c.own(dead); err != nil {
		return nil, err
	}
	slots, err := lastOwnSlots(dead)
	if err != nil {
		return nil, fmt.Errorf("wait for failover of %s: %w", dead.Addr, err)
	}
	var promoted *Node
	err = until(ctx, "failover of "+dead.Addr, func(ctx context.Context) (bool, string, error) {
		views, why := c.memberViews(ctx, dead)
		if why != "" {
			return false, why, nil
		}
		if len(views) == 0 {
			return false, "no alive cluster node", nil
		}
		owner := ""
		for _, v := range views {
			owners := slotOwners(v.view)
			for _, r := range slots {
				for s := r.Start; s <= r.End; s++ {
					switch id := owners[s]; {
					case id == dead.ID:
						return false, fmt.Sprintf("%s still sees %s serving slot %d", v.node.Addr, dead.Addr, s), nil
					case id == "":
						return false, fmt.Sprintf("%s sees nobody serving slot %d", v.node.Addr, s), nil
					case owner == "":
						owner = id
					case id != owner:
						return false, fmt.Sprintf("%s sees slot %d served by %s, not %s", v.node.Addr, s, short(id), short(owner)), nil
					}
				}
			}
		}
		n := c.byID[owner]
		if n == nil {
			return false, "", fmt.Errorf("slots taken over by node %s that this Cluster did not start", owner)
		}
		var self NodeInfo
		found := false
		for _, v := range views {
			if v.node == n {
				self, found = findMyself(v.view)
			}
		}
		if !found || !self.IsMaster() {
			return false, fmt.Sprintf("%s does not see itself as master yet", n.Addr), nil
		}
		if ok, why := c.stateOK(ctx, n); !ok {
			return false, why, nil
		}
		promoted = n
		return true, "", nil
	})
	if err != nil {
		return nil, err
	}
	c.log.Info("redis failover done", "dead", dead.Addr, "new_master", promoted.Addr)
	return promoted, nil
}

// lastOwnSlots reads the slots n served from its nodes.conf.
func lastOwnSlots(n *Node) ([]SlotRange, error) {
	path := filepath.Join(n.Dir, "nodes.conf")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read last cluster config: %w", err)
	}
	view, err := ParseClusterNodes(string(data))
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	self, ok := findMyself(view)
	if !ok {
		return nil, fmt.Errorf("parse %s: no myself line", path)
	}
	if !self.IsMaster() || len(self.Slots) == 0 {
		return nil, fmt.Errorf("%s was not a master serving slots (flags %v, %d slots)", n.Addr, self.Flags, self.SlotCount())
	}
	return self.Slots, nil
}

// mfRetry is how long Promote waits for a CLUSTER FAILOVER to take effect
// before sending it again. Redis abandons a manual failover after 5s
// (CLUSTER_MF_TIMEOUT), e.g. when the master did not yet know the replica.
const mfRetry = 6 * time.Second

// Promote runs CLUSTER FAILOVER on replica (a coordinated failover: its
// master must be running), waits until replica sees itself as a master
// serving slots, then waits for WaitOK. Before the failover it waits until
// the master lists replica as its replica, because a master ignores the
// failover request of a node it does not know as one (as right after a
// Restart). If ctx has no deadline, each wait is limited to 30s.
func (c *Cluster) Promote(ctx context.Context, replica *Node) error {
	if err := c.own(replica); err != nil {
		return err
	}
	view, err := c.viewOf(ctx, replica)
	if err != nil {
		return fmt.Errorf("promote %s: %w", replica.Addr, err)
	}
	self, ok := findMyself(view)
	if !ok || !self.IsReplica() {
		return fmt.Errorf("promote %s: not a replica (flags %v)", replica.Addr, self.Flags)
	}
	master := c.byID[self.MasterID]
	if master == nil {
		return fmt.Errorf("promote %s: its master %s was not started by this Cluster", replica.Addr, self.MasterID)
	}
	if !master.Alive() {
		return fmt.Errorf("promote %s: its master %s is not running (use WaitForFailover)", replica.Addr, master.Addr)
	}
	err = until(ctx, master.Addr+" to know "+replica.Addr+" as its replica", func(ctx context.Context) (bool, string, error) {
		view, err := c.viewOf(ctx, master)
		if err != nil {
			return false, err.Error(), nil
		}
		e, ok := findByID(view, replica.ID)
		if !ok || !e.IsReplica() || e.MasterID != master.ID || e.Has("fail") || e.Has("fail?") {
			return false, fmt.Sprintf("%s sees %s with flags %v, master %q", master.Addr, replica.Addr, e.Flags, short(e.MasterID)), nil
		}
		return true, "", nil
	})
	if err != nil {
		return fmt.Errorf("promote %s: %w", replica.Addr, err)
	}

	var sent time.Time
	err = until(ctx, replica.Addr+" to become master", func(ctx context.Context) (bool, string, error) {
		if !sent.IsZero() {
			view, err := c.viewOf(ctx, replica)
			if err != nil {
				return false, err.Error(), nil
			}
			if self, ok := findMyself(view); ok && self.IsMaster() && len(self.Slots) > 0 {
				return true, "", nil
			}
		}
		if time.Since(sent) > mfRetry {
			if err := replica.Client().ClusterFailover(ctx).Err(); err != nil {
				return false, "", fmt.Errorf("CLUSTER FAILOVER on %s: %w", replica.Addr, err)
			}
			sent = time.Now()
		}
		return false, "CLUSTER FAILOVER sent " + time.Since(sent).Round(time.Millisecond).String() + " ago, still a replica", nil
	})
	if err != nil {
		return fmt.Errorf("promote %s: %w", replica.Addr, err)
	}
	if err := c.WaitOK(ctx); err != nil {
		return fmt.Errorf("promote %s: %w", replica.Addr, err)
	}
	c.log.Info("redis replica promoted", "addr", replica.Addr, "old_master", master.Addr)
	return nil
}
