package stats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
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

// Source is what the stats server needs from the proxy.
type Source interface {
	// Ready reports whether the slot map is known and a master answers.
	Ready() bool
}

// Holder is what the stats server needs from the HA group.
type Holder interface {
	// IsHolder reports whether this instance holds the VIP now.
	IsHolder() bool
	// GroupStatus is the group as this instance sees it, for JSON.
	GroupStatus() any
}

// Server serves the HTTP endpoints.
type Server struct {
	ln  net.Listener
	srv *http.Server
	log *slog.Logger
}

// New binds cfg.Listen. reg receives Go runtime and process collectors;
// gatherer is what /metrics exposes.
//
// holder is nil for an instance without an HA group: it is alone, so it
// always answers /ha/vip with 200.
func New(cfg Config, log *slog.Logger, reg *prometheus.Registry, src Source, holder Holder) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("stats config: %w", err)
	}
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
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	return &Server{
		ln:  ln,
		log: log,
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second},
	}, nil
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Run serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("stats http: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("stats shutdown: %w", err)
	}
	<-errc
	return nil
}
