package proxy_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/redistest"
)

// pubsubRounds is how many subscribe → confirmation → publish rounds each
// client kind runs.
const pubsubRounds = 1000

// TestSubscribeConfirmedMeansSubscribed: once a client has read its
// SUBSCRIBE confirmation, a PUBLISH through another Slotway instance counts
// it and the message arrives, as with a single Redis; once it has read its
// UNSUBSCRIBE confirmation, a PUBLISH no longer counts it.
func TestSubscribeConfirmedMeansSubscribed(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	ps := [2]*testProxy{startProxy(t, c), startProxy(t, c)}

	t.Run("raw RESP, a fresh connection per round", func(t *testing.T) {
		pubs := [2]*rawConn{dialRaw(t, ps[0].Addr().String()), dialRaw(t, ps[1].Addr().String())}
		lost := 0
		for i := range pubsubRounds {
			ch := fmt.Sprintf("raw-%d", i)
			sub := dialRaw(t, ps[i%2].Addr().String())
			sub.expect("subscribe", "SUBSCRIBE "+ch+"\r\n", "[subscribe "+ch+" :1]")
			pub := pubs[(i+1)%2]
			pub.send("PUBLISH " + ch + " m\r\n")
			if got := pub.reply(); got != ":1" {
				if lost++; lost <= 5 {
					t.Errorf("round %d: PUBLISH after the confirmation = %s, want :1", i, got)
				}
				sub.c.Close()
				continue
			}
			sub.expect("message", "", "[message "+ch+" m]")
			sub.c.Close()
		}
		if lost > 0 {
			t.Errorf("%d of %d messages lost", lost, pubsubRounds)
		}
	})

	t.Run("go-redis", func(t *testing.T) {
		ctx := context.Background()
		var subs [2]*redis.PubSub
		var pubs [2]*redis.Client
		for i, p := range ps {
			subs[i] = p.client(t).Subscribe(ctx)
			t.Cleanup(func() { subs[i].Close() })
			pubs[i] = p.client(t)
		}
		lost, counted := 0, 0
		for i := range pubsubRounds {
			ch := fmt.Sprintf("goredis-%d", i)
			sub, pub := subs[i%2], pubs[(i+1)%2]
			if err := sub.Subscribe(ctx, ch); err != nil {
				t.Fatal(err)
			}
			receive(t, sub, "subscribe "+ch+" 1")
			if n, err := pub.Publish(ctx, ch, "m").Result(); err != nil || n != 1 {
				if lost++; lost <= 5 {
					t.Errorf("round %d: PUBLISH after the confirmation = %d, %v; want 1", i, n, err)
				}
			} else {
				receive(t, sub, "message "+ch+" m")
			}
			if err := sub.Unsubscribe(ctx, ch); err != nil {
				t.Fatal(err)
			}
			receive(t, sub, "unsubscribe "+ch+" 0")
			if n, err := pub.Publish(ctx, ch, "after").Result(); err != nil || n != 0 {
				if counted++; counted <= 5 {
					t.Errorf("round %d: PUBLISH after the UNSUBSCRIBE confirmation = %d, %v; want 0", i, n, err)
				}
			}
		}
		if lost > 0 || counted > 0 {
			t.Errorf("%d of %d messages lost, %d publishes counted an unsubscribed client", lost, pubsubRounds, counted)
		}
	})
}

// receive reads the next subscribe-mode frame and checks it, flattened as
// "kind channel payload-or-count".
func receive(t *testing.T, ps *redis.PubSub, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := ps.Receive(ctx)
	if err != nil {
		t.Fatalf("waiting for %q: %v", want, err)
	}
	var got string
	switch v := v.(type) {
	case *redis.Subscription:
		got = fmt.Sprintf("%s %s %d", v.Kind, v.Channel, v.Count)
	case *redis.Message:
		got = fmt.Sprintf("message %s %s", v.Channel, v.Payload)
	default:
		got = fmt.Sprintf("%T %v", v, v)
	}
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
