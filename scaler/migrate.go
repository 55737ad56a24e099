package scaler

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/clusternodes"
)

// MigrateConfig bounds one slot migration.
type MigrateConfig struct {
	BatchKeys         int           // keys per MIGRATE
	BatchBytes        int64         // bytes per MIGRATE (by MEMORY USAGE)
	MaxKeysPerSecond  float64       // 0: unlimited
	MaxBytesPerSecond float64       // 0: unlimited
	BigKeyBytes       int64         // keys at least this big move alone
	MigrateTimeout    time.Duration // MIGRATE's own timeout for a normal batch
	ReadyWait         time.Duration // how long to wait for a target to become ready
}

// slotMover runs Redis's slot migration protocol. It is an interface so
// the atomic slot migration of newer servers (Redis 8.4, Valkey 9) can be
// added next to the classic one.
type slotMover interface {
	moveSlots(ctx context.Context, slots []int, srcID, dstID string, mode moveMode) (keys []int64, err error)
}

var _ slotMover = (*classicMover)(nil)

// moveMode changes what a move checks.
type moveMode uint8

const (
	// modeForce: the source need not own the slot (keys left on a
	// non-owner, owners that disagree).
	modeForce moveMode = 1 << iota
	// modeFix: finishing a half-done move. The target's cluster_state is
	// not waited for: it reports fail exactly because of the slot being
	// fixed (an importing node keeps its own view of the slot's owner,
	// which may be a master that has failed over).
	modeFix
)

// classicMover moves a slot with SETSLOT IMPORTING/MIGRATING, MIGRATE and
// SETSLOT NODE, in the order the cluster specification documents.
type classicMover struct {
	nodes *Nodes
	seeds func() []string
	cfg   MigrateConfig
	// fence renews the lease and records the intent; an error stops the
	// move before the step.
	fence func(ctx context.Context, in Intent) error
	prog  *progress
	// step, when set (tests), is called after each step of a move; an
	// error stops the move right there, as if the leader died.
	step func(name string) error

	rateMu    sync.Mutex
	rateStart time.Time
	rateKeys  float64
	rateBytes float64
	// bestPerKey is the fastest MIGRATE time per key seen, the baseline
	// for backing off.
	bestPerKey time.Duration

	// Per operation (see reset): targets already seen ready, and pairs
	// whose target's config epoch is already above the source's (within
	// one operation a source never imports, so that stays true).
	cacheMu sync.Mutex
	ready   map[string]bool
	epochOK map[[2]string]bool
}

// reset forgets what one operation learned.
func (m *classicMover) reset() {
	m.cacheMu.Lock()
	m.ready, m.epochOK = map[string]bool{}, map[[2]string]bool{}
	m.cacheMu.Unlock()
}

func (m *classicMover) cached(f func()) {
	m.cacheMu.Lock()
	defer m.cacheMu.Unlock()
	if m.ready == nil {
		m.ready, m.epochOK = map[string]bool{}, map[[2]string]bool{}
	}
	f()
}

// errNotReady: the target is not ready for a slot yet (it just joined).
var errNotReady = errors.New("target not ready")

// moveSlot moves slot from srcID to dstID with every key. With force, the
// source need not be the slot's owner (fixing keys left on a non-owner).
// Moving a slot the target already owns is a no-op, so a move can be
// resumed from any step.
func (m *classicMover) moveSlot(ctx context.Context, slot int, srcID, dstID string, mode moveMode) (int64, error) {
	moved, err := m.moveSlots(ctx, []int{slot}, srcID, dstID, mode)
	return moved[0], err
}

// moveSlots moves several slots of one (source, target) pair together:
// the topology check, the fencing and the epoch check are paid once, the
// SETSLOT calls are pipelined, and the keys move slot by slot. The order
// per slot is the documented one. moved[i] counts the keys of slots[i].
func (m *classicMover) moveSlots(ctx context.Context, slots []int, srcID, dstID string, mode moveMode) ([]int64, error) {
	force := mode&modeForce != 0
	moved := make([]int64, len(slots))
	name := "slot " + slotRanges(slots)
	if len(slots) > 1 {
		name = "slots " + slotRanges(slots)
	}
	v, err := m.waitReady(ctx, dstID, mode&modeFix == 0)
	if err != nil {
		return moved, fmt.Errorf("%s: %w", name, err)
	}
	src, dst := v.Nodes[srcID], v.Nodes[dstID]
	if src == nil || dst == nil || !v.Reached[srcID] {
		return moved, fmt.Errorf("%s: source or target not in the cluster", name)
	}
	var todo []int // indexes into slots
	for i, slot := range slots {
		_, migrating := src.Migrating[slot]
		_, importing := dst.Importing[slot]
		owner := v.Owner[slot]
		if owner == dstID && !migrating && !importing && !force {
			continue
		}
		if owner != srcID && owner != dstID && !force {
			return moved, fmt.Errorf("slot %d: owned by %s, not by the source %s", slot, owner, src.Addr)
		}
		todo = append(todo, i)
	}
	if len(todo) == 0 {
		return moved, nil
	}
	sc, dc := m.nodes.Client(src.Addr), m.nodes.Client(dst.Addr)
	in := Intent{Slot: slots[todo[0]], Source: src.Addr, Target: dst.Addr, Step: "open"}
	if err := m.fence(ctx, in); err != nil {
		return moved, err
	}
	if mode&modeFix != 0 {
		// An importing node does not take updates of the slot's owner from
		// others: after the source failed over, the target still names the
		// dead master, counts the slot as unserved and refuses the keys
		// (CLUSTERDOWN). Tell it the current owner first.
		if err := m.setslots(ctx, dc, dst.Addr, slots, todo, func(slot int) []any {
			owner := v.Owner[slot]
			if owner == "" || owner == dstID || ownerIn(v.views[dstID], slot) == owner {
				return nil
			}
			return []any{"CLUSTER", "SETSLOT", slot, "NODE", owner}
		}, false); err != nil {
			return moved, err
		}
	}
	// Importing first, so a client that src redirects with ASK finds dst
	// ready. (When dst already owns a slot, keys left on src just move.)
	if err := m.setslots(ctx, dc, dst.Addr, slots, todo, func(slot int) []any {
		if v.Owner[slot] == dstID {
			return nil
		}
		return []any{"CLUSTER", "SETSLOT", slot, "IMPORTING", srcID}
	}, false); err != nil {
		return moved, err
	}
	if err := m.after("importing"); err != nil {
		return moved, err
	}
	if err := m.setslots(ctx, sc, src.Addr, slots, todo, func(slot int) []any {
		if v.Owner[slot] != srcID {
			return nil
		}
		return []any{"CLUSTER", "SETSLOT", slot, "MIGRATING", dstID}
	}, false); err != nil {
		return moved, err
	}
	if err := m.after("migrating"); err != nil {
		return moved, err
	}
	// Keys on a master that does not own their slot (force): that master
	// imports the slot for the move, so MIGRATE runs there with ASKING.
	stray := func(slot int) bool { return force && v.Owner[slot] == dstID }
	if err := m.setslots(ctx, sc, src.Addr, slots, todo, func(slot int) []any {
		if !stray(slot) {
			return nil
		}
		return []any{"CLUSTER", "SETSLOT", slot, "IMPORTING", dstID}
	}, false); err != nil {
		return moved, err
	}
	for _, i := range todo {
		n, err := m.moveKeys(ctx, slots[i], src.Addr, dst.Addr, stray(slots[i]))
		moved[i] = n
		if err != nil {
			return moved, err
		}
	}
	// SETSLOT NODE on the target succeeds even when the source still holds
	// keys, which would orphan them: check first.
	counts, _ := sc.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, i := range todo {
			p.ClusterCountKeysInSlot(ctx, slots[i])
		}
		return nil
	})
	for j, cmd := range counts {
		left, err := cmd.(*redis.IntCmd).Result()
		if err != nil {
			return moved, fmt.Errorf("slot %d: COUNTKEYSINSLOT on %s: %w", slots[todo[j]], src.Addr, err)
		}
		if left != 0 {
			return moved, fmt.Errorf("slot %d: %s still holds %d keys after the move; not committing", slots[todo[j]], src.Addr, left)
		}
	}
	if err := m.epochAbove(ctx, src.Addr, srcID, dst.Addr); err != nil {
		return moved, fmt.Errorf("%s: %w", name, err)
	}
	in.Step = "commit"
	if err := m.fence(ctx, in); err != nil {
		return moved, err
	}
	node := func(slot int) []any { return []any{"CLUSTER", "SETSLOT", slot, "NODE", dstID} }
	if err := m.setslots(ctx, dc, dst.Addr, slots, todo, node, false); err != nil {
		return moved, err
	}
	if err := m.after("target_node"); err != nil {
		return moved, err
	}
	// (A master that loses its last slot turns into a replica of the new
	// owner as soon as it hears of it: then there is nothing to tell it.)
	if err := m.setslots(ctx, sc, src.Addr, slots, todo, node, true); err != nil {
		return moved, err
	}
	if err := m.after("source_node"); err != nil {
		return moved, err
	}
	if err := m.setslots(ctx, sc, src.Addr, slots, todo, func(slot int) []any {
		if !stray(slot) {
			return nil
		}
		return []any{"CLUSTER", "SETSLOT", slot, "STABLE"}
	}, true); err != nil {
		return moved, err
	}
	var wg sync.WaitGroup
	for _, nd := range v.Masters() {
		if nd.ID == srcID || nd.ID == dstID || !v.Reached[nd.ID] {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Gossip tells a master that misses this; the config epoch
			// of the target wins.
			m.setslots(ctx, m.nodes.Client(nd.Addr), nd.Addr, slots, todo, node, true)
		}()
	}
	wg.Wait()
	var done []int
	for _, i := range todo {
		done = append(done, slots[i])
	}
	return moved, m.settle(ctx, done, srcID, dstID, v)
}

// setslots pipelines one CLUSTER SETSLOT per slot (cmd returns nil to skip
// a slot) and reports the first error; with lenient, a node that is no
// longer a master is not an error.
func (m *classicMover) setslots(ctx context.Context, c *redis.Client, addr string, slots []int, todo []int,
	cmd func(slot int) []any, lenient bool) error {
	var sent []int
	cmds, _ := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, i := range todo {
			if args := cmd(slots[i]); args != nil {
				p.Do(ctx, args...)
				sent = append(sent, i)
			}
		}
		return nil
	})
	for j, r := range cmds {
		if err := r.Err(); err != nil {
			if lenient && strings.Contains(err.Error(), "only with masters") {
				continue
			}
			return fmt.Errorf("slot %d: %v on %s: %w", slots[sent[j]], r.Args()[2:5], addr, err)
		}
	}
	return nil
}

// settle waits until the source and the target name dstID as the owner of
// every slot. A ping the source built before it learned the new owner can
// carry its old claim; with the target's epoch above the source's (see
// epochAbove) it loses, and SETSLOT NODE on the target again (after a
// BUMPEPOCH) ends any disagreement left.
func (m *classicMover) settle(ctx context.Context, slots []int, srcID, dstID string, v *View) error {
	deadline := time.Now().Add(10 * time.Second)
	for attempt := 0; ; attempt++ {
		wrong, wrongSlot := "", -1
		for _, nd := range v.Masters() {
			if !v.Reached[nd.ID] || (nd.ID != dstID && nd.ID != srcID) {
				continue
			}
			out, err := m.nodes.Client(nd.Addr).ClusterNodes(ctx).Result()
			if err != nil {
				continue
			}
			lines, err := clusternodes.Parse(out)
			if err != nil {
				continue
			}
			for _, slot := range slots {
				if ownerIn(lines, slot) != dstID {
					wrong, wrongSlot = nd.Addr, slot
					break
				}
			}
			if wrong != "" {
				break
			}
		}
		if wrong == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("slot %d: %s does not see the new owner after the move", wrongSlot, wrong)
		}
		if attempt > 0 && attempt%5 == 0 {
			dst := v.Nodes[dstID]
			m.nodes.Client(dst.Addr).Do(ctx, "CLUSTER", "BUMPEPOCH")
			m.nodes.Client(dst.Addr).Do(ctx, "CLUSTER", "SETSLOT", wrongSlot, "NODE", dstID)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitReady re-reads the topology (roles change) and waits until the
// target is known by every master and says cluster_state:ok, and no
// master is failing. A node that just joined reports fail for up to
// cluster-node-timeout; opening a slot towards it then leaves the slot
// half-open.
func (m *classicMover) waitReady(ctx context.Context, dstID string, wantOK bool) (*View, error) {
	deadline := time.Now().Add(max(m.cfg.ReadyWait, time.Second))
	var why string
	for {
		v, err := ReadView(ctx, m.nodes, m.seeds())
		switch {
		case err != nil:
			why = err.Error()
		case v.Healthy() != "":
			why = v.Healthy()
		case v.Nodes[dstID] == nil || !v.Nodes[dstID].IsMaster():
			why = "the target is not a master of the cluster"
		case !v.KnownByAll(dstID):
			why = "not every master knows the target yet"
		default:
			var ok bool
			m.cached(func() { ok = m.ready[dstID] })
			if ok || !wantOK {
				return v, nil
			}
			info, err := m.nodes.Client(v.Nodes[dstID].Addr).ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				m.cached(func() { m.ready[dstID] = true })
				return v, nil
			}
			why = "the target does not report cluster_state:ok yet"
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w: %s", errNotReady, why)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// moveKeys migrates every key of slot from src to dst in batches bounded
// by keys and bytes. A key of big_key_bytes or more moves alone with a
// timeout scaled by its size.
func (m *classicMover) moveKeys(ctx context.Context, slot int, src, dst string, asking bool) (int64, error) {
	sc := m.nodes.Client(src)
	host, port, err := net.SplitHostPort(dst)
	if err != nil {
		return 0, fmt.Errorf("slot %d: target address %q: %w", slot, dst, err)
	}
	n, err := sc.ClusterCountKeysInSlot(ctx, slot).Result()
	if err != nil {
		return 0, fmt.Errorf("slot %d: COUNTKEYSINSLOT on %s: %w", slot, src, err)
	}
	var moved int64
	for n > 0 {
		batch := max(m.cfg.BatchKeys, 1)
		keys, err := sc.ClusterGetKeysInSlot(ctx, slot, batch).Result()
		if err != nil {
			return moved, fmt.Errorf("slot %d: GETKEYSINSLOT on %s: %w", slot, src, err)
		}
		got := len(keys)
		if len(keys) == 0 {
			break
		}
		sizes := m.sizes(ctx, sc, keys)
		for len(keys) > 0 {
			take, bytes := 0, int64(0)
			for take < len(keys) {
				sz := sizes[take]
				big := m.cfg.BigKeyBytes > 0 && sz >= m.cfg.BigKeyBytes
				if take > 0 && (big || (m.cfg.BatchBytes > 0 && bytes+sz > m.cfg.BatchBytes)) {
					break
				}
				take++
				bytes += sz
				if big {
					break // a big key moves alone
				}
			}
			timeout := m.cfg.MigrateTimeout
			if m.cfg.BigKeyBytes > 0 && bytes >= m.cfg.BigKeyBytes {
				timeout = time.Duration(float64(timeout) * float64(bytes) / float64(m.cfg.BigKeyBytes))
			}
			began := time.Now()
			if err := m.migrate(ctx, sc, host, port, keys[:take], timeout, asking); err != nil {
				return moved, fmt.Errorf("slot %d: MIGRATE %d keys (%d bytes) from %s to %s: %w", slot, take, bytes, src, dst, err)
			}
			m.backoff(ctx, time.Since(began), take)
			if err := m.after("batch"); err != nil {
				return moved, err
			}
			moved += int64(take)
			m.prog.keys.Add(int64(take))
			m.prog.bytes.Add(bytes)
			m.throttle(ctx, float64(take), float64(bytes))
			keys, sizes = keys[take:], sizes[take:]
		}
		if got < batch {
			break // that was the last of them (the caller checks the count)
		}
		n, err = sc.ClusterCountKeysInSlot(ctx, slot).Result()
		if err != nil {
			return moved, fmt.Errorf("slot %d: COUNTKEYSINSLOT on %s: %w", slot, src, err)
		}
	}
	return moved, nil
}

// sizes asks MEMORY USAGE for every key in one round trip.
func (m *classicMover) sizes(ctx context.Context, c *redis.Client, keys []string) []int64 {
	out := make([]int64, len(keys))
	if m.cfg.BatchBytes <= 0 && m.cfg.BigKeyBytes <= 0 {
		return out
	}
	cmds, _ := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.MemoryUsage(ctx, k)
		}
		return nil
	})
	for i, cmd := range cmds {
		if ic, ok := cmd.(*redis.IntCmd); ok {
			out[i] = ic.Val()
		}
	}
	return out
}

// migrate runs one MIGRATE. BUSYKEY (the target has the key: an earlier
// attempt copied it but the source kept it when the reply was lost) is
// retried with REPLACE: this migration owns the slot and the source still
// holds the key, so the source's copy is the current one.
func (m *classicMover) migrate(ctx context.Context, c *redis.Client, host, port string, keys []string, timeout time.Duration, asking bool) error {
	run := func(replace bool) error {
		args := []any{"MIGRATE", host, port, "", 0, timeout.Milliseconds()}
		if replace {
			args = append(args, "REPLACE")
		}
		if m.nodes.Password != "" {
			if m.nodes.Username != "" {
				args = append(args, "AUTH2", m.nodes.Username, m.nodes.Password)
			} else {
				args = append(args, "AUTH", m.nodes.Password)
			}
		}
		args = append(args, "KEYS")
		for _, k := range keys {
			args = append(args, k)
		}
		cctx, cancel := context.WithTimeout(ctx, timeout+30*time.Second)
		defer cancel()
		var err error
		if asking {
			// The source does not own the slot: ASKING on the same
			// connection lets it run MIGRATE on a slot it imports.
			cmds, _ := c.Pipelined(cctx, func(p redis.Pipeliner) error {
				p.Do(cctx, "ASKING")
				p.Do(cctx, args...)
				return nil
			})
			err = cmds[1].Err()
		} else {
			err = c.Do(cctx, args...).Err()
		}
		if err != nil && err.Error() == "NOKEY" {
			return nil // they expired meanwhile
		}
		return err
	}
	err := run(false)
	if err != nil && strings.HasPrefix(err.Error(), "BUSYKEY") {
		err = run(true)
	}
	return err
}

// backoff yields to client traffic when the nodes slow down: MIGRATE
// blocks the source and the target while it runs, so when a batch takes
// more than twice the best time per key seen so far, the migration pauses
// as long as the batch took (halving its share of the nodes' time).
func (m *classicMover) backoff(ctx context.Context, took time.Duration, keys int) {
	if keys == 0 {
		return
	}
	perKey := took / time.Duration(keys)
	m.rateMu.Lock()
	if m.bestPerKey == 0 || perKey < m.bestPerKey {
		m.bestPerKey = perKey
	}
	slow := perKey > 2*m.bestPerKey && took > time.Millisecond
	m.rateMu.Unlock()
	if slow {
		m.prog.backoffs.Add(1)
		select {
		case <-ctx.Done():
		case <-time.After(min(took, time.Second)):
		}
	}
}

// throttle keeps the migration within max_keys_per_second and
// max_bytes_per_second.
func (m *classicMover) throttle(ctx context.Context, keys, bytes float64) {
	if m.cfg.MaxKeysPerSecond <= 0 && m.cfg.MaxBytesPerSecond <= 0 {
		return
	}
	m.rateMu.Lock()
	if m.rateStart.IsZero() {
		m.rateStart = time.Now()
	}
	m.rateKeys += keys
	m.rateBytes += bytes
	var need time.Duration
	if m.cfg.MaxKeysPerSecond > 0 {
		need = max(need, time.Duration(m.rateKeys/m.cfg.MaxKeysPerSecond*float64(time.Second)))
	}
	if m.cfg.MaxBytesPerSecond > 0 {
		need = max(need, time.Duration(m.rateBytes/m.cfg.MaxBytesPerSecond*float64(time.Second)))
	}
	wait := need - time.Since(m.rateStart)
	m.rateMu.Unlock()
	if wait > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// progress of the running operation; read by the admin API.
type progress struct {
	mu        sync.Mutex
	kind      string
	state     string // running, done, failed
	err       string
	started   time.Time
	ended     time.Time
	slotsDone atomic.Int64
	slotsAll  atomic.Int64
	keys      atomic.Int64
	bytes     atomic.Int64
	backoffs  atomic.Int64 // pauses because the nodes slowed down
	firstMove time.Time    // when the first slot move began (guarded by mu)
}

// ownEpochs returns a node's own config epoch and its view of other's.
func (m *classicMover) ownEpochs(ctx context.Context, addr, other string) (own, ofOther uint64, err error) {
	out, err := m.nodes.Client(addr).ClusterNodes(ctx).Result()
	if err != nil {
		return 0, 0, err
	}
	lines, err := clusternodes.Parse(out)
	if err != nil {
		return 0, 0, err
	}
	for _, l := range lines {
		if l.Has("myself") {
			own = l.ConfigEpoch
		}
		if l.ID == other {
			ofOther = l.ConfigEpoch
		}
	}
	return own, ofOther, nil
}

// epochAbove makes the target's config epoch greater than the source's
// before the target claims the slot. Otherwise a ping the source built
// before it learned the new owner (carrying its old claim and an epoch the
// target has not seen surpassed, e.g. one it bumped a moment ago when it
// imported another slot) gives the slot back to the source in the target's
// table, and each then redirects to the other. CLUSTER BUMPEPOCH only goes
// past what the target knows, so it first waits to have heard the source's.
func (m *classicMover) epochAbove(ctx context.Context, srcAddr, srcID, dstAddr string) error {
	key := [2]string{srcAddr, dstAddr}
	var ok bool
	m.cached(func() { ok = m.epochOK[key] })
	if ok {
		return nil
	}
	defer func() { m.cached(func() { m.epochOK[key] = true }) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		se, _, err := m.ownEpochs(ctx, srcAddr, "")
		if err != nil {
			return fmt.Errorf("config epoch of %s: %w", srcAddr, err)
		}
		de, known, err := m.ownEpochs(ctx, dstAddr, srcID)
		if err != nil {
			return fmt.Errorf("config epoch of %s: %w", dstAddr, err)
		}
		if de > se {
			return nil
		}
		if known >= se {
			m.nodes.Client(dstAddr).Do(ctx, "CLUSTER", "BUMPEPOCH")
			continue
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the target %s has not learned the source's config epoch %d in 10s", dstAddr, se)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ownerIn returns the owner of slot in one node's CLUSTER NODES view.
func ownerIn(view []clusternodes.NodeInfo, slot int) string {
	for _, l := range view {
		for _, r := range l.Slots {
			if slot >= r.Start && slot <= r.End {
				return l.ID
			}
		}
	}
	return ""
}

func (m *classicMover) after(name string) error {
	if m.step == nil {
		return nil
	}
	return m.step(name)
}
