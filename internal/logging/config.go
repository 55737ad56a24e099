package logging

import "github.com/slotway/slotway/internal/config"

// Config is the log: section of the file.
type Config struct {
	// Format is text (key=value, slog's TextHandler) or json (one JSON
	// object per line). The -log-format flag overrides it. Default text.
	Format string `yaml:"format"`
}

// DefaultConfig returns the defaults documented on each field.
func DefaultConfig() Config { return Config{Format: "text"} }

// Validate reports a bad format, relative to `log`.
func (c Config) Validate() error {
	if c.Format != "text" && c.Format != "json" {
		return config.Errorf("format", "want text or json, got %q", c.Format)
	}
	return nil
}
