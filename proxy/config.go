package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/slotway/slotway/internal/config"
)

// Config is the `proxy:` section of the config file.
type Config struct {
	// Listen is the client-facing RESP address. Default 127.0.0.1:7100.
	Listen  string        `yaml:"listen"`
	Cluster ClusterConfig `yaml:"cluster"`
	// BackendConns is how many connections each master gets, shared by all
	// clients. A few are enough: they carry pipelined batches. Default 2.
	BackendConns int `yaml:"backend_conns"`
	// EventLoops is how many event loops serve plain TCP clients: 0 (the
	// default) one per core (GOMAXPROCS), -1 none (every client on a
	// goroutine of its own, the core before the loops).
	EventLoops int `yaml:"event_loops"`
	// IOUring: auto (the default) submits each loop pass's writes in one
	// io_uring_enter where the kernel allows io_uring, and falls back to a
	// write(2) each where it does not; off always writes each.
	IOUring string `yaml:"io_uring"`
	// MaxRedirects bounds MOVED/ASK hops per command before the client sees
	// the redirect. Default 5.
	MaxRedirects uint8 `yaml:"max_redirects"`
	// RetryTimeout is how long a command is retried on TRYAGAIN,
	// CLUSTERDOWN or an unreachable master (e.g. during a failover) before
	// the client gets the error. 0 (default): derived from the cluster's
	// cluster-node-timeout, long enough for a replica to be promoted
	// (retrybudget.go).
	RetryTimeout time.Duration `yaml:"retry_timeout"`
	// HealthInterval is the period of active PING checks on every node.
	// Default 1s.
	HealthInterval time.Duration `yaml:"health_interval"`
	// HealthTimeout bounds one health check. Default 500ms.
	HealthTimeout time.Duration `yaml:"health_timeout"`
	// BackendTimeout: a backend connection with commands in flight that
	// reads and writes nothing for this long is dropped, failing them
	// (clients get "connection lost before the reply; the command may have
	// run") instead of waiting forever on a stuck node. Blocking commands
	// use their own connections and are not affected. 0 turns it off.
	// Default 30s.
	BackendTimeout time.Duration `yaml:"backend_timeout"`
	// ShutdownTimeout bounds how long a stopping proxy waits for clients'
	// in-flight commands. Default 10s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	Limits          LimitsConfig  `yaml:"limits"`
	// CrossSlot is the per-command policy for multi-key commands whose keys
	// hash to different slots: split (send one part per slot and merge the
	// replies; the default) or reject (-CROSSSLOT, as Redis Cluster does).
	// Only mget, mset, del, unlink, exists and touch can be split; atomic
	// multi-key commands (msetnx, rename, ...) always get -CROSSSLOT.
	CrossSlot map[string]string `yaml:"cross_slot"`
	// KeysLimit caps the keys KEYS may return across all masters; past it
	// the client is told to use SCAN. 0 means no cap. Default 1000000.
	KeysLimit int `yaml:"keys_limit"`
	// DisableFlush refuses FLUSHALL and FLUSHDB (they run on every master).
	DisableFlush bool `yaml:"disable_flush"`
	// ConfigSet: what CONFIG SET and CONFIG RESETSTAT from clients do.
	// fanout (default): run on every node, masters and replicas, with a
	// rollback if any refuses, for the parameters that mean the same on
	// every node (configset.go); refuse: answer an error, as before.
	ConfigSet string `yaml:"config_set"`
	// Users, when set, require clients to AUTH (or HELLO ... AUTH) before
	// anything but AUTH, HELLO and QUIT. The name "default" serves
	// password-only AUTH.
	Users []UserConfig `yaml:"users"`
	// MaxClients refuses connections past this many ("-ERR max number of
	// clients reached"). 0: no limit. Default 10000, as Redis.
	MaxClients int `yaml:"max_clients"`
	// ReadFrom: where read-only commands go. master (default);
	// prefer-replica: a healthy replica of the slot's master (READONLY
	// connections), the master when none is healthy; replica: a healthy
	// replica only, -CLUSTERDOWN when none is. Replica reads may lag
	// behind the last writes.
	ReadFrom string `yaml:"read_from"`
	// TLS, when cert_file and key_file are set, makes the client listener
	// speak TLS only (minimum TLS 1.2).
	TLS TLSConfig `yaml:"tls"`
	// ClientIdleTimeout closes a client idle this long. 0 (default): never,
	// as Redis's timeout 0.
	ClientIdleTimeout time.Duration `yaml:"client_idle_timeout"`
}

// ClusterConfig says how to reach the Redis Cluster.
type ClusterConfig struct {
	// Seeds are any reachable cluster nodes ("host:port"); the rest of the
	// cluster is discovered from them. Required.
	Seeds []string `yaml:"seeds"`
	// Username and Password authenticate Slotway to the nodes (ACL user,
	// or requirepass with an empty username).
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// RefreshInterval is the period of slot-map refreshes; MOVED replies
	// and connection errors trigger one at once too. Default 1s.
	RefreshInterval time.Duration `yaml:"refresh_interval"`
	// DialTimeout bounds connecting to a node, TLS handshake included.
	// Default 1s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// TLS, when enabled, makes every connection to the nodes (data path,
	// transactions, health checks, topology reads) speak TLS.
	TLS BackendTLSConfig `yaml:"tls"`
}

// BackendTLSConfig is TLS from Slotway to the cluster nodes (the nodes'
// tls-port; with tls-cluster yes the cluster reports those ports). Minimum
// TLS 1.2.
type BackendTLSConfig struct {
	Enabled bool `yaml:"enabled"`
	// CAFile is the PEM CA bundle that signed the nodes' certificates.
	// Empty: the system roots.
	CAFile string `yaml:"ca_file"`
	// ServerName is the name verified in every node's certificate. Empty:
	// the host of each node's address, as the cluster reports it (an IP
	// address then needs an IP SAN in the certificate).
	ServerName string `yaml:"server_name"`
	// CertFile and KeyFile are Slotway's client certificate, for nodes
	// that require one (tls-auth-clients yes). Both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// InsecureSkipVerify accepts any node certificate. For testing only;
	// logged as a warning at start.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// LimitsConfig bounds what clients may send. Defaults follow Redis.
type LimitsConfig struct {
	// MaxBulkLen is the largest argument (Redis's proto-max-bulk-len).
	// Default 512mb.
	MaxBulkLen config.ByteSize `yaml:"max_bulk_len"`
	// MaxArgs is the most arguments in one command. Default 1048576.
	MaxArgs int `yaml:"max_args"`
	// MaxInlineLen is the longest inline (telnet-style) command line.
	// Default 64kb, as Redis.
	MaxInlineLen config.ByteSize `yaml:"max_inline_len"`
	// PubsubOutput bounds what the proxy queues for a subscriber that
	// reads slower than messages arrive, as Redis's
	// client-output-buffer-limit pubsub (default 32mb 8mb 60s).
	PubsubOutput OutputLimit `yaml:"pubsub_output"`
}

// OutputLimit disconnects a client whose queued output passes Hard, or
// stays above Soft for longer than SoftFor. Zero disables a limit.
type OutputLimit struct {
	Hard    config.ByteSize `yaml:"hard"`
	Soft    config.ByteSize `yaml:"soft"`
	SoftFor time.Duration   `yaml:"soft_for"`
}

// TLSConfig is the client listener's TLS.
type TLSConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile, when set, requires client certificates signed by it.
	ClientCAFile string `yaml:"client_ca_file"`
}

// serverTLS loads the listener's TLS config; nil when TLS is off.
func (t TLSConfig) serverTLS() (*tls.Config, error) {
	if t.CertFile == "" && t.KeyFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls.cert_file/key_file: %w", err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if t.ClientCAFile != "" {
		pem, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.client_ca_file: no PEM certificate in %s", t.ClientCAFile)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// DefaultConfig returns the defaults documented on each field.
func DefaultConfig() Config {
	return Config{
		Listen: "127.0.0.1:7100",
		Cluster: ClusterConfig{
			RefreshInterval: time.Second,
			DialTimeout:     time.Second,
		},
		BackendConns:    2,
		MaxRedirects:    5,
		HealthInterval:  time.Second,
		HealthTimeout:   500 * time.Millisecond,
		ShutdownTimeout: 10 * time.Second,
		BackendTimeout:  30 * time.Second,
		KeysLimit:       1000000,
		ReadFrom:        "master",
		ConfigSet:       "fanout",
		IOUring:         "auto",
		MaxClients:      10000,
		Limits: LimitsConfig{
			MaxBulkLen:   512 << 20,
			MaxArgs:      1 << 20,
			MaxInlineLen: 64 << 10,
			PubsubOutput: OutputLimit{Hard: 32 << 20, Soft: 8 << 20, SoftFor: 60 * time.Second},
		},
	}
}

// Validate reports every bad field, with paths relative to `proxy`.
func (c Config) Validate() error {
	var errs []error
	if err := checkHostPort(c.Listen); err != nil {
		errs = append(errs, config.Errorf("listen", "%v", err))
	}
	if len(c.Cluster.Seeds) == 0 {
		errs = append(errs, config.Errorf("cluster.seeds", "at least one cluster node (host:port) is required"))
	}
	for i, s := range c.Cluster.Seeds {
		if err := checkHostPort(s); err != nil {
			errs = append(errs, config.Errorf("cluster.seeds["+strconv.Itoa(i)+"]", "%v", err))
		}
	}
	positive := func(field string, d time.Duration) {
		if d <= 0 {
			errs = append(errs, config.Errorf(field, "must be a positive duration, got %v", d))
		}
	}
	positive("cluster.refresh_interval", c.Cluster.RefreshInterval)
	positive("cluster.dial_timeout", c.Cluster.DialTimeout)
	if c.RetryTimeout < 0 {
		errs = append(errs, config.Errorf("retry_timeout", "must be >= 0 (0: derived from cluster-node-timeout), got %v", c.RetryTimeout))
	}
	positive("health_interval", c.HealthInterval)
	positive("health_timeout", c.HealthTimeout)
	positive("shutdown_timeout", c.ShutdownTimeout)
	if c.BackendTimeout < 0 {
		errs = append(errs, config.Errorf("backend_timeout", "must be >= 0 (0: off), got %v", c.BackendTimeout))
	}
	if c.EventLoops < -1 || c.EventLoops > 256 {
		errs = append(errs, config.Errorf("event_loops", "must be -1 (none), 0 (one per core) or 1..256, got %d", c.EventLoops))
	}
	if c.BackendConns < 1 || c.BackendConns > 64 {
		errs = append(errs, config.Errorf("backend_conns", "must be 1..64, got %d", c.BackendConns))
	}
	if c.Limits.MaxBulkLen < 1 || c.Limits.MaxBulkLen > 4<<30 {
		errs = append(errs, config.Errorf("limits.max_bulk_len", "must be 1b..4gb, got %v", c.Limits.MaxBulkLen))
	}
	if c.Limits.MaxArgs < 1 {
		errs = append(errs, config.Errorf("limits.max_args", "must be at least 1, got %d", c.Limits.MaxArgs))
	}
	seen := map[string]bool{}
	for i, u := range c.Users {
		f := "users[" + strconv.Itoa(i) + "]"
		switch {
		case u.Name == "":
			errs = append(errs, config.Errorf(f+".name", "required"))
		case seen[u.Name]:
			errs = append(errs, config.Errorf(f+".name", "duplicate user %q", u.Name))
		}
		seen[u.Name] = true
		if (u.Password == "") == (u.PasswordSHA256 == "") {
			errs = append(errs, config.Errorf(f, "set exactly one of password and password_sha256"))
		}
	}
	if _, err := compileUsers(c.Users); err != nil {
		errs = append(errs, config.Errorf("users", "%v", err))
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, config.Errorf("tls", "set both cert_file and key_file, or neither"))
	}
	if c.TLS.ClientCAFile != "" && c.TLS.CertFile == "" {
		errs = append(errs, config.Errorf("tls.client_ca_file", "needs cert_file and key_file"))
	}
	if _, err := c.Cluster.TLS.clientTLS(); err != nil {
		errs = append(errs, err)
	}
	switch c.IOUring {
	case "auto", "off":
	default:
		errs = append(errs, config.Errorf("io_uring", "must be auto or off, got %q", c.IOUring))
	}
	switch c.ConfigSet {
	case "fanout", "refuse":
	default:
		errs = append(errs, config.Errorf("config_set", "must be fanout or refuse, got %q", c.ConfigSet))
	}
	switch c.ReadFrom {
	case "master", "prefer-replica", "replica":
	default:
		errs = append(errs, config.Errorf("read_from", "must be master, prefer-replica or replica, got %q", c.ReadFrom))
	}
	if c.MaxClients < 0 {
		errs = append(errs, config.Errorf("max_clients", "must be 0 (no limit) or more, got %d", c.MaxClients))
	}
	if c.ClientIdleTimeout < 0 {
		errs = append(errs, config.Errorf("client_idle_timeout", "must not be negative, got %v", c.ClientIdleTimeout))
	}
	if c.KeysLimit < 0 {
		errs = append(errs, config.Errorf("keys_limit", "must be 0 (no cap) or more, got %d", c.KeysLimit))
	}
	for cmd, pol := range c.CrossSlot {
		if _, ok := splitCommands[cmd]; !ok {
			errs = append(errs, config.Errorf("cross_slot."+cmd, "only mget, mset, del, unlink, exists and touch can be split; %q cannot", cmd))
		}
		if pol != "split" && pol != "reject" {
			errs = append(errs, config.Errorf("cross_slot."+cmd, "must be split or reject, got %q", pol))
		}
	}
	if po := c.Limits.PubsubOutput; po.Hard < 0 || po.Soft < 0 || po.SoftFor < 0 || (po.Hard > 0 && po.Soft > po.Hard) {
		errs = append(errs, config.Errorf("limits.pubsub_output", "hard, soft and soft_for must be >= 0 and soft <= hard, got %v %v %v", po.Hard, po.Soft, po.SoftFor))
	}
	if c.Limits.MaxInlineLen < 16 {
		errs = append(errs, config.Errorf("limits.max_inline_len", "must be at least 16b, got %v", c.Limits.MaxInlineLen))
	}
	return errors.Join(errs...)
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("want host:port, got " + strconv.Quote(s))
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return errors.New("bad port in " + strconv.Quote(s))
	}
	if host != "" && net.ParseIP(host) == nil && strings.Trim(host, "0123456789.") == "" {
		return errors.New("bad IP address in " + strconv.Quote(s))
	}
	return nil
}
