package rediscluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/slotway/slotway/internal/redisinfo"
)

// viewOf returns n's CLUSTER NODES, bounded by probeTimeout.
func (c *Cluster) viewOf(ctx context.Context, n *Node) ([]NodeInfo, error) {
	pctx, cancel := probeCtx(ctx)
	defer cancel()
	s, err := n.Client().ClusterNodes(pctx).Result()
	if err != nil {
		return nil, fmt.Errorf("CLUSTER NODES on %s: %w", n.Addr, err)
	}
	view, err := ParseClusterNodes(s)
	if err != nil {
		return nil, fmt.Errorf("CLUSTER NODES on %s: %w", n.Addr, err)
	}
	return view, nil
}

// stateOK reports whether n says cluster_state:ok, and if not, why.
func (c *Cluster) stateOK(ctx context.Context, n *Node) (bool, string) {
	pctx, cancel := probeCtx(ctx)
	defer cancel()
	info, err := n.Client().ClusterInfo(pctx).Result()
	if err != nil {
		return false, fmt.Sprintf("CLUSTER INFO on %s: %v", n.Addr, err)
	}
	if st := redisinfo.Field(info, "cluster_state"); st != "ok" {
		return false, fmt.Sprintf("%s: cluster_state:%s", n.Addr, st)
	}
	return true, ""
}

// diffOwners describes the first slot on which a and b disagree, "" if none.
func diffOwners(a, b *[totalSlots]string) string {
	if *a == *b {
		return ""
	}
	for s := range a {
		if a[s] != b[s] {
			return fmt.Sprintf("slot %d owned by %q vs %q", s, short(a[s]), short(b[s]))
		}
	}
	return ""
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// memberView is one cluster member's CLUSTER NODES.
type memberView struct {
	node *Node
	view []NodeInfo
}

// memberViews asks every alive node except skip for CLUSTER NODES and keeps
// those that are cluster members, i.e. know at least one other node (an
// un-met spare knows only itself). A non-empty why means some alive node did
// not answer.
func (c *Cluster) memberViews(ctx context.Context, skip *Node) ([]memberView, string) {
	var out []memberView
	for _, n := range c.nodes {
		if n == skip || !n.Alive() {
			continue
		}
		view, err := c.viewOf(ctx, n)
		if err != nil {
			return nil, err.Error()
		}
		if len(view) < 2 {
			continue
		}
		out = append(out, memberView{n, view})
	}
	return out, ""
}

// anyView returns CLUSTER NODES from the first alive cluster member that
// answers.
func (c *Cluster) anyView(ctx context.Context) ([]NodeInfo, error) {
	var errs []error
	for _, n := range c.nodes {
		if !n.Alive() {
			continue
		}
		view, err := c.viewOf(ctx, n)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(view) >= 2 {
			return view, nil
		}
	}
	if len(errs) == 0 {
		return nil, errors.New("no alive cluster node")
	}
	return nil, fmt.Errorf("no alive cluster node answered: %w", errors.Join(errs...))
}

func (c *Cluster) nodeFor(e NodeInfo) (*Node, error) {
	n := c.byID[e.ID]
	if n == nil {
		return nil, fmt.Errorf("cluster lists node %s (%s) that this Cluster did not start", e.ID, e.Addr)
	}
	return n, nil
}

// Masters returns the current masters according to CLUSTER NODES of an
// alive cluster node, sorted by first slot (masters without slots last, by
// port). Masters flagged fail are left out; ones only suspected (fail?)
// are kept.
func (c *Cluster) Masters(ctx context.Context) ([]*Node, error) {
	view, err := c.anyView(ctx)
	if err != nil {
		return nil, fmt.Errorf("list masters: %w", err)
	}
	type entry struct {
		n     *Node
		first int
	}
	var es []entry
	for _, e := range view {
		if !e.IsMaster() || e.Has("fail") || e.Has("handshake") {
			continue
		}
		n, err := c.nodeFor(e)
		if err != nil {
			return nil, fmt.Errorf("list masters: %w", err)
		}
		first := totalSlots + n.Port // no slots: after every slot, by port
		if len(e.Slots) > 0 {
			first = slices.MinFunc(e.Slots, func(a, b SlotRange) int { return cmp.Compare(a.Start, b.Start) }).Start
		}
		es = append(es, entry{n, first})
	}
	slices.SortFunc(es, func(a, b entry) int { return cmp.Compare(a.first, b.first) })
	out := make([]*Node, len(es))
	for i, e := range es {
		out[i] = e.n
	}
	return out, nil
}

// Replicas returns the replicas of master according to CLUSTER NODES of an
// alive cluster node, sorted by port. Replicas flagged fail are left out.
func (c *Cluster) Replicas(ctx context.Context, master *Node) ([]*Node, error) {
	if err := c.own(master); err != nil {
		return nil, err
	}
	view, err := c.anyView(ctx)
	if err != nil {
		return nil, fmt.Errorf("list replicas of %s: %w", master.Addr, err)
	}
	var out []*Node
	for _, e := range view {
		if !e.IsReplica() || e.MasterID != master.ID || e.Has("fail") {
			continue
		}
		n, err := c.nodeFor(e)
		if err != nil {
			return nil, fmt.Errorf("list replicas of %s: %w", master.Addr, err)
		}
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b *Node) int { return cmp.Compare(a.Port, b.Port) })
	return out, nil
}

// MasterOf returns the node serving slot according to CLUSTER NODES of an
// alive cluster node.
func (c *Cluster) MasterOf(ctx context.Context, slot int) (*Node, error) {
	if err := validSlot(slot); err != nil {
		return nil, fmt.Errorf("find master of slot: %w", err)
	}
	view, err := c.anyView(ctx)
	if err != nil {
		return nil, fmt.Errorf("find master of slot %d: %w", slot, err)
	}
	id := slotOwners(view)[slot]
	if id == "" {
		return nil, fmt.Errorf("find master of slot %d: no node serves it", slot)
	}
	e, _ := findByID(view, id)
	n, err := c.nodeFor(e)
	if err != nil {
		return nil, fmt.Errorf("find master of slot %d: %w", slot, err)
	}
	return n, nil
}

// SlotRanges returns the slots n serves according to CLUSTER NODES of an
// alive cluster node (empty for replicas and spares).
func (c *Cluster) SlotRanges(ctx context.Context, n *Node) ([]SlotRange, error) {
	if err := c.own(n); err != nil {
		return nil, err
	}
	view, err := c.anyView(ctx)
	if err != nil {
		return nil, fmt.Errorf("slots of %s: %w", n.Addr, err)
	}
	e, ok := findByID(view, n.ID)
	if !ok {
		return nil, nil
	}
	return e.Slots, nil
}

// WaitOK waits until every alive cluster node (spares that were never met
// do not count) reports cluster_state:ok and all of them agree on the owner
// of every slot. If ctx has no deadline, the wait is limited to 30s.
func (c *Cluster) WaitOK(ctx context.Context) error {
	return until(ctx, "cluster_state:ok on every node", func(ctx context.Context) (bool, string, error) {
		return c.checkOK(ctx, nil)
	})
}

// checkOK is WaitOK's condition over every alive member except skip.
func (c *Cluster) checkOK(ctx context.Context, skip *Node) (bool, string, error) {
	views, why := c.memberViews(ctx, skip)
	if why != "" {
		return false, why, nil
	}
	if len(views) == 0 {
		return false, "no alive cluster node", nil
	}
	ref := slotOwners(views[0].view)
	for _, v := range views[1:] {
		if d := diffOwners(ref, slotOwners(v.view)); d != "" {
			return false, fmt.Sprintf("%s and %s disagree: %s", views[0].node.Addr, v.node.Addr, d), nil
		}
	}
	for _, v := range views {
		if ok, why := c.stateOK(ctx, v.node); !ok {
			return false, why, nil
		}
	}
	return true, "", nil
}
