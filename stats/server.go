package stats

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/slotway/slotway/internal/config"
)

// Config is the `stats:` section of the config file.
type Config struct {
	// Listen is the HTTP address of the page, /metrics and /healthz.
	// Default 127.0.0.1:8100.
	Listen string `yaml:"listen"`
	// Pprof serves Go's profiler under /debug/pprof/ on the same listener.
	// Off by default: profiles reveal internals and cost CPU while taken.
	Pprof bool `yaml:"pprof"`
	// AdminTokenFile holds the bearer token of the admin API (POST
	// endpoints). Unset: the admin API is disabled.
	AdminTokenFile string `yaml:"admin_token_file"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config { return Config{Listen: "127.0.0.1:8100"} }

// Validate reports bad fields relative to `stats`.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return config.Errorf("listen", "want host:port, got %q", c.Listen)
	}
	return nil
}

// Source is what the stats server needs from the instance.
type Source interface {
	// Ready reports whether the slot map is known and a master answers.
	Ready() bool
	// Status is the instance's view now. The server fills in the rates,
	// the series and the times.
	Status() Status
}

// SlotOpsSource is a Source that also serves its per-slot command
// counters (GET /api/v1/slot_ops), for the leader's autoscaler.
type SlotOpsSource interface {
	SlotOps() SlotOps
}

// Holder is what the stats server needs from the HA group.
type Holder interface {
	// IsHolder reports whether this instance holds the VIP now.
	IsHolder() bool
	// Handover moves the VIP to another member without stopping and
	// returns its name.
	Handover(ctx context.Context) (string, error)
	// GroupStatus is the group as this member sees it: "group" in
	// /api/v1/status, and /ha/status.
	GroupStatus() *GroupStatus
}

// Scaler is what the stats server needs from the scaler.
type Scaler interface {
	// Start asks for an operation: "scale" (n masters), "drain" (target
	// host:port), "rebalance" or "fix".
	Start(kind string, n int, target string) error
	// Operation is the current or last operation.
	Operation() Operation
	// Leader returns the leader's name and stats address when this
	// instance is not the leader (for a 409 that tools can follow).
	Leader() (name, statsAddr string)
	// Control sets the autoscaler's group-wide flags: op "pause" or
	// "resume" (on is ignored), or "dry_run" (on turns it on or off).
	// The flags live in the cluster, so any instance may set them, not
	// only the leader. An error means the flag was not set.
	Control(op string, on bool) error
}

// Parts are what a server serves besides its Source; nil ones turn their
// endpoints off (404).
type Parts struct {
	// Listener, when not nil, is the bound stats address: an instance
	// binds it first so that its HA group can advertise the real port.
	// Nil: New binds cfg.Listen.
	Listener net.Listener
	Holder   Holder   // the HA group: /ha/vip, /ha/status, hand-over
	Scaler   Scaler   // the scaling endpoints
	Pauser   Pauser   // /api/v1/proxy/pause and /unpause
	Reloader Reloader // POST /api/v1/reload
}

// Server serves the HTTP endpoints.
type Server struct {
	parts   Parts // fixed at New; a nil part's endpoints answer 404
	ln      net.Listener
	srv     *http.Server
	log     *slog.Logger
	src     Source
	started time.Time
	page    *template.Template
	series  sampler
}

// New binds cfg.Listen. reg receives Go runtime and process collectors,
// and /metrics exposes everything registered in it.
//
// holder is nil for an instance without an HA group: it is alone, so it
// always answers /ha/vip with 200.
func New(cfg Config, log *slog.Logger, reg *prometheus.Registry, src Source, parts Parts) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("stats config: %w", err)
	}
	holder := parts.Holder
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("register go collector: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("register process collector: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	s := &Server{parts: parts, log: log, src: src, started: time.Now()}
	page, err := template.ParseFS(webFS, "web/index.html")
	if err != nil {
		return nil, fmt.Errorf("stats page template: %w", err)
	}
	s.page = page
	mux.HandleFunc("GET /{$}", s.handlePage)
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(mustSub(webFS, "web"))))
	mux.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if err := json.NewEncoder(w).Encode(s.status()); err != nil {
			log.Warn("encode /api/v1/status", "err", err)
		}
	})
	// The autoscaler on the leader sums every member's per-slot counters.
	if so, ok := src.(SlotOpsSource); ok {
		mux.HandleFunc("GET /api/v1/slot_ops", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "no-store")
			writeJSON(w, http.StatusOK, so.SlotOps())
		})
	}
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !src.Ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready: no slot map yet or no master reachable")
			return
		}
		fmt.Fprintln(w, "ready")
	})
	// For an upstream L4 balancer in front of the group (vip.mode status):
	// only the holder answers 200.
	mux.HandleFunc("GET /ha/vip", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		switch {
		case holder == nil:
			fmt.Fprintln(w, "holder (single instance)")
		case holder.IsHolder():
			fmt.Fprintln(w, "holder")
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "backup")
		}
	})
	mux.HandleFunc("GET /ha/status", func(w http.ResponseWriter, r *http.Request) {
		if holder == nil {
			http.Error(w, "no ha: section: this instance runs alone", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		// The same shape as "group" in /api/v1/status: one description
		// of the group, wherever it is read.
		if err := enc.Encode(holder.GroupStatus()); err != nil {
			log.Warn("encode /ha/status", "err", err)
		}
	})
	if cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	token := ""
	if cfg.AdminTokenFile != "" {
		b, err := os.ReadFile(cfg.AdminTokenFile)
		if err != nil {
			return nil, fmt.Errorf("stats.admin_token_file: %w", err)
		}
		token = strings.TrimSpace(string(b))
		if len(token) < 16 {
			return nil, fmt.Errorf("stats.admin_token_file: the token must be at least 16 characters, got %d", len(token))
		}
	}
	handover := admin(token, func(w http.ResponseWriter, r *http.Request) {
		if holder == nil {
			http.Error(w, "no ha: section: this instance runs alone", http.StatusNotFound)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		to, err := holder.Handover(ctx)
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			http.Error(w, err.Error(), http.StatusGatewayTimeout)
		case err != nil:
			http.Error(w, err.Error(), http.StatusConflict)
		default:
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]string{"handed_to": to})
		}
	})
	mux.Handle("POST /ha/handover", handover)
	mux.Handle("POST /api/v1/ha/handover", handover)
	// Scaling operations (the scaler runs them on the leader).
	for _, op := range []string{"scale", "drain", "rebalance", "fix"} {
		mux.Handle("POST /api/v1/scaler/"+op, admin(token, func(w http.ResponseWriter, r *http.Request) {
			s.startOperation(w, r, op)
		}))
	}
	mux.HandleFunc("GET /api/v1/scaler/operation", func(w http.ResponseWriter, r *http.Request) {
		if sc, ok := s.scalerOr404(w); ok {
			writeJSON(w, http.StatusOK, sc.Operation())
		}
	})
	// The autoscaler's flags (any instance: they are stored in the cluster).
	for _, op := range []string{"pause", "resume", "dry_run"} {
		mux.Handle("POST /api/v1/scaler/"+op, admin(token, func(w http.ResponseWriter, r *http.Request) {
			s.control(w, r, op)
		}))
	}
	mux.Handle("POST /api/v1/reload", admin(token, s.handleReload))
	for _, op := range []string{"pause", "unpause"} {
		mux.Handle("POST /api/v1/proxy/"+op, admin(token, func(w http.ResponseWriter, r *http.Request) {
			s.handlePause(w, r, op)
		}))
	}
	s.ln = parts.Listener
	if s.ln == nil {
		if s.ln, err = Listen(cfg); err != nil {
			return nil, err
		}
	}
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return s, nil
}

// Listen binds cfg.Listen, for Parts.Listener.
func Listen(cfg Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	return ln, nil
}

// Close releases a server that will not run (its listener); Run releases
// everything itself.
func (s *Server) Close() error { return s.ln.Close() }

// scalerOr404 returns the scaler, or answers 404 when there is none.
func (s *Server) scalerOr404(w http.ResponseWriter) (Scaler, bool) {
	if s.parts.Scaler == nil {
		http.Error(w, "no scaler: section: scaling is off on this instance", http.StatusNotFound)
		return nil, false
	}
	return s.parts.Scaler, true
}

func (s *Server) startOperation(w http.ResponseWriter, r *http.Request, op string) {
	sc, ok := s.scalerOr404(w)
	if !ok {
		return
	}
	var body struct {
		Masters int    `json:"masters"`
		Node    string `json:"node"`
	}
	if r.ContentLength != 0 {
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&body); err != nil && !errors.Is(err, io.EOF) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad JSON body: " + err.Error()})
			return
		}
	}
	switch {
	case op == "scale" && body.Masters < 1:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `want {"masters": N} with N >= 1`})
		return
	case op == "drain" && body.Node == "":
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `want {"node": "host:port"}`})
		return
	}
	if err := sc.Start(op, body.Masters, body.Node); err != nil {
		name, addr := sc.Leader()
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error(), "leader": name, "leader_stats": addr})
		return
	}
	writeJSON(w, http.StatusAccepted, sc.Operation())
}

// control sets one of the autoscaler's flags: 200 {"ok":true,"paused":…}
// or {"ok":true,"dry_run":…}; 400 for a bad dry_run body; 409 when the
// scaler refuses.
func (s *Server) control(w http.ResponseWriter, r *http.Request, op string) {
	sc, ok := s.scalerOr404(w)
	if !ok {
		return
	}
	on := false
	if op == "dry_run" {
		const want = `want {"on": true} or {"on": false}`
		var body struct {
			On *bool `json:"on"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&body); err != nil {
			msg := want + ": bad JSON body: " + err.Error()
			if errors.Is(err, io.EOF) {
				msg = want + ": empty body"
			}
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": msg})
			return
		}
		if body.On == nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": want + `: "on" is missing`})
			return
		}
		on = *body.On
	}
	if err := sc.Control(op, on); err != nil {
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
		return
	}
	switch op {
	case "dry_run":
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true, "dry_run": on})
	default:
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true, "paused": op == "pause"})
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// admin guards an admin endpoint with the bearer token: 401 without one,
// 403 for a wrong one or when the admin API is disabled.
func admin(token string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token == "" {
			http.Error(w, "admin API disabled: set stats.admin_token_file", http.StatusForbidden)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="slotway"`)
			http.Error(w, "missing bearer token", http.StatusUnauthorized)
			return
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			http.Error(w, "wrong token", http.StatusForbidden)
			return
		}
		h(w, r)
	})
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Run serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	sctx, stopSampler := context.WithCancel(context.Background())
	samplerDone := make(chan struct{})
	go func() { defer close(samplerDone); s.series.run(sctx, s.src) }()
	defer func() { stopSampler(); <-samplerDone }()
	select {
	case err := <-errc:
		return fmt.Errorf("stats http: %w", err)
	case <-ctx.Done():
	}
	// Not sctx: the sampler goroutine reads that variable.
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(shutCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("stats shutdown: %w", err)
	}
	<-errc
	return nil
}
