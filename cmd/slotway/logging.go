package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/logging"
)

// logFlags are the -log-level and -log-format flags of run and demo.
type logFlags struct {
	level, format string
	lvl           slog.Level
}

func addLogFlags(fs *flag.FlagSet, level string) *logFlags {
	f := &logFlags{}
	fs.StringVar(&f.level, "log-level", level, "debug, info, warn or error")
	fs.StringVar(&f.format, "log-format", "", "text or json (default: log.format of the config file, else text)")
	return f
}

// check reports bad values as usage errors (exit 2).
func (f *logFlags) check() error {
	if err := f.lvl.UnmarshalText([]byte(strings.ToUpper(f.level))); err != nil {
		return usageError{fmt.Errorf("-log-level: %w", err)}
	}
	if f.format != "" && f.format != "text" && f.format != "json" {
		return usageError{errors.New("-log-format: want text or json, got " + f.format)}
	}
	return nil
}

// logger makes the process's logger, in the -log-format or else
// fileFormat, and routes into it, as process-wide settings, go-redis's
// own logger (with component=go-redis) and the standard log package (the
// HTTP server's errors, at Info), so every line has one format. Call
// check first.
func (f *logFlags) logger(w io.Writer, fileFormat string) *slog.Logger {
	format := f.format
	if format == "" {
		format = fileFormat
	}
	log := logging.New(w, f.lvl, format)
	redis.SetLogger(logging.RedisLogger{Log: log.With("component", "go-redis")})
	slog.SetDefault(log)
	return log
}
