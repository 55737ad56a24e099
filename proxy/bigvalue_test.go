package proxy_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/proxy"
)

// TestLargeValuesShareAPipe: many clients pipelining values of hundreds of
// KiB through one backend connection per master make writes of several
// MiB; every value must come back byte for byte. (A write buffer too big
// to keep once left the pipe's pending and spare buffers sharing one
// array: bytes of one command overwrote another's, and Redis answered
// "unknown command '$524288'" or closed the connection.)
func TestLargeValuesShareAPipe(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	p := startProxy(t, c, func(cfg *proxy.Config) { cfg.BackendConns, cfg.EventLoops = 1, 1 })
	ctx := context.Background()
	const clients, rounds, perPipeline, size = 16, 6, 4, 700 << 10
	value := func(key string) []byte {
		return bytes.Repeat([]byte(key+"|"), size/(len(key)+1))
	}
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for w := range clients {
		wg.Go(func() {
			rc := redis.NewClient(&redis.Options{Addr: p.Addr().String(), Protocol: 2, PoolSize: 1})
			defer rc.Close()
			for r := range rounds {
				_, err := rc.Pipelined(ctx, func(pl redis.Pipeliner) error {
					for i := range perPipeline {
						k := fmt.Sprintf("big:%d:%d:%d", w, r, i)
						pl.Set(ctx, k, value(k), 0)
					}
					return nil
				})
				if err != nil {
					errs <- fmt.Errorf("client %d round %d: %w", w, r, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	rc := p.client(t)
	for w := range clients {
		for r := range rounds {
			for i := range perPipeline {
				k := fmt.Sprintf("big:%d:%d:%d", w, r, i)
				got, err := rc.Get(ctx, k).Bytes()
				if err != nil || !bytes.Equal(got, value(k)) {
					t.Fatalf("%s: %d bytes back, %v; want its %d bytes", k, len(got), err, len(value(k)))
				}
			}
		}
	}
}
