package proxy

import (
	"fmt"
	"maps"
	"time"
)

// settings are the proxy.* keys a reload can change. A snapshot is
// immutable: Reload publishes a new one and the data path reads it per
// command (one atomic load, no allocation), so open connections keep
// working and new values apply from their next command. Keys not here
// (listen, cluster, tls, backend_conns, the health and backend timeouts)
// are read once at start and need a restart.
type settings struct {
	users             map[string]*user // proxy.users; empty: no AUTH required
	limits            Limits           // proxy.limits.max_* (checked per request)
	pubsubOutput      OutputLimit      // proxy.limits.pubsub_output
	maxClients        int
	maxRedirects      uint8
	retryTimeout      time.Duration
	clientIdleTimeout time.Duration
	shutdownTimeout   time.Duration
	keysLimit         int
	disableFlush      bool
	configSet         string // proxy.config_set: fanout or refuse
	crossSlot         map[string]string
	readFrom          string
}

// ReloadableKeys are the proxy.* keys (relative to proxy) that Reload
// applies to a running server; a key ending in "." covers its sub-keys.
var ReloadableKeys = []string{
	"users", "limits.", "max_clients", "max_redirects", "retry_timeout", "client_idle_timeout",
	"shutdown_timeout", "keys_limit", "disable_flush", "cross_slot", "read_from", "config_set",
}

func newSettings(cfg Config) (*settings, error) {
	users, err := compileUsers(cfg.Users)
	if err != nil {
		return nil, err
	}
	return &settings{
		users: users,
		limits: Limits{
			MaxBulkLen:  int64(cfg.Limits.MaxBulkLen),
			MaxArgs:     cfg.Limits.MaxArgs,
			MaxInline:   int(cfg.Limits.MaxInlineLen),
			MaxBatchLen: 1024,
		},
		pubsubOutput:      cfg.Limits.PubsubOutput,
		maxClients:        cfg.MaxClients,
		maxRedirects:      cfg.MaxRedirects,
		retryTimeout:      cfg.RetryTimeout,
		clientIdleTimeout: cfg.ClientIdleTimeout,
		shutdownTimeout:   cfg.ShutdownTimeout,
		keysLimit:         cfg.KeysLimit,
		disableFlush:      cfg.DisableFlush,
		configSet:         cfg.ConfigSet,
		crossSlot:         maps.Clone(cfg.CrossSlot),
		readFrom:          cfg.ReadFrom,
	}, nil
}

// settings returns the current snapshot of the reloadable keys. A
// Server built without New (in tests) has the zero settings, as it had
// the zero Config.
func (s *Server) settings() *settings {
	if set := s.set.Load(); set != nil {
		return set
	}
	return &zeroSettings
}

var zeroSettings settings

// Reload applies the reloadable keys of cfg (ReloadableKeys) to the
// running server; cfg's other keys are ignored (the caller warns about
// them). It drops no connection: a client that authenticated keeps its
// user until it authenticates again, and one that connected while no
// users were configured keeps working without AUTH. A change of
// read_from takes effect with the next slot-map refresh, which it asks
// for. It may be called from any goroutine, but not concurrently.
func (s *Server) Reload(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("proxy config: %w", err)
	}
	next, err := newSettings(cfg)
	if err != nil {
		return fmt.Errorf("proxy config: %w", err)
	}
	prev := s.set.Swap(next)
	s.initRetryBudget()
	if prev.readFrom != next.readFrom {
		s.topo.setReadFrom(next.readFrom)
	}
	return nil
}

// setReadFrom changes which reads go to replicas from the next published
// slot map on, and asks for that refresh now.
func (o *topologyOwner) setReadFrom(v string) {
	o.mu.Lock()
	o.cfg.ReadFrom = v // read under mu, in publish
	o.mu.Unlock()
	o.requestRefresh()
}

// openUser is the user of a connection accepted while proxy.users was
// empty: like Redis's nopass default user it may run everything, and a
// reload that adds users does not log it out.
var openUser = &user{name: "default", allowAll: true}
