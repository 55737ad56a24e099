package scaler

import (
	"net/http"
	"testing"
	"time"

	"github.com/slotway/slotway/internal/config"
)

// TestScalerReload: Reload swaps the policy the next evaluation uses and
// keeps the keys that need a restart; an invalid config changes nothing.
func TestScalerReload(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Plans = []config.ByteSize{1 << 30, 2 << 30}
	s, err := New(cfg, Options{Seeds: func() []string { return []string{"127.0.0.1:1"} }, Nodes: &Nodes{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.rc.Close() })
	next := cfg
	next.UpCycles, next.DownCooldown, next.MaxMasters = 9, time.Hour, 40
	next.Thresholds.MemoryPct = 55
	next.Plans = nil          // needs a restart
	next.Interval = time.Hour // needs a restart
	if err := s.Reload(next); err != nil {
		t.Fatal(err)
	}
	c, pol := s.auto.policy()
	if pol.UpCycles != 9 || pol.DownCooldown != time.Hour || pol.MaxMasters != 40 || pol.Thresholds.MemoryPct != 55 {
		t.Errorf("policy after Reload: %+v", pol)
	}
	if c.UpCycles != 9 || c.DownCooldown != time.Hour || c.Interval != cfg.Interval {
		t.Errorf("config after Reload: up_cycles %d down_cooldown %v interval %v", c.UpCycles, c.DownCooldown, c.Interval)
	}
	if len(pol.Plans) != 2 {
		t.Errorf("plans changed by a reload: %v", pol.Plans)
	}
	bad := next
	bad.MinMasters, bad.MaxMasters = 5, 4
	if err := s.Reload(bad); err == nil {
		t.Fatal("Reload took min_masters > max_masters")
	}
	if _, pol := s.auto.policy(); pol.MaxMasters != 40 {
		t.Errorf("an invalid config changed the policy: max_masters %d", pol.MaxMasters)
	}
}

// TestNotifierReload: a webhook added by a reload gets the next events
// (the notifier was started without one), and one removed gets none.
func TestNotifierReload(t *testing.T) {
	srv, attempts, got := receiver(t, func(int64) int { return http.StatusNoContent })
	n, _ := testNotifier("", notifyKinds, nil)
	start(t, n)
	n.notify(Event{Kind: "scale_failure", Slot: -1}) // no webhook yet: dropped
	n.setConfig(NotifyConfig{Webhook: srv.URL, On: []string{"scale_success"}})
	n.notify(Event{Kind: "scale_failure", Slot: -1}) // not enabled
	n.notify(Event{Kind: "scale_success", Slot: -1})
	if body := recv(t, "the delivery to the reloaded webhook", got); body["kind"] != "scale_success" {
		t.Errorf("delivered %v, want the scale_success", body["kind"])
	}
	n.setConfig(NotifyConfig{})
	n.notify(Event{Kind: "scale_success", Slot: -1})
	n.mu.Lock()
	queued := len(n.queue)
	n.mu.Unlock()
	if queued != 0 || attempts.Load() != 1 {
		t.Errorf("after removing the webhook: %d queued, %d requests (want 0, 1)", queued, attempts.Load())
	}
}
