package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slotway/slotway/internal/netnstest"
	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/internal/testutil"
)

const (
	vipIP      = "10.77.0.100"
	vipPort    = "7100"
	adminToken = "test-admin-token-0123456789"
)

// haInstance is one slotway process in its own namespace.
type haInstance struct {
	t    *testing.T
	host *netnstest.Host
	bin  string
	conf string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
}

func (in *haInstance) start() {
	in.t.Helper()
	f, err := os.OpenFile(in.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		in.t.Fatal(err)
	}
	defer f.Close()
	in.cmd = in.host.Command(in.bin, "run", "-c", in.conf, "-log-level", "debug")
	in.cmd.Stdout, in.cmd.Stderr = f, f
	if err := in.cmd.Start(); err != nil {
		in.t.Fatal(err)
	}
	in.done = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { _ = c.Wait(); close(done) }(in.cmd, in.done)
}

// signal sends sig to the slotway process (ip netns exec execs it, so the
// PID is slotway's own) and waits for it to exit.
func (in *haInstance) signal(sig syscall.Signal) {
	in.t.Helper()
	if in.cmd == nil {
		return
	}
	_ = in.cmd.Process.Signal(sig)
	select {
	case <-in.done:
	case <-time.After(15 * time.Second):
		_ = in.cmd.Process.Kill()
		<-in.done
		in.t.Errorf("%s did not exit after %v", in.host.Name, sig)
	}
	in.cmd = nil
}

// probe connects to the VIP from the client namespace every interval and
// records the outages it sees (first failure to next success).
type probe struct {
	mu      sync.Mutex
	outages []time.Duration
	ok      int
	fails   int
	down    time.Time
}

func (p *probe) run(ctx context.Context, client *netnstest.Host, interval time.Duration) {
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				p.record(now, pingFrom(client))
			}
		}
	}()
}

func (p *probe) record(now time.Time, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case ok && !p.down.IsZero():
		p.outages = append(p.outages, now.Sub(p.down))
		p.down = time.Time{}
		p.ok++
	case ok:
		p.ok++
	case p.down.IsZero():
		p.down = now
		p.fails++
	default:
		p.fails++
	}
}

// worst returns the longest outage seen (an open one counts up to now).
func (p *probe) worst() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	w := time.Duration(0)
	for _, o := range p.outages {
		w = max(w, o)
	}
	if !p.down.IsZero() {
		w = max(w, time.Since(p.down))
	}
	return w
}

func (p *probe) healthy() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.down.IsZero() && p.ok > 0
}

func TestHAFailoverInNamespaces(t *testing.T) {
	netnstest.Require(t)
	requireRedis(t)
	runs := 2
	if v, err := strconv.Atoi(os.Getenv("SLOTWAY_HA_RUNS")); err == nil && v > 0 {
		runs = v
	}
	n := netnstest.New(t)
	redisHost := n.AddHost("redis", "10.77.0.2")
	client := n.AddHost("client", "10.77.0.50")
	cluster := redistest.New(t, redistest.Options{Masters: 3, Host: redisHost.IP, Wrap: redisHost.Wrap(), Dial: redisHost.Dial})
	insts := startHAGroup(t, n, cluster, buildBinary(t), "p1", "p2", "p3")

	holders := func() []int {
		var hs []int
		for i, in := range insts {
			if in.host.HasAddr(vipIP) {
				hs = append(hs, i)
			}
		}
		return hs
	}
	// oneHolder waits until exactly one member carries the VIP, it serves,
	// and every running member names it as the holder.
	oneHolder := func(what string) int {
		t.Helper()
		var hs []int
		redistest.WaitFor(t, 30*time.Second, what, func() bool {
			hs = holders()
			if len(hs) != 1 || !pingFrom(client) {
				return false
			}
			for _, in := range insts {
				if in.cmd != nil && groupHolder(client, in.host.IP) != insts[hs[0]].host.Name {
					return false
				}
			}
			return true
		})
		return hs[0]
	}
	// The first member whose proxy is ready is the only healthy candidate,
	// so under load it may not be p1; the holder is sticky after that.
	first := oneHolder("one VIP holder serving PING")
	t.Logf("first holder: %s", insts[first].host.Name)

	type result struct {
		scenario string
		outages  []time.Duration
	}
	var results []result
	scenario := func(name string, fail func(in *haInstance), heal func(in *haInstance)) {
		r := result{scenario: name}
		for run := range runs {
			holder := oneHolder(fmt.Sprintf("%s run %d: one holder before", name, run+1))
			ctx, cancel := context.WithCancel(context.Background())
			p := &probe{}
			p.run(ctx, client, 15*time.Millisecond)
			redistest.WaitFor(t, 10*time.Second, "probe to see the VIP", p.healthy)
			t.Logf("%s %s run %d: failing holder %s", time.Now().Format("15:04:05.000"), name, run+1, insts[holder].host.Name)
			fail(insts[holder])
			redistest.WaitFor(t, 30*time.Second, name+": a new holder serving", func() bool {
				hs := holders()
				return p.healthy() && len(hs) >= 1 && !slices.Contains(hs, holder)
			})
			cancel()
			r.outages = append(r.outages, p.worst())
			heal(insts[holder])
			// Whatever the scenario, the group ends with exactly one holder.
			oneHolder(name + ": exactly one holder after healing")
		}
		results = append(results, r)
	}

	scenario("kill -9 of the holder", func(in *haInstance) { in.signal(syscall.SIGKILL) }, func(in *haInstance) { in.start() })
	scenario("SIGTERM of the holder", func(in *haInstance) { in.signal(syscall.SIGTERM) }, func(in *haInstance) { in.start() })
	scenario("POST /ha/handover", func(in *haInstance) {
		hc := http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: client.Dial}}
		for _, c := range []struct {
			auth string
			want int
		}{{"", 401}, {"Bearer wrong", 403}, {"Bearer " + adminToken, 200}} {
			req, _ := http.NewRequest("POST", "http://"+in.host.IP+":8100/ha/handover", nil)
			if c.auth != "" {
				req.Header.Set("Authorization", c.auth)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatalf("handover: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Fatalf("handover with %q: %d %s, want %d", c.auth, resp.StatusCode, body, c.want)
			}
		}
	}, func(in *haInstance) {})
	scenario("holder's link down", func(in *haInstance) {
		if out, err := in.host.Run("link", "set", "eth0", "down"); err != nil {
			t.Fatalf("link down: %v %s", err, out)
		}
	}, func(in *haInstance) {
		// The cut-off holder fenced itself: it must have dropped the VIP.
		redistest.WaitFor(t, 10*time.Second, "the cut-off holder to drop the VIP", func() bool { return !in.host.HasAddr(vipIP) })
		if out, err := in.host.Run("link", "set", "eth0", "up"); err != nil {
			t.Fatalf("link up: %v %s", err, out)
		}
	})

	// A stray copy of the VIP on a non-holder is removed by its reconcile loop.
	holder := oneHolder("one holder before the stray-VIP check")
	other := insts[(holder+1)%len(insts)]
	if out, err := other.host.Run("addr", "add", vipIP+"/32", "dev", "eth0"); err != nil {
		t.Fatalf("add a stray VIP: %v %s", err, out)
	}
	redistest.WaitFor(t, 10*time.Second, "the stray VIP on "+other.host.Name+" to be removed", func() bool { return !other.host.HasAddr(vipIP) })

	if _, err := exec.LookPath("nft"); err != nil {
		if testutil.CI() {
			t.Fatal("nft (nftables) is required under CI=true for the gossip and packet-loss scenarios")
		}
		t.Log("nft not installed locally: the gossip-blocked and packet-loss scenarios did not run")
	} else {
		// Gossip blocked on the holder, data path up: the holder must fence
		// itself before another member claims, so there is never a moment
		// with two holders.
		holder = oneHolder("one holder before blocking gossip")
		h := insts[holder].host
		t.Logf("%s blocking gossip on holder %s", time.Now().Format("15:04:05.000"), h.Name)
		nft(t, h, "add table inet sw",
			"add chain inet sw in { type filter hook input priority 0 ; }",
			"add chain inet sw out { type filter hook output priority 0 ; }",
			"add rule inet sw in udp dport 7946 drop", "add rule inet sw in tcp dport 7946 drop",
			"add rule inet sw out udp dport 7946 drop", "add rule inet sw out tcp dport 7946 drop")
		var both time.Duration
		last := time.Now()
		redistest.WaitFor(t, 30*time.Second, "the majority to elect while the holder is cut off", func() bool {
			now := time.Now()
			hs := holders()
			if len(hs) > 1 {
				both += now.Sub(last)
			}
			last = now
			return len(hs) == 1 && hs[0] != holder && pingFrom(client)
		})
		t.Logf("gossip blocked on the holder: time with two VIP holders: %v", both)
		if both > 0 {
			t.Errorf("two members held the VIP for %v while gossip was blocked", both)
		}
		nft(t, h, "delete table inet sw")
		oneHolder("one holder after gossip is restored")

		// 30 % packet loss on the holder's gossip: no failover.
		holder = oneHolder("one holder before packet loss")
		h = insts[holder].host
		t.Logf("%s 30%% loss on holder %s", time.Now().Format("15:04:05.000"), h.Name)
		nft(t, h, "add table inet sw",
			"add chain inet sw in { type filter hook input priority 0 ; }",
			"add chain inet sw out { type filter hook output priority 0 ; }",
			"add rule inet sw in udp dport 7946 numgen random mod 100 < 30 drop",
			"add rule inet sw out udp dport 7946 numgen random mod 100 < 30 drop")
		// Sample the holders every 20 ms over a 15 s observation window.
		window := time.After(15 * time.Second)
		tick := time.NewTicker(20 * time.Millisecond)
	observe:
		for {
			select {
			case <-window:
				break observe
			case <-tick.C:
			}
			if hs := holders(); len(hs) != 1 || hs[0] != holder {
				t.Fatalf("spurious failover under 30%% packet loss: holders %v, was %s", hs, h.Name)
			}
		}
		tick.Stop()
		nft(t, h, "delete table inet sw")
		t.Logf("30%% gossip packet loss on the holder for 15 s: no failover")
	}

	t.Logf("client-visible outage through the VIP (probe: TCP connect + PING every 15 ms), %d runs each:", runs)
	for _, r := range results {
		s := slices.Clone(r.outages)
		slices.Sort(s)
		t.Logf("  %-24s min %6v  median %6v  max %6v", r.scenario, s[0].Round(time.Millisecond),
			s[len(s)/2].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond))
	}
}

// startHAGroup starts one slotway per name, each in its own namespace on
// the bridge (10.77.0.11, .12, ...), all in one group with a netlink VIP.
func startHAGroup(t *testing.T, n *netnstest.Net, cluster *redistest.Cluster, bin string, names ...string) []*haInstance {
	t.Helper()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(tokenFile, []byte(adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var insts []*haInstance
	for i, name := range names {
		h := n.AddHost(name, "10.77.0."+strconv.Itoa(11+i))
		var peers []string
		for j := range names {
			if j != i {
				peers = append(peers, fmt.Sprintf("%q", "10.77.0."+strconv.Itoa(11+j)+":7946"))
			}
		}
		var conf string
		if strings.HasPrefix(name, "w") { // a witness: votes, runs no proxy
			conf = fmt.Sprintf("stats:\n  listen: %s:8100\n  admin_token_file: %s\nha:\n  name: %s\n  bind: %s:7946\n  peers: [%s]\n  witness: true\n",
				h.IP, tokenFile, name, h.IP, strings.Join(peers, ", "))
		} else {
			conf = fmt.Sprintf(`proxy:
  listen: 0.0.0.0:%s
  cluster:
    seeds: [%q]
stats:
  listen: %s:8100
  admin_token_file: %s
ha:
  name: %s
  bind: %s:7946
  peers: [%s]
  priority: %d
  vip:
    mode: netlink
    address: %s/24
    interface: eth0
`, vipPort, cluster.Seeds()[0], h.IP, tokenFile, name, h.IP, strings.Join(peers, ", "), 150-10*i, vipIP)
		}
		path := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		in := &haInstance{t: t, host: h, bin: bin, conf: path, log: filepath.Join(dir, name+".log")}
		insts = append(insts, in)
		in.start()
	}
	t.Cleanup(func() {
		for _, in := range insts {
			in.signal(syscall.SIGKILL)
		}
		if keep := os.Getenv("SLOTWAY_TEST_KEEP_LOGS"); keep != "" {
			for _, in := range insts {
				b, _ := os.ReadFile(in.log)
				_ = os.WriteFile(filepath.Join(keep, in.host.Name+".log"), b, 0o644)
			}
		}
		if t.Failed() || os.Getenv("SLOTWAY_TEST_LOGS") != "" {
			for _, in := range insts {
				b, _ := os.ReadFile(in.log)
				t.Logf("--- %s log:\n%s", in.host.Name, tail(string(b), 60))
			}
		}
	})
	return insts
}

// TestHATwoNodePartitionHeal: two instances and no witness keep serving on
// both sides of a partition (both reach the cluster: the two-node
// tie-breaker), so both hold the VIP; when it heals, the higher (term,
// rank) keeps it within a second and announces it again.
func TestHATwoNodePartitionHeal(t *testing.T) {
	netnstest.Require(t)
	requireRedis(t)
	requireNft(t)
	n := netnstest.New(t)
	redisHost := n.AddHost("redis", "10.77.0.2")
	client := n.AddHost("client", "10.77.0.50")
	cluster := redistest.New(t, redistest.Options{Masters: 3, Host: redisHost.IP, Wrap: redisHost.Wrap(), Dial: redisHost.Dial})
	insts := startHAGroup(t, n, cluster, buildBinary(t), "p1", "p2")
	hasVIP := func(in *haInstance) bool { return in.host.HasAddr(vipIP) }
	var holder *haInstance
	redistest.WaitFor(t, 30*time.Second, "one member to hold the VIP and the other to agree", func() bool {
		for i, in := range insts {
			other := insts[1-i]
			if hasVIP(in) && !hasVIP(other) && groupHolder(client, other.host.IP) == in.host.Name {
				holder = in
				return true
			}
		}
		return false
	})
	nft(t, holder.host, "add table inet sw",
		"add chain inet sw in { type filter hook input priority 0 ; }",
		"add chain inet sw out { type filter hook output priority 0 ; }",
		"add rule inet sw in udp dport 7946 drop", "add rule inet sw in tcp dport 7946 drop",
		"add rule inet sw out udp dport 7946 drop", "add rule inet sw out tcp dport 7946 drop")
	redistest.WaitFor(t, 30*time.Second, "both sides of the partition to hold the VIP", func() bool {
		return hasVIP(insts[0]) && hasVIP(insts[1])
	})
	garpBefore := map[string]float64{}
	for _, in := range insts {
		garpBefore[in.host.Name] = metricFrom(client, in.host.IP, "slotway_ha_garp_sent_total")
	}
	healed := time.Now()
	nft(t, holder.host, "delete table inet sw")
	var winner *haInstance
	redistest.WaitFor(t, 30*time.Second, "one holder after the heal", func() bool {
		a, b := hasVIP(insts[0]), hasVIP(insts[1])
		if a != b {
			winner = insts[0]
			if b {
				winner = insts[1]
			}
			return true
		}
		return false
	})
	// Reported, not asserted: a wall-clock bound fails on a loaded machine
	// for reasons that are not the election's.
	t.Logf("partition healed: one holder (%s) after %v", winner.host.Name, time.Since(healed).Round(time.Millisecond))
	loser := insts[0]
	if loser == winner {
		loser = insts[1]
	}
	redistest.WaitFor(t, 30*time.Second, "both members to agree on the kept holder", func() bool {
		return groupHolder(client, winner.host.IP) == winner.host.Name && groupHolder(client, loser.host.IP) == winner.host.Name
	})
	if hasVIP(loser) || !hasVIP(winner) {
		t.Errorf("after the heal %s holds the VIP: %v, %s: %v; want only %s", winner.host.Name, hasVIP(winner), loser.host.Name, hasVIP(loser), winner.host.Name)
	}
	redistest.WaitFor(t, 10*time.Second, "the kept holder to announce the VIP again", func() bool {
		return metricFrom(client, winner.host.IP, "slotway_ha_garp_sent_total") > garpBefore[winner.host.Name]
	})
}

// TestHATwoNodesAndWitness: with a witness, two proxies keep a majority
// when one dies; the witness votes and never holds the VIP.
func TestHATwoNodesAndWitness(t *testing.T) {
	netnstest.Require(t)
	requireRedis(t)
	n := netnstest.New(t)
	redisHost := n.AddHost("redis", "10.77.0.2")
	client := n.AddHost("client", "10.77.0.50")
	cluster := redistest.New(t, redistest.Options{Masters: 3, Host: redisHost.IP, Wrap: redisHost.Wrap(), Dial: redisHost.Dial})
	insts := startHAGroup(t, n, cluster, buildBinary(t), "p1", "p2", "w3")
	p1, p2, w := insts[0], insts[1], insts[2]
	redistest.WaitFor(t, 30*time.Second, "a proxy to hold the VIP, agreed by the other and the witness", func() bool {
		h := groupHolder(client, w.host.IP)
		return (h == "p1" || h == "p2") && groupHolder(client, p1.host.IP) == h && groupHolder(client, p2.host.IP) == h
	})
	if groupHolder(client, w.host.IP) == "p2" {
		p1, p2 = p2, p1 // p1 names the holder from here on
	}
	p1.signal(syscall.SIGKILL)
	redistest.WaitFor(t, 30*time.Second, p2.host.Name+" to take over with the witness's vote", func() bool {
		return p2.host.HasAddr(vipIP) && pingFrom(client) && groupHolder(client, w.host.IP) == p2.host.Name
	})
	if w.host.HasAddr(vipIP) {
		t.Error("the witness holds the VIP")
	}
	// Without p1, p2 still has its majority (itself and the witness); a
	// kill of the witness leaves p2 alone: it must fence.
	w.signal(syscall.SIGKILL)
	redistest.WaitFor(t, 30*time.Second, p2.host.Name+", alone of three, to drop the VIP", func() bool { return !p2.host.HasAddr(vipIP) })
}

func requireNft(t *testing.T) { t.Helper(); requireTool(t, "nft", "nftables") }

// metricFrom reads one unlabelled metric from an instance's /metrics.
func metricFrom(client *netnstest.Host, ip, name string) float64 {
	hc := http.Client{Timeout: 500 * time.Millisecond, Transport: &http.Transport{DialContext: client.Dial, DisableKeepAlives: true}}
	resp, err := hc.Get("http://" + ip + ":8100/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

// groupHolder asks an instance's /ha/status (from the client namespace)
// whom it sees holding the VIP.
func groupHolder(client *netnstest.Host, ip string) string {
	hc := http.Client{Timeout: 200 * time.Millisecond, Transport: &http.Transport{DialContext: client.Dial, DisableKeepAlives: true}}
	resp, err := hc.Get("http://" + ip + ":8100/ha/status")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var st struct {
		Holder string `json:"holder"`
	}
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return ""
	}
	return st.Holder
}

// nft runs nft commands in the host's namespace.
func nft(t *testing.T, h *netnstest.Host, cmds ...string) {
	t.Helper()
	for _, c := range cmds {
		args := append([]string{"netns", "exec", h.NS, "nft"}, strings.Fields(c)...)
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("nft %s: %v\n%s", c, err, out)
		}
	}
}

func pingFrom(client *netnstest.Host) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	c, err := client.Dial(ctx, "tcp", vipIP+":"+vipPort)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "+PONG\r\n"
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
