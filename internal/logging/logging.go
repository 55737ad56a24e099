package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// RepeatEvery is how often one repeated warning is written at most; a
// line written for several carries repeated=N, the number it stands for.
const RepeatEvery = 10 * time.Second

// New returns a logger writing format ("text" or "json"; anything else is
// text) lines to w at level and above, with repeated warnings limited to
// one line per RepeatEvery.
func New(w io.Writer, level slog.Leveler, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: replaceAttr}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(NewLimit(h, RepeatEvery))
}

// replaceAttr drops empty fields (an empty string, a nil value) and writes
// an error on one line: errors.Join's newlines become "; ".
func replaceAttr(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 {
		switch a.Key {
		case slog.TimeKey, slog.LevelKey, slog.MessageKey, slog.SourceKey:
			return a
		}
	}
	switch a.Value.Kind() {
	case slog.KindString:
		if a.Value.String() == "" {
			return slog.Attr{}
		}
	case slog.KindAny:
		switch v := a.Value.Any().(type) {
		case nil:
			return slog.Attr{}
		case error:
			return slog.String(a.Key, OneLine(v.Error()))
		}
	}
	return a
}

// OneLine joins the lines of s with "; ".
func OneLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if !strings.Contains(s, "\n") {
		return s
	}
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }), "; ")
}

// RedisLogger routes go-redis's logger (redis.SetLogger) into Log at Warn:
// go-redis writes only trouble, such as failed dials.
type RedisLogger struct{ Log *slog.Logger }

// Printf logs one go-redis line, without its "redis: " prefix.
func (l RedisLogger) Printf(ctx context.Context, format string, args ...any) {
	if ctx == nil {
		ctx = context.Background()
	}
	msg := strings.TrimSpace(strings.TrimPrefix(fmt.Sprintf(format, args...), "redis: "))
	l.Log.Log(ctx, slog.LevelWarn, msg)
}
