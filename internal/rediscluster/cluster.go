package rediscluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/slotway/slotway/internal/redisinfo"
)

// maxPortAttempts is how many ports a node start tries when it loses the
// race for a free port to another process.
const maxPortAttempts = 5

// Cluster is a set of redis-server processes: the cluster nodes (masters and
// their replicas) and spares that are started but not met.
//
// Methods may be called from several goroutines. The node list is fixed at
// start; topology questions are answered from CLUSTER NODES, not from
// bookkeeping here, so they stay right after failovers and slot moves.
type Cluster struct {
	opts   Options
	log    *slog.Logger
	nodes  []*Node          // every node: seeds, then spares
	seeds  []*Node          // masters first (in slot order at start), then replicas
	spares []*Node          // started, not met
	byID   map[string]*Node // immutable after start

	mu     sync.Mutex
	closed bool
}

// StartCluster starts Masters*(1+Replicas) cluster nodes plus Spares, forms
// the cluster (ADDSLOTSRANGE, MEET, REPLICATE, without redis-cli) and waits
// until every node agrees on the topology, every replica is in sync and
// cluster_state is ok. On failure it kills whatever it started; node
// directories are left in Dir for inspection.
//
// If ctx has no deadline, the start is limited to one minute.
func StartCluster(ctx context.Context, opts Options) (*Cluster, error) {
	c, err := Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Start is StartCluster, but on failure it also returns the (closed)
// cluster, if it got far enough to have one, so that its node logs can be
// printed (LogTails).
func Start(ctx context.Context, opts Options) (c *Cluster, err error) {
	opts, err = opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("start redis cluster: %w", err)
	}
	ctx, cancel := withDefaultTimeout(ctx, StartTimeout)
	defer cancel()
	members := opts.Masters * (1 + opts.Replicas)
	c, err = launch(ctx, opts, members, opts.Spares)
	if err != nil {
		return c, fmt.Errorf("start redis cluster: %w", err)
	}
	defer func() {
		if err != nil {
			if cerr := c.Close(); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}
	}()
	if err := c.form(ctx); err != nil {
		return c, fmt.Errorf("start redis cluster: %w", err)
	}
	c.log.Info("redis cluster ready",
		"masters", opts.Masters, "replicas_per_master", opts.Replicas,
		"spares", opts.Spares, "seeds", strings.Join(c.Seeds(), ","))
	return c, nil
}

// launch starts members nodes (the seeds) and spares more, unformed. On
// failure it closes what it started and returns the cluster for its logs.
func launch(ctx context.Context, opts Options, members, spares int) (c *Cluster, err error) {
	c = &Cluster{opts: opts, log: opts.Logger, byID: map[string]*Node{}}
	defer func() {
		if err != nil {
			if cerr := c.Close(); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}
	}()
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return c, fmt.Errorf("create %s: %w", opts.Dir, err)
	}
	total := members + spares
	for i := range total {
		n, err := c.startNewNode(ctx)
		if err != nil {
			return c, fmt.Errorf("node %d of %d: %w", i+1, total, err)
		}
		c.nodes = append(c.nodes, n)
		c.byID[n.ID] = n
	}
	c.seeds = c.nodes[:members:members]
	c.spares = c.nodes[members:]
	return c, nil
}

// startNewNode starts a node on a fresh port, retrying with another port if
// the chosen one was taken between FreePort and redis-server binding it.
func (c *Cluster) startNewNode(ctx context.Context) (*Node, error) {
	for attempt := 1; ; attempt++ {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		n, err := newNode(c.opts, port)
		if err != nil {
			return nil, err
		}
		err = n.start(ctx)
		if err == nil {
			return n, nil
		}
		if !errors.Is(err, errPortInUse) || attempt == maxPortAttempts {
			return nil, err
		}
		c.log.Debug("redis node port taken, retrying", "port", port, "attempt", attempt, "err", err)
		if rerr := os.RemoveAll(n.Dir); rerr != nil {
			return nil, errors.Join(err, fmt.Errorf("remove %s: %w", n.Dir, rerr))
		}
	}
}

// form joins the seed nodes into a cluster.
func (c *Cluster) form(ctx context.Context) error {
	m := c.opts.Masters
	masters := c.seeds[:m]

	// Distinct config epochs up front, as redis-cli does, so the nodes do
	// not have to resolve epoch collisions (which would delay failovers).
	for i, n := range c.seeds {
		if err := n.Client().Do(ctx, "CLUSTER", "SET-CONFIG-EPOCH", i+1).Err(); err != nil {
			return fmt.Errorf("CLUSTER SET-CONFIG-EPOCH %d on %s: %w", i+1, n.Addr, err)
		}
	}
	for i, n := range masters {
		lo, hi := i*totalSlots/m, (i+1)*totalSlots/m-1
		if err := n.Client().ClusterAddSlotsRange(ctx, lo, hi).Err(); err != nil {
			return fmt.Errorf("CLUSTER ADDSLOTSRANGE %d %d on %s: %w", lo, hi, n.Addr, err)
		}
	}
	first := c.seeds[0]
	for _, n := range c.seeds[1:] {
		if err := n.Client().ClusterMeet(ctx, c.opts.Host, fmt.Sprint(first.Port)).Err(); err != nil {
			return fmt.Errorf("CLUSTER MEET %s from %s: %w", first.Addr, n.Addr, err)
		}
	}
	if err := until(ctx, "every node to know every other", c.checkMet); err != nil {
		return err
	}
	r := c.opts.Replicas
	for i, master := range masters {
		for j := range r {
			n := c.seeds[m+i*r+j]
			if err := n.Client().ClusterReplicate(ctx, master.ID).Err(); err != nil {
				return fmt.Errorf("CLUSTER REPLICATE %s (%s) on %s: %w", master.ID, master.Addr, n.Addr, err)
			}
		}
	}
	return until(ctx, "cluster topology to converge", c.checkFormed)
}

// expectedMaster maps every seed id to the id of its master at formation
// ("" for masters).
func (c *Cluster) expectedMaster() map[string]string {
	m, r := c.opts.Masters, c.opts.Replicas
	want := map[string]string{}
	for i := range m {
		want[c.seeds[i].ID] = ""
		for j := range r {
			want[c.seeds[m+i*r+j].ID] = c.seeds[i].ID
		}
	}
	return want
}

// checkMet: every seed lists exactly the seeds, all out of handshake and
// connected.
func (c *Cluster) checkMet(ctx context.Context) (bool, string, error) {
	for _, n := range c.seeds {
		view, err := c.viewOf(ctx, n)
		if err != nil {
			return false, err.Error(), nil
		}
		if len(view) != len(c.seeds) {
			return false, fmt.Sprintf("%s knows %d of %d nodes", n.Addr, len(view), len(c.seeds)), nil
		}
		for _, e := range view {
			if _, ok := c.byID[e.ID]; !ok {
				return false, fmt.Sprintf("%s lists unknown node %s (%s)", n.Addr, e.ID, e.Addr), nil
			}
			if e.Has("handshake") || e.Has("noaddr") || !e.Connected {
				return false, fmt.Sprintf("%s sees %s as %s connected=%v", n.Addr, e.Addr, strings.Join(e.Flags, ","), e.Connected), nil
			}
		}
	}
	return true, "", nil
}

// checkFormed: every seed sees the intended roles, all agree on slot owners,
// every replica's replication link is up and every seed is cluster_state:ok.
func (c *Cluster) checkFormed(ctx context.Context) (bool, string, error) {
	want := c.expectedMaster()
	var ref *[totalSlots]string
	for _, n := range c.seeds {
		view, err := c.viewOf(ctx, n)
		if err != nil {
			return false, err.Error(), nil
		}
		if len(view) != len(want) {
			return false, fmt.Sprintf("%s knows %d of %d nodes", n.Addr, len(view), len(want)), nil
		}
		for _, e := range view {
			master, ok := want[e.ID]
			switch {
			case !ok:
				return false, fmt.Sprintf("%s lists unknown node %s", n.Addr, e.ID), nil
			case e.Has("fail") || e.Has("fail?") || e.Has("handshake"):
				return false, fmt.Sprintf("%s sees %s as %s", n.Addr, e.Addr, strings.Join(e.Flags, ",")), nil
			case master == "" && !e.IsMaster():
				return false, fmt.Sprintf("%s does not see %s as master yet", n.Addr, e.Addr), nil
			case master != "" && (!e.IsReplica() || e.MasterID != master):
				return false, fmt.Sprintf("%s does not see %s as replica of %s yet", n.Addr, e.Addr, master), nil
			}
		}
		owners := slotOwners(view)
		if ref == nil {
			ref = owners
		} else if why := diffOwners(ref, owners); why != "" {
			return false, fmt.Sprintf("%s disagrees with %s: %s", n.Addr, c.seeds[0].Addr, why), nil
		}
	}
	for _, n := range c.seeds {
		if want[n.ID] == "" {
			continue
		}
		pctx, cancel := probeCtx(ctx)
		info, err := n.Client().Info(pctx, "replication").Result()
		cancel()
		if err != nil {
			return false, fmt.Sprintf("%s: INFO replication: %v", n.Addr, err), nil
		}
		if st := redisinfo.Field(info, "master_link_status"); st != "up" {
			return false, fmt.Sprintf("%s: master_link_status:%s", n.Addr, st), nil
		}
	}
	for _, n := range c.seeds {
		if ok, why := c.stateOK(ctx, n); !ok {
			return false, why, nil
		}
	}
	return true, "", nil
}

// Close SIGKILLs every still-running node by PID, waits until each is
// reaped and closes the node clients. It is idempotent and safe after Kill.
// It does not remove Options.Dir.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	var errs []error
	for _, n := range c.nodes {
		n.mu.Lock()
		n.closed = true
		n.mu.Unlock()
		if err := n.kill(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close redis cluster: %w", err)
	}
	return nil
}

// Nodes returns every node the cluster started, spares included.
func (c *Cluster) Nodes() []*Node { return append([]*Node(nil), c.nodes...) }

// Seeds returns the addresses of the cluster nodes (masters and replicas as
// formed at start, not spares).
func (c *Cluster) Seeds() []string {
	out := make([]string, len(c.seeds))
	for i, n := range c.seeds {
		out[i] = n.Addr
	}
	return out
}

// Spares returns the nodes started cluster-enabled but not met.
func (c *Cluster) Spares() []*Node { return append([]*Node(nil), c.spares...) }

// NodeByID returns the node with cluster id id, or nil.
func (c *Cluster) NodeByID(id string) *Node { return c.byID[id] }

// Kill SIGKILLs n by PID and waits until it is reaped. Its cached client is
// closed. Killing a node that is not running is a no-op.
func (c *Cluster) Kill(n *Node) error {
	if err := c.own(n); err != nil {
		return err
	}
	pid, alive := n.PID(), n.Alive()
	if err := n.kill(); err != nil {
		return err
	}
	if alive {
		c.log.Info("redis node killed", "addr", n.Addr, "pid", pid)
	}
	return nil
}

// Restart starts n again on the same port and directory; nodes.conf is kept,
// so it comes back with the same id and rejoins the cluster by itself. It
// waits until the process answers, not until the cluster converges (use
// WaitOK for that). n must not be running.
func (c *Cluster) Restart(ctx context.Context, n *Node) error {
	if err := c.own(n); err != nil {
		return err
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return fmt.Errorf("restart redis node %s: cluster is closed", n.Addr)
	}
	if n.Alive() {
		return fmt.Errorf("restart redis node %s: still running (pid %d)", n.Addr, n.PID())
	}
	if err := n.start(ctx); err != nil {
		return err
	}
	c.log.Info("redis node restarted", "addr", n.Addr, "pid", n.PID())
	return nil
}

// LogTails returns the last lines of every node's log, for test failures.
func (c *Cluster) LogTails(lines int) string {
	var b strings.Builder
	for _, n := range c.nodes {
		b.WriteString(n.LogTail(lines))
	}
	return b.String()
}

func (c *Cluster) own(n *Node) error {
	if n == nil {
		return errors.New("rediscluster: nil node")
	}
	if n.ID == "" || c.byID[n.ID] != n {
		return fmt.Errorf("rediscluster: node %s was not started by this cluster", n.Addr)
	}
	return nil
}
