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

// ParseLevel reads a log level as the -log-level flag and log.level
// write it: debug, info, warn or error, any case.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(strings.ToUpper(s)))
	return l, err
}

// Validate reports a bad level, relative to `log`.
func (c LogConfig) Validate() error {
	if c.Level == "" {
		return nil
	}
	if _, err := ParseLevel(c.Level); err != nil {
		return config.Errorf("level", "must be debug, info, warn or error, got %q", c.Level)
	}
	return nil
}
