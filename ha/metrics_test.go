package ha

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestTransitionsExistAtZero: dashboards and alerts use increase() on the
// transitions counter, which misses the first transition if the series
// only appears with it.
func TestTransitionsExistAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m.transitions); n != len(knownTransitions) {
		t.Fatalf("%d transition series at start, want %d", n, len(knownTransitions))
	}
	if v := testutil.ToFloat64(m.transitions.WithLabelValues("candidate", "holder", "elected")); v != 0 {
		t.Fatalf("candidate→holder starts at %v", v)
	}
}
