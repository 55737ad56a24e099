package proxy_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/proxy"
)

// TestClientPause: CLIENT PAUSE WRITE holds writes (and what a client
// pipelined after one) while reads are still served, on an event loop and
// on goroutine-served clients; CLIENT UNPAUSE releases them in order.
// PAUSE ALL holds everything until its timeout. The nodes are never
// paused.
func TestClientPause(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	ctx := context.Background()
	rc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Seeds()})
	defer rc.Close()
	for _, loops := range []int{0, -1} {
		p := startProxy(t, c, func(cfg *proxy.Config) { cfg.EventLoops = loops })
		key := "pause:w" + string(rune('0'+loops+1))
		admin := dialRaw(t, p.Addr().String())
		writer := dialRaw(t, p.Addr().String())
		reader := dialRaw(t, p.Addr().String())
		admin.expect("pause writes", "CLIENT PAUSE 60000 WRITE\r\n", "+OK")
		if st := p.PauseStatus(); !st.Paused || st.Mode != "write" {
			t.Fatalf("status after CLIENT PAUSE WRITE: %+v", st)
		}
		// The read before the write is answered; the write and the read
		// pipelined after it wait.
		writer.send("GET " + key + "\r\nSET " + key + " 1\r\nGET " + key + "\r\n")
		if got := writer.reply(); got != "(nil)" {
			t.Fatalf("loops %d: the read before the paused write: %q", loops, got)
		}
		redistest.WaitFor(t, 10*time.Second, "the SET to be held", func() bool { return p.PauseStatus().HeldClients == 1 })
		reader.expect("a read during the pause", "GET "+key+"\r\nPING\r\n", "(nil)", "+PONG")
		if n, err := rc.Exists(ctx, key).Result(); err != nil || n != 0 {
			t.Fatalf("loops %d: the paused SET ran: exists %d, %v", loops, n, err)
		}
		// The nodes themselves are not paused.
		if err := rc.Set(ctx, key+":direct", "x", 0).Err(); err != nil {
			t.Fatalf("a write straight to the cluster during the pause: %v", err)
		}
		admin.expect("unpause (not a write: served)", "CLIENT UNPAUSE\r\n", "+OK")
		if got := writer.reply(); got != "+OK" {
			t.Fatalf("loops %d: the paused SET after UNPAUSE: %q", loops, got)
		}
		if got := writer.reply(); got != "1" {
			t.Fatalf("loops %d: the GET pipelined after it: %q", loops, got)
		}

		// ALL: everything waits, until the timeout.
		admin.expect("pause all", "CLIENT PAUSE 300 ALL\r\n", "+OK")
		reader.expect("a command during PAUSE ALL is served after it", "PING\r\n", "+PONG")
		redistest.WaitFor(t, 10*time.Second, "the pause to time out", func() bool { return !p.PauseStatus().Paused })

		admin.expect("bad timeout", "CLIENT PAUSE soon\r\n", "-ERR timeout is not an integer or out of range")
		admin.expect("negative timeout", "CLIENT PAUSE -1\r\n", "-ERR timeout is negative")
		admin.expect("bad mode", "CLIENT PAUSE 10 SOME\r\n", "-ERR syntax error")
	}
}

// TestPauseEndsOnShutdown: a proxy that stops answers the commands its
// pause held instead of waiting for the timeout.
func TestPauseEndsOnShutdown(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 2})
	p := startProxy(t, c)
	r := dialRaw(t, p.Addr().String())
	r.expect("pause", "CLIENT PAUSE 600000 WRITE\r\n", "+OK")
	r.send("SET pause:shutdown 1\r\n")
	redistest.WaitFor(t, 10*time.Second, "the SET to be held", func() bool { return p.PauseStatus().HeldClients == 1 })
	if mode, held := p.counter(t, "slotway_proxy_paused"), p.counter(t, "slotway_proxy_paused_clients"); mode != 1 || held != 1 {
		t.Errorf("metrics during PAUSE WRITE with one held client: slotway_proxy_paused %v, slotway_proxy_paused_clients %v", mode, held)
	}
	p.stop(t)
	if got := r.reply(); got != "+OK" {
		t.Fatalf("the held SET when the proxy stopped: %q", got)
	}
}
