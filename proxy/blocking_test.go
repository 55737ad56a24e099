package proxy_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/proxy"
)

// blockedClients reads INFO clients of every master and returns the sum of
// blocked_clients.
func blockedClients(t *testing.T, c *redistest.Cluster) int {
	t.Helper()
	ctx := context.Background()
	masters, err := c.Masters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range masters {
		info, err := m.Client().Info(ctx, "clients").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(l, "blocked_clients:"); ok {
				var k int
				for _, ch := range v {
					k = k*10 + int(ch-'0')
				}
				n += k
			}
		}
	}
	return n
}

func TestBlockingCommands(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3, Replicas: 1})
	p := startProxy(t, c)
	addr := p.Addr().String()

	t.Run("BLPOP woken by LPUSH from another client", func(t *testing.T) {
		waiter := dialRaw(t, addr)
		waiter.send("*3\r\n$5\r\nBLPOP\r\n$5\r\nqueue\r\n$1\r\n0\r\n")
		redistest.WaitFor(t, 10*time.Second, "BLPOP to block on the master", func() bool { return blockedClients(t, c) == 1 })
		pusher := dialRaw(t, addr)
		pusher.expect("LPUSH", "LPUSH queue job1\r\n", ":1")
		if got := waiter.reply(); got != "[queue job1]" {
			t.Fatalf("BLPOP = %q", got)
		}
		// The connection stays usable, and a second blocking call reuses
		// the dedicated connection.
		waiter.expect("after BLPOP", "PING\r\nLPUSH queue job2\r\nBLPOP queue 1\r\n", "+PONG", ":1", "[queue job2]")
	})

	t.Run("pipelined commands around a blocking call keep their order", func(t *testing.T) {
		r := dialRaw(t, addr)
		r.expect("pipeline", "SET before 1\r\nBRPOP empty:list 0.1\r\nGET before\r\nBZPOPMIN empty:zset 0.1\r\nINCR before\r\n",
			"+OK", "*-1", "1", "*-1", ":2")
	})

	t.Run("client disconnect mid-BLPOP releases the backend connection", func(t *testing.T) {
		r := dialRaw(t, addr)
		r.send("BLPOP gone:list 0\r\n")
		redistest.WaitFor(t, 10*time.Second, "BLPOP to block on the master", func() bool { return blockedClients(t, c) == 1 })
		r.c.Close()
		redistest.WaitFor(t, 10*time.Second, "the master to drop the blocked call", func() bool { return blockedClients(t, c) == 0 })
		// Nobody pops the element now: it stays in the list.
		q := dialRaw(t, addr)
		q.expect("element kept", "RPUSH gone:list x\r\nLLEN gone:list\r\n", ":1", ":1")
	})

	t.Run("same-slot rules", func(t *testing.T) {
		r := dialRaw(t, addr)
		r.expect("BLMOVE", "RPUSH {q}src a\r\nBLMOVE {q}src {q}dst LEFT RIGHT 1\r\nBLMOVE {q}src other LEFT RIGHT 1\r\nLRANGE {q}dst 0 -1\r\n",
			":1", "a", "-CROSSSLOT Keys in request don't hash to the same slot", "[a]")
		r.expect("BLMPOP", "RPUSH {m}b x y\r\nBLMPOP 1 2 {m}a {m}b LEFT COUNT 2\r\n", ":2", "[{m}b [x y]]")
	})

	t.Run("XREAD BLOCK woken by XADD", func(t *testing.T) {
		r := dialRaw(t, addr)
		r.send("XREAD BLOCK 0 STREAMS events $\r\n")
		redistest.WaitFor(t, 10*time.Second, "XREAD to block", func() bool { return blockedClients(t, c) == 1 })
		dialRaw(t, addr).expect("XADD", "XADD events 1-1 f v\r\n", "1-1")
		if got := r.reply(); got != "[[events [[1-1 [f v]]]]]" {
			t.Fatalf("XREAD = %q", got)
		}
		r.expect("XREAD without BLOCK", "XREAD STREAMS events 0\r\n", "[[events [[1-1 [f v]]]]]")
	})

	t.Run("blocking commands inside MULTI do not block", func(t *testing.T) {
		r := dialRaw(t, addr)
		r.expect("MULTI", "MULTI\r\nBLPOP tx:list 0\r\nEXEC\r\n", "+OK", "+QUEUED", "[*-1]")
	})

	t.Run("WAIT counts replicas that have this client's writes", func(t *testing.T) {
		r := dialRaw(t, addr)
		// Writes on several masters; each has one replica.
		r.expect("WAIT", "MSET w:a 1 w:b 2 w:c 3 w:d 4\r\nWAIT 1 10000\r\n", "+OK", ":1")
		r.expect("WAIT more than exist", "SET w:a 2\r\nWAIT 2 100\r\n", "+OK", ":1")
		r.expect("WAIT bad timeout", "WAIT 1 -1\r\nWAIT x 1\r\n", "-ERR timeout is negative", "-ERR value is not an integer or out of range")
		// The marker writes leave no key behind.
		r.expect("no marker keys", "KEYS __slotway*\r\n", "[]")
	})

	t.Run("shutdown cancels a blocked call", func(t *testing.T) {
		p2 := startProxy(t, c, func(cfg *proxy.Config) { cfg.ShutdownTimeout = 20 * time.Second })
		r := dialRaw(t, p2.Addr().String())
		r.send("BLPOP shutdown:list 0\r\n")
		redistest.WaitFor(t, 10*time.Second, "BLPOP to block", func() bool { return blockedClients(t, c) == 1 })
		p2.cancel()
		if got := r.reply(); !strings.HasPrefix(got, "-ERR slotway is shutting down") {
			t.Fatalf("blocked call during shutdown got %q", got)
		}
		redistest.WaitFor(t, 10*time.Second, "the master to drop the blocked call", func() bool { return blockedClients(t, c) == 0 })
	})
}
