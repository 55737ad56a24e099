package stats

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

type readySource struct{ ready atomic.Bool }

func (r *readySource) Ready() bool { return r.ready.Load() }

func TestEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	src := &readySource{}
	s, err := New(Config{Listen: "127.0.0.1:0"}, slog.New(slog.DiscardHandler), reg, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	base := "http://" + s.Addr().String()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "not ready") {
		t.Errorf("/readyz before ready = %d %q", code, body)
	}
	src.ready.Store(true)
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz when ready = %d", code)
	}
	code, body := get("/metrics")
	if code != 200 || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics = %d", code)
	}
	if code, body := get("/ha/vip"); code != 200 || !strings.Contains(body, "single instance") {
		t.Errorf("/ha/vip without a group = %d %q", code, body)
	}
	if code, _ := get("/debug/pprof/"); code != 404 {
		t.Errorf("pprof served without stats.pprof: %d", code)
	}
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{Listen: "nowhere"}).Validate(); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Errorf("bad listen accepted: %v", err)
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Error(err)
	}
}
