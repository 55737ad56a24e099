package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// TestJSONLines: every line is one JSON object with time, level and msg;
// an errors.Join value is on one line; empty fields are left out.
func TestJSONLines(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, slog.LevelInfo, "json").With("component", "scaler")
	log.Warn("topology refresh failed", "err", errors.Join(errors.New("a:1: refused"), errors.New("b:1: timeout")))
	log.Info("scaler: fix", "node", "", "reason", "", "term", 3, "nothing", nil)
	RedisLogger{Log: log.With("component", "go-redis")}.Printf(context.Background(),
		"redis: connection pool: failed to dial after %d attempts: %v", 5, errors.New("dial tcp 10.0.0.5:6379: connect: connection refused"))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 lines, got:\n%s", buf.String())
	}
	var got []map[string]any
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON line: %v\n%s", err, l)
		}
		for _, k := range []string{"time", "level", "msg"} {
			if _, ok := m[k]; !ok {
				t.Errorf("no %q in %s", k, l)
			}
		}
		got = append(got, m)
	}
	if e := got[0]["err"]; e != "a:1: refused; b:1: timeout" {
		t.Errorf("err = %q, want the errors joined by '; '", e)
	}
	for _, k := range []string{"node", "reason", "nothing"} {
		if _, ok := got[1][k]; ok {
			t.Errorf("empty field %q written: %s", k, lines[1])
		}
	}
	if got[1]["term"] != 3.0 || got[1]["component"] != "scaler" {
		t.Errorf("fields lost: %s", lines[1])
	}
	want := map[string]any{"level": "WARN", "component": "go-redis",
		"msg": "connection pool: failed to dial after 5 attempts: dial tcp 10.0.0.5:6379: connect: connection refused"}
	for k, v := range want {
		if got[2][k] != v {
			t.Errorf("go-redis line: %s = %v, want %v (%s)", k, got[2][k], v, lines[2])
		}
	}
}

func TestTextOneLine(t *testing.T) {
	var buf bytes.Buffer
	New(&buf, slog.LevelInfo, "text").Warn("x", "err", errors.Join(errors.New("a"), errors.New("b")), "reason", "")
	if got := buf.String(); !strings.Contains(got, `err="a; b"`) || strings.Contains(got, "reason") || strings.Count(got, "\n") != 1 {
		t.Errorf("got %q", got)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Error(err)
	}
	if err := (Config{Format: "xml"}).Validate(); err == nil || err.Error() != `format: want text or json, got "xml"` {
		t.Errorf("got %v", err)
	}
}
