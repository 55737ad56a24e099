package main

import (
	"errors"

	"github.com/slotway/slotway/ha"
	"github.com/slotway/slotway/internal/config"
	"github.com/slotway/slotway/proxy"
	"github.com/slotway/slotway/scaler"
	"github.com/slotway/slotway/stats"
)

// fileConfig is the whole YAML file: one section per component.
type fileConfig struct {
	Proxy proxy.Config `yaml:"proxy"`
	Stats stats.Config `yaml:"stats"`
	// HA is optional: without it the instance runs alone.
	HA *ha.Config `yaml:"ha"`
	// Scaler is optional: without it this instance moves no slot.
	Scaler *scaler.Config `yaml:"scaler"`
}

func defaultConfig() fileConfig {
	return fileConfig{Proxy: proxy.DefaultConfig(), Stats: stats.DefaultConfig()}
}

func (c *fileConfig) Validate() error {
	errs := []error{config.Prefix("stats", c.Stats.Validate())}
	if !c.witnessOnly() {
		errs = append(errs, config.Prefix("proxy", c.Proxy.Validate()))
	}
	if c.HA != nil {
		errs = append(errs, config.Prefix("ha", c.HA.Validate()))
	}
	if c.Scaler != nil {
		errs = append(errs, config.Prefix("scaler", c.Scaler.Validate()))
	}
	return errors.Join(errs...)
}

// witnessOnly: an instance with ha.witness and no cluster seeds only votes
// in the group; it runs no proxy.
func (c *fileConfig) witnessOnly() bool {
	return c.HA != nil && c.HA.Witness && len(c.Proxy.Cluster.Seeds) == 0
}

func loadConfig(path string) (fileConfig, error) {
	cfg := defaultConfig()
	if err := config.Load(path, &cfg); err != nil {
		return cfg, err
	}
	return cfg, nil
}
