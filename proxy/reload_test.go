package proxy_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/proxy"
)

// TestReloadKeepsConnections: Reload applies users and limits to new
// commands and new connections, and never logs out or drops an open one.
func TestReloadKeepsConnections(t *testing.T) {
	c := redistest.New(t, redistest.Options{Masters: 3})
	var cfg proxy.Config
	p := startProxy(t, c, func(pc *proxy.Config) { cfg = *pc })
	cfg.Listen = "127.0.0.1:0"
	addr := p.Addr().String()

	open := dialRaw(t, addr) // connected while no users are configured
	open.expect("before", "SET rk v\r\n", "+OK")

	cfg.Users = []proxy.UserConfig{{Name: "default", Password: "pw-one"}}
	cfg.Limits.MaxArgs = 4
	cfg.KeysLimit = 1
	cfg.RetryTimeout = 7 * time.Second
	if err := p.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	open.expect("open connection after users appear", "GET rk\r\nPING\r\n", "v", "+PONG")
	open.expect("keys_limit applies to an open connection", "SET rk2 v\r\nKEYS rk*\r\n", "+OK",
		"-ERR KEYS would return 2 keys, over proxy.keys_limit 1; use SCAN")
	open.expect("CONFIG GET shows the new value", "CONFIG GET slotway-keys-limit\r\n", "[slotway-keys-limit 1]")

	fresh := dialRaw(t, addr)
	fresh.expect("new connection needs AUTH", "GET rk\r\n", "-NOAUTH Authentication required.")
	fresh.expect("new password", "AUTH pw-one\r\nGET rk\r\n", "+OK", "v")
	fresh.expect("max_args 4", "DEL a b c d\r\n", "-ERR Protocol error: invalid multibulk length")

	// A changed password: the authenticated connection stays logged in.
	authed := dialRaw(t, addr)
	authed.expect("auth", "AUTH pw-one\r\n", "+OK")
	cfg.Users[0].Password = "pw-two"
	cfg.Limits.MaxArgs = 1 << 20
	if err := p.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	authed.expect("authenticated before the change", "GET rk\r\n", "v")
	again := dialRaw(t, addr)
	again.expect("old password", "AUTH pw-one\r\n", "-WRONGPASS invalid username-password pair or user is disabled.")
	again.expect("new password", "AUTH pw-two\r\nDEL a b c d\r\n", "+OK", ":0")

	cfg.Limits.MaxArgs = 0
	if err := p.Reload(cfg); err == nil {
		t.Error("Reload took max_args 0")
	}
	again.expect("invalid config changed nothing", "DEL a b c d\r\n", ":0")
}

// TestReloadUnderTraffic reloads over and over while clients run
// commands: none fails, and under -race no access is unsynchronized.
func TestReloadUnderTraffic(t *testing.T) {
	c := redistest.New(t, redistest.Options{Masters: 3})
	var cfg proxy.Config
	p := startProxy(t, c, func(pc *proxy.Config) { cfg = *pc })
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	var ops atomic.Int64
	for w := range 4 {
		wg.Go(func() {
			rc := redis.NewClient(&redis.Options{Addr: p.Addr().String(), MaxRetries: -1})
			defer rc.Close()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("rt:%d:%d", w, i%100)
				if err := rc.Set(ctx, key, i, 0).Err(); err != nil {
					errs <- fmt.Errorf("SET %s: %w", key, err)
					return
				}
				if err := rc.MGet(ctx, key, "rt:other").Err(); err != nil {
					errs <- fmt.Errorf("MGET: %w", err)
					return
				}
				ops.Add(1)
			}
		})
	}
	// Reload until the clients have run 1000 command pairs meanwhile.
	deadline := time.Now().Add(2 * time.Minute)
	for i := 0; ops.Load() < 1000 && len(errs) == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("clients ran only %d command pairs in 2 minutes", ops.Load())
		}
		cfg.KeysLimit = i
		cfg.MaxRedirects = uint8(1 + i%5)
		cfg.ClientIdleTimeout = time.Duration(i) * time.Minute
		cfg.ReadFrom = []string{"master", "prefer-replica"}[i%2]
		cfg.Limits.MaxArgs = 1000 + i
		if err := p.Reload(cfg); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
