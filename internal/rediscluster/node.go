package rediscluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/slotway/slotway/internal/poll"
	"github.com/slotway/slotway/internal/redisinfo"
)

const (
	// nodeStartTimeout bounds one node start (process launch to answering
	// CLUSTER MYID); an empty Redis is ready in milliseconds.
	nodeStartTimeout = 10 * time.Second
	// killWait bounds how long Kill waits for the kernel to reap a node
	// after SIGKILL.
	killWait = 10 * time.Second
	// migrateTimeout is the MIGRATE timeout in milliseconds.
	migrateTimeout = 5000
)

// errPortInUse means redis-server could not bind its port or bus port (or
// someone else answered on it); the caller picks another port.
var errPortInUse = errors.New("port already in use")

// Node is one redis-server process started by a Cluster.
type Node struct {
	Addr string // "127.0.0.1:PORT"
	Port int
	ID   string // cluster node id (40 hex); stable across Restart
	Dir  string // Options.Dir/node-PORT, holding redis.conf, nodes.conf and logs

	bin      string
	confPath string
	wrap     []string                                                          // command prefix (e.g. ip netns exec)
	dial     func(ctx context.Context, network, addr string) (net.Conn, error) // nil: plain dial
	tls      *tls.Config                                                       // nil: plaintext nodes
	logPath  string                                                            // redis logfile
	outPath  string                                                            // stdout/stderr of the process (config errors land here)
	log      *slog.Logger

	mu     sync.Mutex
	proc   *process // current or last process; nil before the first start
	client *redis.Client
	closed bool // set by Cluster.Close; later clients are born closed
}

// process is one run of redis-server for a Node.
type process struct {
	pid    int
	exited chan struct{} // closed once the process is reaped
	err    error         // cmd.Wait result; read only after exited is closed
}

func newNode(opts Options, port int) (*Node, error) {
	dir := filepath.Join(opts.Dir, "node-"+strconv.Itoa(port))
	n := &Node{
		Addr:     net.JoinHostPort(opts.Host, strconv.Itoa(port)),
		Port:     port,
		Dir:      dir,
		bin:      opts.RedisServer,
		confPath: filepath.Join(dir, "redis.conf"),
		wrap:     opts.Wrap,
		dial:     opts.Dial,
		tls:      opts.tlsClient,
		logPath:  filepath.Join(dir, "redis.log"),
		outPath:  filepath.Join(dir, "stdout.log"),
		log:      opts.Logger,
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create node dir %s: %w", dir, err)
	}
	if err := os.WriteFile(n.confPath, []byte(n.config(opts)), 0o644); err != nil {
		return nil, fmt.Errorf("write %s: %w", n.confPath, err)
	}
	return n, nil
}

// config renders redis.conf. cluster-require-full-coverage is deliberately
// left at the Redis default (yes).
func (n *Node) config(opts Options) string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("# Written by slotway internal/rediscluster.")
	if opts.TLS == nil {
		line("port %d", n.Port)
	} else {
		line("# TLS only: the node's port is its TLS port; the bus port is still +10000.")
		line("port 0")
		line("tls-port %d", n.Port)
		line("tls-cluster yes")
		line("tls-replication yes")
		line("tls-cert-file %s", confQuote(opts.TLS.CertFile))
		line("tls-key-file %s", confQuote(opts.TLS.KeyFile))
		line("tls-ca-cert-file %s", confQuote(opts.TLS.CAFile))
		line("tls-auth-clients optional")
	}
	line("bind %s", opts.Host)
	line("protected-mode no")
	line("daemonize no")
	line("dir %s", confQuote(n.Dir))
	line("logfile %s", confQuote(n.logPath))
	line("cluster-enabled yes")
	line("cluster-config-file nodes.conf")
	line("cluster-node-timeout %d", opts.NodeTimeout.Milliseconds())
	line("appendonly no")
	line(`save ""`)
	line("# Start replica full syncs at once instead of after the default 5s.")
	line("repl-diskless-sync-delay 0")
	for _, l := range opts.ExtraConfig {
		line("%s", l)
	}
	return b.String()
}

// confQuote quotes s for redis.conf (sdssplitargs rules).
func confQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// PID is the process id of the node's current (or last) redis-server, 0 if
// it was never started.
func (n *Node) PID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc == nil {
		return 0
	}
	return n.proc.pid
}

// Alive reports whether the node's redis-server process is running (started
// and not yet reaped). A stopped (SIGSTOP) process counts as alive.
func (n *Node) Alive() bool {
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	if p == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Client returns a cached plain go-redis client for this node. Kill closes
// it and the next call returns a fresh one, so do not hold a client across
// Kill or Restart. Cluster.Close closes it.
func (n *Node) Client() *redis.Client {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.client == nil {
		o := clientOptions(n.Addr)
		o.Dialer = n.dial
		if n.tls != nil {
			o.TLSConfig = n.tls
			if n.dial != nil {
				// go-redis ignores TLSConfig when Dialer is set.
				o.Dialer = tlsDialer(n.dial, n.tls)
			}
		}
		n.client = redis.NewClient(o)
		if n.closed {
			_ = n.client.Close()
		}
	}
	return n.client
}

func clientOptions(addr string) *redis.Options {
	return &redis.Options{
		Addr:     addr,
		Protocol: 2,
		// Redis 7.0 has no CLIENT SETINFO.
		DisableIdentity: true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
		DialTimeout:   time.Second,
		DialerRetries: 1, // callers here poll; do not hide a dead node behind retries
		// Above the MIGRATE timeout, so MIGRATE reports its own error.
		ReadTimeout:           2 * migrateTimeout * time.Millisecond,
		WriteTimeout:          5 * time.Second,
		ContextTimeoutEnabled: true,
		// One retry covers a pooled connection gone stale after Restart.
		MaxRetries:   1,
		PoolSize:     4,
		MaxIdleConns: 2,
	}
}

// tlsDialer wraps dial with a TLS handshake bounded by ctx.
func tlsDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error), cfg *tls.Config) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		return tc, nil
	}
}

// LogTail returns the last lines of the node's redis log and, if not empty,
// of its stdout/stderr.
func (n *Node) LogTail(lines int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "--- %s (pid %d) %s\n", n.Addr, n.PID(), n.logPath)
	b.WriteString(tailFile(n.logPath, lines))
	if out := tailFile(n.outPath, lines); strings.TrimSpace(out) != "" {
		fmt.Fprintf(&b, "--- %s stdout/stderr\n", n.Addr)
		b.WriteString(out)
	}
	return b.String()
}

func tailFile(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return ""
		}
		return fmt.Sprintf("(read %s: %v)\n", path, err)
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n") + "\n"
}

// start launches redis-server and waits until it answers as itself. On
// failure the process is killed. It returns errPortInUse (wrapped) if the
// port or bus port was taken.
func (n *Node) start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, nodeStartTimeout)
	defer cancel()
	p, err := n.launch()
	if err != nil {
		return err
	}
	if err := n.waitReady(ctx, p); err != nil {
		if kerr := n.kill(); kerr != nil {
			err = errors.Join(err, kerr)
		}
		return fmt.Errorf("start redis node %s: %w", n.Addr, err)
	}
	n.log.Debug("redis node started", "addr", n.Addr, "pid", p.pid, "id", n.ID, "dir", n.Dir)
	return nil
}

func (n *Node) launch() (*process, error) {
	out, err := os.OpenFile(n.outPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", n.outPath, err)
	}
	// The child gets its own copy of the descriptor; ours is closed below.
	defer out.Close()
	argv := append(append([]string{}, n.wrap...), n.bin, n.confPath)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = n.Dir
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = ProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s %s: %w", n.bin, n.confPath, err)
	}
	p := &process{pid: cmd.Process.Pid, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	n.mu.Lock()
	n.proc = p
	n.mu.Unlock()
	return p, nil
}

// waitReady polls until the server on n.Port is our process (INFO
// process_id) and returns its cluster id. A raw TCP dial comes first so the
// go-redis pool does not collect dial errors (which would trip its dial
// circuit breaker) while the server is still starting.
func (n *Node) waitReady(ctx context.Context, p *process) error {
	return poll.Until(ctx, n.Addr+" to be ready", poll.Options{Every: 10 * time.Millisecond}, func(ctx context.Context) (bool, string, error) {
		select {
		case <-p.exited:
			tail := tailFile(n.logPath, 10) + tailFile(n.outPath, 10)
			if strings.Contains(tail, "Address already in use") {
				return false, "", fmt.Errorf("%w (redis-server exited)", errPortInUse)
			}
			return false, "", fmt.Errorf("redis-server exited before it was ready (%v); log tail:\n%s", p.err, tail)
		default:
		}
		return n.probeReady(ctx, p)
	})
}

func (n *Node) probeReady(ctx context.Context, p *process) (bool, string, error) {
	pctx, cancel := probeCtx(ctx)
	defer cancel()
	dial := (&net.Dialer{}).DialContext
	if n.dial != nil {
		dial = n.dial
	}
	conn, err := dial(pctx, "tcp", n.Addr)
	if err != nil {
		return false, "dial: " + err.Error(), nil
	}
	_ = conn.Close()

	info, err := n.Client().Info(pctx, "server").Result()
	if err != nil {
		return false, "INFO server: " + err.Error(), nil // e.g. LOADING
	}
	pid, err := strconv.Atoi(redisinfo.Field(info, "process_id"))
	if err != nil {
		return false, "", fmt.Errorf("parse process_id from INFO server: %w", err)
	}
	if pid != p.pid {
		// Another process owns the port; ours will fail to bind.
		return false, "", fmt.Errorf("%w: %s is served by pid %d, not %d", errPortInUse, n.Addr, pid, p.pid)
	}
	id, err := n.Client().ClusterMyID(pctx).Result()
	if err != nil {
		return false, "CLUSTER MYID: " + err.Error(), nil
	}
	switch {
	case n.ID == "":
		n.ID = id // first start; nobody else sees n yet
	case n.ID != id:
		return false, "", fmt.Errorf("node id changed across restart: was %s, now %s (nodes.conf lost?)", n.ID, id)
	}
	return true, "", nil
}

// kill sends SIGKILL to the node's process group and waits until the process
// is reaped. It also closes the node's cached client. Killing a node that is
// not running is a no-op.
func (n *Node) kill() error {
	n.mu.Lock()
	p := n.proc
	c := n.client
	n.client = nil
	n.mu.Unlock()
	var errs []error
	if c != nil {
		if err := c.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
			errs = append(errs, fmt.Errorf("close client for %s: %w", n.Addr, err))
		}
	}
	if p == nil {
		return errors.Join(errs...)
	}
	select {
	case <-p.exited:
		return errors.Join(errs...)
	default:
	}
	// Setpgid made the process group id equal to the node's PID; the
	// negative PID also reaches a fork child (replication RDB) if any.
	if err := syscall.Kill(-p.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		errs = append(errs, fmt.Errorf("kill redis node %s (pid %d): %w", n.Addr, p.pid, err))
		return errors.Join(errs...)
	}
	timer := time.NewTimer(killWait)
	defer timer.Stop()
	select {
	case <-p.exited:
	case <-timer.C:
		errs = append(errs, fmt.Errorf("kill redis node %s (pid %d): not reaped %s after SIGKILL", n.Addr, p.pid, killWait))
	}
	return errors.Join(errs...)
}
