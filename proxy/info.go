package proxy

// INFO as one Redis 7.0 would answer it. The client sees one server, so:
//   - server, clients, replication and cpu describe the proxy (its pid,
//     run_id, port, uptime, clients, CPU), with Redis's field list;
//   - memory, persistence and stats are the masters' last health check
//     (proxy.health_interval), field by field: counters and sizes summed,
//     ratios averaged, times and flags the largest, texts the common value
//     ("mixed" when the masters differ); the proxy's own connection and
//     command counters and pub/sub figures replace the nodes' there;
//   - errorstats, commandstats and latencystats are the proxy's counters;
//   - cluster says cluster_enabled:0; keyspace sums the masters.
// The proxy's own figures come additionally under slotway_* fields.

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"runtime"
	rtmetrics "runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/slotway/slotway/internal/redisinfo"
)

// aggregateSection merges one section of several masters' INFO, field by
// field, in the order of the first one.
func aggregateSection(name string, masters [][]redisinfo.Section) [][2]string {
	var order []string
	vals := map[string][]string{}
	for _, m := range masters {
		s := redisinfo.Find(m, name)
		if s == nil {
			continue
		}
		for _, kv := range s.Fields {
			if _, seen := vals[kv[0]]; !seen {
				order = append(order, kv[0])
			}
			vals[kv[0]] = append(vals[kv[0]], kv[1])
		}
	}
	out := make([][2]string, 0, len(order))
	agg := map[string]string{}
	for _, k := range order {
		if strings.HasSuffix(k, "_human") {
			continue // from the merged base field below
		}
		agg[k] = aggregateField(k, vals[k])
	}
	for _, k := range order {
		v, ok := agg[k]
		if !ok {
			base := strings.TrimSuffix(k, "_human")
			n, err := strconv.ParseInt(agg[base], 10, 64)
			if err != nil {
				v = aggregateField(k, vals[k])
			} else {
				v = humanBytes(n)
			}
		}
		out = append(out, [2]string{k, v})
	}
	return out
}

// aggregateField merges one field's values across masters.
func aggregateField(name string, vals []string) string {
	nums := make([]float64, 0, len(vals))
	pct, ints := false, true
	for _, v := range vals {
		s := v
		if strings.HasSuffix(s, "%") {
			s, pct = s[:len(s)-1], true
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			nums = nil
			break
		}
		if strings.ContainsAny(s, ".eE") {
			ints = false
		}
		nums = append(nums, f)
	}
	if nums == nil {
		// Texts: the common value; a status is "err" if any is.
		if slices.Contains(vals, "err") {
			return "err"
		}
		for _, v := range vals[1:] {
			if v != vals[0] {
				return "mixed"
			}
		}
		return vals[0]
	}
	var r float64
	switch {
	case pct || strings.Contains(name, "ratio"):
		for _, f := range nums {
			r += f
		}
		r /= float64(len(nums))
		ints = false
	case name == "rdb_last_save_time":
		r = slices.Min(nums)
	case strings.Contains(name, "in_progress"), strings.Contains(name, "loading"), strings.HasSuffix(name, "_enabled"),
		strings.Contains(name, "time_sec"), strings.HasSuffix(name, "_time"), strings.HasSuffix(name, "_active"),
		strings.HasPrefix(name, "number_of_"), name == "total_system_memory", strings.HasSuffix(name, "_status"),
		strings.HasPrefix(name, "current_"), strings.HasSuffix(name, "_perc"):
		r = slices.Max(nums)
	default:
		for _, f := range nums {
			r += f
		}
	}
	var s string
	if ints {
		s = strconv.FormatInt(int64(r), 10)
	} else {
		s = strconv.FormatFloat(r, 'f', 2, 64)
	}
	if pct {
		s += "%"
	}
	return s
}

// humanBytes formats n as Redis's bytesToHuman does.
func humanBytes(n int64) string {
	f := float64(n)
	switch {
	case f < 1024:
		return strconv.FormatInt(n, 10) + "B"
	case f < 1024*1024:
		return strconv.FormatFloat(f/1024, 'f', 2, 64) + "K"
	case f < 1024*1024*1024:
		return strconv.FormatFloat(f/(1024*1024), 'f', 2, 64) + "M"
	case f < 1024*1024*1024*1024:
		return strconv.FormatFloat(f/(1024*1024*1024), 'f', 2, 64) + "G"
	}
	return strconv.FormatFloat(f/(1024*1024*1024*1024), 'f', 2, 64) + "T"
}

// runID is the proxy's run_id, made once.
var runID = sync.OnceValue(func() string {
	var b [20]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
})

// infoSectionNames are a single Redis 7.0's sections, in its order;
// "default" and "all" leave out the last two, as Redis does.
var infoSectionNames = []string{"server", "clients", "memory", "persistence", "stats", "replication", "cpu",
	"modules", "errorstats", "cluster", "keyspace", "commandstats", "latencystats"}

// wantedSections reads INFO's arguments.
func wantedSections(args [][]byte) map[string]bool {
	want := map[string]bool{}
	names := args[1:]
	if len(names) == 0 {
		names = [][]byte{[]byte("default")}
	}
	for _, a := range names {
		switch n := strings.ToLower(string(a)); n {
		case "default", "all":
			for _, s := range infoSectionNames {
				if s != "commandstats" && s != "latencystats" || n == "all" {
					want[s] = true
				}
			}
		case "everything":
			for _, s := range infoSectionNames {
				want[s] = true
			}
		default:
			want[n] = true
		}
	}
	return want
}

// info builds the INFO reply's text.
func (s *Server) info(args [][]byte) string {
	want := wantedSections(args)
	h := s.health.snapshot()
	t := s.topo.load()
	var masters [][]redisinfo.Section
	for _, m := range t.masters {
		if nh, ok := h[m.addr]; ok && nh.Info.raw != "" {
			masters = append(masters, redisinfo.Parse(nh.Info.raw))
		}
	}
	var first []redisinfo.Section
	if len(masters) > 0 {
		first = masters[0]
	}
	// template lists a section's fields as the first master has them,
	// each with the proxy's value where it has one, else the node's.
	template := func(name string, own map[string]string) [][2]string {
		var fields [][2]string
		if sec := redisinfo.Find(first, name); sec != nil {
			fields = slices.Clone(sec.Fields)
		}
		return overlay(fields, own)
	}
	var b strings.Builder
	section := func(title string, fields [][2]string) {
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString("# " + title + "\r\n")
		for _, kv := range fields {
			b.WriteString(kv[0] + ":" + kv[1] + "\r\n")
		}
	}
	now := time.Now()
	up := int64(now.Sub(s.started).Seconds())
	if want["server"] {
		exe, _ := os.Executable()
		section("Server", template("server", map[string]string{
			"redis_version": s.redisVersion(), "redis_mode": "standalone", "os": runtime.GOOS + " " + runtime.GOARCH,
			"arch_bits": "64", "multiplexing_api": "epoll", "process_id": strconv.Itoa(os.Getpid()),
			"process_supervised": "no", "run_id": runID(), "tcp_port": strconv.Itoa(s.port()),
			"server_time_usec": strconv.FormatInt(now.UnixMicro(), 10), "uptime_in_seconds": strconv.FormatInt(up, 10),
			"uptime_in_days": strconv.FormatInt(up/86400, 10), "executable": exe, "config_file": "",
			"io_threads_active": "0", "slotway_version": Version, "slotway_go_version": runtime.Version(),
		}))
	}
	cls := s.clientsSnapshot()
	if want["clients"] {
		var maxIn int64
		for _, c := range cls {
			maxIn = max(maxIn, c.bufBytes.Load())
		}
		blocked := strconv.FormatInt(s.blockedClients.Load(), 10)
		section("Clients", template("clients", map[string]string{
			"connected_clients": strconv.Itoa(len(cls)), "cluster_connections": "0",
			"maxclients": strconv.Itoa(s.settings().maxClients), "client_recent_max_input_buffer": strconv.FormatInt(maxIn, 10),
			"client_recent_max_output_buffer": "0", "blocked_clients": blocked, "tracking_clients": "0",
			"clients_in_timeout_table": blocked, "slotway_loop_clients": strconv.FormatInt(s.loopClients.Load(), 10),
			"slotway_monitors": strconv.Itoa(int(s.mon.n.Load())), "slotway_paused_clients": strconv.FormatInt(s.pause.held.Load(), 10),
		}))
	}
	if want["memory"] {
		f := aggregateSection("memory", masters)
		f = append(f, [2]string{"slotway_used_memory", strconv.FormatUint(goMemory(), 10)},
			[2]string{"slotway_used_memory_human", humanBytes(int64(goMemory()))})
		section("Memory", f)
	}
	if want["persistence"] {
		section("Persistence", aggregateSection("persistence", masters))
	}
	if want["stats"] {
		chans, pats, shard := s.pubsubCounts(cls)
		own := map[string]string{
			"total_connections_received": strconv.FormatUint(s.acceptedCount.Load()-s.statBase.connections.Load(), 10),
			"total_commands_processed":   strconv.FormatUint(s.totalCommands()-s.statBase.commands.Load(), 10),
			"pubsub_channels":            strconv.Itoa(chans), "pubsub_patterns": strconv.Itoa(pats),
			"pubsubshard_channels": strconv.Itoa(shard), "total_error_replies": strconv.FormatUint(s.errs.total(), 10),
		}
		section("Stats", overlay(aggregateSection("stats", masters), own))
	}
	if want["replication"] {
		replicas := 0
		for _, n := range t.nodes {
			if n.Role == "replica" {
				replicas++
			}
		}
		section("Replication", template("replication", map[string]string{
			"role": "master", "connected_slaves": "0", "master_failover_state": "no-failover",
			"master_replid": runID(), "master_replid2": strings.Repeat("0", 40), "master_repl_offset": "0",
			"second_repl_offset": "-1", "repl_backlog_active": "0", "repl_backlog_first_byte_offset": "0",
			"repl_backlog_histlen": "0", "slotway_cluster_replicas": strconv.Itoa(replicas),
		}))
	}
	if want["cpu"] {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		sys := fmt.Sprintf("%.6f", float64(ru.Stime.Sec)+float64(ru.Stime.Usec)/1e6)
		user := fmt.Sprintf("%.6f", float64(ru.Utime.Sec)+float64(ru.Utime.Usec)/1e6)
		section("CPU", template("cpu", map[string]string{
			"used_cpu_sys": sys, "used_cpu_user": user, "used_cpu_sys_children": "0.000000",
			"used_cpu_user_children": "0.000000", "used_cpu_sys_main_thread": sys, "used_cpu_user_main_thread": user,
		}))
	}
	if want["modules"] {
		section("Modules", nil)
	}
	if want["errorstats"] {
		section("Errorstats", s.errs.fields())
	}
	if want["cluster"] {
		section("Cluster", [][2]string{{"cluster_enabled", "0"}, {"slotway_masters", strconv.Itoa(len(t.masters))},
			{"slotway_slots_served", strconv.Itoa(servedSlots(t))}, {"slotway_topology_version", strconv.FormatUint(t.version, 10)}})
	}
	if want["keyspace"] {
		section("Keyspace", s.keyspaceFields(h, t))
	}
	if want["commandstats"] {
		section("Commandstats", s.commandStats())
	}
	if want["latencystats"] {
		section("Latencystats", s.latencyStats())
	}
	return b.String()
}

// overlay gives fields the proxy's values in own, in place, and appends
// the rest of own in name order.
func overlay(fields [][2]string, own map[string]string) [][2]string {
	seen := map[string]bool{}
	for i, kv := range fields {
		if v, ok := own[kv[0]]; ok {
			fields[i][1] = v
			seen[kv[0]] = true
		}
	}
	for _, k := range slices.Sorted(maps.Keys(own)) {
		if !seen[k] {
			fields = append(fields, [2]string{k, own[k]})
		}
	}
	return fields
}

// keyspaceFields sums the masters' keyspace from their last health check
// (INFO stays local and cheap; DBSIZE is the exact count).
func (s *Server) keyspaceFields(h map[string]NodeHealth, t *topology) [][2]string {
	var keys, expires, ttlWeighted int64
	for _, m := range t.masters {
		if nh, ok := h[m.addr]; ok {
			keys += nh.Info.Keys - nh.Info.ownKeys // Slotway's own keys are not the clients'
			expires += nh.Info.Expires - nh.Info.ownExpires
			ttlWeighted += nh.Info.AvgTTL * nh.Info.Expires
		}
	}
	if keys <= 0 {
		return nil
	}
	avg := int64(0)
	if expires > 0 {
		avg = ttlWeighted / expires
	}
	return [][2]string{{"db0", fmt.Sprintf("keys=%d,expires=%d,avg_ttl=%d", keys, expires, avg)}}
}

// pubsubCounts counts the distinct channels, patterns and shard channels
// the proxy's clients are subscribed to.
func (s *Server) pubsubCounts(cls []*client) (chans, pats, shard int) {
	ch, pt, sh := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, c := range cls {
		ps := c.psView.Load()
		if ps == nil {
			continue
		}
		ps.mu.Lock()
		for k := range ps.channels {
			ch[k] = true
		}
		for k := range ps.patterns {
			pt[k] = true
		}
		for k := range ps.shard {
			sh[k] = true
		}
		ps.mu.Unlock()
	}
	return len(ch), len(pt), len(sh)
}

// commandStats is Redis's commandstats from the proxy's counters; usec is
// the time from parsing the command to its reply, as the proxy saw it.
func (s *Server) commandStats() [][2]string {
	var out [][2]string
	add := func(name string, ci *cmdInfo) {
		calls := ci.stats.calls.Load() - ci.stats.base.calls.Load()
		if calls == 0 {
			return
		}
		errs := ci.stats.errors.Load() - ci.stats.base.errors.Load()
		rej := ci.stats.rejected.Load() - ci.stats.base.rejected.Load()
		usec := ci.stats.usec.Load() - ci.stats.base.usec.Load()
		out = append(out, [2]string{"cmdstat_" + name, fmt.Sprintf("calls=%d,usec=%d,usec_per_call=%.2f,rejected_calls=%d,failed_calls=%d",
			calls, usec, float64(usec)/float64(calls), rej, errs-min(errs, rej))})
	}
	s.eachCommand(func(ci *cmdInfo) { add(ci.name, ci) })
	slices.SortFunc(out, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	return out
}

// latencyStats gives the proxy's latency percentiles by command family
// (the proxy keeps histograms per family, not per command).
func (s *Server) latencyStats() [][2]string {
	var out [][2]string
	for f := range s.latency {
		h := &s.latency[f]
		if h.counts[len(h.counts)-1].Load() == 0 && h.quantile(0.5) == 0 {
			continue
		}
		us := func(q float64) string {
			return strconv.FormatFloat(float64(h.quantile(q).Microseconds()), 'f', 3, 64)
		}
		out = append(out, [2]string{"slotway_latency_percentiles_usec_" + familyNames[f],
			"p50=" + us(0.5) + ",p99=" + us(0.99) + ",p99.9=" + us(0.999)})
	}
	return out
}

// eachCommand calls fn for every command and subcommand the proxy counts.
func (s *Server) eachCommand(fn func(ci *cmdInfo)) {
	if t := s.table.Load(); t != nil {
		for _, ci := range t.cmds {
			if ci.kind == kindLocal {
				continue // counted below
			}
			fn(ci)
			for _, sub := range ci.subs {
				fn(sub)
			}
		}
	}
	for _, ci := range localStats() {
		fn(ci)
	}
}

// goMemory is the memory the Go runtime holds from the system.
func goMemory() uint64 {
	sample := []rtmetrics.Sample{{Name: "/memory/classes/total:bytes"}}
	rtmetrics.Read(sample)
	if sample[0].Value.Kind() != rtmetrics.KindUint64 {
		return 0
	}
	return sample[0].Value.Uint64()
}

// errorStats counts the error replies clients got, by their first word,
// as Redis's errorstats does.
type errorStats struct {
	mu   sync.Mutex
	byPx map[string]uint64
	base map[string]uint64 // at the last CONFIG RESETSTAT
}

// note counts an error reply (reply starts with '-').
func (e *errorStats) note(reply []byte) {
	end := 1
	for end < len(reply) && end < 64 && reply[end] != ' ' && reply[end] != '\r' {
		end++
	}
	e.mu.Lock()
	if e.byPx == nil {
		e.byPx = map[string]uint64{}
	}
	if len(e.byPx) < 128 {
		e.byPx[string(reply[1:end])]++
	} else {
		e.byPx["(other)"]++
	}
	e.mu.Unlock()
}

func (e *errorStats) total() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	var n uint64
	for k, v := range e.byPx {
		n += v - e.base[k]
	}
	return n
}

func (e *errorStats) fields() [][2]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out [][2]string
	for _, k := range slices.Sorted(maps.Keys(e.byPx)) {
		if n := e.byPx[k] - e.base[k]; n > 0 {
			out = append(out, [2]string{"errorstat_" + k, "count=" + strconv.FormatUint(n, 10)})
		}
	}
	return out
}

func (e *errorStats) reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.base = make(map[string]uint64, len(e.byPx))
	for k, v := range e.byPx {
		e.base[k] = v
	}
}
