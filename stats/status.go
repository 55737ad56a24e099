package stats

import "time"

// Status is the JSON of GET /api/v1/status and everything the page shows.
// docs/api.md documents every field.
type Status struct {
	Instance InstanceStatus `json:"instance"`
	Group    *GroupStatus   `json:"group"` // null without an ha: section
	Cluster  ClusterStatus  `json:"cluster"`
	Proxy    ProxyStatus    `json:"proxy"`
	Series   SeriesStatus   `json:"series"`
	Scaler   ScalerStatus   `json:"scaler"`
}

// InstanceStatus is this Slotway process.
type InstanceStatus struct {
	Name          string    `json:"name"` // ha.name, or the proxy address
	Version       string    `json:"version"`
	ProxyAddr     string    `json:"proxy_addr"`
	StatsAddr     string    `json:"stats_addr"`
	UptimeSeconds float64   `json:"uptime_seconds"`
	Now           time.Time `json:"now"`
	Ready         bool      `json:"ready"`
}

// GroupStatus is the HA group as this instance sees it.
type GroupStatus struct {
	Self    string        `json:"self"`
	Holder  string        `json:"holder"`
	Leader  string        `json:"leader"`
	Term    uint64        `json:"term"`
	Role    string        `json:"role"` // candidate, holder, draining
	Quorum  bool          `json:"quorum"`
	Reason  string        `json:"reason"`
	Members []GroupMember `json:"members"`
}

// GroupMember is one instance of the group.
type GroupMember struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"` // "VIP holder", "leader", "backup", "witness", "draining" (joined with "+" when several)
	Term      uint64    `json:"term"`
	Priority  int       `json:"priority"`
	Effective int       `json:"effective_priority"`
	Alive     bool      `json:"alive"`
	LastHeard time.Time `json:"last_heard"`
	ProxyAddr string    `json:"proxy_addr"`
	StatsAddr string    `json:"stats_addr"`
	Gossip    string    `json:"gossip_addr"`
}

// ClusterStatus is the Redis Cluster behind the proxy.
type ClusterStatus struct {
	Masters     int          `json:"masters"`
	SlotsServed int          `json:"slots_served"`
	TopologyAge float64      `json:"topology_age_seconds"`
	Nodes       []NodeStatus `json:"nodes"`
	Slots       []SlotRange  `json:"slots"` // the 16384 slots as owner ranges
	// Seeds is this instance's proxy.cluster.seeds: the leader's scale in
	// does not drain a node that any member lists.
	Seeds []string `json:"seeds"`
	// SeedsLeft are seeds that answer but are not members of the cluster
	// (reset, or of another cluster): the slot map is not read from them.
	SeedsLeft []SeedLeft `json:"seeds_left"`
}

// SeedLeft is a configured seed that has left the cluster.
type SeedLeft struct {
	Addr   string    `json:"addr"`
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
}

// NodeStatus is one Redis node.
type NodeStatus struct {
	ID         string    `json:"id"`
	Addr       string    `json:"addr"`
	Role       string    `json:"role"` // master, replica
	MasterID   string    `json:"master_id,omitempty"`
	Status     string    `json:"status"` // UP, DOWN (health checks fail), FAIL (the cluster says failed)
	Since      time.Time `json:"since"`  // when Status last changed
	SlotCount  int       `json:"slot_count"`
	SlotRanges [][2]int  `json:"slot_ranges"`
	Keys       int64     `json:"keys"`
	UsedMemory int64     `json:"used_memory"`
	MaxMemory  int64     `json:"maxmemory"` // 0: no limit
	Clients    int64     `json:"connected_clients"`
	OpsPerSec  int64     `json:"ops_per_sec"`
	HitRatio   float64   `json:"hit_ratio"`           // keyspace hits / (hits+misses), -1 when no lookups yet
	ReplLink   string    `json:"repl_link,omitempty"` // replicas: up or down
	ReplLag    int64     `json:"repl_lag_bytes,omitempty"`
	LatencyMS  float64   `json:"ping_ms"`
	LastCheck  time.Time `json:"last_check"`
	LastError  string    `json:"last_error,omitempty"`

	// Stale says the last check failed, so the values above that come
	// from the node (keys through ping_ms) are from LastOK, StaleSeconds
	// ago (0 when it never answered), not current.
	Stale        bool      `json:"stale"`
	LastOK       time.Time `json:"last_ok"` // the last check that succeeded
	StaleSeconds float64   `json:"stale_seconds,omitempty"`
}

// SlotRange is a run of slots owned by one master.
type SlotRange struct {
	Start     int    `json:"start"`
	End       int    `json:"end"`
	Owner     string `json:"owner"` // master address
	Migrating bool   `json:"migrating,omitempty"`
	Importing bool   `json:"importing,omitempty"`
}

// ProxyStatus is the data path of this instance.
type ProxyStatus struct {
	Clients        int64             `json:"clients"`
	CommandsPerSec float64           `json:"commands_per_sec"`
	CommandsTotal  uint64            `json:"commands_total"`
	ErrorsTotal    uint64            `json:"errors_total"`
	P50MS          *float64          `json:"latency_p50_ms"` // over LatencyWindow; null: no command in it
	P99MS          *float64          `json:"latency_p99_ms"` // over LatencyWindow; null: no command in it
	LatencyWindow  float64           `json:"latency_window_seconds"`
	Redirects      map[string]uint64 `json:"redirects"` // moved, ask, tryagain, clusterdown
	Families       []FamilyStatus    `json:"families"`
	// Commands parked now (retried through a failover or a slot move),
	// how long the oldest has waited, and the retry budget.
	Parked        int64   `json:"parked_requests"`
	ParkedLongest float64 `json:"parked_longest_seconds"`
	RetryBudget   float64 `json:"retry_budget_seconds"`

	// Latency is the source's latency histogram since start; the server
	// takes the windowed p50/p99 from two of them.
	Latency []LatencyBucket `json:"-"`
}

// FamilyStatus is one command family (the Redis ACL category: string,
// hash, list, set, sortedset, stream, ...).
type FamilyStatus struct {
	Family string  `json:"family"`
	Calls  uint64  `json:"calls"`
	Errors uint64  `json:"errors"`
	P50MS  float64 `json:"latency_p50_ms"`
	P99MS  float64 `json:"latency_p99_ms"`
}

// SeriesStatus holds the last 15 minutes, one point per interval.
type SeriesStatus struct {
	IntervalSeconds int           `json:"interval_seconds"`
	Points          []SeriesPoint `json:"points"`
}

// SeriesPoint is one sample.
type SeriesPoint struct {
	T              time.Time        `json:"t"`
	OpsPerSec      float64          `json:"ops_per_sec"`
	P99MS          *float64         `json:"latency_p99_ms"` // of the commands since the point before; null: none
	MemoryByMaster map[string]int64 `json:"memory_by_master"`
	OpsByMaster    map[string]int64 `json:"ops_by_master"`
}

// ScalerStatus is the scaler: its operations, their events and the
// autoscaler's policy.
type ScalerStatus struct {
	Enabled bool          `json:"enabled"`
	State   string        `json:"state"` // the current or last operation, in words
	Events  []ScalerEvent `json:"events"`
	// Auto is the autoscaler as the leader last published it. Nil, and
	// left out of the JSON, when the instance has no scaler; docs/api.md
	// documents its fields.
	Auto *AutoStatus `json:"auto,omitempty"`
}

// ScalerEvent is one scaling step.
type ScalerEvent struct {
	T      time.Time `json:"t"`
	Kind   string    `json:"kind"`
	Term   uint64    `json:"term"`
	Actor  string    `json:"actor"`
	Reason string    `json:"reason"`
}

// Operation is the scaler's current or last operation (GET
// /api/v1/scaler/operation, and the answer to starting one).
type Operation struct {
	Kind      string        `json:"kind"`
	State     string        `json:"state"` // idle, queued, running, done, failed
	Error     string        `json:"error,omitempty"`
	Started   time.Time     `json:"started"`
	Moving    time.Time     `json:"moving"` // when the first slot move began
	Ended     time.Time     `json:"ended"`
	SlotsDone int64         `json:"slots_done"`
	SlotsAll  int64         `json:"slots_total"`
	Keys      int64         `json:"keys"`
	Bytes     int64         `json:"bytes"`
	Backoffs  int64         `json:"backoffs"` // pauses because the nodes slowed down
	ETA       time.Duration `json:"eta_ns"`
}

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
