package scaler_test

import (
	"strings"
	"testing"
	"time"

	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/scaler"
)

// TestAutoStatusShowsControlAtOnce: a pause, resume or dry run shows in
// AutoStatus as soon as Control returns on the instance that took it,
// not at the leader's next evaluation, and also with the autoscaler off;
// and the status never says "disabled" for an enabled autoscaler that has
// not evaluated yet.
func TestAutoStatusShowsControlAtOnce(t *testing.T) {
	c := redistest.New(t, redistest.Options{Masters: 3})
	for _, tc := range []struct {
		name    string
		enabled bool
		leader  bool
	}{
		{name: "autoscaler off", enabled: false, leader: true},
		{name: "leader between evaluations", enabled: true, leader: true},
		{name: "follower between evaluations", enabled: true, leader: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startScaler(t, c, func(cfg *scaler.Config) {
				autoConfig(cfg)
				cfg.Enabled = tc.enabled
				cfg.Interval = time.Hour // one evaluation, at start
			}, func() (bool, uint64) { return tc.leader, 1 })
			st := s.AutoStatus()
			if st.Enabled != tc.enabled {
				t.Errorf("before any evaluation: enabled %v, want %v (reason %q)", st.Enabled, tc.enabled, st.Reason)
			}
			if tc.enabled && tc.leader {
				if st.Leader != "test" {
					t.Errorf("the leader's own status names leader %q, want test", st.Leader)
				}
				redistest.WaitFor(t, 30*time.Second, "the first evaluation", func() bool { return !s.AutoStatus().Evaluated.IsZero() })
			}
			if err := s.Control("pause", false); err != nil {
				t.Fatal(err)
			}
			if st := s.AutoStatus(); !st.Paused || (tc.enabled && tc.leader && !strings.Contains(st.Hold, "paused")) {
				t.Errorf("after pause: paused %v, hold %q", st.Paused, st.Hold)
			}
			if err := s.Control("dry_run", true); err != nil {
				t.Fatal(err)
			}
			if err := s.Control("resume", false); err != nil {
				t.Fatal(err)
			}
			if st := s.AutoStatus(); st.Paused || !st.DryRun || strings.Contains(st.Hold, "paused") {
				t.Errorf("after resume and dry_run on: paused %v, dry_run %v, hold %q", st.Paused, st.DryRun, st.Hold)
			}
			if err := s.Control("dry_run", false); err != nil {
				t.Fatal(err)
			}
			if st := s.AutoStatus(); st.DryRun {
				t.Errorf("after dry_run off: dry_run %v", st.DryRun)
			}
		})
	}
}
