package scaler

import "time"

// AutoStatus is the autoscaler as the leader last saw it, for the stats
// page and /api/v1/status. Instances that are not the leader report the
// leader's last published status (read from the cluster).
type AutoStatus struct {
	Enabled  bool          `json:"enabled"`
	Paused   bool          `json:"paused"`
	DryRun   bool          `json:"dry_run"`
	Leader   string        `json:"leader"` // instance that evaluates
	Interval time.Duration `json:"interval_ns"`
	// Evaluated is the time of the last evaluation (zero: none yet).
	Evaluated time.Time `json:"evaluated"`
	Masters   int       `json:"masters"`
	Desired   int       `json:"desired_masters"`
	// Hold says why the policy may not act now ("" when it may).
	Hold    string         `json:"hold,omitempty"`
	Signals []SignalStatus `json:"signals"`
	Cycles  CycleStatus    `json:"cycles"`
	// Cooldown left before a scale-out / scale-in may run (0: none).
	UpCooldownLeft   time.Duration `json:"up_cooldown_left_ns"`
	DownCooldownLeft time.Duration `json:"down_cooldown_left_ns"`
	Decision         string        `json:"decision"` // none, scale_out, scale_in, rebalance, vertical
	Reason           string        `json:"reason"`
	// Timeline is the master count over the last hours, one point per
	// change or action, oldest first, for the chart.
	Timeline []TimelinePoint `json:"timeline"`
}

// SignalStatus is one signal against its threshold.
type SignalStatus struct {
	Name      string             `json:"name"` // memory_pct, clients_pct, ops_per_master, cpu_pct
	Average   float64            `json:"average"`
	Peak      float64            `json:"peak"`
	Threshold float64            `json:"threshold"`
	PerMaster map[string]float64 `json:"per_master"`
	// Off says why the signal is not used ("" when it is), e.g. memory
	// with maxmemory 0 and no node_memory.
	Off string `json:"off,omitempty"`
}

// CycleStatus are the consecutive-evaluation counters and their targets.
type CycleStatus struct {
	Up             int `json:"up"`
	UpNeeded       int `json:"up_needed"`
	Down           int `json:"down"`
	DownNeeded     int `json:"down_needed"`
	Imbalanced     int `json:"imbalanced"`
	ImbalanceNeeds int `json:"imbalanced_needed"`
}

// TimelinePoint is one action (or "" for a plain sample) on the chart.
type TimelinePoint struct {
	Time    time.Time `json:"t"`
	Masters int       `json:"masters"`
	Action  string    `json:"action,omitempty"` // scale_out, scale_in, rebalance, vertical
	Result  string    `json:"result,omitempty"` // ok, failed, dry_run
	Reason  string    `json:"reason,omitempty"`
}
