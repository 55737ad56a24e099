package logging

import (
	"log/slog"
	"strings"

	"github.com/slotway/slotway/internal/config"
)

// Config is the log: section of the file.
type Config struct {
	// Format is text (key=value, slog's TextHandler) or json (one JSON
	// object per line). The -log-format flag overrides it. Default text.
	// A reload does not change it (restart).
	Format string `yaml:"format"`
	// Level is debug, info, warn or error. Empty (the default): the
	// -log-level flag's value. A -log-level given on the command line
	// overrides it; otherwise a reload (SIGHUP) applies it.
	Level string `yaml:"level"`
}

// DefaultConfig returns the defaults documented on each field.
func DefaultConfig() Config { return Config{Format: "text"} }

// Validate reports a bad format or level, relative to `log`.
func (c Config) Validate() error {
	if c.Format != "text" && c.Format != "json" {
		return config.Errorf("format", "want text or json, got %q", c.Format)
	}
	var l slog.Level
	if c.Level != "" && l.UnmarshalText([]byte(strings.ToUpper(c.Level))) != nil {
		return config.Errorf("level", "must be debug, info, warn or error, got %q", c.Level)
	}
	return nil
}
