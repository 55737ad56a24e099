package fileconfig

import (
	"log/slog"
	"strings"

	"github.com/slotway/slotway/internal/config"
)

// LogConfig is the `log:` section.
type LogConfig struct {
	// Level is debug, info, warn or error. Empty (the default): the
	// -log-level flag, info unless given. A reload (SIGHUP) applies it.
	Level string `yaml:"level"`
}

// Validate reports a bad level, relative to `log`.
func (c LogConfig) Validate() error {
	var l slog.Level
	if c.Level != "" && l.UnmarshalText([]byte(strings.ToUpper(c.Level))) != nil {
		return config.Errorf("level", "must be debug, info, warn or error, got %q", c.Level)
	}
	return nil
}
