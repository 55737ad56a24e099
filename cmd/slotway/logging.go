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
	levelGiven    bool // -log-level was on the command line
}

func addLogFlags(fs *flag.FlagSet, level string) *logFlags {
	f := &logFlags{}
	fs.StringVar(&f.level, "log-level", level, "debug, info, warn or error")
	fs.StringVar(&f.format, "log-format", "", "text or json (default: log.format of the config file, else text)")
	return f
}

// check reports bad values as usage errors (exit 2). Call it after the
// flag set was parsed.
func (f *logFlags) check(fs *flag.FlagSet) error {
	fs.Visit(func(fl *flag.Flag) { f.levelGiven = f.levelGiven || fl.Name == "log-level" })
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
func (f *logFlags) logger(w io.Writer, level slog.Leveler, fileFormat string) *slog.Logger {
	format := f.format
	if format == "" {
		format = fileFormat
	}
	log := logging.New(w, level, format)
	redis.SetLogger(logging.RedisLogger{Log: log.With("component", "go-redis")})
	slog.SetDefault(log)
	return log
}

// levelFor is the level in force for the file's log section: a
// -log-level given on the command line wins, as -log-format does;
// otherwise log.level (which a reload applies), else the flag's default.
func (f *logFlags) levelFor(c logging.Config) slog.Level {
	var l slog.Level
	if f.levelGiven || c.Level == "" || l.UnmarshalText([]byte(strings.ToUpper(c.Level))) != nil { // validated
		return f.lvl
	}
	return l
}
