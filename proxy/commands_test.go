package proxy_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/hashslot"
	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/proxy"
)

// Tests of the commands beyond single-slot routing: split and fan-out,
// SCAN, transactions, cluster emulation, replicas, users and limits.

// TestSplitMultiKey: MGET, MSET, DEL, UNLINK, EXISTS and TOUCH across
// slots are split per slot and merged with Redis's semantics; pipelined
// with other commands, replies stay in order.
func TestSplitMultiKey(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	p := startProxy(t, c)
	rc := p.client(t)
	ctx := context.Background()
	var keys []string
	var pairs []any
	for i := range 200 {
		k := fmt.Sprintf("split:%d", i)
		keys = append(keys, k)
		pairs = append(pairs, k, "v"+strconv.Itoa(i))
	}
	if err := rc.MSet(ctx, pairs...).Err(); err != nil {
		t.Fatalf("MSET over many slots: %v", err)
	}
	query := append([]string{"missing:a"}, keys...)
	query = append(query, "missing:b", keys[0])
	vals, err := rc.MGet(ctx, query...).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(vals) != len(query) || vals[0] != nil || vals[len(vals)-2] != nil || vals[len(vals)-1] != "v0" {
		t.Fatalf("MGET edges: %v ... (%d values)", vals[:2], len(vals))
	}
	for i, k := range keys {
		if vals[i+1] != "v"+strconv.Itoa(i) {
			t.Fatalf("MGET %s = %v, want v%d (order lost)", k, vals[i+1], i)
		}
	}
	if n := rc.Exists(ctx, keys[0], keys[1], keys[0], "missing:c").Val(); n != 3 {
		t.Errorf("EXISTS with a duplicate = %d, want 3", n)
	}
	if n := rc.Touch(ctx, keys[:50]...).Val(); n != 50 {
		t.Errorf("TOUCH = %d, want 50", n)
	}
	if n := rc.Del(ctx, keys[:100]...).Val(); n != 100 {
		t.Errorf("DEL = %d, want 100", n)
	}
	if n := rc.Unlink(ctx, append(slices.Clone(keys[50:150]), "missing:d")...).Val(); n != 50 {
		t.Errorf("UNLINK = %d, want 50", n)
	}
	// Pipelined with plain commands: every reply in its place.
	pipe := rc.Pipeline()
	g1 := pipe.Get(ctx, keys[199])
	mg := pipe.MGet(ctx, keys[150], keys[151], keys[0])
	g2 := pipe.Echo(ctx, "after")
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		t.Fatal(err)
	}
	if g1.Val() != "v199" || g2.Val() != "after" || fmt.Sprint(mg.Val()) != "[v150 v151 <nil>]" {
		t.Errorf("pipeline: %q %v %q", g1.Val(), mg.Val(), g2.Val())
	}
	// Atomic multi-key commands are never split.
	if err := rc.MSetNX(ctx, "x:1", "a", "y:2", "b").Err(); err == nil || !strings.HasPrefix(err.Error(), "CROSSSLOT") {
		t.Errorf("MSETNX across slots: %v, want CROSSSLOT", err)
	}
	if got := p.counter(t, "slotway_proxy_split_commands_total"); got < 7 {
		t.Errorf("split counter %v", got)
	}
}

func TestCrossSlotRejectPolicy(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	p := startProxy(t, c, func(cfg *proxy.Config) { cfg.CrossSlot = map[string]string{"mget": "reject"} })
	rc := p.client(t)
	ctx := context.Background()
	if err := rc.MGet(ctx, "a", "b").Err(); err == nil || !strings.HasPrefix(err.Error(), "CROSSSLOT") {
		t.Errorf("MGET with policy reject: %v, want CROSSSLOT", err)
	}
	if err := rc.MSet(ctx, "a", "1", "b", "2").Err(); err != nil {
		t.Errorf("MSET still splits: %v", err)
	}
}

// TestFanout: keyspace-wide commands run on every master and merge.
func TestFanout(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	p := startProxy(t, c)
	rc := p.client(t)
	ctx := context.Background()
	for i := range 300 {
		if err := rc.Set(ctx, "fan:"+strconv.Itoa(i), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if n := rc.DBSize(ctx).Val(); n != 300 {
		t.Errorf("DBSIZE = %d, want 300", n)
	}
	keys, err := rc.Keys(ctx, "fan:*").Result()
	if err != nil || len(keys) != 300 {
		t.Errorf("KEYS fan:* = %d keys, %v", len(keys), err)
	}
	if k, err := rc.RandomKey(ctx).Result(); err != nil || !strings.HasPrefix(k, "fan:") {
		t.Errorf("RANDOMKEY = %q, %v", k, err)
	}
	// A script loaded through the proxy runs wherever its key lives.
	sha, err := rc.ScriptLoad(ctx, "return redis.call('GET', KEYS[1])").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"fan:1", "fan:2", "fan:3", "fan:4"} {
		if v, err := rc.EvalSha(ctx, sha, []string{k}).Result(); err != nil || v != "v" {
			t.Errorf("EVALSHA on %s: %v, %v", k, v, err)
		}
	}
	if ex := rc.ScriptExists(ctx, sha, "0000000000000000000000000000000000000000").Val(); fmt.Sprint(ex) != "[true false]" {
		t.Errorf("SCRIPT EXISTS = %v", ex)
	}
	masters, _ := c.Masters(ctx)
	for _, m := range masters {
		if ok := m.Client().ScriptExists(ctx, sha).Val(); !ok[0] {
			t.Errorf("master %s lacks the script", m.Addr)
		}
	}
	if err := rc.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if n := rc.DBSize(ctx).Val(); n != 0 {
		t.Errorf("DBSIZE after FLUSHALL = %d", n)
	}

	q := startProxy(t, c, func(cfg *proxy.Config) { cfg.DisableFlush, cfg.KeysLimit = true, 10 })
	qc := q.client(t)
	if err := qc.FlushAll(ctx).Err(); err == nil || !strings.Contains(err.Error(), "disabled") {
		t.Errorf("FLUSHALL with disable_flush: %v", err)
	}
	for i := range 20 {
		qc.Set(ctx, "lim:"+strconv.Itoa(i), "v", 0)
	}
	if err := qc.Keys(ctx, "lim:*").Err(); err == nil || !strings.Contains(err.Error(), "keys_limit") {
		t.Errorf("KEYS over keys_limit: %v", err)
	}
}

// TestScan: a full SCAN through the proxy returns every key at least once,
// the same set as KEYS *, and a cursor continues on another instance.
func TestScan(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	p := startProxy(t, c)
	p2 := startProxy(t, c)
	rc, rc2 := p.client(t), p2.client(t)
	ctx := context.Background()
	const n = 50000
	pipe := rc.Pipeline()
	for i := range n {
		pipe.Set(ctx, "scan:"+strconv.Itoa(i), "v", 0)
		if i%5000 == 4999 {
			if _, err := pipe.Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range 10 {
		pipe.HSet(ctx, "hscan:"+strconv.Itoa(i), "f", "v")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var cursor uint64
	calls := 0
	for {
		cl := rc
		if calls%2 == 1 {
			cl = rc2 // alternate instances: the cursor is valid on both
		}
		keys, next, err := cl.Scan(ctx, cursor, "scan:*", 1000).Result()
		if err != nil {
			t.Fatal(err)
		}
		calls++
		for _, k := range keys {
			seen[k] = true
		}
		if next == 0 {
			break
		}
		cursor = next
		if calls > 10000 {
			t.Fatal("SCAN does not end")
		}
	}
	all, err := rc.Keys(ctx, "scan:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != n || len(all) != n {
		t.Fatalf("SCAN saw %d distinct keys, KEYS %d, want %d", len(seen), len(all), n)
	}
	for _, k := range all {
		if !seen[k] {
			t.Fatalf("SCAN missed %s", k)
		}
	}
	var typed []string
	cursor = 0
	for {
		keys, next, err := rc.ScanType(ctx, cursor, "*", 100000, "hash").Result()
		if err != nil {
			t.Fatal(err)
		}
		typed = append(typed, keys...)
		if cursor = next; cursor == 0 {
			break
		}
	}
	if len(typed) != 10 {
		t.Errorf("SCAN TYPE hash found %d keys, want 10: %v", len(typed), typed)
	}
	t.Logf("full SCAN of %d keys over 3 masters in %d calls, alternating two instances", n, calls)
}

// TestClusterClientThroughSlotway: go-redis's ClusterClient pointed at
// Slotway discovers one node (the proxy) owning every slot and works.
func TestClusterClientThroughSlotway(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	p := startProxy(t, c)
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{p.Addr().String()}, MaxRedirects: 0})
	defer cc.Close()
	ctx := context.Background()
	//lint:ignore SA1019 CLUSTER SLOTS is what cluster clients still send; it is the command under test.
	slots, err := cc.ClusterSlots(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(slots) != 1 || slots[0].Start != 0 || slots[0].End != 16383 || slots[0].Nodes[0].Addr != p.Addr().String() {
		t.Fatalf("CLUSTER SLOTS = %+v, want one node at %s owning 0-16383", slots, p.Addr())
	}
	for i := range 200 {
		k := "cc:" + strconv.Itoa(i)
		if err := cc.Set(ctx, k, i, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
		if v, err := cc.Get(ctx, k).Int(); err != nil || v != i {
			t.Fatalf("GET %s = %d, %v", k, v, err)
		}
	}
	if s := cc.ClusterKeySlot(ctx, "foo").Val(); s != 12182 {
		t.Errorf("CLUSTER KEYSLOT foo = %d", s)
	}
	info := cc.ClusterInfo(ctx).Val()
	if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:1") {
		t.Errorf("CLUSTER INFO:\n%s", info)
	}
	// A real node address never leaks.
	nodes := cc.ClusterNodes(ctx).Val()
	for _, n := range c.Nodes() {
		if strings.Contains(nodes, n.Addr) {
			t.Errorf("CLUSTER NODES leaks backend %s", n.Addr)
		}
	}
}

// TestAuthAndLimits: proxy users, NOAUTH before AUTH, read-only and
// category-limited users, max_clients and the idle timeout.
func TestAuthAndLimits(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	readerHash := sha256.Sum256([]byte("r-pass"))
	p := startProxy(t, c, func(cfg *proxy.Config) {
		cfg.Users = []proxy.UserConfig{
			{Name: "default", Password: "s3cret"},
			{Name: "reader", PasswordSHA256: hex.EncodeToString(readerHash[:]), ReadOnly: true},
			{Name: "strings", Password: "x", Categories: []string{"@string", "@connection", "-@dangerous"}},
		}
		cfg.MaxClients = 20
		cfg.ClientIdleTimeout = 2 * time.Second
	})
	r := dialRaw(t, p.Addr().String())
	steps := []struct{ send, want string }{
		{"GET a\r\n", "-NOAUTH Authentication required."},
		{"PING\r\n", "-NOAUTH Authentication required."},
		{"HELLO 2\r\n", "-NOAUTH HELLO must be called with the client already authenticated"},
		{"AUTH wrong\r\n", "-WRONGPASS invalid username-password pair"},
		{"AUTH nobody s3cret\r\n", "-WRONGPASS"},
		{"AUTH s3cret\r\n", "+OK"},
		{"SET a 1\r\n", "+OK"},
		{"AUTH reader r-pass\r\n", "+OK"},
		{"GET a\r\n", "1"},
		{"SET a 2\r\n", "-NOPERM User reader has no permissions to run the 'set' command"},
		{"AUTH strings x\r\n", "+OK"},
		{"GET a\r\n", "1"},
		{"HSET h f v\r\n", "-NOPERM User strings has no permissions to run the 'hset' command"},
		{"FLUSHALL\r\n", "-NOPERM"},
		{"CLIENT KILL ID 12345\r\n", "-NOPERM User strings has no permissions to run the 'client|kill' command"},
		{"CONFIG GET *\r\n", "-NOPERM"},
		{"HELLO 3 AUTH nobody x\r\n", "-WRONGPASS"},
		{"HELLO 3 AUTH reader r-pass\r\n", "{server redis"},
		{"SET a 3\r\n", "-NOPERM User reader"},
		{"HELLO 2\r\n", "[server redis"},
	}
	for _, s := range steps {
		r.send(s.send)
		if got := r.reply(); !strings.HasPrefix(got, s.want) {
			t.Errorf("%q: got %q, want %q", strings.TrimSpace(s.send), got, s.want)
		}
	}
	// go-redis with a username and password (it sends HELLO 3 AUTH).
	gc := p.client(t, func(o *redis.Options) { o.Username, o.Password = "default", "s3cret" })
	if err := gc.Set(context.Background(), "b", "1", 0).Err(); err != nil {
		t.Fatalf("go-redis with credentials: %v", err)
	}
	// The idle timeout closes a silent client.
	idle := dialRaw(t, p.Addr().String())
	idle.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := idle.rd.ReadByte(); err == nil {
		t.Error("an idle client was not closed")
	}
	// max_clients: past the limit a connection is refused with an error.
	var conns []*rawConn
	for range 25 {
		conns = append(conns, dialRaw(t, p.Addr().String()))
	}
	refused := 0
	for _, rc := range conns {
		rc.c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if line, err := rc.rd.ReadString('\n'); err == nil && strings.HasPrefix(line, "-ERR max number of clients reached") {
			refused++
		}
	}
	if refused == 0 {
		t.Error("no connection refused past max_clients 20")
	}
}

// TestReadFromReplicas: with read_from replica or prefer-replica, reads
// are served by the replicas. When a master has no healthy replica,
// replica answers -CLUSTERDOWN naming that master and prefer-replica reads
// from the master.
func TestReadFromReplicas(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3, Replicas: 1})
	strict := startProxy(t, c, func(cfg *proxy.Config) { cfg.ReadFrom = "replica" })
	prefer := startProxy(t, c, func(cfg *proxy.Config) { cfg.ReadFrom = "prefer-replica" })
	src, prc := strict.client(t), prefer.client(t)
	ctx := context.Background()
	for i := range 300 {
		if err := src.Set(ctx, "rr:"+strconv.Itoa(i), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	masters, _ := c.Masters(ctx)
	var replicas []*redistest.Node
	replicaOf := map[*redistest.Node]*redistest.Node{}
	for _, m := range masters {
		// Replication is ordered: once a write of this connection has
		// reached the replica, the proxy's writes before it have too.
		ranges, err := c.SlotRanges(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		key := ""
		for i := 0; key == ""; i++ {
			k := "rr-sync:" + strconv.Itoa(i)
			for _, r := range ranges {
				if s := hashslot.Of([]byte(k)); s >= r.Start && s <= r.End {
					key = k
				}
			}
		}
		conn := m.Client().Conn()
		err = conn.Set(ctx, key, "1", 0).Err()
		if err == nil {
			err = conn.Do(ctx, "WAIT", 1, 5000).Err()
		}
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		r, _ := c.Replicas(ctx, m)
		replicas = append(replicas, r...)
		replicaOf[m] = r[0]
	}
	// Reads go to a replica only once the health checker has seen its
	// replication link up.
	redistest.WaitFor(t, 30*time.Second, "the proxies to see every replica in sync", func() bool {
		for _, p := range []*testProxy{strict, prefer} {
			h := p.Health()
			for _, r := range replicas {
				if nh := h[r.Addr]; !nh.Up || nh.Info.LinkStatus != "up" {
					return false
				}
			}
		}
		return true
	})
	getCalls := func(nodes ...*redistest.Node) (sum int64) {
		for _, n := range nodes {
			info := n.Client().Info(ctx, "commandstats").Val()
			for line := range strings.SplitSeq(info, "\n") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_get:calls="); ok {
					calls, _ := strconv.ParseInt(v[:strings.IndexByte(v, ',')], 10, 64)
					sum += calls
				}
			}
		}
		return sum
	}
	for _, rc := range []*redis.Client{src, prc} {
		masterBefore, replicaBefore := getCalls(masters...), getCalls(replicas...)
		for i := range 300 {
			if v, err := rc.Get(ctx, "rr:"+strconv.Itoa(i)).Result(); err != nil || v != "v" {
				t.Fatalf("GET rr:%d = %q, %v", i, v, err)
			}
		}
		if m, r := getCalls(masters...)-masterBefore, getCalls(replicas...)-replicaBefore; m != 0 || r < 300 {
			t.Errorf("GETs: %d on replicas, %d on masters; want all 300 on replicas", r, m)
		}
	}

	// The replica of rr:0's master gone: that master has no healthy replica.
	m, err := c.MasterOf(ctx, hashslot.Of([]byte("rr:0")))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(replicaOf[m]); err != nil {
		t.Fatal(err)
	}
	redistest.WaitFor(t, 30*time.Second, "the proxies to see the replica down", func() bool {
		return !strict.Health()[replicaOf[m].Addr].Up && !prefer.Health()[replicaOf[m].Addr].Up
	})
	other := ""
	for i := 1; other == ""; i++ {
		if o, err := c.MasterOf(ctx, hashslot.Of([]byte("rr:"+strconv.Itoa(i)))); err == nil && o != m {
			other = "rr:" + strconv.Itoa(i)
		}
	}
	err = src.Get(ctx, "rr:0").Err()
	if want := "CLUSTERDOWN slotway: no healthy replica of master " + m.Addr + " "; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("read_from replica, GET of a master without a healthy replica: %v, want %q...", err, want)
	}
	if v, err := src.Get(ctx, other).Result(); err != nil || v != "v" {
		t.Errorf("read_from replica, GET %s of a master with its replica: %q, %v", other, v, err)
	}
	before := getCalls(m)
	if v, err := prc.Get(ctx, "rr:0").Result(); err != nil || v != "v" {
		t.Errorf("read_from prefer-replica, GET of a master without a healthy replica: %q, %v", v, err)
	}
	if n := getCalls(m) - before; n != 1 {
		t.Errorf("read_from prefer-replica: %d GETs on the master, want 1", n)
	}
}

// TestTransactions: MULTI/EXEC on the master of the transaction's slot,
// WATCH, DISCARD, CROSSSLOT inside a transaction aborting EXEC, and order
// kept around a transaction in one pipeline.
func TestTransactions(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	p := startProxy(t, c)
	r := dialRaw(t, p.Addr().String())
	r.expect("pipelined transaction", "SET {u}n 1\r\nMULTI\r\nINCR {u}n\r\nGET {u}n\r\nEXEC\r\nGET {u}n\r\n", "+OK", "+OK", "+QUEUED", "+QUEUED", "[:2 2]", "2")
	// A key of another slot inside the transaction aborts it.
	r.expect("cross-slot transaction", "MULTI\r\nSET {u}a 1\r\nSET {v}b 2\r\nEXEC\r\n", "+OK", "+QUEUED", "-CROSSSLOT Keys in request don't hash to the same slot", "-EXECABORT Transaction discarded because of previous errors.")
	r.expect("discard", "MULTI\r\nSET {u}a 1\r\nDISCARD\r\nGET {u}a\r\nEXEC\r\n", "+OK", "+QUEUED", "+OK", "(nil)", "-ERR EXEC without MULTI")
	// WATCH: a write by another client makes EXEC return nil.
	other := p.client(t)
	ctx := context.Background()
	r.send("WATCH {u}w\r\n")
	if got := r.reply(); got != "+OK" {
		t.Fatalf("WATCH: %q", got)
	}
	if err := other.Set(ctx, "{u}w", "changed", 0).Err(); err != nil {
		t.Fatal(err)
	}
	r.expect("watch", "MULTI\r\nSET {u}w mine\r\nEXEC\r\nGET {u}w\r\n", "+OK", "+QUEUED", "*-1", "changed")
	// go-redis transactions.
	rc := p.client(t)
	cmds, err := rc.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.Set(ctx, "{t}x", "1", 0)
		pipe.Incr(ctx, "{t}x")
		return nil
	})
	if err != nil || cmds[1].(*redis.IntCmd).Val() != 2 {
		t.Fatalf("TxPipelined: %v %v", cmds, err)
	}
}
