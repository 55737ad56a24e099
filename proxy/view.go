package proxy

// Choosing the slot map among the nodes' answers (no I/O).
//
// A node that was reset (CLUSTER RESET HARD after a scale in), one restarted
// from an old nodes.conf or one from another cluster answers a topology read
// as readily as a member, usually faster, with a view that serves nothing or
// serves another cluster. So the slot map is never "the first answer": the
// topology owner asks several nodes and publishes the best view.

import (
	"strconv"

	"github.com/slotway/slotway/internal/hashslot"
	"github.com/slotway/slotway/internal/redisinfo"
)

// view is one node's answer to a topology read.
type view struct {
	addr   string // the address asked
	id     string // the node's own ID (CLUSTER MYID)
	ok     bool   // it reports cluster_state:ok
	epoch  int64  // its cluster_current_epoch
	nodes  []Node
	ids    map[string]bool // IDs of the nodes it lists, itself included
	served int             // slots it assigns to a master
}

func newView(addr, id, info string, nodes []Node) *view {
	v := &view{addr: addr, id: id, nodes: nodes, ids: make(map[string]bool, len(nodes)+1)}
	redisinfo.Each(info, func(k, val string) { // CLUSTER INFO has INFO's lines
		switch k {
		case "cluster_state":
			v.ok = val == "ok"
		case "cluster_current_epoch":
			v.epoch, _ = strconv.ParseInt(val, 10, 64)
		}
	})
	for _, n := range nodes {
		v.ids[n.ID] = true
		if n.Role != "master" {
			continue
		}
		for _, r := range n.Slots {
			v.served += min(r[1], hashslot.Count-1) - r[0] + 1
		}
	}
	if id != "" {
		v.ids[id] = true
	}
	return v
}

// support counts the answering nodes that v lists: how much of what
// answered is the cluster v describes. A reset node's view lists only
// itself; a node of another cluster is listed by no member's view.
func (v *view) support(views []*view) int {
	n := 0
	for _, w := range views {
		if v.ids[w.id] {
			n++
		}
	}
	return n
}

// bestView picks the view to publish among views (in candidate order),
// nil when there is none:
//   - only views whose node reports cluster_state:ok, unless none does;
//   - then the view the most answering nodes are members of (a reset node
//     or a node of another cluster vouches only for itself);
//   - then the most slots served, then the highest current epoch (the most
//     recent knowledge, e.g. after a failover);
//   - ties: the earlier candidate, so the source does not flap.
func bestView(views []*view) *view {
	anyOK := false
	for _, v := range views {
		anyOK = anyOK || v.ok
	}
	var best *view
	bestSupport := 0
	for _, v := range views {
		if anyOK && !v.ok {
			continue
		}
		s := v.support(views)
		if best == nil || s > bestSupport ||
			(s == bestSupport && (v.served > best.served || (v.served == best.served && v.epoch > best.epoch))) {
			best, bestSupport = v, s
		}
	}
	return best
}

// settled reports whether best, chosen from the few nodes asked first, can
// be published without asking the rest: its node reports cluster_state:ok,
// every node that answered is a member of it, and it does not take the
// slots away from a map that serves some.
func settled(best *view, views []*view, curServed int) bool {
	if best == nil || !best.ok || (best.served == 0 && curServed > 0) {
		return false
	}
	for _, v := range views {
		if !best.ids[v.id] {
			return false
		}
	}
	return true
}

// whyNotMember says why the node that gave v is not a member of the
// cluster best describes, "" when it is one.
func whyNotMember(v, best *view) string {
	if best.ids[v.id] {
		return ""
	}
	if len(v.nodes) <= 1 && v.served == 0 {
		return "knows only itself (reset, or never joined)"
	}
	for id := range v.ids {
		if best.ids[id] {
			return "not a member of the cluster (forgotten by it)"
		}
	}
	return "belongs to another cluster"
}
