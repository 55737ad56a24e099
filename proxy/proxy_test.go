package proxy_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/hashslot"
	"github.com/slotway/slotway/internal/redistest"
)

// randomKey makes keys that exercise hash tags: plain, tagged, empty tags,
// nested and unbalanced braces, binary bytes.
func randomKey(r *rand.Rand) string {
	parts := []string{"user", "{", "}", "{}", "{{", "}}", "a", "b:", "x{y}", "\x00", "é", "{tag}", "1234"}
	var b strings.Builder
	for range 1 + r.IntN(6) {
		b.WriteString(parts[r.IntN(len(parts))])
	}
	return b.String()
}

func TestSlotMatchesClusterKeyslot(t *testing.T) {
	c := redistest.New(t, redistest.Options{Masters: 1})
	node := c.Nodes()[0].Client()
	r := rand.New(rand.NewPCG(1, 2))
	keys := make([]string, 10000)
	for i := range keys {
		keys[i] = randomKey(r)
	}
	ctx := context.Background()
	pipe := node.Pipeline()
	cmds := make([]*redis.IntCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.ClusterKeySlot(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		if got, want := hashslot.Of([]byte(k)), int(cmds[i].Val()); got != want {
			t.Errorf("Slot(%q) = %d, CLUSTER KEYSLOT says %d", k, got, want)
		}
	}
}

func TestWriteReadWholeSlotSpace(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	p := startProxy(t, c)
	rc := p.client(t)
	ctx := context.Background()

	// 10,000 keys whose slots cover the whole space: key i is tagged so it
	// lands in slot i*16384/10000.
	tags := tagsForSlots()
	const n = 10000
	key := func(i int) string { return fmt.Sprintf("{%s}:k%d", tags[i*hashslot.Count/n], i) }
	pipe := rc.Pipeline()
	for i := range n {
		pipe.Set(ctx, key(i), "v"+strconv.Itoa(i), 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatalf("pipelined SETs: %v", err)
	}
	for i := 0; i < n; i += 7 { // also one by one, not pipelined
		if err := rc.Set(ctx, key(i), "v"+strconv.Itoa(i), 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", key(i), err)
		}
	}
	gets := make([]*redis.StringCmd, n)
	pipe = rc.Pipeline()
	for i := range n {
		gets[i] = pipe.Get(ctx, key(i))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatalf("pipelined GETs: %v", err)
	}
	for i := range n {
		if got, want := gets[i].Val(), "v"+strconv.Itoa(i); got != want {
			t.Fatalf("GET %s = %q, want %q", key(i), got, want)
		}
	}
	// Each key sits on the master that owns its slot.
	masters, err := c.Masters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	owner := map[int]*redistest.Node{}
	for _, m := range masters {
		ranges, err := c.SlotRanges(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range ranges {
			for s := r.Start; s <= r.End; s++ {
				owner[s] = m
			}
		}
	}
	for i := 0; i < n; i += 13 {
		k := key(i)
		m := owner[hashslot.Of([]byte(k))]
		if got, err := m.Client().Get(ctx, k).Result(); err != nil || got != "v"+strconv.Itoa(i) {
			t.Fatalf("key %s on its master %s: %q, %v", k, m.Addr, got, err)
		}
	}
	var dbsize int64
	for _, m := range masters {
		dbsize += m.Client().DBSize(ctx).Val()
	}
	if dbsize != n {
		t.Fatalf("masters hold %d keys, want %d", dbsize, n)
	}
}

// tagsForSlots finds, for every slot, a short string that hashes to it.
func tagsForSlots() []string {
	tags := make([]string, hashslot.Count)
	found := 0
	for i := 0; found < hashslot.Count; i++ {
		s := strconv.Itoa(i)
		if sl := hashslot.Of([]byte(s)); tags[sl] == "" {
			tags[sl] = s
			found++
		}
	}
	return tags
}

func TestSlotMigrationUnderTraffic(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	p := startProxy(t, c)
	ctx := context.Background()
	const slot = 1234
	tag := tagsForSlots()[slot]
	masters, err := c.Masters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	src, err := c.MasterOf(ctx, slot)
	if err != nil {
		t.Fatal(err)
	}
	var dst *redistest.Node
	for _, m := range masters {
		if m != src {
			dst = m
			break
		}
	}
	rc := p.client(t)
	const nkeys = 400
	for i := range nkeys {
		if err := rc.Set(ctx, fmt.Sprintf("{%s}:%d", tag, i), "0", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// Writers increment their own keys and check every value they read;
	// readers of the other keys check values never go backwards.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ops, errs atomic.Int64
	var firstErr atomic.Value
	for w := range 8 {
		wg.Go(func() {
			cl := p.client(t)
			want := map[int]int{}
			for i := w; ; i = (i + 8) % nkeys {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Sprintf("{%s}:%d", tag, i)
				v, err := cl.Incr(ctx, k).Result()
				if err == nil && want[i] != 0 && int(v) != want[i]+1 {
					err = fmt.Errorf("INCR %s = %d, want %d", k, v, want[i]+1)
				}
				if err == nil {
					want[i] = int(v)
					var got string
					got, err = cl.Get(ctx, k).Result()
					if err == nil && got != strconv.Itoa(want[i]) {
						err = fmt.Errorf("GET %s = %s, want %d", k, got, want[i])
					}
				}
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
				ops.Add(1)
			}
		})
	}
	waitOps := func(n int64) {
		target := ops.Load() + n
		redistest.WaitFor(t, 20*time.Second, "client traffic", func() bool { return ops.Load() >= target })
	}
	waitOps(500)
	if err := c.BeginMigration(ctx, slot, src, dst); err != nil {
		t.Fatal(err)
	}
	waitOps(500)
	for moved := 0; moved < nkeys; {
		n, err := c.MigrateKeys(ctx, slot, src, dst, 50)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		moved += n
		waitOps(200)
	}
	if err := c.FinishMigration(ctx, slot, src, dst); err != nil {
		t.Fatal(err)
	}
	waitOps(1000)
	close(stop)
	wg.Wait()
	if e := errs.Load(); e > 0 {
		t.Fatalf("%d client errors during migration (of %d ops); first: %v", e, ops.Load(), firstErr.Load())
	}
	if n := dst.Client().ClusterCountKeysInSlot(ctx, slot).Val(); n != nkeys {
		t.Fatalf("destination holds %d keys of the slot, want %d", n, nkeys)
	}
	t.Logf("%d operations during the migration, 0 errors; redirects followed: moved=%v ask=%v",
		ops.Load(), p.counter(t, "slotway_proxy_redirects_total", "kind", "moved"), p.counter(t, "slotway_proxy_redirects_total", "kind", "ask"))
	if p.counter(t, "slotway_proxy_redirects_total", "kind", "ask") == 0 {
		t.Error("no ASK redirect was followed: the test did not exercise the migration window")
	}
}

func TestMasterFailover(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3, Replicas: 1})
	p := startProxy(t, c)
	ctx := context.Background()
	rc := p.client(t, func(o *redis.Options) { o.PoolSize = 4 })
	const nkeys = 3000
	for i := range nkeys {
		if err := rc.Set(ctx, "fk:"+strconv.Itoa(i), strconv.Itoa(i), 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	victim, err := c.MasterOf(ctx, hashslot.Of([]byte("fk:0")))
	if err != nil {
		t.Fatal(err)
	}
	// Make sure the replica has every write before the master dies, so
	// "no wrong value" is a fair demand (Redis replication is async).
	if err := victim.Client().Do(ctx, "WAIT", 1, 5000).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(victim); err != nil {
		t.Fatal(err)
	}
	// The same client connections keep being used across the failover.
	start := time.Now()
	var failures int
	for {
		err := rc.Get(ctx, "fk:0").Err()
		if err == nil {
			break
		}
		failures++
		if time.Since(start) > 30*time.Second {
			t.Fatalf("still failing 30s after the master died: %v", err)
		}
	}
	t.Logf("first successful GET %v after the kill, %d failed attempts (each waits up to retry_timeout)", time.Since(start).Round(time.Millisecond), failures)
	if _, err := c.WaitForFailover(ctx, victim); err != nil {
		t.Fatal(err)
	}
	for i := range nkeys {
		got, err := rc.Get(ctx, "fk:"+strconv.Itoa(i)).Result()
		if err != nil || got != strconv.Itoa(i) {
			t.Fatalf("after failover GET fk:%d = %q, %v", i, got, err)
		}
	}
	for i := range nkeys {
		if err := rc.Set(ctx, "fk:"+strconv.Itoa(i), "new", 0).Err(); err != nil {
			t.Fatalf("after failover SET fk:%d: %v", i, err)
		}
	}
}

// rawConn is a client speaking bytes, for protocol-level tests.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	rd *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return &rawConn{t: t, c: c, rd: bufio.NewReaderSize(c, 1<<20)}
}

// expect sends a script and checks that the replies are exactly wants.
func (r *rawConn) expect(what, script string, wants ...string) {
	r.t.Helper()
	r.send(script)
	for i, want := range wants {
		if got := r.reply(); got != want {
			r.t.Fatalf("%s: reply %d = %q, want %q", what, i, got, want)
		}
	}
}

func (r *rawConn) send(s string) {
	r.t.Helper()
	if _, err := r.c.Write([]byte(s)); err != nil {
		r.t.Fatal(err)
	}
}

// reply reads one reply and returns it flattened to a short text.
func (r *rawConn) reply() string {
	r.t.Helper()
	line, err := r.rd.ReadString('\n')
	if err != nil {
		r.t.Fatalf("read reply: %v", err)
	}
	line = strings.TrimRight(line, "\r\n")
	switch line[0] {
	case '$':
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return "(nil)"
		}
		b := make([]byte, n+2)
		if _, err := ioReadFull(r.rd, b); err != nil {
			r.t.Fatal(err)
		}
		return string(b[:n])
	case '*', '~', '>', '%':
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return line // a null array
		}
		open, end := "[", "]"
		if line[0] == '%' { // RESP3 map
			n *= 2
			open, end = "{", "}"
		}
		parts := make([]string, 0, n)
		for range n {
			parts = append(parts, r.reply())
		}
		return open + strings.Join(parts, " ") + end
	case '_':
		return "(nil)"
	}
	return line
}

func ioReadFull(rd *bufio.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := rd.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func TestPipelineInOneWrite(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	p := startProxy(t, c)
	r := dialRaw(t, p.Addr().String())
	var b strings.Builder
	for i := range 1000 {
		switch i % 4 {
		case 0, 1:
			fmt.Fprintf(&b, "*3\r\n$3\r\nSET\r\n$%d\r\npk%d\r\n$%d\r\n%d\r\n", len(fmt.Sprint("pk", i)), i, len(strconv.Itoa(i)), i)
		case 2:
			fmt.Fprintf(&b, "*2\r\n$3\r\nGET\r\n$%d\r\npk%d\r\n", len(fmt.Sprint("pk", i-1)), i-1)
		case 3:
			fmt.Fprintf(&b, "*2\r\n$4\r\nECHO\r\n$%d\r\n%d\r\n", len(strconv.Itoa(i)), i)
		}
	}
	r.send(b.String())
	for i := range 1000 {
		got := r.reply()
		var want string
		switch i % 4 {
		case 0, 1:
			want = "+OK"
		case 2:
			want = strconv.Itoa(i - 1)
		case 3:
			want = strconv.Itoa(i)
		}
		if got != want {
			t.Fatalf("reply %d = %q, want %q", i, got, want)
		}
	}
}

func TestManyConcurrentClients(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	p := startProxy(t, c)
	ctx := context.Background()
	var wg sync.WaitGroup
	errc := make(chan error, 200)
	var ready sync.WaitGroup
	ready.Add(200)
	startGate := make(chan struct{})
	for w := range 200 {
		wg.Go(func() {
			cl := redis.NewClient(&redis.Options{Addr: p.Addr().String(), PoolSize: 1, MaxRetries: -1})
			defer cl.Close()
			if err := cl.Ping(ctx).Err(); err != nil { // connect before the gate
				errc <- err
				ready.Done()
				return
			}
			ready.Done()
			<-startGate
			for i := range 50 {
				k := fmt.Sprintf("c%d:%d", w, i)
				if err := cl.Set(ctx, k, k, 0).Err(); err != nil {
					errc <- err
					return
				}
				if v, err := cl.Get(ctx, k).Result(); err != nil || v != k {
					errc <- fmt.Errorf("GET %s = %q, %v", k, v, err)
					return
				}
			}
		})
	}
	ready.Wait()
	if n := p.counter(t, "slotway_proxy_client_connections"); n < 200 {
		t.Errorf("%v client connections open, want 200", n)
	}
	close(startGate)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
}

func TestBadInput(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	p := startProxy(t, c)
	addr := p.Addr().String()

	// A healthy client keeps working throughout.
	good := dialRaw(t, addr)
	check := func() {
		t.Helper()
		good.send("*3\r\n$3\r\nSET\r\n$4\r\ngood\r\n$2\r\nok\r\n*2\r\n$3\r\nGET\r\n$4\r\ngood\r\n")
		if a, b := good.reply(), good.reply(); a != "+OK" || b != "ok" {
			t.Fatalf("healthy client got %q %q", a, b)
		}
	}
	check()
	tests := []struct {
		name, send, want string
		closed           bool
	}{
		{"unknown command", "*2\r\n$6\r\nFOOBAR\r\n$1\r\nx\r\n", "-ERR unknown command 'FOOBAR', with args beginning with: 'x'", false},
		{"unknown subcommand", "*2\r\n$6\r\nOBJECT\r\n$4\r\nnope\r\n", "-ERR unknown subcommand 'nope'. Try OBJECT HELP.", false},
		{"wrong arity", "*1\r\n$3\r\nGET\r\n", "-ERR wrong number of arguments for 'get' command", false},
		{"crossslot", "*5\r\n$6\r\nMSETNX\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n", "-CROSSSLOT Keys in request don't hash to the same slot", false},
		{"sync", "*1\r\n$4\r\nSYNC\r\n", "-ERR command 'sync' is not supported by slotway: it streams one node's traffic; run it against the cluster nodes directly", false},
		{"blocking crossslot", "*4\r\n$5\r\nBLPOP\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\n0\r\n", "-CROSSSLOT Keys in request don't hash to the same slot", false},
		{"select", "*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n", "-ERR SELECT is not allowed in cluster mode", false},
		{"4GB bulk", "*2\r\n$3\r\nSET\r\n$4294967296\r\n", "-ERR Protocol error: invalid bulk length", true},
		{"malformed", "*1\r\n:12\r\n", "-ERR Protocol error: expected '$', got ':'", true},
		{"huge multibulk", "*99999999\r\n", "-ERR Protocol error: invalid multibulk length", true},
		{"unbalanced quotes", "SET \"a b\r\n", "-ERR Protocol error: unbalanced quotes in request", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, addr)
			r.send(tc.send)
			if got := r.reply(); !strings.HasPrefix(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			if tc.closed {
				r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := r.rd.ReadByte(); err == nil {
					t.Fatal("connection still open after a protocol error")
				}
			} else {
				r.send("PING\r\n")
				if got := r.reply(); got != "+PONG" {
					t.Fatalf("connection not usable after the error: %q", got)
				}
			}
			check()
		})
	}
}

// TestPipelinedInlineCommands: several telnet-style commands in one write
// each reach the backend intact.
func TestPipelinedInlineCommands(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	p := startProxy(t, c)
	r := dialRaw(t, p.Addr().String())
	r.expect("pipelined inline commands", "SET in:1 a\r\nSET in:2 bb\r\nGET in:1\r\nMGET in:2 in:1\r\nECHO \"x y\"\r\n",
		"+OK", "+OK", "a", "[bb a]", "x y")
}

func TestLocalCommands(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	p := startProxy(t, c)
	r := dialRaw(t, p.Addr().String())
	steps := []struct{ send, want string }{
		{"PING\r\n", "+PONG"},
		{"PING hi\r\n", "hi"},
		{"ECHO \"a b\"\r\n", "a b"},
		{"SELECT 0\r\n", "+OK"},
		{"CLIENT SETNAME app1\r\n", "+OK"},
		{"CLIENT GETNAME\r\n", "app1"},
		{"HELLO 3\r\n", "{server redis version 7."},
		{"CLIENT GETNAME\r\n", "app1"},
		{"HELLO 2\r\n", "[server redis version 7."},
		{"HELLO 4\r\n", "-NOPROTO"},
		{"COMMAND COUNT\r\n", ":"},
		{"COMMAND INFO get\r\n", "[[get :2"},
		{"COMMAND DOCS get\r\n", "[get ["},
		{"TIME\r\n", "["},
		{"EVAL \"return 1\" 0\r\n", ":1"},
		{"DBSIZE\r\n", ":0"},
		{"CONFIG GET maxmemory\r\n", "[maxmemory 0]"},
		{"CONFIG GET dir\r\n", "[]"}, // one node's
		{"CONFIG GET databases\r\n", "[databases 1]"},
		{"CONFIG GET max*\r\n", "[maxclients "},
		{"CONFIG SET dir /tmp\r\n", "-ERR slotway: CONFIG SET 'dir' is refused: it identifies one node"},
		{"OBJECT HELP\r\n", "[+OBJECT <subcommand>"},
		{"CLUSTER COUNTKEYSINSLOT 5000\r\n", ":0"},
		{"SET {06S}k v\r\n", "+OK"}, // {06S} hashes to slot 0
		{"CLUSTER COUNTKEYSINSLOT 0\r\n", ":1"},
		{"CLUSTER GETKEYSINSLOT 0 10\r\n", "[{06S}k]"},
		{"CLUSTER COUNTKEYSINSLOT 16384\r\n", "-ERR Invalid or out of range slot"},
		{"CLIENT NO-EVICT on\r\n", "+OK"},
		{"CLIENT NO-TOUCH on\r\n", "-ERR CLIENT NO-TOUCH ON is not supported by slotway"},
		{"CLIENT INFO\r\n", "id="},
		{"MULTI\r\n", "+OK"},
		{"SET {06S}k w\r\n", "+QUEUED"},
		{"RESET\r\n", "+RESET"},
		{"CLIENT GETNAME\r\n", "(nil)"},
		{"GET {06S}k\r\n", "v"}, // RESET discarded the transaction
		{"CLIENT KILL USER nosuchuser\r\n", "-ERR No such user 'nosuchuser'"},
		{"CLIENT KILL USER default SKIPME yes\r\n", ":0"},
	}
	for _, s := range steps {
		r.send(s.send)
		if got := r.reply(); !strings.HasPrefix(got, s.want) {
			t.Errorf("%q: got %q, want prefix %q", strings.TrimSpace(s.send), got, s.want)
		}
	}
	r.send("INFO\r\n")
	info := r.reply()
	for _, want := range []string{"redis_version:7.", "slotway_version:", "connected_clients:", "slotway_masters:3", "slotway_slots_served:16384", "# Keyspace"} {
		if !strings.Contains(info, want) {
			t.Errorf("INFO lacks %q:\n%s", want, info)
		}
	}
	// INFO keyspace sums the masters (from their health checks).
	r.send("MSET ks:1 a ks:2 b ks:3 c ks:4 d\r\n")
	r.reply()
	redistest.WaitFor(t, 10*time.Second, "INFO keyspace to count the keys", func() bool {
		r.send("INFO keyspace\r\n")
		return strings.Contains(r.reply(), "db0:keys=5,")
	})

	// CLIENT LIST shows the proxy's own clients; CLIENT KILL closes them.
	other := dialRaw(t, p.Addr().String())
	other.expect("name", "CLIENT SETNAME victim\r\n", "+OK")
	r.send("CLIENT LIST\r\n")
	list := r.reply()
	if !strings.Contains(list, "name=victim") || strings.Count(list, "\n") < 2 {
		t.Errorf("CLIENT LIST:\n%s", list)
	}
	r.expect("kill by address", "CLIENT KILL ADDR "+other.c.LocalAddr().String()+"\r\n", ":1")
	other.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := other.rd.ReadByte(); err == nil {
		t.Error("killed client still connected")
	}
	r.expect("kill unknown", "CLIENT KILL 127.0.0.1:1\r\n", "-ERR No such client")
	r.send("QUIT\r\n")
	if got := r.reply(); got != "+OK" {
		t.Errorf("QUIT: %q", got)
	}
	if _, err := r.rd.ReadByte(); err == nil {
		t.Error("connection open after QUIT")
	}
}

// TestMetrics checks that counters move, that every exposed metric passes
// promlint, and that labels stay bounded whatever clients send.
func TestMetrics(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	p := startProxy(t, c)
	rc := p.client(t)
	ctx := context.Background()
	pipe := rc.Pipeline()
	for i := range 10000 {
		pipe.Set(ctx, "m:"+strconv.Itoa(i), "v", 0)
		pipe.Do(ctx, "NOSUCHCMD"+strconv.Itoa(i), "x")
	}
	_, _ = pipe.Exec(ctx)
	if got := p.counter(t, "slotway_proxy_commands_total", "command", "set", "result", "ok"); got != 10000 {
		t.Errorf("set ok = %v, want 10000", got)
	}
	if got := p.counter(t, "slotway_proxy_unknown_commands_total"); got != 10000 {
		t.Errorf("unknown commands = %v, want 10000", got)
	}
	mfs, err := p.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := 0
	for _, mf := range mfs {
		series += len(mf.GetMetric())
	}
	if series > 200 {
		t.Errorf("%d series after 10,000 distinct keys and commands: labels are not bounded", series)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range problems {
		t.Errorf("promlint: %s: %s", pr.Metric, pr.Text)
	}
}
