package main

import (
	"errors"

	"github.com/slotway/slotway/internal/config"
	"github.com/slotway/slotway/proxy"
	"github.com/slotway/slotway/stats"
)

// fileConfig is the whole YAML file: one section per component.
type fileConfig struct {
	Proxy proxy.Config `yaml:"proxy"`
	Stats stats.Config `yaml:"stats"`
}

func defaultConfig() fileConfig {
	return fileConfig{Proxy: proxy.DefaultConfig(), Stats: stats.DefaultConfig()}
}

func (c *fileConfig) Validate() error {
	return errors.Join(
		config.Prefix("proxy", c.Proxy.Validate()),
		config.Prefix("stats", c.Stats.Validate()),
	)
}

func loadConfig(path string) (fileConfig, error) {
	cfg := defaultConfig()
	if err := config.Load(path, &cfg); err != nil {
		return cfg, err
	}
	return cfg, nil
}
