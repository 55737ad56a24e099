package ha

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/slotway/slotway/internal/kick"
)

// Timing of the group. The holder fences itself when it has not heard a
// quorum for FenceAfter; the others take over only when they have not
// heard the holder for FenceAfter+takeoverMargin, so the old holder always
// lets go first. The margin covers one heartbeat (the holder may have
// heard its last quorum a heartbeat before the others last heard it), a
// tick of lateness on each side (both check on the heartbeat tick), and
// slack for scheduling on a loaded host.
const (
	heartbeatEvery = 100 * time.Millisecond
	takeoverMargin = 4 * heartbeatEvery
	rejoinEvery    = 2 * time.Second
	drainWait      = time.Second
)

// Options are what the wiring knows about this instance.
type Options struct {
	ProxyAddr, StatsAddr, Version string
	// Healthy reports whether this instance can serve clients (it reaches
	// the cluster). Unhealthy members are not elected; with two configured
	// members it is also the tie-breaker. Nil means always healthy.
	Healthy func() bool
}

// State is a snapshot of the group as this member sees it.
type State struct {
	Self    string        `json:"self"`
	Holder  string        `json:"holder"`
	Leader  string        `json:"leader"`
	Term    uint64        `json:"term"` // this member's term
	Role    string        `json:"role"`
	Quorum  bool          `json:"quorum"`
	Reason  string        `json:"reason"`
	Members []MemberState `json:"members"`
}

// MemberState is one member with its gossiped metadata.
type MemberState struct {
	Meta
	Addr      string    `json:"addr"`
	LastHeard time.Time `json:"last_heard"`
	Alive     bool      `json:"alive"` // heard within the takeover window
}

// Group is this instance's membership in the Slotway group.
type Group struct {
	cfg     Config
	opts    Options
	log     *slog.Logger
	m       *metrics
	key     []byte
	started time.Time

	mu     sync.Mutex // guards meta, nodes, ranked
	meta   Meta
	nodes  map[string]*peer // other members, from events and heartbeats
	ranked map[string]rankSeen

	vip      vipHolder
	hooks    *hookRunner
	ml       *memberlist.Memberlist
	state    atomic.Pointer[State]
	kick     chan struct{}
	gossipC  chan struct{}   // asks the gossip goroutine to push our metadata
	checkC   chan string     // members whose process the checker probes
	conflict map[string]bool // other holders seen last tick (loop only)
	// abandon makes Run stop like a crash: no drain, no leave (tests).
	abandon atomic.Bool
	// joining: a re-join runs; the next waits for it to end.
	joining atomic.Bool
}

// peer is another member as we last heard it. Heartbeats carry its
// metadata, so the view is never older than one heartbeat.
type peer struct {
	addr      string
	meta      Meta
	lastHeard time.Time
	// refused is when a TCP connect to the member's gossip port was
	// refused after it went quiet: its process is gone (a partitioned or
	// frozen member times out instead), so no fencing wait is needed.
	refused  time.Time
	checking bool
}

// quietCheck is how long a silent holder waits before we probe whether its
// process still exists.
const quietCheck = 3 * heartbeatEvery

type rankSeen struct {
	prio  int
	since time.Time
}

// New validates cfg and reads the gossip key. It starts nothing.
func New(cfg Config, opts Options, logger *slog.Logger, reg prometheus.Registerer) (*Group, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ha config: %w", err)
	}
	g := &Group{
		cfg: cfg, opts: opts, log: logger,
		nodes:   map[string]*peer{},
		ranked:  map[string]rankSeen{},
		kick:    make(chan struct{}, 1),
		gossipC: make(chan struct{}, 1),
		checkC:  make(chan string, 16),
	}
	if cfg.SecretKeyFile != "" {
		key, err := os.ReadFile(cfg.SecretKeyFile)
		if err != nil {
			return nil, fmt.Errorf("ha.secret_key_file: %w", err)
		}
		if len(key) != 32 {
			return nil, fmt.Errorf("ha.secret_key_file: must hold exactly 32 bytes, has %d", len(key))
		}
		g.key = key
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("register ha metrics: %w", err)
	}
	g.m = m
	g.vip = noVIP{}
	if cfg.VIP.Mode == "netlink" && !cfg.Witness {
		v, err := newNetlinkVIP(cfg.VIP, m.garpSent.Inc)
		if err != nil {
			return nil, err
		}
		g.vip = v
	}
	g.hooks = newHookRunner(cfg.Hooks, cfg.VIP.Address, logger)
	g.meta = Meta{Name: cfg.Name, Priority: cfg.Priority, Effective: cfg.Priority, Witness: cfg.Witness,
		ProxyAddr: advertised(opts.ProxyAddr, cfg.Bind), StatsAddr: advertised(opts.StatsAddr, cfg.Bind), Version: opts.Version, Bind: cfg.Bind}
	if cfg.Witness {
		g.meta.Effective = 0
	}
	g.state.Store(&State{Self: cfg.Name, Role: RoleCandidate.String()})
	return g, nil
}

// State returns the latest view of the group.
func (g *Group) State() State { return *g.state.Load() }

// ErrNotHolder: only the VIP holder can hand it over.
var ErrNotHolder = errors.New("this member does not hold the VIP")

// IsHolder reports whether this member holds the VIP now.
func (g *Group) IsHolder() bool { return g.State().Role == RoleHolder.String() }

// IsLeader reports whether this member is the leader, and its term: the
// fencing token of every leader action.
func (g *Group) IsLeader() (bool, uint64) {
	s := g.State()
	return s.Leader == g.cfg.Name && s.Quorum, s.Term
}

// LeaseTerm is the highest term of the scaling lease seen in the group:
// the scaler refuses to take the lease with a lower one, even when the
// lease's own key was lost (a FLUSHALL sent to the node directly).
func (g *Group) LeaseTerm() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	t := g.meta.LeaseTerm
	for _, p := range g.nodes {
		t = max(t, p.meta.LeaseTerm)
	}
	return t
}

// NoteLeaseTerm records a term this member holds the scaling lease with;
// the heartbeats carry it to the others.
func (g *Group) NoteLeaseTerm(term uint64) {
	g.mu.Lock()
	g.meta.LeaseTerm = max(g.meta.LeaseTerm, term)
	g.mu.Unlock()
}

func (g *Group) memberlistConfig() (*memberlist.Config, error) {
	host, port, err := net.SplitHostPort(g.cfg.Bind)
	if err != nil {
		return nil, err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, err
	}
	c := memberlist.DefaultLANConfig()
	c.Name = g.cfg.Name
	c.BindAddr, c.BindPort = host, p
	c.AdvertiseAddr, c.AdvertisePort = host, p
	c.Label = g.cfg.Label
	c.SecretKey = g.key
	// A "fast LAN" preset: Slotway groups are a handful of nodes on one
	// segment, and a VIP that waits for memberlist's default failure
	// detection (seconds) is no better than keepalived.
	c.ProbeInterval = 500 * time.Millisecond // probe a random member twice a second
	c.ProbeTimeout = 200 * time.Millisecond  // a LAN answers well within this
	c.SuspicionMult = 2                      // suspect -> dead after ~2 probe rounds (small groups)
	c.GossipInterval = 100 * time.Millisecond
	c.PushPullInterval = 10 * time.Second // full-state sync; heals missed gossip
	c.TCPTimeout = time.Second
	c.DeadNodeReclaimTime = time.Second // a restarted member may rejoin at once under its name
	c.Delegate = &delegate{g: g}
	c.Events = &events{g: g}
	c.Logger = log.New(logAdapter{g.log}, "", 0)
	return c, nil
}

// Run joins the group and keeps electing until ctx ends; then a holder
// hands over (draining), and the member leaves before shutting down.
func (g *Group) Run(ctx context.Context) error {
	conf, err := g.memberlistConfig()
	if err != nil {
		return fmt.Errorf("ha.bind: %w", err)
	}
	ml, err := memberlist.Create(conf)
	if err != nil {
		return fmt.Errorf("start memberlist on %s: %w", g.cfg.Bind, err)
	}
	g.mu.Lock()
	g.ml = ml
	g.mu.Unlock()
	g.started = time.Now()
	// UpdateNode blocks until the broadcast is out (hundreds of ms); it
	// runs here so the election loop never waits on it.
	var gwg sync.WaitGroup
	gctx, gcancel := context.WithCancel(context.Background())
	defer func() { gcancel(); gwg.Wait() }()
	gwg.Go(func() {
		for {
			select {
			case <-gctx.Done():
				return
			case <-g.gossipC:
				if err := ml.UpdateNode(time.Second); err != nil && gctx.Err() == nil {
					g.log.Debug("gossip metadata", "err", err)
				}
			}
		}
	})
	gwg.Go(func() { g.hooks.run(gctx) })
	gwg.Go(func() { g.checkLoop(gctx) })
	g.join()

	hb := time.NewTicker(heartbeatEvery)
	defer hb.Stop()
	rejoin := time.NewTicker(rejoinEvery)
	defer rejoin.Stop()
	for {
		select {
		case <-ctx.Done():
			if g.abandon.Load() {
				gcancel()
				gwg.Wait()
				return ml.Shutdown()
			}
			g.drain()
			if err := g.vip.Release(); err != nil {
				g.log.Error("release the VIP at shutdown", "err", err)
			}
			gcancel()
			gwg.Wait()
			if err := ml.Leave(time.Second); err != nil {
				g.log.Warn("leave group", "err", err)
			}
			if err := ml.Shutdown(); err != nil {
				return fmt.Errorf("memberlist shutdown: %w", err)
			}
			g.setRole(RoleCandidate, "shutdown", g.State().Term)
			return nil
		case <-rejoin.C:
			// Off the loop: Join dials the missing peers over TCP and, when
			// they are cut off, waits for the dial timeout, which would hold
			// up the ticks that fence a holder that lost its quorum (a cut-
			// off holder was seen keeping the VIP 60 ms into its successor's
			// term).
			if g.joining.CompareAndSwap(false, true) {
				gwg.Go(func() {
					defer g.joining.Store(false)
					g.join()
				})
			}
		case <-hb.C:
			g.heartbeat()
			g.tick(time.Now())
		case <-g.kick:
			g.tick(time.Now())
		}
	}
}

// join contacts configured peers that are not members: memberlist never
// heals a partition by itself.
func (g *Group) join() {
	have := map[string]bool{}
	g.mu.Lock()
	for _, p := range g.nodes {
		have[p.addr] = true
	}
	g.mu.Unlock()
	var missing []string
	for _, p := range g.cfg.Peers {
		if !have[p] {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return
	}
	if n, err := g.ml.Join(missing); err != nil && n == 0 {
		g.log.Debug("join peers", "peers", missing, "err", err)
	}
}

// heartbeat sends our metadata to every member directly: quorum, fencing
// and role changes must not wait for gossip to spread.
func (g *Group) heartbeat() {
	b, err := g.selfMeta().encode()
	if err != nil {
		g.log.Error("encode heartbeat", "err", err)
		return
	}
	msg := append([]byte(hbPrefix), b...)
	// Configured peers always get a heartbeat, whatever memberlist thinks
	// of them: under packet loss it may declare a peer dead (NotifyLeave
	// drops it from g.nodes), and two members that dropped each other
	// would otherwise stop heartbeating and lose quorum.
	targets := make([]memberlist.Address, 0, len(g.cfg.Peers)+len(g.nodes))
	sent := make(map[string]bool, len(g.cfg.Peers))
	for _, addr := range g.cfg.Peers {
		targets = append(targets, memberlist.Address{Addr: addr})
		sent[addr] = true
	}
	g.mu.Lock()
	for name, p := range g.nodes {
		if p.addr != "" && !sent[p.addr] {
			targets = append(targets, memberlist.Address{Addr: p.addr, Name: name})
		}
	}
	g.mu.Unlock()
	for _, a := range targets {
		_ = g.ml.SendToAddress(a, msg)
	}
}

const hbPrefix = "hb1"

// tick runs the election on the current view and acts on the outcome.
func (g *Group) tick(now time.Time) {
	g.updateHealth()
	view := g.view(now)
	self := g.selfMeta()
	in := Input{
		Self:         g.cfg.Name,
		Configured:   len(g.cfg.Peers) + 1,
		TieBreakOK:   g.healthy(),
		Now:          now,
		Started:      g.started,
		Settle:       g.settle(now),
		Preempt:      g.cfg.Preempt,
		PreemptDelay: g.cfg.PreemptDelay,
		LeaderApart:  g.cfg.LeaderApart,
	}
	for _, ms := range view {
		if !ms.Alive {
			continue
		}
		reports := ms.Holder
		if g.knownGone(reports) {
			reports = "" // we have proof its process is gone
		}
		in.Members = append(in.Members, Member{Name: ms.Name, Priority: ms.Effective, Witness: ms.Witness,
			Role: ms.Role, Term: ms.Term, Reports: reports, RankedSince: g.rankedSince(ms.Name, ms.Effective, now)})
	}
	res := Elect(in)
	// Fencing: a member claims and keeps the VIP only while it has heard a
	// quorum within FenceAfter, tighter than the others' takeover window;
	// the same window for both, or it would claim and fence in turn.
	if res.Holder == g.cfg.Name && !g.quorumWithin(now, g.cfg.FenceAfter) {
		res.Holder, res.Quorum, res.Reason = "", false, fmt.Sprintf("fenced: no quorum heard for %v", g.cfg.FenceAfter)
	}
	switch {
	case self.Role == RoleDraining:
	case res.Holder == g.cfg.Name && self.Role != RoleHolder:
		// Terms only grow: count every member we know, not just the alive.
		term := max(self.Term, self.LeaseTerm)
		for _, ms := range view {
			term = max(term, ms.Term, ms.LeaseTerm)
		}
		term++
		g.setRole(RoleHolder, "elected", term)
		prevHolder := g.State().Holder
		for _, ms := range view {
			if ms.Name == prevHolder && ms.Name != g.cfg.Name && !ms.LastHeard.IsZero() {
				g.m.failover.Observe(now.Sub(ms.LastHeard).Seconds())
			}
		}
		g.log.Info("claimed the VIP", "term", term, "previous_holder", prevHolder, "reason", res.Reason)
	case res.Holder != g.cfg.Name && self.Role == RoleHolder:
		reason := "superseded"
		if !res.Quorum {
			reason = "no_quorum"
		}
		g.setRole(RoleCandidate, reason, self.Term)
		g.log.Warn("released the VIP", "holder", res.Holder, "reason", res.Reason)
	}
	self = g.selfMeta()
	claimed := self.Role == RoleHolder && g.State().Role != RoleHolder.String()
	if self.Role == RoleHolder {
		// Another member also claimed (a partition healed): we keep the VIP,
		// so announce it again over the other's announcements.
		for _, ms := range view {
			if ms.Name != g.cfg.Name && ms.Alive && ms.Role == RoleHolder && !g.conflict[ms.Name] {
				claimed = true
				g.log.Warn("another member also holds the VIP; keeping it and announcing again", "member", ms.Name, "its_term", ms.Term, "our_term", self.Term)
			}
		}
		g.conflict = map[string]bool{}
		for _, ms := range view {
			if ms.Name != g.cfg.Name && ms.Alive && ms.Role == RoleHolder {
				g.conflict[ms.Name] = true
			}
		}
	}
	// A member handing over keeps the VIP until its successor has claimed,
	// so clients see no gap.
	holdVIP := self.Role == RoleHolder || (self.Role == RoleDraining && actualHolder(view, self) == "")
	if err := g.vip.Reconcile(holdVIP, claimed, now); err != nil {
		g.log.Error("VIP", "err", err)
	}
	// Holder is who actually holds (role holder), not whom the election
	// would pick: a claim takes a heartbeat to be heard.
	st := &State{Self: g.cfg.Name, Holder: actualHolder(view, self), Leader: res.Leader, Term: self.Term,
		Role: self.Role.String(), Quorum: res.Quorum, Reason: res.Reason, Members: view}
	g.mu.Lock()
	g.meta.Holder = st.Holder
	for _, p := range g.nodes {
		g.meta.LeaseTerm = max(g.meta.LeaseTerm, p.meta.LeaseTerm) // carried on for members that leave
	}
	// A fresh slice: copies of g.meta handed out earlier (selfMeta) share
	// the old one and may be encoding it right now.
	var gone []string
	for name, p := range g.nodes {
		if p.refused.After(p.lastHeard) && len(gone) < 8 {
			gone = append(gone, name)
		}
	}
	g.meta.Gone = gone
	g.mu.Unlock()
	prev := g.state.Swap(st)
	g.m.observe(st)
	g.notify(prev, st)
}

// updateHealth lowers our effective priority to 0 while the instance cannot
// serve, so an unhealthy member is never elected and a holder steps down.
func (g *Group) updateHealth() {
	eff := g.configuredPriority() // ha.priority, as a reload left it
	if g.cfg.Witness || !g.healthy() {
		eff = 0
	}
	g.mu.Lock()
	changed := g.meta.Effective != eff && g.meta.Role != RoleDraining
	if changed {
		g.meta.Effective = eff
	}
	g.mu.Unlock()
	if changed {
		g.log.Info("effective priority changed", "priority", eff)
		kick.Send(g.gossipC)
	}
}

// notify queues the hooks and the transition log line for a change of
// role or leadership.
func (g *Group) notify(prev, st *State) {
	wasLeader := prev.Leader == g.cfg.Name && prev.Quorum
	isLeader := st.Leader == g.cfg.Name && st.Quorum
	if prev.Role != st.Role {
		switch {
		case st.Role == RoleHolder.String():
			g.hooks.fire("on_holder", st)
		case !st.Quorum:
			g.hooks.fire("on_fault", st)
		default:
			g.hooks.fire("on_backup", st)
		}
	}
	if isLeader && !wasLeader {
		g.log.Info("became the leader", "term", st.Term)
		g.hooks.fire("on_leader", st)
	}
}

// actualHolder is the alive member that says it holds the VIP, the
// highest term first; ourselves when we hold it.
func actualHolder(view []MemberState, self Meta) string {
	if self.Role == RoleHolder {
		return self.Name
	}
	best, term := "", uint64(0)
	for _, ms := range view {
		if ms.Alive && ms.Role == RoleHolder && (best == "" || ms.Term > term) {
			best, term = ms.Name, ms.Term
		}
	}
	return best
}

// settle is how long a fresh member waits before a first claim: until it
// has heard every configured peer, or the takeover window has passed.
func (g *Group) settle(now time.Time) time.Duration {
	g.mu.Lock()
	heard := 0
	for _, p := range g.nodes {
		if !p.lastHeard.IsZero() {
			heard++
		}
	}
	g.mu.Unlock()
	if heard >= len(g.cfg.Peers) {
		return 0
	}
	return g.cfg.FenceAfter + takeoverMargin
}

func (g *Group) healthy() bool { return g.opts.Healthy == nil || g.opts.Healthy() }

// view lists self and every member we have heard of, with when we last
// heard it.
func (g *Group) view(now time.Time) []MemberState {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := []MemberState{{Meta: g.meta, Addr: g.cfg.Bind, LastHeard: now, Alive: true}}
	for _, p := range g.nodes {
		if p.meta.Name == "" {
			continue // known to memberlist, not heard yet
		}
		out = append(out, MemberState{Meta: p.meta, Addr: p.addr, LastHeard: p.lastHeard,
			Alive: now.Sub(p.lastHeard) <= g.cfg.FenceAfter+takeoverMargin && !p.refused.After(p.lastHeard)})
		if p.meta.Role == RoleHolder && now.Sub(p.lastHeard) > quietCheck && !p.checking &&
			!p.refused.After(p.lastHeard) && p.addr != "" {
			p.checking = true
			select {
			case g.checkC <- p.meta.Name:
			default:
				p.checking = false
			}
		}
	}
	slices.SortFunc(out, func(a, b MemberState) int {
		if a.Name < b.Name {
			return -1
		}
		return 1
	})
	return out
}

func (g *Group) quorumWithin(now time.Time, window time.Duration) bool {
	n := len(g.cfg.Peers) + 1
	if n <= 1 {
		return true
	}
	g.mu.Lock()
	heard := 1
	for _, p := range g.nodes {
		if !p.lastHeard.IsZero() && now.Sub(p.lastHeard) <= window {
			heard++
		}
	}
	g.mu.Unlock()
	if n == 2 {
		return heard == 2 || g.healthy()
	}
	return heard > n/2
}

func (g *Group) rankedSince(name string, prio int, now time.Time) time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	r, ok := g.ranked[name]
	if !ok || r.prio != prio {
		r = rankSeen{prio: prio, since: now}
		g.ranked[name] = r
	}
	return r.since
}

func (g *Group) selfMeta() Meta {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.meta
}

// setRole changes our role and term and gossips them at once.
func (g *Group) setRole(r Role, reason string, term uint64) {
	g.mu.Lock()
	from := g.meta.Role
	g.meta.Role, g.meta.Term = r, term
	if r == RoleDraining {
		g.meta.Effective = 0
	}
	g.mu.Unlock()
	if from != r {
		g.m.transitions.WithLabelValues(from.String(), r.String(), reason).Inc()
	}
	kick.Send(g.gossipC)
}

// delegate and events are memberlist callbacks: they copy and hand off,
// never block and never call back into memberlist.
type delegate struct{ g *Group }

func (d *delegate) NodeMeta(limit int) []byte {
	b, err := d.g.selfMeta().encode()
	if err != nil || len(b) > limit {
		d.g.log.Error("node metadata too large", "err", err, "limit", limit)
		return nil
	}
	return b
}

func (d *delegate) NotifyMsg(b []byte) {
	if len(b) <= len(hbPrefix) || string(b[:len(hbPrefix)]) != hbPrefix {
		return
	}
	meta, err := decodeMeta(b[len(hbPrefix):])
	if err != nil || meta.Name == "" || meta.Name == d.g.cfg.Name {
		return
	}
	g := d.g
	g.mu.Lock()
	p := g.nodes[meta.Name]
	if p == nil {
		p = &peer{}
		g.nodes[meta.Name] = p
	}
	changed := p.meta.Role != meta.Role || p.meta.Term != meta.Term || p.meta.Effective != meta.Effective
	p.meta, p.lastHeard = meta, time.Now()
	if p.addr == "" {
		p.addr = meta.Bind
	}
	now := time.Now()
	for _, name := range meta.Gone {
		// Trust the proof only for members we have not heard lately either.
		if q := g.nodes[name]; q != nil && name != g.cfg.Name && now.Sub(q.lastHeard) > quietCheck && !q.refused.After(q.lastHeard) {
			q.refused = now
			changed = true
		}
	}
	g.mu.Unlock()
	if changed {
		kick.Send(g.kick)
	}
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

type events struct{ g *Group }

// The *Node is only valid during the call: copy what we need.
func (e *events) NotifyJoin(n *memberlist.Node)   { e.seen(n) }
func (e *events) NotifyUpdate(n *memberlist.Node) { e.seen(n) }

func (e *events) NotifyLeave(n *memberlist.Node) {
	e.g.mu.Lock()
	delete(e.g.nodes, n.Name)
	e.g.mu.Unlock()
	e.poke()
}

func (e *events) seen(n *memberlist.Node) {
	if n.Name == e.g.cfg.Name {
		return
	}
	addr := net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
	e.g.mu.Lock()
	p := e.g.nodes[n.Name]
	if p == nil {
		p = &peer{}
		e.g.nodes[n.Name] = p
	}
	p.addr = addr
	e.g.mu.Unlock()
	e.poke()
}

func (e *events) poke() {
	kick.Send(e.g.kick)
}

// advertised is the address the other members should use for a local
// listener: one bound to all interfaces (0.0.0.0, [::]) is reachable at
// the gossip bind's host, which the others already reach; published as
// is, every member would dial itself.
func advertised(listen, bind string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return listen
	}
	bh, _, err := net.SplitHostPort(bind)
	if err != nil || bh == "" {
		return listen
	}
	if ip := net.ParseIP(bh); ip != nil && ip.IsUnspecified() {
		return listen
	}
	return net.JoinHostPort(bh, port)
}
