package proxy_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/hashslot"
	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/proxy"
)

// TestLoopServesPlainClients: plain TCP clients are served by the event
// loops, and leave them when they disconnect.
func TestLoopServesPlainClients(t *testing.T) {
	c := redistest.New(t, redistest.Options{Masters: 3})
	p := startProxy(t, c)
	rc := p.client(t)
	setGetKeys(t, rc, "loop", 200)
	open := p.counter(t, "slotway_proxy_client_connections")
	loops := p.counter(t, "slotway_proxy_loop_client_connections")
	if open == 0 || loops != open {
		t.Errorf("%v client connections, %v of them on loops: want all", open, loops)
	}
	rc.Close()
	redistest.WaitFor(t, 10*time.Second, "the loops to let the closed connections go", func() bool {
		return p.counter(t, "slotway_proxy_loop_client_connections") == 0 && p.counter(t, "slotway_proxy_client_connections") == 0
	})
}

// TestLoopHandOverKeepsOrder: commands pipelined before and after one that
// moves the connection from its loop to a goroutine (SUBSCRIBE, BLPOP,
// MULTI) are answered in order and none is lost, whether the pipeline
// comes in one write or a few bytes at a time.
func TestLoopHandOverKeepsOrder(t *testing.T) {
	c := redistest.New(t, redistest.Options{Masters: 3})
	p := startProxy(t, c)
	type step struct{ cmd, want string }
	var before []step
	for i := range 300 { // spread over every master
		before = append(before, step{fmt.Sprintf("SET ho:%d v%d", i, i), "+OK"})
	}
	for i := range 300 {
		before = append(before, step{fmt.Sprintf("GET ho:%d", i), fmt.Sprintf("v%d", i)})
	}
	after := []step{{"SET ho:after 1", "+OK"}, {"INCR ho:after", ":2"}, {"GET ho:0", "v0"}}
	scripts := map[string][]step{
		"subscribe": {
			{"SUBSCRIBE ho:ch", "[subscribe ho:ch :1]"},
			{"PING", "[pong ]"},
			{"UNSUBSCRIBE ho:ch", "[unsubscribe ho:ch :0]"},
		},
		"blpop": {
			{"RPUSH {ho}:list x", ":1"},
			{"BLPOP {ho}:list 5", "[{ho}:list x]"},
		},
		"multi": {
			{"MULTI", "+OK"},
			{"INCR {ho}:n", "+QUEUED"},
			{"INCR {ho}:n", "+QUEUED"},
			{"EXEC", "[:1 :2]"},
		},
	}
	for name, middle := range scripts {
		for _, chunk := range []int{0, 7} {
			t.Run(fmt.Sprintf("%s/chunk=%d", name, chunk), func(t *testing.T) {
				r := dialRaw(t, p.Addr().String())
				ctx := context.Background()
				if err := p.client(t).Del(ctx, "{ho}:n", "ho:after").Err(); err != nil {
					t.Fatal(err)
				}
				all := append(append(append([]step(nil), before...), middle...), after...)
				var b strings.Builder
				for _, s := range all {
					b.WriteString(s.cmd + "\r\n")
				}
				script := b.String()
				go func() {
					if chunk == 0 {
						r.c.Write([]byte(script))
						return
					}
					for i := 0; i < len(script); i += chunk {
						if _, err := r.c.Write([]byte(script[i:min(i+chunk, len(script))])); err != nil {
							return
						}
					}
				}()
				for i, s := range all {
					if got := r.reply(); got != s.want {
						t.Fatalf("reply %d (%s) = %q, want %q", i, s.cmd, got, s.want)
					}
				}
				// The connection goes on: on its goroutine now.
				r.expect("after the hand-over", "GET ho:after\r\n", "2")
			})
		}
	}
}

// TestLoopAllocations: the whole way of a command through a loop — read,
// parse, route, pipe, reply, write — allocates nothing in the steady
// state. Measured over the test process, with a raw client that does not
// allocate per command and the background work (health checks, slot-map
// refreshes) slowed down.
func TestLoopAllocations(t *testing.T) {
	c := redistest.New(t, redistest.Options{Masters: 3})
	p := startProxy(t, c, func(cfg *proxy.Config) {
		cfg.HealthInterval = time.Hour
		cfg.Cluster.RefreshInterval = time.Hour
	})
	for _, pipeline := range []int{1, 16} {
		r := dialRaw(t, p.Addr().String())
		var b strings.Builder
		for i := range pipeline {
			fmt.Fprintf(&b, "*3\r\n$3\r\nSET\r\n$7\r\nalloc:%d\r\n$1\r\nx\r\n", i%10)
		}
		out := []byte(b.String())
		want := len("+OK\r\n") * pipeline
		in := make([]byte, want)
		round := func() {
			if _, err := r.c.Write(out); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(r.c, in); err != nil {
				t.Fatal(err)
			}
		}
		for range 200 { // warm up: buffers, pipes, queues
			round()
		}
		// The fewest of three windows: the proxy's periodic work (the
		// slot-map views every 30 s, the retry budget's CONFIG GET)
		// allocates, and may fall into one of them.
		rounds := 20000 / pipeline
		mallocs, _ := leastAllocated(rounds, round)
		per := mallocs / float64(pipeline)
		t.Logf("-P %d: %.4f allocations per command (fewest of 3 windows of %d commands)", pipeline, per, rounds*pipeline)
		if per > 0.01 {
			t.Errorf("-P %d: %.4f allocations per command, want 0", pipeline, per)
		}
	}
}

// TestEventLoopsOff: proxy.event_loops -1 serves every client on a
// goroutine of its own, as before the loops.
func TestEventLoopsOff(t *testing.T) {
	c := redistest.New(t, redistest.Options{Masters: 3})
	p := startProxy(t, c, func(cfg *proxy.Config) { cfg.EventLoops = -1 })
	rc := p.client(t)
	ctx := context.Background()
	if err := rc.Set(ctx, "off", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := rc.Get(ctx, "off").Result(); err != nil || v != "1" {
		t.Fatalf("GET off = %q, %v", v, err)
	}
	if open, loops := p.counter(t, "slotway_proxy_client_connections"), p.counter(t, "slotway_proxy_loop_client_connections"); open == 0 || loops != 0 {
		t.Errorf("%v client connections, %v on loops: want none on loops", open, loops)
	}
}

// TestLoopSlowReader: a client that pipelines far more reply bytes than
// its socket holds and reads them late gets every byte in order (the
// loop writes what the socket takes and the rest on EPOLLOUT), while
// another client of the same loops is served meanwhile. With many
// smaller replies, the client's next batches are served while earlier
// replies still wait for the socket (with io_uring, the busy client
// writes on EPOLLOUT: loopring.go).
func TestLoopSlowReader(t *testing.T) {
	for _, tc := range []struct {
		name             string
		keys, size, gets int
		ioUring          string
	}{
		{"256KiB", 16, 256 << 10, 160, "auto"},
		{"16KiB", 16, 16 << 10, 2500, "auto"},
		{"16KiB/io_uring=off", 16, 16 << 10, 2500, "off"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := redistest.New(t, redistest.Options{Masters: 3})
			p := startProxy(t, c, func(cfg *proxy.Config) { cfg.IOUring = tc.ioUring })
			ctx := context.Background()
			rc := p.client(t)
			keys, size, gets := tc.keys, tc.size, tc.gets
			vals := make([]string, keys)
			for i := range vals {
				vals[i] = strings.Repeat(string(rune('a'+i)), size-8) + fmt.Sprintf("%08d", i)
				if err := rc.Set(ctx, fmt.Sprintf("slow:%d", i), vals[i], 0).Err(); err != nil {
					t.Fatal(err)
				}
			}
			r := dialRaw(t, p.Addr().String())
			var b strings.Builder
			for i := range gets {
				fmt.Fprintf(&b, "GET slow:%d\r\n", i%keys)
			}
			r.send(b.String()) // 40 MiB of replies, none read yet
			// Another client is served while the slow one's replies wait.
			other := p.client(t, func(o *redis.Options) { o.ReadTimeout = time.Minute })
			for i := range 100 {
				if v, err := other.Get(ctx, fmt.Sprintf("slow:%d", i%keys)).Result(); err != nil || v != vals[i%keys] {
					t.Fatalf("the other client's GET %d: %d bytes, %v", i, len(v), err)
				}
			}
			for i := range gets {
				if got := r.reply(); got != vals[i%keys] {
					t.Fatalf("slow reader: reply %d is %d bytes ending %q, want %d ending %q",
						i, len(got), got[max(0, len(got)-8):], size, vals[i%keys][size-8:])
				}
			}
			r.expect("after the large replies", "PING\r\n", "+PONG")
		})
	}
}

// setGetKeys sets n keys prefix:i to their own names through rc and reads
// each back.
func setGetKeys(t *testing.T, rc *redis.Client, prefix string, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		k := fmt.Sprintf("%s:%d", prefix, i)
		if err := rc.Set(ctx, k, k, 0).Err(); err != nil {
			t.Fatal(err)
		}
		if v, err := rc.Get(ctx, k).Result(); err != nil || v != k {
			t.Fatalf("GET %s = %q, %v", k, v, err)
		}
	}
}

// leastAllocated runs round rounds times in each of three windows and
// returns the fewest allocations and bytes allocated per round of them
// (measured over the test process: the proxy's periodic work allocates
// too, and may fall into one window).
func leastAllocated(rounds int, round func()) (mallocs, bytes float64) {
	mallocs, bytes = math.Inf(1), math.Inf(1)
	for range 3 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range rounds {
			round()
		}
		runtime.ReadMemStats(&after)
		mallocs = min(mallocs, float64(after.Mallocs-before.Mallocs)/float64(rounds))
		bytes = min(bytes, float64(after.TotalAlloc-before.TotalAlloc)/float64(rounds))
	}
	return mallocs, bytes
}

// pipeReaders counts the goroutines reading backend pipes.
func pipeReaders() int {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "proxy.(*pipe).readLoop(")
}

// TestLoopsReadPipes: with event loops, the loops read the backend
// connections themselves (no reader goroutine per pipe), and a
// connection the node closes is noticed by its loop and dialled again;
// without loops, each pipe has its reader goroutine.
func TestLoopsReadPipes(t *testing.T) {
	c := redistest.New(t, redistest.Options{Masters: 3})
	ctx := context.Background()
	touchAll := func(rc *redis.Client) {
		t.Helper()
		setGetKeys(t, rc, "lr", 30) // over every master
	}

	resp2 := func(o *redis.Options) { o.Protocol = 2 } // RESP3 would start pipes of its own
	off := startProxy(t, c, func(cfg *proxy.Config) { cfg.EventLoops = -1 })
	touchAll(off.client(t, resp2))
	if n := pipeReaders(); n != 3*2 {
		t.Errorf("without loops: %d pipe reader goroutines, want 6 (3 masters × backend_conns 2)", n)
	}
	off.stop(t)

	p := startProxy(t, c, func(cfg *proxy.Config) { cfg.EventLoops = 2 })
	rc := p.client(t, resp2)
	touchAll(rc)
	if n := pipeReaders(); n != 0 {
		t.Errorf("with loops: %d pipe reader goroutines, want 0", n)
	}
	if up := p.counter(t, "slotway_proxy_backend_connections"); up != 6 {
		t.Errorf("%v backend connections up, want 6", up)
	}
	// The nodes close every client connection, the proxy's pipes among
	// them: the loops read the end, and the pipes are dialled again.
	before := p.counter(t, "slotway_proxy_backend_connection_errors_total")
	for _, n := range c.Nodes() {
		if err := n.Client().Do(ctx, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes").Err(); err != nil {
			t.Fatal(err)
		}
	}
	redistest.WaitFor(t, time.Minute, "the pipes to notice the closed connections", func() bool {
		return p.counter(t, "slotway_proxy_backend_connection_errors_total")-before >= 6
	})
	redistest.WaitFor(t, time.Minute, "the pipes to be up again", func() bool {
		return p.counter(t, "slotway_proxy_backend_connections") == 6
	})
	touchAll(rc)
	if n := pipeReaders(); n != 0 {
		t.Errorf("after the reconnect: %d pipe reader goroutines, want 0", n)
	}
}

// TestLoopLargeRepliesReuseBuffers: large replies are read into arrays
// the loop reuses (loopbuf.go) — a GET of 256 KiB allocates far less
// than its size in the steady state, where a fresh array per reply
// allocated more than the value.
func TestLoopLargeRepliesReuseBuffers(t *testing.T) {
	c := redistest.New(t, redistest.Options{Masters: 3})
	p := startProxy(t, c, func(cfg *proxy.Config) {
		cfg.EventLoops = 1 // every pipe read by the client's loop
		cfg.HealthInterval = time.Hour
		cfg.Cluster.RefreshInterval = time.Hour
	})
	const size = 256 << 10
	val := strings.Repeat("v", size)
	if err := p.client(t).Set(context.Background(), "reuse:big", val, 0).Err(); err != nil {
		t.Fatal(err)
	}
	r := dialRaw(t, p.Addr().String())
	get := []byte("*2\r\n$3\r\nGET\r\n$9\r\nreuse:big\r\n")
	in := make([]byte, len(fmt.Sprintf("$%d\r\n", size))+size+2)
	round := func() {
		if _, err := r.c.Write(get); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(r.c, in); err != nil {
			t.Fatal(err)
		}
	}
	for range 50 {
		round()
	}
	if string(in[len(in)-6:]) != "vvvv\r\n" {
		t.Fatalf("reply ends %q", in[len(in)-6:])
	}
	const rounds = 200
	_, per := leastAllocated(rounds, round)
	t.Logf("%.0f bytes allocated per GET of %d bytes (fewest of 3 windows of %d)", per, size, rounds)
	if per > size/8 {
		t.Errorf("%.0f bytes allocated per GET of %d bytes: the reply arrays are not reused", per, size)
	}
}

// TestLoopLargeSendToAStoppedNode: a SET larger than the sockets can hold
// while its master is stopped (SIGSTOP) waits in the pipe's goroutine,
// not in the loop: the proxy's only loop serves another client's GETs on
// another master meanwhile, and the SET arrives whole once the master
// resumes. With io_uring or without, the loop writes what the socket
// takes and hands the rest to the pipe's goroutine (sentPipe).
func TestLoopLargeSendToAStoppedNode(t *testing.T) {
	for _, ioUring := range []string{"auto", "off"} {
		t.Run("io_uring="+ioUring, func(t *testing.T) {
			c := redistest.New(t, redistest.Options{Masters: 3})
			p := startProxy(t, c, func(cfg *proxy.Config) {
				cfg.EventLoops = 1
				cfg.IOUring = ioUring
				cfg.HealthInterval = time.Hour // a health check would reset the stopped master's connection
			})
			ctx := context.Background()
			owner, err := c.MasterOf(ctx, hashslot.Of([]byte("big")))
			if err != nil {
				t.Fatal(err)
			}
			other := ""
			for i := 0; other == ""; i++ {
				k := fmt.Sprintf("other:%d", i)
				if m, err := c.MasterOf(ctx, hashslot.Of([]byte(k))); err != nil {
					t.Fatal(err)
				} else if m != owner {
					other = k
				}
			}
			setter := p.client(t, func(o *redis.Options) { o.ReadTimeout, o.WriteTimeout = time.Minute, time.Minute })
			getter := p.client(t, func(o *redis.Options) { o.ReadTimeout = 10 * time.Second })
			if err := getter.Set(ctx, other, "here", 0).Err(); err != nil {
				t.Fatal(err)
			}
			if err := setter.Set(ctx, "big", "small", 0).Err(); err != nil { // the pipe to owner is up
				t.Fatal(err)
			}
			if open := p.counter(t, "slotway_proxy_loop_client_connections"); open != 2 {
				t.Fatalf("%v clients on loops, want both", open)
			}
			resume := freeze(t, owner.PID())
			// 32 MiB: more than loopback's send and receive buffers
			// together (tcp_wmem and tcp_rmem allow 4 + 6 MiB).
			val := strings.Repeat("0123456789abcdef", 2<<20)
			set := make(chan error, 1)
			go func() { set <- setter.Set(ctx, "big", val, 0).Err() }()
			// The proxy has sent the SET's first bytes when they wait in
			// the sockets to the stopped master; the rest waits in Slotway.
			redistest.WaitFor(t, 30*time.Second, "the SET to be sent to the stopped master", func() bool {
				return queuedTo(t, owner.Port) > 100<<10
			})
			for i := range 20 {
				if v, err := getter.Get(ctx, other).Result(); err != nil || v != "here" {
					t.Fatalf("GET %d on another master while the SET waits: %q, %v", i, v, err)
				}
			}
			select {
			case err := <-set:
				t.Fatalf("the SET was answered by a stopped master: %v", err)
			default:
			}
			resume()
			if err := <-set; err != nil {
				t.Fatalf("SET after the master resumed: %v", err)
			}
			if got, err := getter.Get(ctx, "big").Result(); err != nil || got != val {
				t.Fatalf("GET big: %d bytes, %v; want %d", len(got), err, len(val))
			}
		})
	}
}

// queuedTo sums the bytes waiting in the loopback TCP sockets to and of the
// server on port: unread by it (rx_queue) and unsent to it (tx_queue).
func queuedTo(t *testing.T, port int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	hexPort := fmt.Sprintf(":%04X", port)
	total := 0
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		tx, rx, ok := strings.Cut(f[4], ":")
		if !ok {
			continue
		}
		var n int64
		switch {
		case strings.HasSuffix(f[1], hexPort): // the server's side
			n, _ = strconv.ParseInt(rx, 16, 64)
		case strings.HasSuffix(f[2], hexPort): // a client's side
			n, _ = strconv.ParseInt(tx, 16, 64)
		}
		total += int(n)
	}
	return total
}
