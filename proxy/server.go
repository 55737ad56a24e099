package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slotway/slotway/internal/hashslot"
	"github.com/slotway/slotway/internal/redisinfo"
)

// Version is Slotway's version, set by the linker in release builds.
var Version = "dev"

// Server is the client-facing side of Slotway: it accepts plain Redis
// clients and routes their commands to the cluster's masters.
type Server struct {
	cfg     Config
	log     *slog.Logger
	ln      net.Listener
	set     atomic.Pointer[settings] // the keys a reload changes (reload.go)
	topo    *topologyOwner
	health  *healthChecker
	m       *metrics
	started time.Time

	table    atomic.Pointer[commandTable]
	redisVer atomic.Pointer[string]
	slotOps  [hashslot.Count]atomic.Uint64
	latency  [16]latencyHist // by command family
	// redirCount mirrors the redirect counters for Stats (Prometheus
	// counters cannot be read back cheaply).
	redirCount [5]atomic.Uint64
	scripts    scriptCache // bodies of EVAL'd and loaded scripts, for NOSCRIPT
	budget     retryBudget // how long failing commands are parked

	closing       atomic.Bool // set when draining: clients stop reading
	mu            sync.Mutex
	clients       map[*client]struct{}
	clientWG      sync.WaitGroup
	loops         []*loop // event loops serving plain TCP clients (loop.go)
	loopClients   atomic.Int64
	nextID        atomic.Uint64
	acceptedCount atomic.Uint64
	// What CONFIG RESETSTAT found: INFO shows the counters since then;
	// the stats page and the metrics keep counting since start.
	statBase struct{ commands, connections atomic.Uint64 }
	// CLIENT PAUSE (pause.go): pauseMode is read on every command.
	pause     pauseState
	pauseMode atomic.Uint32
	mon       monitors // MONITOR clients (monitor.go)
	// For INFO (info.go): clients in a blocking command, error replies.
	blockedClients atomic.Int64
	errs           errorStats
}

// New validates cfg and binds the listener; it starts nothing.
func New(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("proxy config: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s := &Server{
		cfg: cfg, log: log, started: time.Now(),
		clients: map[*client]struct{}{},
	}
	set, err := newSettings(cfg)
	if err != nil {
		return nil, fmt.Errorf("proxy config: %w", err)
	}
	s.set.Store(set)
	s.initRetryBudget()
	m, err := newMetrics(reg, s)
	if err != nil {
		return nil, fmt.Errorf("register proxy metrics: %w", err)
	}
	s.m = m
	s.topo = newTopologyOwner(cfg, log, m, s.dialBackend)
	if s.topo.tlsErr != nil {
		return nil, fmt.Errorf("proxy config: cluster.tls: %w", s.topo.tlsErr)
	}
	s.health = &healthChecker{o: s.topo, interval: cfg.HealthInterval, timeout: cfg.HealthTimeout, failAfter: 2}
	tlsCfg, err := cfg.TLS.serverTLS()
	if err != nil {
		return nil, fmt.Errorf("proxy config: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	s.ln = ln
	return s, nil
}

// Addr is the address clients connect to.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close releases a server that will not run: its listener and the control
// connections New may have opened. Run releases everything itself.
func (s *Server) Close() error {
	err := s.ln.Close()
	s.topo.close()
	return err
}

func (s *Server) port() int {
	if a, ok := s.ln.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

// Run serves until ctx ends, then stops accepting, lets clients finish the
// commands they sent (up to ShutdownTimeout), closes everything and
// returns nil.
func (s *Server) Run(ctx context.Context) error {
	bctx, bcancel := context.WithCancel(context.Background())
	var bwg sync.WaitGroup
	// Loops first: they read the backends' pipes.
	s.startLoops()
	s.topo.loops = s.loops
	s.topo.start(bctx, &bwg)
	bwg.Go(func() { s.topo.run(bctx) })
	bwg.Go(func() { s.health.run(bctx) })
	bwg.Go(func() { s.bootstrap(bctx) })
	bwg.Go(func() { s.watchNodeTimeout(bctx) })
	bwg.Go(func() { s.returnMemory(bctx) })

	acceptDone := make(chan error, 1)
	go func() { acceptDone <- s.acceptLoop() }()

	var err error
	select {
	case <-ctx.Done():
	case err = <-acceptDone:
		err = fmt.Errorf("accept on %s: %w", s.ln.Addr(), err)
	}
	s.ln.Close()
	if err == nil {
		<-acceptDone
	}
	s.drainClients()
	bcancel()
	bwg.Wait()
	s.stopLoops() // after the pipes: a loop reads them until they end
	s.topo.close()
	return err
}

func (s *Server) acceptLoop() error {
	var delay time.Duration
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of file descriptors and the like: back off, keep serving.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed", "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		s.acceptedCount.Add(1)
		s.m.accepted.Inc()
		if limit := s.settings().maxClients; limit > 0 && s.clientCount() >= limit {
			s.m.rejectedClients.Inc()
			conn.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = conn.Write([]byte("-ERR max number of clients reached\r\n"))
			conn.Close()
			continue
		}
		id := s.nextID.Add(1)
		if tc, ok := conn.(*net.TCPConn); ok && s.adopt(tc, id) {
			continue
		}
		c := s.newClient(id, conn)
		s.mu.Lock()
		s.clients[c] = struct{}{}
		s.clientWG.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.forget(c)
			c.serve()
		}()
	}
}

// drainClients makes every client stop after its current batch: reads end
// at once, in-flight commands are still answered.
func (s *Server) drainClients() {
	s.closing.Store(true)
	s.Unpause() // paused commands are served, not left to the timeout
	s.mu.Lock()
	for c := range s.clients {
		c.interrupt()
	}
	s.mu.Unlock()
	for _, l := range s.loops {
		l.post(nil, evDrain)
	}
	done := make(chan struct{})
	go func() { s.clientWG.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(s.settings().shutdownTimeout):
	}
	s.mu.Lock()
	n := len(s.clients)
	for c := range s.clients {
		c.kill()
	}
	s.mu.Unlock()
	s.log.Warn("shutdown timeout: closed clients with commands in flight", "clients", n)
	// A client waits for its backend replies, not for its own socket: a
	// backend that never answers would hold shutdown forever. Dropping the
	// backend connections fails what is in flight.
	t := s.topo.load()
	for _, b := range t.masters {
		b.reset(errShuttingDown)
		for _, r := range t.replicas[b] {
			r.reset(errShuttingDown)
		}
	}
	<-done
}

func (s *Server) clientCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clients)
}

func (s *Server) totalCommands() uint64 {
	var n uint64
	if t := s.table.Load(); t != nil {
		for _, ci := range t.cmds {
			if ci.kind == kindLocal {
				continue // counted below
			}
			n += ci.stats.calls.Load()
			for _, sub := range ci.subs {
				n += sub.stats.calls.Load()
			}
		}
	}
	for _, ci := range localStats() {
		n += ci.stats.calls.Load()
	}
	return n
}

// resetStats starts INFO's counters again (CONFIG RESETSTAT).
func (s *Server) resetStats() {
	s.statBase.commands.Store(s.totalCommands())
	s.statBase.connections.Store(s.acceptedCount.Load())
	s.eachCommand(func(ci *cmdInfo) {
		st := ci.stats
		st.base.calls.Store(st.calls.Load())
		st.base.errors.Store(st.errors.Load())
		st.base.rejected.Store(st.rejected.Load())
		st.base.usec.Store(st.usec.Load())
	})
	s.errs.reset()
}

// ctxBackground bounds dedicated dials by the dial timeout alone.
func (s *Server) ctxBackground() context.Context { return context.Background() }

// pickReplica returns a healthy replica for this client, or nil (then
// the master serves the read with prefer-replica; with replica it fails).
// A replica qualifies only once the health checker has seen it up with
// its replication link up: a replica that has just been attached, or is
// resyncing, answers from an empty or stale dataset
// (replica-serve-stale-data), which would look like lost keys.
func (s *Server) pickReplica(replicas []*backend, clientID uint64) *backend {
	if len(replicas) == 0 {
		return nil
	}
	h := s.health.snapshot()
	for i := range replicas {
		b := replicas[(int(clientID)+i)%len(replicas)]
		if nh, ok := h[b.addr]; ok && nh.Up && nh.Info.LinkStatus == "up" && !b.retired.Load() && !b.pipes[clientID%uint64(len(b.pipes))].isDown() {
			return b
		}
	}
	return nil
}

// splitAllowed applies proxy.cross_slot: split unless set to reject.
func (s *Server) splitAllowed(ci *cmdInfo) bool { return s.settings().crossSlot[ci.name] != "reject" }

func (s *Server) redisVersion() string {
	if v := s.redisVer.Load(); v != nil {
		return *v
	}
	return "7.0.0"
}

// bootstrap reads the slot map and the command table, retrying until both
// are known; clients get CLUSTERDOWN until then.
func (s *Server) bootstrap(ctx context.Context) {
	bo := newBackoff(50*time.Millisecond, 2*time.Second)
	for ctx.Err() == nil {
		err := s.topo.refresh(ctx)
		if err == nil {
			err = s.loadCommandTable(ctx)
		}
		if err == nil {
			t := s.topo.load()
			s.log.Info("cluster reached", "masters", len(t.masters), "slots_served", servedSlots(t),
				"commands", len(s.table.Load().cmds), "redis_version", s.redisVersion())
			return
		}
		s.log.Warn("cluster not reachable yet", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(bo.next()):
		}
	}
}

func (s *Server) loadCommandTable(ctx context.Context) error {
	t := s.topo.load()
	var errs []error
	for _, b := range t.masters {
		c := s.topo.control(b.addr)
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		reply, err := c.Do(cctx, "COMMAND").Result()
		if err == nil {
			var table *commandTable
			table, err = parseCommandTable(reply)
			if err == nil {
				if info, ierr := c.Info(cctx, "server").Result(); ierr == nil {
					if v := redisinfo.Field(info, "redis_version"); v != "" {
						s.redisVer.Store(&v)
					}
				}
				cancel()
				s.table.Store(table)
				return nil
			}
		}
		cancel()
		errs = append(errs, fmt.Errorf("COMMAND on %s: %w", b.addr, err))
	}
	if len(errs) == 0 {
		return errors.New("no master to read the command table from")
	}
	return errors.Join(errs...)
}

// dialBackend connects to a node for the data path, over TLS when
// proxy.cluster.tls is enabled (connect and handshake share the dial
// timeout), and authenticates when credentials are configured.
func (s *Server) dialBackend(ctx context.Context, addr string) (net.Conn, error) {
	tlsCfg, err := s.topo.tlsFor(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	dctx, cancel := context.WithTimeout(ctx, s.cfg.Cluster.DialTimeout)
	defer cancel()
	d := net.Dialer{Timeout: s.cfg.Cluster.DialTimeout, KeepAlive: 15 * time.Second}
	conn, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	if tlsCfg != nil {
		tc := tls.Client(conn, tlsCfg)
		if err := tc.HandshakeContext(dctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		conn = tc
	}
	if s.cfg.Cluster.Password == "" {
		return conn, nil
	}
	args := [][]byte{[]byte("AUTH")}
	if s.cfg.Cluster.Username != "" {
		args = append(args, []byte(s.cfg.Cluster.Username))
	}
	args = append(args, []byte(s.cfg.Cluster.Password))
	conn.SetDeadline(time.Now().Add(s.cfg.Cluster.DialTimeout))
	if _, err := conn.Write(appendCommand(nil, args)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("auth to %s: %w", addr, err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("auth to %s: %w", addr, err)
	}
	if !strings.HasPrefix(line, "+OK") {
		conn.Close()
		return nil, fmt.Errorf("auth to %s: %s", addr, strings.TrimSpace(line))
	}
	conn.SetDeadline(time.Time{})
	return conn, nil
}

// Nodes returns the cluster nodes of the current slot map.
func (s *Server) Nodes() []Node { return s.topo.load().nodes }

// Seeds returns proxy.cluster.seeds.
func (s *Server) Seeds() []string { return slices.Clone(s.cfg.Cluster.Seeds) }

// SeedsLeft returns the configured seeds that answer but are not members
// of the cluster (reset, or of another cluster), by address. They are not
// used for the slot map; each was logged once as a warning.
func (s *Server) SeedsLeft() []SeedLeft { return s.topo.seedsLeft() }

// Health returns the last health check of every node, by address.
func (s *Server) Health() map[string]NodeHealth { return s.health.snapshot() }

// Ready reports whether the slot map is known and at least one master
// passes its health checks.
func (s *Server) Ready() bool {
	t := s.topo.load()
	if len(t.masters) == 0 || s.table.Load() == nil {
		return false
	}
	h := s.health.snapshot()
	for _, b := range t.masters {
		if nh, ok := h[b.addr]; !ok || nh.Up {
			return true
		}
	}
	return false
}

// SlotOps copies the per-slot command counters (since start) into dst,
// which must hold hashslot.Count entries. The scaler sums them across instances.
func (s *Server) SlotOps(dst []uint64) {
	for i := range dst[:hashslot.Count] {
		dst[i] = s.slotOps[i].Load()
	}
}

// RefreshTopology asks for a slot-map refresh now (the scaler calls it
// before a drained node disappears).
func (s *Server) RefreshTopology() { s.topo.requestRefresh() }

// BackendTLS returns the TLS configuration for connecting to the node at
// addr (nil without proxy.cluster.tls), for the scaler's control clients.
func (s *Server) BackendTLS(addr string) (*tls.Config, error) { return s.topo.tlsFor(addr) }
