package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/slotway/slotway/ha"
	"github.com/slotway/slotway/internal/poll"
	"github.com/slotway/slotway/internal/rediscluster"
	"github.com/slotway/slotway/proxy"
	"github.com/slotway/slotway/scaler"
)

// cmdDemo starts a local Redis Cluster (3 masters with a replica each, or
// -replicas N each, and 2 spare nodes) in a temp dir, two Slotway instances
// in front of it, and prints where to connect. Ctrl-C stops everything and
// removes the dir.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:7100", "client address of the first instance (the second uses the next port); taken ports fall back to free ones")
	statsListen := fs.String("stats", "127.0.0.1:8100", "stats address of the first instance (the second uses the next port)")
	pprof := fs.Bool("pprof", false, "serve /debug/pprof/ on the stats listeners")
	replicas := fs.Int("replicas", 1, "replicas per master, 0 to 2 (0: the 3 masters only, as bench/run.sh's REPLICAS=0 setup)")
	logf := addLogFlags(fs, "warn")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := logf.check(fs); err != nil {
		return err
	}
	if *replicas < 0 || *replicas > 2 {
		return usageError{fmt.Errorf("-replicas must be 0, 1 or 2, got %d", *replicas)}
	}
	log := logf.logger(stderr, logf.lvl, "text")
	if _, err := exec.LookPath("redis-server"); err != nil {
		return errors.New("redis-server not found on PATH; install it with: apt-get install -y redis-server redis-tools")
	}
	dir, err := os.MkdirTemp("", "slotway-demo-")
	if err != nil {
		return fmt.Errorf("make temp dir: %w", err)
	}
	defer os.RemoveAll(dir)

	fmt.Fprintf(stdout, "starting a Redis Cluster: 3 masters, %d replica(s) each, 2 spare nodes ...\n", *replicas)
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	cluster, err := rediscluster.StartCluster(sctx, rediscluster.Options{
		Masters: 3, Replicas: *replicas, Spares: 2, NodeTimeout: 2 * time.Second, Dir: dir,
		Logger: log.With("component", "demo"),
	})
	cancel()
	if err != nil {
		return fmt.Errorf("start cluster: %w", err)
	}
	defer cluster.Close()

	// The two instances form one HA group in status mode: no address is
	// moved (that needs root and a real interface); GET /ha/vip on the
	// stats listener answers 200 only on the holder, for an L4 balancer.
	var gossip []string
	for range 2 {
		p, err := rediscluster.FreePort()
		if err != nil {
			return fmt.Errorf("pick a gossip port: %w", err)
		}
		gossip = append(gossip, net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	}
	// The scaler gets the spare nodes; its admin API a fresh token.
	tok := make([]byte, 16)
	if _, err := rand.Read(tok); err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	token := hex.EncodeToString(tok)
	tokenFile := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	sc := scaler.DefaultConfig()
	for _, n := range cluster.Spares() {
		sc.Provider.Pool = append(sc.Provider.Pool, n.Addr)
	}
	// The autoscaler watches with the default thresholds (the demo's
	// nodes have no maxmemory, so the memory signal shows as off).
	sc.Enabled, sc.MaxMasters = true, 3+len(sc.Provider.Pool)
	var insts []*instance
	for i := range 2 {
		cfg := defaultConfig()
		cfg.Proxy.Cluster.Seeds = cluster.Seeds()
		cfg.Proxy.Listen = orFree(shiftPort(*listen, i))
		cfg.Stats.Listen = orFree(shiftPort(*statsListen, i))
		cfg.Stats.Pprof = *pprof
		cfg.Stats.AdminTokenFile = tokenFile
		cfg.Scaler = &sc
		hc := ha.DefaultConfig()
		hc.Name = "p" + strconv.Itoa(i+1)
		hc.Bind = gossip[i]
		hc.Peers = []string{gossip[1-i]}
		hc.Priority = 150 - 50*i
		hc.VIP = ha.VIPConfig{Mode: "status"}
		cfg.HA = &hc
		if v := os.Getenv("SLOTWAY_BACKEND_CONNS"); v != "" {
			cfg.Proxy.BackendConns, _ = strconv.Atoi(v)
		}
		if v := os.Getenv("SLOTWAY_EVENT_LOOPS"); v != "" {
			cfg.Proxy.EventLoops, _ = strconv.Atoi(v)
		}
		if v := os.Getenv("SLOTWAY_IO_URING"); v != "" {
			cfg.Proxy.IOUring = v
		}
		inst, err := newInstance(cfg, log.With("instance", "p"+strconv.Itoa(i+1)), nil)
		if err != nil {
			return fmt.Errorf("start instance p%d: %w", i+1, err)
		}
		insts = append(insts, inst)
	}
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	var wg sync.WaitGroup
	errs := make([]error, len(insts))
	for i, inst := range insts {
		wg.Go(func() {
			if err := inst.run(rctx); err != nil {
				errs[i] = err
				rcancel()
			}
		})
	}
	if err := waitReady(rctx, insts[0].proxy); err != nil {
		rcancel()
		wg.Wait()
		return errors.Join(append(errs, err)...)
	}
	holder, err := waitHolder(rctx, insts)
	if err != nil {
		rcancel()
		wg.Wait()
		return errors.Join(append(errs, err)...)
	}
	fmt.Fprintln(stdout, "cluster nodes:")
	for _, n := range insts[0].proxy.Nodes() {
		fmt.Fprintf(stdout, "  %-16s %-8s %s\n", n.Addr, n.Role, slotText(n.Slots))
	}
	for _, n := range cluster.Spares() {
		fmt.Fprintf(stdout, "  %-16s %-8s\n", n.Addr, "spare")
	}
	for i, in := range insts {
		role := "backup"
		if i == holder {
			role = "VIP holder (GET /ha/vip answers 200 here)"
		}
		fmt.Fprintf(stdout, "instance p%d: %s, stats http://%s/ — %s\n", i+1, in.proxy.Addr(), in.stats.Addr(), role)
	}
	fmt.Fprintf(stdout, "endpoint: %s\n", insts[holder].proxy.Addr())
	fmt.Fprintf(stdout, "stats: http://%s/\n", insts[holder].stats.Addr())
	fmt.Fprintf(stdout, "try: redis-cli -p %d set hello world\n", insts[holder].proxy.Addr().(*net.TCPAddr).Port)
	fmt.Fprintf(stdout, "scale to 4 masters: curl -H 'Authorization: Bearer %s' -d '{\"masters\": 4}' http://%s/api/v1/scaler/scale\n",
		token, insts[holder].stats.Addr())
	fmt.Fprintln(stdout, "Ctrl-C stops everything.")
	wg.Wait()
	fmt.Fprintln(stdout, "stopped; removed", dir)
	return errors.Join(errs...)
}

// demoWait is how the demo waits for its parts: every 20 ms, 30 s at most.
var demoWait = poll.Options{Every: 20 * time.Millisecond, Timeout: 30 * time.Second}

func waitReady(ctx context.Context, p *proxy.Server) error {
	return poll.Until(ctx, "slotway to reach the cluster", demoWait, func(context.Context) (bool, string, error) {
		return p.Ready(), "slot map unknown or no master answers", nil
	})
}

// waitHolder waits until one instance holds the group's VIP.
func waitHolder(ctx context.Context, insts []*instance) (int, error) {
	holder := -1
	err := poll.Until(ctx, "an instance to claim the VIP", demoWait, func(context.Context) (bool, string, error) {
		for i, in := range insts {
			if in.group != nil && in.group.IsHolder() {
				holder = i
				return true, "", nil
			}
		}
		return false, "no holder yet", nil
	})
	return holder, err
}

func shiftPort(addr string, by int) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	p, _ := strconv.Atoi(port)
	if p == 0 {
		return addr // any free port, for each instance
	}
	return net.JoinHostPort(host, strconv.Itoa(p+by))
}

// orFree keeps addr when it can be bound, else picks a free port on its host.
func orFree(addr string) string {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		ln.Close()
		return addr
	}
	host, _, _ := net.SplitHostPort(addr)
	return net.JoinHostPort(host, "0")
}

func slotText(r [][2]int) string {
	if len(r) == 0 {
		return ""
	}
	n := 0
	s := ""
	for i, x := range r {
		n += x[1] - x[0] + 1
		if i < 3 {
			s += fmt.Sprintf(" %d-%d", x[0], x[1])
		}
	}
	return fmt.Sprintf("%5d slots%s", n, s)
}
