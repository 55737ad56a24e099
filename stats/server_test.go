package stats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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
	s, err := New(Config{Listen: "127.0.0.1:0"}, slog.New(slog.DiscardHandler), reg, src, Parts{})
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
	if code, body := get("/"); code != 200 || !strings.Contains(body, `src="/assets/scaler.js"`) || !strings.Contains(body, `src="/assets/app.js"`) {
		t.Errorf("/ = %d, scripts missing", code)
	}
	for _, a := range []string{"app.js", "scaler.js", "style.css"} {
		if code, _ := get("/assets/" + a); code != 200 {
			t.Errorf("/assets/%s = %d", a, code)
		}
	}
	if code, body := get("/api/v1/status"); code != 200 || strings.Contains(body, `"auto"`) {
		t.Errorf("/api/v1/status without a scaler = %d, has auto: %s", code, body)
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
			s, err := New(Config{Listen: "127.0.0.1:0", AdminTokenFile: tc.file}, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), &readySource{}, Parts{})
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
	if _, err := New(Config{Listen: "127.0.0.1:0", AdminTokenFile: "/nonexistent"}, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), &readySource{}, Parts{}); err == nil {
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

// fakeScaler records what the admin endpoints ask of the scaler.
type fakeScaler struct {
	err   error // returned by Start and Control
	mu    sync.Mutex
	calls []string
}

func (f *fakeScaler) record(c string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
	return f.err
}

func (f *fakeScaler) Start(kind string, n int, target string) error {
	return f.record(fmt.Sprintf("start %s %d %s", kind, n, target))
}
func (f *fakeScaler) Operation() Operation     { return Operation{State: "idle"} }
func (f *fakeScaler) Leader() (string, string) { return "p1", "127.0.0.1:8100" }
func (f *fakeScaler) Control(op string, on bool) error {
	return f.record(fmt.Sprintf("%s %v", op, on))
}

func (f *fakeScaler) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// startServer runs a server with the given token file ("" disables the
// admin API) and scaler (nil: none) and returns its base URL.
func startServer(t *testing.T, tokenFile string, sc Scaler) string {
	t.Helper()
	s := runServer(t, tokenFile, &readySource{}, Parts{Scaler: sc})
	return "http://" + s.Addr().String()
}

// runServer runs a server over src with the given token file until the
// test ends.
func runServer(t *testing.T, tokenFile string, src Source, parts Parts) *Server {
	t.Helper()
	s, err := New(Config{Listen: "127.0.0.1:0", AdminTokenFile: tokenFile}, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), src, parts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return s
}

func TestScalerControl(t *testing.T) {
	const token = "s3cret-token-0123456789"
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	refused := errors.New("pause: cannot write the flag: CLUSTERDOWN")
	for _, tc := range []struct {
		name      string
		noScaler  bool
		noAdmin   bool   // no stats.admin_token_file
		auth      string // "" sends no Authorization header
		scalerErr error
		path      string
		body      string
		wantCode  int
		wantBody  string // substring
		wantCalls []string
	}{
		{name: "pause", path: "pause", auth: "Bearer " + token, wantCode: 200,
			wantBody: `{"ok":true,"paused":true}`, wantCalls: []string{"pause false"}},
		{name: "resume", path: "resume", auth: "Bearer " + token, wantCode: 200,
			wantBody: `{"ok":true,"paused":false}`, wantCalls: []string{"resume false"}},
		{name: "dry_run on", path: "dry_run", auth: "Bearer " + token, body: `{"on": true}`, wantCode: 200,
			wantBody: `{"dry_run":true,"ok":true}`, wantCalls: []string{"dry_run true"}},
		{name: "dry_run off", path: "dry_run", auth: "Bearer " + token, body: `{"on":false}`, wantCode: 200,
			wantBody: `{"dry_run":false,"ok":true}`, wantCalls: []string{"dry_run false"}},
		{name: "dry_run without a body", path: "dry_run", auth: "Bearer " + token, wantCode: 400,
			wantBody: `want {\"on\": true} or {\"on\": false}: empty body`},
		{name: "dry_run without on", path: "dry_run", auth: "Bearer " + token, body: `{"enabled": true}`, wantCode: 400,
			wantBody: `\"on\" is missing`},
		{name: "dry_run with a string", path: "dry_run", auth: "Bearer " + token, body: `{"on": "yes"}`, wantCode: 400,
			wantBody: "bad JSON body"},
		{name: "dry_run with broken JSON", path: "dry_run", auth: "Bearer " + token, body: `{"on": tru`, wantCode: 400,
			wantBody: "bad JSON body"},
		{name: "scaler refuses", path: "pause", auth: "Bearer " + token, scalerErr: refused, wantCode: 409,
			wantBody: `{"error":"pause: cannot write the flag: CLUSTERDOWN"}`, wantCalls: []string{"pause false"}},
		{name: "no token", path: "pause", wantCode: 401, wantBody: "missing bearer token"},
		{name: "wrong token", path: "resume", auth: "Bearer nope", wantCode: 403, wantBody: "wrong token"},
		{name: "admin API disabled", noAdmin: true, path: "dry_run", auth: "Bearer " + token, body: `{"on": true}`, wantCode: 403},
		{name: "no scaler: pause", noScaler: true, path: "pause", auth: "Bearer " + token, wantCode: 404, wantBody: "no scaler: section"},
		{name: "no scaler: resume", noScaler: true, path: "resume", auth: "Bearer " + token, wantCode: 404},
		{name: "no scaler: dry_run", noScaler: true, path: "dry_run", auth: "Bearer " + token, body: `{"on": true}`, wantCode: 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakeScaler{err: tc.scalerErr}
			var sc Scaler = fake
			if tc.noScaler {
				sc = nil
			}
			file := tokenFile
			if tc.noAdmin {
				file = ""
			}
			base := startServer(t, file, sc)
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req, err := http.NewRequest("POST", base+"/api/v1/scaler/"+tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantCode || !strings.Contains(string(b), tc.wantBody) {
				t.Errorf("POST %s = %d %s, want %d with %q", tc.path, resp.StatusCode, b, tc.wantCode, tc.wantBody)
			}
			if ct := resp.Header.Get("Content-Type"); (tc.wantCode == 200 || tc.wantCode == 400 || tc.wantCode == 409) && ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			if got := fake.Calls(); !slices.Equal(got, tc.wantCalls) {
				t.Errorf("Control calls (-want +got):\n- %q\n+ %q", tc.wantCalls, got)
			}
		})
	}
}

// autoSource reports a scaler with an autoscaler status.
type autoSource struct{ readySource }

func (a *autoSource) Status() Status {
	return Status{Scaler: ScalerStatus{Enabled: true, State: "idle",
		Auto: &AutoStatus{Enabled: true, Paused: true}}}
}

func TestStatusCarriesAuto(t *testing.T) {
	s, err := New(Config{Listen: "127.0.0.1:0"}, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), &autoSource{}, Parts{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(s.status())
	if err != nil {
		t.Fatal(err)
	}
	s.ln.Close()
	var got struct {
		Scaler struct {
			Auto map[string]any `json:"auto"`
		} `json:"scaler"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Scaler.Auto["paused"] != true || got.Scaler.Auto["enabled"] != true {
		t.Errorf("scaler.auto = %v", got.Scaler.Auto)
	}
}

// TestSampleJSON keeps the page's example status (used by docs/api.md and
// for working on the page without a cluster) in step with Status,
// scaler.auto included.
func TestSampleJSON(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("web", "testdata", "sample.json"))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	var st Status
	if err := dec.Decode(&st); err != nil {
		t.Fatalf("sample.json does not match Status: %v", err)
	}
	if st.Scaler.Auto == nil {
		t.Fatal("sample.json has no scaler.auto")
	}
	// Every field present, not only known: the page reads them all.
	var raw struct {
		Scaler struct {
			Auto map[string]any `json:"auto"`
		} `json:"scaler"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	auto := raw.Scaler.Auto
	for _, k := range []string{"enabled", "paused", "dry_run", "leader", "interval_ns", "evaluated", "masters",
		"desired_masters", "signals", "cycles", "up_cooldown_left_ns", "down_cooldown_left_ns", "decision", "reason", "timeline"} {
		if _, ok := auto[k]; !ok {
			t.Errorf("scaler.auto.%s missing", k)
		}
	}
	var names []string
	for _, s := range auto["signals"].([]any) {
		sig := s.(map[string]any)
		names = append(names, sig["name"].(string))
		for _, k := range []string{"average", "peak", "threshold", "per_master"} {
			if _, ok := sig[k]; !ok {
				t.Errorf("signal %v: %s missing", sig["name"], k)
			}
		}
	}
	if want := []string{"memory_pct", "clients_pct", "ops_per_master", "cpu_pct"}; !slices.Equal(names, want) {
		t.Errorf("signals (-want +got):\n- %q\n+ %q", want, names)
	}
}

// /ha/status and "group" in /api/v1/status are the holder's GroupStatus,
// one shape wherever the group is read.
func TestGroupFromHolder(t *testing.T) {
	g := &groupSource{members: []GroupMember{{Name: "p1", Alive: true}, {Name: "p2", Alive: true, StatsAddr: "127.0.0.1:1"}}}
	addr := runServer(t, "", g, Parts{Holder: g}).Addr().String()
	get := func(path string, v any) {
		t.Helper()
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	var ha GroupStatus
	get("/ha/status", &ha)
	var st Status
	get("/api/v1/status", &st)
	want := g.GroupStatus()
	if ha.Self != "p1" || !slices.Equal(ha.Members, want.Members) {
		t.Errorf("/ha/status = %+v, want %+v", ha, *want)
	}
	if st.Group == nil || st.Group.Self != ha.Self || !slices.Equal(st.Group.Members, ha.Members) {
		t.Errorf("/api/v1/status group = %+v, /ha/status %+v", st.Group, ha)
	}
}
