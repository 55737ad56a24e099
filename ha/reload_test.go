package ha

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGroupReload: a reloaded priority reaches the other members through
// gossip and counts in the election; reloaded hooks run on the next
// transition; an invalid config changes nothing.
func TestGroupReload(t *testing.T) {
	ms := startGroup(t, 100, 150)
	defer func() {
		for _, m := range ms {
			m.stop(t)
		}
	}()
	waitFor(t, "p2 to hold", func() bool { return agreed(ms, "p2") })

	cfg := ms[0].g.cfg
	cfg.Priority = 220
	out := filepath.Join(t.TempDir(), "hook.out")
	cfg.Hooks.OnHolder = "echo reloaded >> " + out
	if err := ms[0].g.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "p2 to see p1's new priority", func() bool {
		for _, m := range ms[1].g.State().Members {
			if m.Name == "p1" && m.Priority == 220 && m.Effective == 220 {
				return true
			}
		}
		return false
	})
	if h := holders(ms); len(h) != 1 || h[0] != "p2" {
		t.Errorf("a priority reload moved the VIP without preempt: holders %v", h)
	}
	// A handover makes p1, now the best ranked, the holder: its reloaded
	// on_holder hook runs.
	if _, err := ms[1].g.Handover(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "p1 to hold after the handover", func() bool { return agreed(ms, "p1") })
	waitFor(t, "the reloaded on_holder hook to run", func() bool {
		b, _ := os.ReadFile(out)
		return strings.HasPrefix(string(b), "reloaded holder")
	})

	cfg.Priority = 300
	if err := ms[0].g.Reload(cfg); err == nil {
		t.Error("Reload took priority 300")
	}
	if p := ms[0].g.configuredPriority(); p != 220 {
		t.Errorf("an invalid config changed the priority to %d", p)
	}
}
