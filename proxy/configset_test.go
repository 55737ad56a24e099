package proxy_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/slotway/slotway/internal/ownkeys"
	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/proxy"
)

// TestConfigSetFanout: CONFIG SET through Slotway reaches every node,
// masters and replicas; a node that refuses makes the others roll back to
// their own previous values; CONFIG GET reports the masters' common value
// or their disagreement; RESETSTAT reaches every node.
func TestConfigSetFanout(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3, Replicas: 1})
	p := startProxy(t, c)
	ctx := context.Background()
	nodes := c.Nodes()
	if len(nodes) != 6 {
		t.Fatalf("%d nodes, want 6", len(nodes))
	}
	get := func(n *redistest.Node, param string) string {
		t.Helper()
		m, err := n.Client().ConfigGet(ctx, param).Result()
		if err != nil {
			t.Fatalf("CONFIG GET %s on %s: %v", param, n.Addr, err)
		}
		return m[param]
	}
	redistest.WaitFor(t, 20*time.Second, "the proxy to see all 6 nodes", func() bool {
		return len(p.Nodes()) == 6
	})

	r := dialRaw(t, p.Addr().String())
	// Pipelined with data commands: the replies stay in order, though the
	// CONFIG SET runs off the event loop.
	r.expect("fan-out in a pipeline", "SET cfg:a 1\r\nCONFIG SET notify-keyspace-events KEA maxmemory-policy allkeys-lru\r\nGET cfg:a\r\n",
		"+OK", "+OK", "1")
	for _, n := range nodes {
		if got := get(n, "maxmemory-policy"); got != "allkeys-lru" {
			t.Errorf("%s: maxmemory-policy %q after CONFIG SET through Slotway", n.Addr, got)
		}
		if got := get(n, "notify-keyspace-events"); got != "AKE" {
			t.Errorf("%s: notify-keyspace-events %q", n.Addr, got)
		}
	}
	r.expect("CONFIG GET of a fanned-out parameter", "CONFIG GET maxmemory-policy\r\n", "[maxmemory-policy allkeys-lru]")
	r.expect("CONFIG GET by pattern", "CONFIG GET notify-keyspace-*\r\n", "[notify-keyspace-events AKE]")

	// The values are kept with Slotway's state, for nodes added later.
	ownMaster, err := c.MasterOf(ctx, ownkeys.Slot)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := ownMaster.Client().HGetAll(ctx, ownkeys.Config).Result()
	if err != nil || kept["maxmemory-policy"] != "allkeys-lru" || kept["notify-keyspace-events"] != "KEA" {
		t.Errorf("kept values: %v, %v", kept, err)
	}

	// The masters disagree once one is changed behind Slotway's back.
	masters, err := c.Masters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := masters[0].Client().ConfigSet(ctx, "hz", "21").Err(); err != nil {
		t.Fatal(err)
	}
	r.send("CONFIG GET hz\r\n")
	if got := r.reply(); !strings.Contains(got, "slotway: the masters disagree") || !strings.Contains(got, masters[0].Addr+"=21") {
		t.Errorf("CONFIG GET hz with one master changed: %q", got)
	}

	// A node that refuses: one replica's default user may not CONFIG SET.
	// Every other node gets its previous values back, and the error names
	// the node.
	reps, err := c.Replicas(ctx, masters[1])
	if err != nil || len(reps) != 1 {
		t.Fatalf("replicas of %s: %v, %v", masters[1].Addr, reps, err)
	}
	refuser := reps[0]
	if err := refuser.Client().Do(ctx, "ACL", "SETUSER", "default", "-config|set").Err(); err != nil {
		t.Fatal(err)
	}
	before := map[string]string{}
	for _, n := range nodes {
		before[n.Addr] = get(n, "slowlog-max-len")
	}
	r.send("CONFIG SET maxmemory-policy volatile-lru slowlog-max-len 77\r\n")
	got := r.reply()
	if !strings.HasPrefix(got, "-NOPERM") || !strings.Contains(got, "node "+refuser.Addr) || !strings.Contains(got, "rolled back on 5 nodes") {
		t.Errorf("CONFIG SET refused by %s: %q", refuser.Addr, got)
	}
	for _, n := range nodes {
		if got := get(n, "maxmemory-policy"); got != "allkeys-lru" {
			t.Errorf("%s: maxmemory-policy %q after the rollback, want allkeys-lru", n.Addr, got)
		}
		if got := get(n, "slowlog-max-len"); got != before[n.Addr] {
			t.Errorf("%s: slowlog-max-len %q after the rollback, want %q", n.Addr, got, before[n.Addr])
		}
	}
	if kept, _ := ownMaster.Client().HGet(ctx, ownkeys.Config, "slowlog-max-len").Result(); kept != "" {
		t.Errorf("a refused CONFIG SET was kept: slowlog-max-len %q", kept)
	}
	if err := refuser.Client().Do(ctx, "ACL", "SETUSER", "default", "+@all").Err(); err != nil {
		t.Fatal(err)
	}

	// Refusals, with Redis's words where Redis would refuse too.
	steps := []struct{ send, want string }{
		{"CONFIG SET port 1\r\n", "-ERR slotway: CONFIG SET 'port' is refused: it identifies one node"},
		{"CONFIG SET cluster-node-timeout 100\r\n", "-ERR slotway: CONFIG SET 'cluster-node-timeout' is refused: it identifies one node"},
		{"CONFIG SET timeout 5\r\n", "-ERR slotway: CONFIG SET 'timeout' is refused: the proxy answers it for itself; set proxy.client_idle_timeout"},
		{"CONFIG SET no-such-param 1\r\n", "-ERR slotway: CONFIG SET 'no-such-param' is not fanned out"},
		{"CONFIG SET hz 10 hz 11\r\n", "-ERR CONFIG SET failed (possibly related to argument 'hz') - duplicate parameter"},
		{"CONFIG SET hz\r\n", "-ERR wrong number of arguments for 'config|set' command"},
		{"CONFIG SET maxmemory-policy sometimes\r\n", "-ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy')"},
		{"CONFIG REWRITE\r\n", "-ERR slotway: CONFIG REWRITE is refused"},
		{"MULTI\r\n", "+OK"},
		{"SAVE\r\n", "-ERR Command not allowed inside a transaction"},
		{"DISCARD\r\n", "+OK"},
	}
	for _, s := range steps {
		r.send(s.send)
		if got := r.reply(); !strings.HasPrefix(got, s.want) {
			t.Errorf("%q: got %q, want prefix %q", strings.TrimSpace(s.send), got, s.want)
		}
	}

	// RESETSTAT: every node's counters and the proxy's INFO counters.
	for i := range 50 {
		r.send("SET cfg:" + string(rune('a'+i%26)) + " x\r\n")
		r.reply()
	}
	r.expect("CONFIG RESETSTAT", "CONFIG RESETSTAT\r\n", "+OK")
	for _, n := range masters {
		stats, err := n.Client().Info(ctx, "commandstats").Result()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(stats, "cmdstat_set:") {
			t.Errorf("%s still counts SET after CONFIG RESETSTAT:\n%s", n.Addr, stats)
		}
	}
	r.send("INFO stats\r\n")
	if info := r.reply(); !strings.Contains(info, "total_commands_processed:0\r\n") && !strings.Contains(info, "total_commands_processed:1\r\n") {
		t.Errorf("INFO stats after CONFIG RESETSTAT:\n%s", info)
	}
}

// TestConfigSetRefused: proxy.config_set: refuse turns the fan-out off,
// and a proxy user without @admin may not use it.
func TestConfigSetRefused(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 2})
	p := startProxy(t, c, func(cfg *proxy.Config) {
		cfg.ConfigSet = "refuse"
	})
	r := dialRaw(t, p.Addr().String())
	r.send("CONFIG SET hz 15\r\n")
	if got := r.reply(); !strings.HasPrefix(got, "-ERR slotway: CONFIG SET is turned off (proxy.config_set: refuse)") {
		t.Errorf("CONFIG SET with config_set refuse: %q", got)
	}
	for _, n := range c.Nodes() {
		if hz, _ := n.Client().ConfigGet(context.Background(), "hz").Result(); hz["hz"] == "15" {
			t.Errorf("%s took a refused CONFIG SET", n.Addr)
		}
	}

	q := startProxy(t, c, func(cfg *proxy.Config) {
		cfg.Users = []proxy.UserConfig{{Name: "app", Password: "pw", Categories: []string{"@all", "-@admin"}}}
	})
	a := dialRaw(t, q.Addr().String())
	a.expect("AUTH", "AUTH app pw\r\n", "+OK")
	for _, cmd := range []string{"CONFIG SET hz 15\r\n", "CONFIG RESETSTAT\r\n", "CONFIG GET hz\r\n"} {
		a.send(cmd)
		if got := a.reply(); !strings.HasPrefix(got, "-NOPERM User app has no permissions to run the 'config|") {
			t.Errorf("%q by a user without @admin: %q", strings.TrimSpace(cmd), got)
		}
	}
}

// TestConfigKeptAcrossRestart: a node that restarts loses what CONFIG SET
// gave it; the proxy's health check sees its new run_id and gives it the
// parameters set through Slotway back.
func TestConfigKeptAcrossRestart(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	p := startProxy(t, c)
	ctx := context.Background()
	r := dialRaw(t, p.Addr().String())
	r.expect("CONFIG SET", "CONFIG SET notify-keyspace-events KEA slowlog-max-len 333\r\n", "+OK")
	masters, err := c.Masters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Restart a master that does not hold Slotway's own keys.
	own, err := c.MasterOf(ctx, ownkeys.Slot)
	if err != nil {
		t.Fatal(err)
	}
	victim := masters[0]
	if victim.Addr == own.Addr {
		victim = masters[1]
	}
	if err := c.Kill(victim); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(ctx, victim); err != nil {
		t.Fatal(err)
	}
	redistest.WaitFor(t, 60*time.Second, "the restarted node to get the kept parameters back", func() bool {
		m, err := victim.Client().ConfigGet(ctx, "*").Result()
		return err == nil && m["notify-keyspace-events"] == "AKE" && m["slowlog-max-len"] == "333"
	})
}
