package ha

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	role, holder, term, quorum prometheus.Gauge
	members                    *prometheus.GaugeVec
	transitions                *prometheus.CounterVec
	garpSent                   prometheus.Counter
	failover                   prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		role: prometheus.NewGauge(prometheus.GaugeOpts{Name: "slotway_ha_role",
			Help: "This member's role: 0 candidate, 1 VIP holder, 2 draining."}),
		holder: prometheus.NewGauge(prometheus.GaugeOpts{Name: "slotway_ha_vip_holder",
			Help: "1 when this member holds the VIP."}),
		term: prometheus.NewGauge(prometheus.GaugeOpts{Name: "slotway_ha_term",
			Help: "Term of this member's last claim."}),
		quorum: prometheus.NewGauge(prometheus.GaugeOpts{Name: "slotway_ha_quorum_ok",
			Help: "1 when this member hears a quorum of the configured group."}),
		members: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "slotway_ha_members",
			Help: "Group members by state (alive: heard within the takeover window)."}, []string{"state"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "slotway_ha_transitions_total",
			Help: "Role changes of this member."}, []string{"from", "to", "reason"}),
		garpSent: prometheus.NewCounter(prometheus.CounterOpts{Name: "slotway_ha_garp_sent_total",
			Help: "Gratuitous ARP frames sent for the VIP."}),
		failover: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "slotway_ha_failover_seconds",
			Help:    "On a claim that replaces another holder: time since that holder was last heard.",
			Buckets: []float64{0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10}}),
	}
	// Every transition the group can make exists at zero from the start, so
	// increase() and alerts see the first one instead of a series appearing.
	for _, t := range knownTransitions {
		m.transitions.WithLabelValues(t.from.String(), t.to.String(), t.reason)
	}
	for _, c := range []prometheus.Collector{m.role, m.holder, m.term, m.quorum, m.members, m.transitions, m.garpSent, m.failover} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) observe(s *State) {
	switch s.Role {
	case RoleHolder.String():
		m.role.Set(1)
		m.holder.Set(1)
	case RoleDraining.String():
		m.role.Set(2)
		m.holder.Set(0)
	default:
		m.role.Set(0)
		m.holder.Set(0)
	}
	m.term.Set(float64(s.Term))
	if s.Quorum {
		m.quorum.Set(1)
	} else {
		m.quorum.Set(0)
	}
	alive, gone := 0, 0
	for _, ms := range s.Members {
		if ms.Alive {
			alive++
		} else {
			gone++
		}
	}
	m.members.WithLabelValues("alive").Set(float64(alive))
	m.members.WithLabelValues("unreachable").Set(float64(gone))
}

// knownTransitions lists the role changes setRole is called with.
var knownTransitions = []struct {
	from, to Role
	reason   string
}{
	{RoleCandidate, RoleHolder, "elected"},
	{RoleHolder, RoleCandidate, "superseded"},
	{RoleHolder, RoleCandidate, "no_quorum"},
	{RoleHolder, RoleDraining, "handover"},
	{RoleDraining, RoleCandidate, "handover"},
	{RoleDraining, RoleHolder, "handover_failed"},
	{RoleHolder, RoleDraining, "shutdown"},
	{RoleDraining, RoleCandidate, "shutdown"},
	{RoleHolder, RoleCandidate, "shutdown"},
}
