package scaler

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Event is one scaling step, kept in memory and in a capped stream in the
// cluster (EventsKey) so every instance shows the same history.
type Event struct {
	Time   time.Time `json:"time"`
	Term   uint64    `json:"term"`
	Actor  string    `json:"actor"`
	Kind   string    `json:"kind"` // acquire, meet, slot_moved, drain, forget, reset, release, fix, failure, ...
	Slot   int       `json:"slot"` // -1 when not about one slot
	Node   string    `json:"node,omitempty"`
	Keys   int64     `json:"keys,omitempty"`
	Reason string    `json:"reason,omitempty"`
	// The autoscaler's events (threshold_breach, decision, scale_success,
	// scale_failure) say which action, towards how many masters (or which
	// maxmemory): a new leader rebuilds its policy state from them.
	Action    string `json:"action,omitempty"`
	Masters   int    `json:"masters,omitempty"`
	MaxMemory int64  `json:"maxmemory,omitempty"`
}

const maxEvents = 1000

// events records events; safe for concurrent use.
type events struct {
	mu    sync.Mutex
	list  []Event
	rc    redis.UniversalClient
	log   *slog.Logger
	actor string
	// notify gets every event (the webhook notifier picks its kinds).
	notify func(Event)
}

func (e *events) add(ctx context.Context, ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	ev.Actor = e.actor
	e.mu.Lock()
	e.list = append(e.list, ev)
	if len(e.list) > maxEvents {
		e.list = e.list[len(e.list)-maxEvents:]
	}
	e.mu.Unlock()
	if e.notify != nil {
		e.notify(ev)
	}
	level := slog.LevelInfo
	if ev.Kind == "failure" {
		level = slog.LevelWarn
	}
	if ev.Kind != "slot_moved" {
		e.log.Log(ctx, level, "scaler: "+ev.Kind, ev.logAttrs()...)
	}
	// Single slot moves stay in memory: thousands of them would push the
	// group's history out of the capped stream; "slots_moved" sums them up.
	if e.rc == nil || ev.Kind == "slot_moved" {
		return
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	err := e.rc.XAdd(wctx, &redis.XAddArgs{Stream: EventsKey, MaxLen: maxEvents, Approx: true, Values: map[string]any{
		"time": ev.Time.UTC().Format(time.RFC3339Nano), "term": ev.Term, "actor": ev.Actor, "kind": ev.Kind,
		"slot": ev.Slot, "node": ev.Node, "keys": ev.Keys, "reason": ev.Reason,
		"action": ev.Action, "masters": ev.Masters, "maxmemory": ev.MaxMemory,
	}}).Err()
	if err != nil {
		e.log.Debug("scaler: event not stored in the cluster", "err", err)
	}
}

// logAttrs are the event's fields that have a value: no slot=-1 node=""
// keys=0 reason="" on events about no slot or node.
func (ev Event) logAttrs() []any {
	var out []any
	if ev.Slot >= 0 {
		out = append(out, "slot", ev.Slot)
	}
	if ev.Node != "" {
		out = append(out, "node", ev.Node)
	}
	if ev.Keys != 0 {
		out = append(out, "keys", ev.Keys)
	}
	if ev.Term != 0 {
		out = append(out, "term", ev.Term)
	}
	if ev.Reason != "" {
		out = append(out, "reason", ev.Reason)
	}
	return out
}

// recent returns the last n events, newest last: from the cluster's
// stream when it answers (the whole group's history), else from memory.
func (e *events) recent(ctx context.Context, n int) []Event {
	if e.rc != nil {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		msgs, err := e.rc.XRevRangeN(rctx, EventsKey, "+", "-", int64(n)).Result()
		if err == nil {
			out := make([]Event, 0, len(msgs))
			for i := len(msgs) - 1; i >= 0; i-- {
				out = append(out, eventFrom(msgs[i].Values))
			}
			return out
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	from := max(0, len(e.list)-n)
	return append([]Event(nil), e.list[from:]...)
}

func eventFrom(v map[string]any) Event {
	s := func(k string) string { x, _ := v[k].(string); return x }
	i := func(k string) int64 { n, _ := strconv.ParseInt(s(k), 10, 64); return n }
	t, _ := time.Parse(time.RFC3339Nano, s("time"))
	return Event{Time: t, Term: uint64(i("term")), Actor: s("actor"), Kind: s("kind"), Slot: int(i("slot")),
		Node: s("node"), Keys: i("keys"), Reason: s("reason"), Action: s("action"), Masters: int(i("masters")), MaxMemory: i("maxmemory")}
}
