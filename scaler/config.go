package scaler

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/slotway/slotway/internal/config"
)

// Config is the `scaler:` section: the autoscaler's policy (off unless
// enabled), the provider of spare nodes and the bounds of rebalancing.
type Config struct {
	Enabled         bool              `yaml:"enabled"`
	DryRun          bool              `yaml:"dry_run"`
	Interval        time.Duration     `yaml:"interval"`
	MinMasters      int               `yaml:"min_masters"`
	MaxMasters      int               `yaml:"max_masters"`
	MaxStep         int               `yaml:"max_step"`
	UpCycles        int               `yaml:"up_cycles"`
	DownCycles      int               `yaml:"down_cycles"`
	Stabilization   time.Duration     `yaml:"stabilization"`
	UpCooldown      time.Duration     `yaml:"up_cooldown"`
	DownCooldown    time.Duration     `yaml:"down_cooldown"`
	ScaleInMargin   float64           `yaml:"scale_in_margin"`
	Imbalance       Percent           `yaml:"imbalance"`
	RebalanceCycles int               `yaml:"rebalance_cycles"`
	NodeMemory      config.ByteSize   `yaml:"node_memory"`
	Thresholds      Thresholds        `yaml:"thresholds"`
	Plans           []config.ByteSize `yaml:"plans"`
	Notify          NotifyConfig      `yaml:"notify"`
	Provider        ProviderConfig    `yaml:"provider"`
	Rebalance       RebalanceConfig   `yaml:"rebalance"`
}

// ProviderConfig says where spare nodes come from.
type ProviderConfig struct {
	Kind string `yaml:"kind"` // pool | exec | swarm
	// Pool lists spare node addresses; which are free is read from the
	// cluster itself (a free node is known by no cluster node and empty).
	Pool []string `yaml:"pool"`
	// Acquire prints host:port of a started, empty, cluster-enabled node;
	// Release gets host:port as its argument. Run with sh -c.
	Acquire string `yaml:"acquire"`
	Release string `yaml:"release"`
	// Timeout bounds one acquire or release (exec: the command; swarm: the
	// whole scale-up until the new task serves). Default 2m.
	Timeout time.Duration `yaml:"timeout"`
	// Service is the replicated Docker Swarm service whose tasks are the
	// spare nodes (kind swarm; required). See provider_swarm.go.
	Service string `yaml:"service"`
	// Socket is the Docker Engine API's unix socket, on a Swarm manager.
	// Default /var/run/docker.sock.
	Socket string `yaml:"socket"`
	// Port is the port Redis listens on in every task. Default 6379.
	Port int `yaml:"port"`
	// Network names the network (name or ID) whose task address the
	// cluster uses; Slotway must be attached to it too. Default "": the
	// task's first attachment that is not the ingress network.
	Network string `yaml:"network"`
}

// RebalanceConfig bounds rebalancing.
type RebalanceConfig struct {
	Threshold         Percent         `yaml:"threshold"`
	BatchKeys         int             `yaml:"batch_keys"`
	BatchBytes        config.ByteSize `yaml:"batch_bytes"`
	MaxKeysPerSecond  float64         `yaml:"max_keys_per_second"`
	MaxBytesPerSecond config.ByteSize `yaml:"max_bytes_per_second"`
	BigKeyBytes       config.ByteSize `yaml:"big_key_bytes"`
	MigrateTimeout    time.Duration   `yaml:"migrate_timeout"`
}

// UnmarshalYAML fills in the defaults for keys the section leaves out.
func (c *Config) UnmarshalYAML(n *yaml.Node) error {
	*c = DefaultConfig()
	type plain Config
	return n.Decode((*plain)(c))
}

// DefaultConfig has the documented defaults.
func DefaultConfig() Config {
	p := DefaultPolicy()
	return Config{
		Interval: 10 * time.Second, MinMasters: p.MinMasters, MaxMasters: p.MaxMasters, MaxStep: p.MaxStep,
		UpCycles: p.UpCycles, DownCycles: p.DownCycles, Stabilization: p.Stabilization,
		UpCooldown: p.UpCooldown, DownCooldown: p.DownCooldown, ScaleInMargin: p.ScaleInMargin,
		Imbalance: Percent(p.Imbalance), RebalanceCycles: p.RebalanceCycles, Thresholds: p.Thresholds,
		Notify:   NotifyConfig{On: []string{"threshold_breach", "scale_success", "scale_failure"}},
		Provider: ProviderConfig{Kind: "pool", Timeout: 2 * time.Minute, Socket: "/var/run/docker.sock", Port: 6379},
		Rebalance: RebalanceConfig{Threshold: 0.02, BatchKeys: 100, BatchBytes: 1 << 20,
			BigKeyBytes: 8 << 20, MigrateTimeout: 10 * time.Second},
	}
}

// Validate reports every bad field, with paths relative to `scaler`.
func (c Config) Validate() error {
	var errs []error
	switch c.Provider.Kind {
	case "pool":
		for i, a := range c.Provider.Pool {
			if _, _, err := splitHostPort(a); err != nil {
				errs = append(errs, config.Errorf(fmt.Sprintf("provider.pool[%d]", i), "%v", err))
			}
		}
	case "exec":
		if strings.TrimSpace(c.Provider.Acquire) == "" {
			errs = append(errs, config.Errorf("provider.acquire", "required with kind exec"))
		}
		if strings.TrimSpace(c.Provider.Release) == "" {
			errs = append(errs, config.Errorf("provider.release", "required with kind exec"))
		}
	case "swarm":
		p := c.Provider
		if strings.TrimSpace(p.Service) == "" {
			errs = append(errs, config.Errorf("provider.service", "required with kind swarm"))
		}
		if p.Socket == "" || strings.Contains(p.Socket, "://") {
			errs = append(errs, config.Errorf("provider.socket", "must be the path of the Docker Engine API's unix socket, got %q", p.Socket))
		}
		if p.Port < 1 || p.Port > 65535 {
			errs = append(errs, config.Errorf("provider.port", "must be 1..65535, got %d", p.Port))
		}
	default:
		errs = append(errs, config.Errorf("provider.kind", "must be pool, exec or swarm, got %q", c.Provider.Kind))
	}
	if c.Provider.Timeout <= 0 {
		errs = append(errs, config.Errorf("provider.timeout", "must be positive"))
	}
	r := c.Rebalance
	if r.Threshold < 0 || r.Threshold >= 1 {
		errs = append(errs, config.Errorf("rebalance.threshold", "must be 0%%..99%%, got %v", r.Threshold))
	}
	if r.BatchKeys < 1 {
		errs = append(errs, config.Errorf("rebalance.batch_keys", "must be at least 1"))
	}
	if r.BatchBytes < 0 || r.MaxBytesPerSecond < 0 || r.MaxKeysPerSecond < 0 || r.BigKeyBytes < 0 {
		errs = append(errs, config.Errorf("rebalance", "sizes and rates must be >= 0"))
	}
	if r.MigrateTimeout < 100*time.Millisecond {
		errs = append(errs, config.Errorf("rebalance.migrate_timeout", "must be at least 100ms"))
	}
	errs = append(errs, c.validatePolicy()...)
	if err := c.Notify.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c Config) validatePolicy() []error {
	var errs []error
	bad := func(path, format string, args ...any) { errs = append(errs, config.Errorf(path, format, args...)) }
	if c.Interval < 100*time.Millisecond {
		bad("interval", "must be at least 100ms, got %v", c.Interval)
	}
	if c.MinMasters < 1 {
		bad("min_masters", "must be at least 1")
	}
	if c.MaxMasters < c.MinMasters {
		bad("max_masters", "must be at least min_masters (%d), got %d", c.MinMasters, c.MaxMasters)
	}
	for path, v := range map[string]int{"max_step": c.MaxStep, "up_cycles": c.UpCycles, "down_cycles": c.DownCycles, "rebalance_cycles": c.RebalanceCycles} {
		if v < 1 {
			bad(path, "must be at least 1, got %d", v)
		}
	}
	for path, v := range map[string]time.Duration{"stabilization": c.Stabilization, "up_cooldown": c.UpCooldown, "down_cooldown": c.DownCooldown} {
		if v < 0 {
			bad(path, "must not be negative")
		}
	}
	if c.ScaleInMargin <= 0 || c.ScaleInMargin > 1 {
		bad("scale_in_margin", "must be in (0, 1], got %v", c.ScaleInMargin)
	}
	if c.Imbalance < 0 || c.Imbalance >= 10 {
		bad("imbalance", "must be a percentage like 20%%, got %v", c.Imbalance)
	}
	if c.NodeMemory < 0 {
		bad("node_memory", "must not be negative")
	}
	t := c.Thresholds
	for path, v := range map[string]float64{"thresholds.memory_pct": t.MemoryPct, "thresholds.clients_pct": t.ClientsPct,
		"thresholds.cpu_pct": t.CPUPct, "thresholds.emergency_memory_pct": t.EmergencyMemoryPct} {
		if v < 0 || v > 100 {
			bad(path, "must be 0..100 (0 turns the signal off), got %v", v)
		}
	}
	if t.OpsPerMaster < 0 {
		bad("thresholds.ops_per_master", "must not be negative")
	}
	if t.EmergencyMemoryPct > 0 && t.EmergencyMemoryPct < t.MemoryPct {
		bad("thresholds.emergency_memory_pct", "must be above memory_pct (%v), got %v", t.MemoryPct, t.EmergencyMemoryPct)
	}
	for i, p := range c.Plans {
		if p <= 0 || (i > 0 && p <= c.Plans[i-1]) {
			bad(fmt.Sprintf("plans[%d]", i), "plans must be positive sizes in ascending order, got %v", p)
		}
	}
	return errs
}

// policy is the part of the configuration the pure policy reads.
func (c Config) policy() PolicyConfig {
	p := PolicyConfig{MinMasters: c.MinMasters, MaxMasters: c.MaxMasters, MaxStep: c.MaxStep,
		UpCycles: c.UpCycles, DownCycles: c.DownCycles, Stabilization: c.Stabilization,
		UpCooldown: c.UpCooldown, DownCooldown: c.DownCooldown, ScaleInMargin: c.ScaleInMargin,
		Imbalance: float64(c.Imbalance), RebalanceCycles: c.RebalanceCycles, NodeMemory: int64(c.NodeMemory),
		Thresholds: c.Thresholds}
	for _, b := range c.Plans {
		p.Plans = append(p.Plans, int64(b))
	}
	return p
}

func (c Config) migrate() MigrateConfig {
	r := c.Rebalance
	return MigrateConfig{BatchKeys: r.BatchKeys, BatchBytes: int64(r.BatchBytes), MaxKeysPerSecond: r.MaxKeysPerSecond,
		MaxBytesPerSecond: float64(r.MaxBytesPerSecond), BigKeyBytes: int64(r.BigKeyBytes), MigrateTimeout: r.MigrateTimeout,
		ReadyWait: 60 * time.Second}
}

// Percent is a fraction written as "2%" (or 0.02).
type Percent float64

// UnmarshalYAML reads "2%" or a plain fraction.
func (p *Percent) UnmarshalYAML(n *yaml.Node) error {
	s := strings.TrimSpace(n.Value)
	if v, ok := strings.CutSuffix(s, "%"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return fmt.Errorf("percentage %q: %w", s, err)
		}
		*p = Percent(f / 100)
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("want a percentage like 2%%, got %q", s)
	}
	*p = Percent(f)
	return nil
}

func (p Percent) String() string { return strconv.FormatFloat(float64(p)*100, 'f', -1, 64) + "%" }
