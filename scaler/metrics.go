package scaler

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type scalerMetrics struct {
	inProgress                   prometheus.Gauge
	slotsMoved, keysMoved        prometheus.Counter
	errors                       *prometheus.CounterVec
	leaseRenewals, leaseFailures prometheus.Counter
}

func newScalerMetrics(reg prometheus.Registerer) (*scalerMetrics, error) {
	m := &scalerMetrics{
		inProgress: prometheus.NewGauge(prometheus.GaugeOpts{Name: "slotway_scaler_migrations_in_progress",
			Help: "1 while this instance moves slots."}),
		slotsMoved: prometheus.NewCounter(prometheus.CounterOpts{Name: "slotway_scaler_slots_moved_total",
			Help: "Slots moved by this instance."}),
		keysMoved: prometheus.NewCounter(prometheus.CounterOpts{Name: "slotway_scaler_keys_moved_total",
			Help: "Keys moved by this instance's slot migrations."}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "slotway_scaler_migration_errors_total",
			Help: "Slot migrations stopped, by reason."}, []string{"reason"}),
		leaseRenewals: prometheus.NewCounter(prometheus.CounterOpts{Name: "slotway_scaler_lease_renewals_total",
			Help: "Scaling lease renewals."}),
		leaseFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "slotway_scaler_lease_failures_total",
			Help: "Scaling steps refused because the lease belongs to another leader (or could not be renewed)."}),
	}
	for _, r := range []string{"fenced", "target_not_ready", "cancelled", "migrate", "keys_left", "other"} {
		m.errors.WithLabelValues(r)
	}
	for _, c := range []prometheus.Collector{m.inProgress, m.slotsMoved, m.keysMoved, m.errors, m.leaseRenewals, m.leaseFailures} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register scaler metrics: %w", err)
		}
	}
	return m, nil
}
