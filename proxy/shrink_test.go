package proxy

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/redistest"
)

// TestBuffersShrinkAfterLargeValues: values of 700 KiB grow the client's
// read window and reply buffer and the backend pipe's read window and
// write buffers; small traffic afterwards gives them all back, and so does
// a pipe going quiet.
func TestBuffersShrinkAfterLargeValues(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
	s := startVecProxy(t, 1)
	ctx := context.Background()
	rc := redis.NewClient(&redis.Options{Addr: s.Addr().String(), Protocol: 2, PoolSize: 1})
	defer rc.Close()

	value := bytes.Repeat([]byte("0123456789abcdef"), 700<<10/16)
	medium := value[:vecMin-100]
	large := func() {
		t.Helper()
		_, err := rc.Pipelined(ctx, func(pl redis.Pipeliner) error {
			for i := range 4 {
				pl.Set(ctx, fmt.Sprintf("big:%d", i), value, 0)
			}
			// Copied into the pipe's write buffer (larger ones are
			// written in place): 64 of them make it grow.
			for i := range 64 {
				pl.Set(ctx, fmt.Sprintf("medium:%d", i), medium, 0)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 4 {
			got, err := rc.Get(ctx, fmt.Sprintf("big:%d", i)).Bytes()
			if err != nil || !bytes.Equal(got, value) {
				t.Fatalf("GET big:%d: %d bytes, %v", i, len(got), err)
			}
		}
	}
	id, err := rc.ClientID(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	client := func() *client {
		s.mu.Lock()
		defer s.mu.Unlock()
		for cl := range s.clients {
			if cl.id == uint64(id) {
				return cl
			}
		}
		t.Fatalf("client %d is gone", id)
		return nil
	}
	type pipeBufs struct{ read, pend, spare int }
	pipes := func() []pipeBufs {
		s.topo.mu.Lock()
		var ps []*pipe
		for _, b := range s.topo.backends {
			ps = append(ps, b.allPipes()...)
		}
		s.topo.mu.Unlock()
		var out []pipeBufs
		for _, p := range ps {
			p.mu.Lock()
			out = append(out, pipeBufs{int(p.readCap.Load()), cap(p.pend), cap(p.spare)})
			p.mu.Unlock()
		}
		return out
	}
	// The read window does not keep a size above bufKeep for large
	// replies: they are handed over with its buffer (vectored.go).
	grown := func(b pipeBufs) bool { return max(b.pend, b.spare) > bufKeep }
	small := func(b pipeBufs) bool { return b.read <= bufKeep && b.pend <= bufKeep && b.spare <= bufKeep }

	large()
	if got := client().bufBytes.Load(); got <= bufKeep {
		t.Fatalf("client buffers hold %d bytes after large values; the test did not make them grow", got)
	}
	if ps := pipes(); len(ps) != 1 || !grown(ps[0]) {
		t.Fatalf("pipe buffers after large values: %+v; the test did not make them grow", ps)
	}

	// Small traffic: every buffer is back to its base size after
	// shrinkAfter batches.
	for i := range 3 * shrinkAfter {
		if err := rc.Set(ctx, "small", i, 0).Err(); err != nil {
			t.Fatal(err)
		}
		if err := rc.Get(ctx, "small").Err(); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := client().bufBytes.Load(), int64(windowStart+16<<10); got != want {
		t.Errorf("client buffers hold %d bytes after small traffic, want %d", got, want)
	}
	if ps := pipes(); len(ps) != 1 || !small(ps[0]) {
		t.Errorf("pipe buffers after small traffic: %+v, want each <= %d", ps, bufKeep)
	}

	// No traffic at all: a quiet pipe gives its buffers back by itself.
	large()
	redistest.WaitFor(t, 30*time.Second, "quiet pipe to shrink its buffers", func() bool {
		ps := pipes()
		return len(ps) == 1 && small(ps[0])
	})
	if err := rc.Get(ctx, "small").Err(); err != nil {
		t.Fatalf("GET after the pipe shrank: %v", err)
	}
}
