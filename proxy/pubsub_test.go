package proxy_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/slotway/slotway/internal/hashslot"
	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/proxy"
)

func TestPubSub(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	p1 := startProxy(t, c)
	p2 := startProxy(t, c)

	// Three subscribers and two publishers through two Slotway instances.
	a := dialRaw(t, p1.Addr().String())
	a.expect("subscribe", "SUBSCRIBE news sport\r\n", "[subscribe news :1]", "[subscribe sport :2]")
	b := dialRaw(t, p2.Addr().String())
	b.expect("psubscribe", "PSUBSCRIBE n*\r\n", "[psubscribe n* :1]")
	s := dialRaw(t, p1.Addr().String())
	s.expect("ssubscribe", "SSUBSCRIBE {s}orders\r\n", "[ssubscribe {s}orders :1]")

	pub1 := dialRaw(t, p1.Addr().String())
	pub2 := dialRaw(t, p2.Addr().String())
	// The backend subscriptions are set up asynchronously: publish until
	// the receivers count shows them.
	redistest.WaitFor(t, 10*time.Second, "subscriptions to reach the masters", func() bool {
		pub1.send("PUBSUB NUMSUB news\r\n")
		pub2.send("PUBSUB NUMPAT\r\n")
		pub1.send("PUBSUB SHARDNUMSUB {s}orders\r\n")
		return pub1.reply() == "[news :1]" && pub2.reply() == ":1" && pub1.reply() == "[{s}orders :1]"
	})
	pub1.expect("publish", "PUBLISH news hello\r\n", ":2") // a's channel and b's pattern
	a.expect("message", "", "[message news hello]")
	b.expect("pmessage", "", "[pmessage n* news hello]")
	pub2.expect("spublish", "SPUBLISH {s}orders o1\r\n", ":1")
	s.expect("smessage", "", "[smessage {s}orders o1]")
	pub2.expect("publish sport", "PUBLISH sport goal\r\n", ":1")
	a.expect("message", "", "[message sport goal]")

	pub1.send("PUBSUB CHANNELS\r\n")
	if got := pub1.reply(); got != "[news sport]" && got != "[sport news]" {
		t.Errorf("PUBSUB CHANNELS = %q", got)
	}
	pub1.expect("shardchannels", "PUBSUB SHARDCHANNELS\r\n", "[{s}orders]")

	// RESP2 subscribe mode allows only a few commands.
	a.expect("subscribe mode", "GET x\r\nPING\r\nPING hi\r\n",
		"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
		"[pong ]", "[pong hi]")
	a.expect("unsubscribe all", "UNSUBSCRIBE\r\n", "[unsubscribe news :1]", "[unsubscribe sport :0]")
	a.expect("normal again", "SET after sub\r\nGET after\r\nUNSUBSCRIBE\r\n", "+OK", "sub", "[unsubscribe (nil) :0]")
	b.expect("reset", "RESET\r\nGET after\r\n", "+RESET", "sub")
	redistest.WaitFor(t, 10*time.Second, "unsubscribed on the masters", func() bool {
		pub1.send("PUBSUB NUMSUB news\r\nPUBSUB NUMPAT\r\n")
		return pub1.reply() == "[news :0]" && pub1.reply() == ":0"
	})
}

// publishUntil sends SPUBLISH ch seq=N until the subscriber receives a
// message sent after the call began, within bounds.
func publishUntil(t *testing.T, what string, pub, sub *rawConn, ch string) {
	t.Helper()
	start := time.Now()
	for i := 0; i < 2000 && time.Since(start) < 30*time.Second; i++ {
		msg := fmt.Sprintf("%s-%d", what, i)
		pub.send("SPUBLISH " + ch + " " + msg + "\r\n")
		pub.reply()
		sub.c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		for {
			line, err := sub.rd.Peek(1)
			if err != nil || len(line) == 0 {
				break
			}
			got := sub.reply()
			if strings.HasPrefix(got, "[smessage "+ch+" "+what+"-") {
				sub.c.SetReadDeadline(time.Now().Add(30 * time.Second))
				return
			}
		}
	}
	t.Fatalf("%s: no message on %s reached the subscriber", what, ch)
}

// TestShardedPubSubFollowsSlots: a shard channel keeps delivering after its
// slot moves to another master and after its master fails over.
func TestShardedPubSubFollowsSlots(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3, Replicas: 1, NodeTimeout: 2 * time.Second})
	p := startProxy(t, c)
	ch := "{live}feed"
	slot := hashslot.Of([]byte(ch))
	sub := dialRaw(t, p.Addr().String())
	sub.expect("ssubscribe", "SSUBSCRIBE "+ch+"\r\n", "[ssubscribe "+ch+" :1]")
	pub := dialRaw(t, p.Addr().String())
	publishUntil(t, "before", pub, sub, ch)

	ctx := context.Background()
	src, err := c.MasterOf(ctx, slot)
	if err != nil {
		t.Fatal(err)
	}
	masters, err := c.Masters(ctx)
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
	if err := c.MoveSlot(ctx, slot, src, dst); err != nil {
		t.Fatal(err)
	}
	publishUntil(t, "after-move", pub, sub, ch)

	if err := c.Kill(dst); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitForFailover(ctx, dst); err != nil {
		t.Fatal(err)
	}
	publishUntil(t, "after-failover", pub, sub, ch)
	if got := p.counter(t, "slotway_proxy_pubsub_resubscribes_total"); got < 2 {
		t.Errorf("slotway_proxy_pubsub_resubscribes_total = %v, want at least 2 (a slot move and a failover)", got)
	}
}

// TestSlowSubscriberIsCutOff: a subscriber that never reads is disconnected
// at the output limit and the proxy's memory stays bounded.
func TestSlowSubscriberIsCutOff(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	const hard = 1 << 20
	p := startProxy(t, c, func(cfg *proxy.Config) {
		cfg.Limits.PubsubOutput = proxy.OutputLimit{Hard: hard, Soft: 256 << 10, SoftFor: time.Second}
	})
	slow := dialRaw(t, p.Addr().String())
	slow.expect("subscribe", "SUBSCRIBE firehose\r\n", "[subscribe firehose :1]")
	fast := dialRaw(t, p.Addr().String())
	fast.expect("subscribe", "SUBSCRIBE firehose\r\n", "[subscribe firehose :1]")
	pub := dialRaw(t, p.Addr().String())
	redistest.WaitFor(t, 10*time.Second, "subscriptions", func() bool {
		pub.send("PUBSUB NUMSUB firehose\r\n")
		return pub.reply() == "[firehose :2]"
	})
	// The fast subscriber drains in the background.
	drained := make(chan int)
	go func() {
		n := 0
		buf := make([]byte, 64<<10)
		fast.c.SetReadDeadline(time.Now().Add(60 * time.Second))
		for {
			k, err := fast.c.Read(buf)
			n += k
			if err != nil || n >= 48<<20 {
				drained <- n
				return
			}
		}
	}()
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	payload := strings.Repeat("x", 16<<10)
	cmd := fmt.Sprintf("*3\r\n$7\r\nPUBLISH\r\n$8\r\nfirehose\r\n$%d\r\n%s\r\n", len(payload), payload)
	var peak uint64
	// 64 MB of messages: far more than socket buffers hold.
	for i := 0; i < 4096; i++ {
		pub.send(cmd)
		pub.reply()
		if i%256 == 0 {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
		if p.counter(t, "slotway_proxy_output_limit_disconnects_total") >= 1 && i > 512 {
			break
		}
	}
	fast.c.SetReadDeadline(time.Now().Add(2 * time.Second)) // ends the drain
	pub.c.SetDeadline(time.Now().Add(30 * time.Second))
	if got := p.counter(t, "slotway_proxy_output_limit_disconnects_total"); got != 1 {
		t.Fatalf("output limit disconnects = %v, want 1", got)
	}
	// The slow client finds its connection closed after what the kernel
	// buffered.
	slow.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1<<20)
	for {
		if _, err := slow.c.Read(buf); err != nil {
			if strings.Contains(err.Error(), "timeout") {
				t.Fatal("slow subscriber was not disconnected")
			}
			break
		}
	}
	if n := <-drained; n < 1<<20 {
		t.Errorf("the reading subscriber got only %d bytes", n)
	}
	// Bounded: the test process (proxy included) grew by far less than
	// what was published.
	if peak > before.HeapInuse+32<<20 {
		t.Errorf("heap grew from %d to %d while publishing to a stalled subscriber", before.HeapInuse, peak)
	}
	pub.expect("still serving", "PING\r\n", "+PONG")
}
