package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/slotway/slotway/internal/clusternodes"
	"github.com/slotway/slotway/internal/hashslot"
	"github.com/slotway/slotway/internal/redisinfo"
)

const (
	// pollInterval is how often the waits re-check the nodes; formation
	// takes a second or two, so finer polling only adds load.
	pollInterval = 100 * time.Millisecond
	// stillWaitingEvery is how often a wait repeats what it is missing,
	// so a stuck formation says why before the timeout.
	stillWaitingEvery = 5 * time.Second
)

// Options for Create.
type Options struct {
	// Addrs are the nodes as HOST:PORT. The others meet the first one.
	Addrs []string
	// Replicas is the number of replicas per master; see Place.
	Replicas int
	// Username and Password authenticate to every node (an ACL user, or
	// requirepass with an empty Username).
	Username, Password string
	// Progress receives a line per step. Nil: discard.
	Progress io.Writer
}

// Result is the cluster as Create left it, read back from the nodes.
type Result struct {
	// Created is false if the nodes already formed the cluster and
	// Create changed nothing.
	Created bool
	// Masters in slot order.
	Masters []MasterInfo
}

// MasterInfo is one master of a Result. Addresses are as given in
// Options.Addrs.
type MasterInfo struct {
	Addr     string
	ID       string
	Slots    []clusternodes.SlotRange
	Replicas []string
}

// ReplicaCount is the number of replicas in the cluster.
func (r Result) ReplicaCount() int {
	n := 0
	for _, m := range r.Masters {
		n += len(m.Replicas)
	}
	return n
}

// Create forms a cluster from opts.Addrs, bounded by ctx. It first checks
// every node and touches none unless all are reachable, cluster-enabled,
// empty and alone; if all of them already form one healthy cluster it
// returns that with Created false. A failure after the first change leaves
// the nodes half-formed; the error says so.
func Create(ctx context.Context, opts Options) (Result, error) {
	plan, err := Place(opts.Addrs, opts.Replicas)
	if err != nil {
		return Result{}, err
	}
	out := opts.Progress
	if out == nil {
		out = io.Discard
	}
	b := &builder{out: out, addrs: opts.Addrs, clients: map[string]*redis.Client{}, ids: map[string]string{}}
	for _, a := range opts.Addrs {
		b.clients[a] = redis.NewClient(clientOptions(a, opts.Username, opts.Password))
	}
	defer b.close()

	b.say("checking %d nodes", len(opts.Addrs))
	states, err := b.inspectAll(ctx)
	if err != nil {
		return Result{}, err
	}
	for _, s := range states {
		b.ids[s.addr] = s.self.ID
	}
	if formed(states) {
		return b.result(ctx, false)
	}
	if problems := freshProblems(states); len(problems) > 0 {
		return Result{}, fmt.Errorf("refusing to create the cluster, no node was changed:\n  %s", strings.Join(problems, "\n  "))
	}
	b.say("placing %d masters and %d replicas", len(plan.Masters), plan.ReplicaCount())
	for _, m := range plan.Masters {
		b.say("  master %s slots %d-%d, replicas: %s", m.Addr, m.Slots.Start, m.Slots.End, listOrNone(m.Replicas))
	}
	if len(plan.SameHost) > 0 {
		b.say("  note: %d replica(s) share a host with their master, as the addresses allow no better: %s",
			len(plan.SameHost), strings.Join(plan.SameHost, ", "))
	}
	if err := b.form(ctx, plan, states[0].self); err != nil {
		return Result{}, fmt.Errorf("%w (the nodes may be half-formed: run CLUSTER RESET HARD on each before trying again)", err)
	}
	return b.result(ctx, true)
}

func clientOptions(addr, user, pass string) *redis.Options {
	return &redis.Options{
		Addr:     addr,
		Username: user,
		Password: pass,
		Protocol: 2,
		// Redis 7.0 has no CLIENT SETINFO.
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
		DialTimeout:              2 * time.Second,
		DialerRetries:            1, // a node that is down is reported, not retried for long
		ReadTimeout:              5 * time.Second,
		WriteTimeout:             5 * time.Second,
		ContextTimeoutEnabled:    true,
		// No silent resends: ADDSLOTSRANGE or MEET sent twice after a lost
		// reply would fail or double up. The waits poll by themselves.
		MaxRetries: -1,
		PoolSize:   2,
	}
}

type builder struct {
	out     io.Writer
	addrs   []string
	clients map[string]*redis.Client
	ids     map[string]string // addr -> node id, once checked
}

func (b *builder) say(format string, args ...any) { fmt.Fprintf(b.out, format+"\n", args...) }

func (b *builder) close() {
	for _, c := range b.clients {
		_ = c.Close()
	}
}

// nodeState is what inspect learnt about one node.
type nodeState struct {
	addr           string
	clusterEnabled bool
	keys           int64
	self           clusternodes.NodeInfo
	view           []clusternodes.NodeInfo
	clusterState   string
	slotsAssigned  int
}

func (b *builder) inspectAll(ctx context.Context) ([]nodeState, error) {
	states := make([]nodeState, len(b.addrs))
	var problems []string
	for i, a := range b.addrs {
		s, err := inspect(ctx, b.clients[a])
		if err != nil {
			problems = append(problems, a+": "+err.Error())
			continue
		}
		s.addr = a
		states[i] = s
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("refusing to create the cluster, no node was changed:\n  %s", strings.Join(problems, "\n  "))
	}
	return states, nil
}

func inspect(ctx context.Context, c *redis.Client) (nodeState, error) {
	var s nodeState
	info, err := c.Info(ctx, "cluster").Result()
	if err != nil {
		var rerr redis.Error
		if errors.As(err, &rerr) {
			return s, fmt.Errorf("INFO cluster: %w", err)
		}
		return s, fmt.Errorf("unreachable: %w", err)
	}
	if s.clusterEnabled = redisinfo.Field(info, "cluster_enabled") == "1"; !s.clusterEnabled {
		return s, nil
	}
	ks, err := c.Info(ctx, "keyspace").Result()
	if err != nil {
		return s, fmt.Errorf("INFO keyspace: %w", err)
	}
	if s.keys, err = keyCount(ks); err != nil {
		return s, fmt.Errorf("INFO keyspace: %w", err)
	}
	if s.view, s.self, err = clusterView(ctx, c); err != nil {
		return s, err
	}
	ci, err := c.ClusterInfo(ctx).Result()
	if err != nil {
		return s, fmt.Errorf("CLUSTER INFO: %w", err)
	}
	s.clusterState = redisinfo.Field(ci, "cluster_state")
	if s.slotsAssigned, err = strconv.Atoi(redisinfo.Field(ci, "cluster_slots_assigned")); err != nil {
		return s, fmt.Errorf("CLUSTER INFO: cluster_slots_assigned: %w", err)
	}
	return s, nil
}

func clusterView(ctx context.Context, c *redis.Client) (view []clusternodes.NodeInfo, self clusternodes.NodeInfo, err error) {
	txt, err := c.ClusterNodes(ctx).Result()
	if err != nil {
		return nil, self, fmt.Errorf("CLUSTER NODES: %w", err)
	}
	if view, err = clusternodes.Parse(txt); err != nil {
		return nil, self, err
	}
	for _, e := range view {
		if e.Has("myself") {
			return view, e, nil
		}
	}
	return nil, self, errors.New("CLUSTER NODES: no line flagged myself")
}

// formed reports whether the nodes are exactly one cluster, all slots
// served and every node ok: a cluster that an earlier run created.
func formed(states []nodeState) bool {
	ids := map[string]bool{}
	for _, s := range states {
		if !s.clusterEnabled {
			return false
		}
		ids[s.self.ID] = true
	}
	if len(ids) != len(states) {
		return false
	}
	for _, s := range states {
		if s.clusterState != "ok" || s.slotsAssigned != hashslot.Count || len(s.view) != len(ids) {
			return false
		}
		for _, e := range s.view {
			if !ids[e.ID] {
				return false
			}
		}
	}
	return true
}

// freshProblems lists, per node, why it cannot join a new cluster.
func freshProblems(states []nodeState) []string {
	var out []string
	byID := map[string]string{}
	for _, s := range states {
		var why []string
		if !s.clusterEnabled {
			out = append(out, s.addr+": cluster support is off (cluster_enabled:0; set cluster-enabled yes)")
			continue
		}
		if other, ok := byID[s.self.ID]; ok {
			why = append(why, fmt.Sprintf("the same node as %s (id %s)", other, s.self.ID))
		}
		byID[s.self.ID] = s.addr
		if s.keys > 0 {
			why = append(why, fmt.Sprintf("holds %d key(s)", s.keys))
		}
		if others := len(s.view) - 1; others > 0 {
			why = append(why, fmt.Sprintf("already knows %d other node(s), e.g. %s: it belongs to a cluster", others, otherAddrs(s.view, 3)))
		}
		if n := s.self.SlotCount(); n > 0 {
			why = append(why, fmt.Sprintf("already serves %d slot(s)", n))
		}
		if len(s.self.Migrating)+len(s.self.Importing) > 0 {
			why = append(why, "has slots being migrated")
		}
		if s.self.ConfigEpoch != 0 {
			why = append(why, fmt.Sprintf("config epoch is %d, not 0 (CLUSTER RESET HARD clears it)", s.self.ConfigEpoch))
		}
		if len(why) > 0 {
			out = append(out, s.addr+": "+strings.Join(why, "; "))
		}
	}
	return out
}

func otherAddrs(view []clusternodes.NodeInfo, max int) string {
	var out []string
	for _, e := range view {
		if e.Has("myself") {
			continue
		}
		a := e.Addr
		if a == "" {
			a = "id " + e.ID
		}
		out = append(out, a)
	}
	if len(out) > max {
		out = append(out[:max], "...")
	}
	return strings.Join(out, ", ")
}

// keyCount sums keys=N over the dbN lines of INFO keyspace. A cluster node
// only has db0, but counting all lines costs nothing.
func keyCount(info string) (int64, error) {
	var n int64
	var err error
	redisinfo.Each(info, func(key, value string) {
		if !strings.HasPrefix(key, "db") {
			return
		}
		redisinfo.Pairs(value, func(name, v string) {
			if name != "keys" || err != nil {
				return
			}
			k, perr := strconv.ParseInt(v, 10, 64)
			if perr != nil {
				err = fmt.Errorf("%s:%s: %w", key, value, perr)
			}
			n += k
		})
	})
	return n, err
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// result reads the cluster back from the first node.
func (b *builder) result(ctx context.Context, created bool) (Result, error) {
	view, _, err := clusterView(ctx, b.clients[b.addrs[0]])
	if err != nil {
		return Result{}, fmt.Errorf("read the cluster back from %s: %w", b.addrs[0], err)
	}
	index := map[string]int{}
	for _, s := range b.addrs {
		index[s] = len(index)
	}
	// The user's spelling of each address reads better than the IP a node
	// announces.
	given := map[string]string{}
	for a, id := range b.ids {
		given[id] = a
	}
	name := func(e clusternodes.NodeInfo) string {
		if a, ok := given[e.ID]; ok {
			return a
		}
		return e.Addr
	}
	r := Result{Created: created}
	replicas := map[string][]string{}
	for _, e := range view {
		if e.IsReplica() {
			replicas[e.MasterID] = append(replicas[e.MasterID], name(e))
		}
	}
	for _, e := range view {
		if e.IsMaster() && len(e.Slots) > 0 {
			reps := replicas[e.ID]
			slices.SortFunc(reps, func(x, y string) int { return index[x] - index[y] })
			r.Masters = append(r.Masters, MasterInfo{Addr: name(e), ID: e.ID, Slots: e.Slots, Replicas: reps})
		}
	}
	slices.SortFunc(r.Masters, func(x, y MasterInfo) int { return x.Slots[0].Start - y.Slots[0].Start })
	return r, nil
}
