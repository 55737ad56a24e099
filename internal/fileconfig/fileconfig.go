// Package fileconfig is Slotway's configuration file: one section per
// component, the defaults, the validation across sections and loading.
// The binary uses it, and so do tests that check configs rendered by the
// deployment scripts.
package fileconfig

import (
	"errors"

	"github.com/slotway/slotway/ha"
	"github.com/slotway/slotway/internal/config"
	"github.com/slotway/slotway/internal/logging"
	"github.com/slotway/slotway/proxy"
	"github.com/slotway/slotway/scaler"
	"github.com/slotway/slotway/stats"
)

// File is the whole YAML file.
type File struct {
	Proxy proxy.Config `yaml:"proxy"`
	Stats stats.Config `yaml:"stats"`
	// HA is optional: without it the instance runs alone.
	HA *ha.Config `yaml:"ha"`
	// Scaler is optional: without it this instance moves no slot.
	Scaler *scaler.Config `yaml:"scaler"`
	// Log is the format of the process's log lines.
	Log logging.Config `yaml:"log"`
}

// Default is the configuration of keys the file leaves out.
func Default() File {
	return File{Proxy: proxy.DefaultConfig(), Stats: stats.DefaultConfig(), Log: logging.DefaultConfig()}
}

// Validate reports every bad field, with its path.
func (c *File) Validate() error {
	errs := []error{config.Prefix("stats", c.Stats.Validate()), config.Prefix("log", c.Log.Validate())}
	if !c.WitnessOnly() {
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

// WitnessOnly: an instance with ha.witness and no cluster seeds only votes
// in the group; it runs no proxy.
func (c *File) WitnessOnly() bool {
	return c.HA != nil && c.HA.Witness && len(c.Proxy.Cluster.Seeds) == 0
}

// Load reads and validates the file at path; errors name the file, the
// field and its line.
func Load(path string) (File, error) {
	cfg := Default()
	if err := config.Load(path, &cfg); err != nil {
		return cfg, err
	}
	return cfg, nil
}
