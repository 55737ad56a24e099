package scaler

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

// TestEventLogNoEmptyFields: an event's log line has the fields that have
// a value, not slot=-1 node="" keys=0 reason="".
func TestEventLogNoEmptyFields(t *testing.T) {
	var buf bytes.Buffer
	e := &events{log: slog.New(slog.NewTextHandler(&buf, nil)), actor: "p1"}
	e.add(context.Background(), Event{Kind: "fix", Slot: -1})
	e.add(context.Background(), Event{Kind: "failure", Slot: 42, Node: "10.0.0.5:6379", Keys: 7, Term: 3, Reason: "MIGRATE: timeout"})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %q", buf.String())
	}
	for _, f := range []string{"slot=", "node=", "keys=", "term=", "reason="} {
		if strings.Contains(lines[0], f) {
			t.Errorf("empty %s in %s", f, lines[0])
		}
	}
	if want := `msg="scaler: failure" slot=42 node=10.0.0.5:6379 keys=7 term=3 reason="MIGRATE: timeout"`; !strings.Contains(lines[1], want) {
		t.Errorf("got %s\nwant it to contain %s", lines[1], want)
	}
}
