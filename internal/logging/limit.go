package logging

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// maxKeys bounds the lines the limiter remembers; past it new lines are
// written unlimited.
const maxKeys = 4096

// Limit is a slog.Handler that writes a repeated warning (level Warn)
// at most once per interval. The first occurrence is written at once. The
// others in the interval are counted; the next line written for them (the
// next occurrence after the interval, or, when none comes, the last one
// counted, once any later record shows that the interval is over) carries
// repeated=N: it stands for N occurrences, itself and those not written
// since the previous line. Lines are the same when level,
// message, the logger's With attributes and the record's attributes other
// than errors are: an error's text varies (addresses, counts) while it is
// the same trouble. Time is the records' own, so the logic needs no clock.
// Safe for concurrent use.
type Limit struct {
	next  slog.Handler
	st    *limitState
	scope string // the With attributes and groups, as part of the key
}

type limitState struct {
	every     time.Duration
	mu        sync.Mutex
	seen      map[string]*window
	lastSweep time.Time
}

type window struct {
	until      time.Time
	suppressed int
	last       slog.Record  // the newest record not written
	h          slog.Handler // the handler it came through
}

// NewLimit wraps next.
func NewLimit(next slog.Handler, every time.Duration) *Limit {
	return &Limit{next: next, st: &limitState{every: every, seen: map[string]*window{}}}
}

func (h *Limit) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *Limit) WithAttrs(as []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.scope)
	for _, a := range as {
		b.WriteString(" " + a.String())
	}
	return &Limit{next: h.next.WithAttrs(as), st: h.st, scope: b.String()}
}

func (h *Limit) WithGroup(name string) slog.Handler {
	return &Limit{next: h.next.WithGroup(name), st: h.st, scope: h.scope + " " + name + ":"}
}

type pending struct {
	h slog.Handler
	r slog.Record
}

func (h *Limit) Handle(ctx context.Context, r slog.Record) error {
	out := h.st.decide(h, r)
	var first error
	for _, p := range out {
		if err := p.h.Handle(ctx, p.r); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// decide returns the records to write now, in order.
func (s *limitState) decide(h *Limit, r slog.Record) []pending {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := r.Time
	var out []pending
	// Counts whose interval is over are written even if their line does
	// not come again: the last one counted, with its count.
	if !now.Before(s.lastSweep.Add(s.every)) {
		s.lastSweep = now
		for k, w := range s.seen {
			if now.Before(w.until) {
				continue
			}
			if w.suppressed == 0 {
				delete(s.seen, k)
				continue
			}
			rec := w.last
			rec.AddAttrs(slog.Int("repeated", w.suppressed))
			out = append(out, pending{w.h, rec})
			s.seen[k] = &window{until: now.Add(s.every)}
		}
	}
	if r.Level != slog.LevelWarn {
		// Errors are rare and often answer an operator's action (a
		// reload that failed): each is written.
		return append(out, pending{h.next, r})
	}
	k := key(h.scope, r)
	w := s.seen[k]
	switch {
	case w != nil && now.Before(w.until):
		w.suppressed++
		w.last, w.h = r.Clone(), h.next
		return out
	case w != nil && w.suppressed > 0:
		r = r.Clone()
		r.AddAttrs(slog.Int("repeated", w.suppressed+1))
	}
	if w != nil || len(s.seen) < maxKeys {
		s.seen[k] = &window{until: now.Add(s.every)}
	}
	return append(out, pending{h.next, r})
}

func key(scope string, r slog.Record) string {
	var b strings.Builder
	b.WriteString(r.Level.String() + scope + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		if _, isErr := a.Value.Any().(error); !isErr {
			b.WriteString(" " + a.String())
		}
		return true
	})
	return b.String()
}
