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

// Config is the `scaler:` section.
type Config struct {
	Provider  ProviderConfig  `yaml:"provider"`
	Rebalance RebalanceConfig `yaml:"rebalance"`
}

// ProviderConfig says where spare nodes come from.
type ProviderConfig struct {
	Kind string `yaml:"kind"` // pool | exec
	// Pool lists spare node addresses; which are free is read from the
	// cluster itself (a free node is known by no cluster node and empty).
	Pool []string `yaml:"pool"`
	// Acquire prints host:port of a started, empty, cluster-enabled node;
	// Release gets host:port as its argument. Run with sh -c.
	Acquire string        `yaml:"acquire"`
	Release string        `yaml:"release"`
	Timeout time.Duration `yaml:"timeout"`
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
	return Config{
		Provider: ProviderConfig{Kind: "pool", Timeout: 2 * time.Minute},
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
	default:
		errs = append(errs, config.Errorf("provider.kind", "must be pool or exec, got %q", c.Provider.Kind))
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
	return errors.Join(errs...)
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
