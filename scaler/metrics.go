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
	// the autoscaler's
	signal, threshold  *prometheus.GaugeVec
	decisions, actions *prometheus.CounterVec
	masters, desired   prometheus.Gauge
	notifications      *prometheus.CounterVec
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
		signal: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "slotway_scaler_signal",
			Help: "The autoscaler's signals at the last evaluation (averages over the masters; masters_unreachable is a count)."}, []string{"signal"}),
		threshold: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "slotway_scaler_threshold",
			Help: "The autoscaler's thresholds, by signal."}, []string{"signal"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "slotway_scaler_decisions_total",
			Help: "Autoscaler evaluations, by decision."}, []string{"decision"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "slotway_scaler_actions_total",
			Help: "Autoscaler actions, by action and result (ok, failed, dry_run)."}, []string{"action", "result"}),
		masters: prometheus.NewGauge(prometheus.GaugeOpts{Name: "slotway_scaler_masters",
			Help: "Masters serving slots at the last evaluation."}),
		desired: prometheus.NewGauge(prometheus.GaugeOpts{Name: "slotway_scaler_desired_masters",
			Help: "Masters the autoscaler wants."}),
	}
	m.notifications = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "slotway_scaler_notifications_total",
		Help: "Webhook notifications, by result (sent, failed, dropped)."}, []string{"result"})
	for _, d := range []string{"none", "scale_out", "scale_in", "rebalance", "vertical"} {
		m.decisions.WithLabelValues(d)
	}
	for _, r := range []string{"fenced", "target_not_ready", "cancelled", "migrate", "keys_left", "other"} {
		m.errors.WithLabelValues(r)
	}
	for _, c := range []prometheus.Collector{m.inProgress, m.slotsMoved, m.keysMoved, m.errors, m.leaseRenewals, m.leaseFailures,
		m.signal, m.threshold, m.decisions, m.actions, m.masters, m.desired, m.notifications} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register scaler metrics: %w", err)
		}
	}
	return m, nil
}
