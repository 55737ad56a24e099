package stats

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

type readySource struct{ ready atomic.Bool }

func (r *readySource) Ready() bool { return r.ready.Load() }

func (r *readySource) Status() Status {
	return Status{Instance: InstanceStatus{Name: "t", Ready: r.ready.Load()}}
}

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

func TestAdminAuth(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, file, auth string
		want             int
	}{
		{"disabled", "", "Bearer s3cret-token-0123456789", 403},
		{"no token", tokenFile, "", 401},
		{"wrong token", tokenFile, "Bearer nope", 403},
		{"right token, no group", tokenFile, "Bearer s3cret-token-0123456789", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(Config{Listen: "127.0.0.1:0", AdminTokenFile: tc.file}, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), &readySource{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.Run(ctx) }()
			defer func() { cancel(); <-done }()
			for _, path := range []string{"/ha/handover", "/api/v1/ha/handover"} {
				req, _ := http.NewRequest("POST", "http://"+s.Addr().String()+path, nil)
				if tc.auth != "" {
					req.Header.Set("Authorization", tc.auth)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != tc.want {
					t.Errorf("%s: %d, want %d", path, resp.StatusCode, tc.want)
				}
			}
		})
	}
	if _, err := New(Config{Listen: "127.0.0.1:0", AdminTokenFile: "/nonexistent"}, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), &readySource{}, nil); err == nil {
		t.Error("a missing token file was accepted")
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
