package proxy_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/redistest"
)

// TestRESP3: HELLO 3 makes the whole path speak RESP3 (maps, nulls,
// doubles, push frames), with go-redis v9's plain client, which sends
// HELLO 3 on connect, and with raw RESP.
func TestRESP3(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	p := startProxy(t, c)
	ctx := context.Background()

	r := dialRaw(t, p.Addr().String())
	r.send("HELLO 3\r\n")
	if got := r.reply(); len(got) < 20 || got[:20] != "{server redis versio" {
		t.Fatalf("HELLO 3 = %q", got)
	}
	r.expect("RESP3 replies", "HSET h f v\r\nHGETALL h\r\nGET missing\r\nMGET h2 missing\r\nZADD z 1.5 a\r\nZSCORE z a\r\nBLPOP nolist 0.05\r\nCLIENT GETNAME\r\nCONFIG GET databases\r\nPUBSUB NUMSUB x\r\nDEL z\r\nRANDOMKEY\r\n",
		":1", "{f v}", "(nil)", "[(nil) (nil)]", ":1", ",1.5", "(nil)", "(nil)", "{databases 1}", "[x :0]", ":1", "h") // Redis 7.0 answers NUMSUB with an array in RESP3 too
	// Transactions and blocking commands run on dedicated connections that
	// speak RESP3 too.
	r.expect("MULTI", "MULTI\r\nHGETALL h\r\nEXEC\r\n", "+OK", "+QUEUED", "[{f v}]")
	// Subscribed RESP3 clients get push frames and may run any command.
	r.expect("subscribe", "SUBSCRIBE ch\r\nGET missing\r\n", "[subscribe ch :1]", "(nil)")
	pub := p.client(t)
	redistest.WaitFor(t, 10*time.Second, "subscription", func() bool {
		return pub.PubSubNumSub(ctx, "ch").Val()["ch"] == 1
	})
	if n := pub.Publish(ctx, "ch", "hi").Val(); n != 1 {
		t.Fatalf("PUBLISH reached %d", n)
	}
	// The push and the PING reply come from different connections to the
	// proxy, so either may come first.
	r.send("PING\r\n")
	got := r.reply() + " " + r.reply()
	if got != "[message ch hi] +PONG" && got != "+PONG [message ch hi]" {
		t.Fatalf("push and PING while subscribed = %q", got)
	}

	// go-redis v9 with RESP3.
	rc := p.client(t, func(o *redis.Options) { o.Protocol = 3 })
	if err := rc.HSet(ctx, "gh", "a", "1", "b", "2").Err(); err != nil {
		t.Fatal(err)
	}
	if m := rc.HGetAll(ctx, "gh").Val(); len(m) != 2 || m["b"] != "2" {
		t.Fatalf("HGETALL = %v", m)
	}
	rc.ZAdd(ctx, "gz", redis.Z{Score: 2.5, Member: "x"})
	if zs := rc.ZRangeWithScores(ctx, "gz", 0, -1).Val(); len(zs) != 1 || zs[0].Score != 2.5 {
		t.Fatalf("ZRANGE WITHSCORES = %v", zs)
	}
	if err := rc.BLPop(ctx, time.Second, "nothing").Err(); err != redis.Nil {
		t.Fatalf("BLPOP timeout = %v, want redis.Nil", err)
	}
	if err := rc.ClientGetName(ctx).Err(); err != redis.Nil {
		t.Fatalf("CLIENT GETNAME = %v", err)
	}
	if v := rc.MGet(ctx, "gh:none", "{x}1", "{y}2").Val(); len(v) != 3 || v[0] != nil {
		t.Fatalf("MGET = %v", v)
	}
	sub := rc.Subscribe(ctx, "news")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	redistest.WaitFor(t, 10*time.Second, "go-redis subscription", func() bool {
		return rc.PubSubNumSub(ctx, "news").Val()["news"] == 1
	})
	rc.Publish(ctx, "news", "hello")
	msg, err := sub.ReceiveMessage(ctx)
	if err != nil || msg.Payload != "hello" {
		t.Fatalf("message = %v, %v", msg, err)
	}
	cmds, err := rc.TxPipelined(ctx, func(pp redis.Pipeliner) error {
		pp.Incr(ctx, "{t}n")
		pp.Incr(ctx, "{t}n")
		return nil
	})
	if err != nil || cmds[1].(*redis.IntCmd).Val() != 2 {
		t.Fatalf("MULTI/EXEC = %v, %v", cmds, err)
	}
}
