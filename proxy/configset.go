package proxy

// CONFIG SET, CONFIG GET and CONFIG RESETSTAT for the nodes behind the
// proxy. A client sees one server, so a parameter set through Slotway has
// to hold on every node, masters and replicas (a replica promoted later
// must behave the same): CONFIG SET runs on all of them in parallel and
// answers OK only when every node took it; otherwise the nodes that took
// it get their previous values back. Only parameters that mean the same
// on every node are fanned out; those that identify one node (its port,
// its files, its place in the cluster) are refused. The values set are
// kept in the cluster with Slotway's own state (ownkeys.Config) so that a
// node the scaler adds later gets them too.
//
// These commands talk to the nodes, so they never run on an event loop:
// the request waits in state stAdmin and runs on the client's goroutine,
// or on a detour goroutine for a loop's client (rounds).

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tidwall/redcon"

	"github.com/slotway/slotway/internal/ownkeys"
)

// fanoutParams are the Redis 7 parameters that mean the same on every node
// and that applications and test suites set at start-up: data-structure
// encodings, eviction, notifications, slowlog and latency, lazyfree,
// scripting limits, hz, persistence, defragmentation, replication tuning.
var fanoutParams = map[string]bool{}

func init() {
	for _, p := range strings.Fields(`
		hash-max-listpack-entries hash-max-listpack-value hash-max-ziplist-entries hash-max-ziplist-value
		list-max-listpack-size list-max-ziplist-size list-compress-depth
		set-max-intset-entries set-max-listpack-entries set-max-listpack-value
		zset-max-listpack-entries zset-max-listpack-value zset-max-ziplist-entries zset-max-ziplist-value
		stream-node-max-bytes stream-node-max-entries hll-sparse-max-bytes activerehashing
		maxmemory maxmemory-policy maxmemory-samples maxmemory-eviction-tenacity maxmemory-clients
		lfu-log-factor lfu-decay-time active-expire-effort
		notify-keyspace-events
		slowlog-log-slower-than slowlog-max-len
		latency-monitor-threshold latency-tracking latency-tracking-info-percentiles
		lazyfree-lazy-eviction lazyfree-lazy-expire lazyfree-lazy-server-del lazyfree-lazy-user-del
		lazyfree-lazy-user-flush replica-lazy-flush
		lua-time-limit busy-reply-threshold
		hz dynamic-hz
		save appendonly appendfsync no-appendfsync-on-rewrite auto-aof-rewrite-percentage
		auto-aof-rewrite-min-size aof-rewrite-incremental-fsync aof-use-rdb-preamble aof-timestamp-enabled
		rdbcompression rdbchecksum rdb-save-incremental-fsync stop-writes-on-bgsave-error
		activedefrag active-defrag-ignore-bytes active-defrag-threshold-lower active-defrag-threshold-upper
		active-defrag-cycle-min active-defrag-cycle-max active-defrag-max-scan-fields
		jemalloc-bg-thread
		client-query-buffer-limit client-output-buffer-limit tracking-table-max-keys
		repl-backlog-size repl-backlog-ttl repl-timeout repl-ping-replica-period
		repl-diskless-sync repl-diskless-sync-delay repl-diskless-sync-max-replicas repl-diskless-load
		min-replicas-to-write min-replicas-max-lag replica-serve-stale-data
		loglevel`) {
		fanoutParams[p] = true
	}
}

// nodeParams identify one node or its place in the cluster: the same value
// on every node would break the cluster, so CONFIG SET refuses them. A
// name ending in "*" is a prefix.
var nodeParams = []string{
	"port", "bind", "bind-source-addr", "unixsocket", "unixsocketperm", "dir", "dbfilename",
	"appendfilename", "appenddirname", "logfile", "pidfile", "replicaof", "slaveof",
	"requirepass", "masterauth", "masteruser", "aclfile", "replica-announce-ip",
	"replica-announce-port", "slave-announce-ip", "slave-announce-port", "replica-priority",
	"slave-priority", "tls-*", "cluster-*",
}

// proxyParams are answered by the proxy for itself (proxyConfig): setting
// them on the nodes would not change what the client sees, or would cut
// the proxy's own connections (timeout).
var proxyParams = map[string]string{
	"timeout":            "proxy.client_idle_timeout",
	"maxclients":         "proxy.max_clients",
	"proto-max-bulk-len": "proxy.limits.max_bulk_len",
	"databases":          "",
}

// checkConfigSet validates CONFIG SET's arguments and returns its
// parameter/value pairs (names in lower case), or the error to answer.
func checkConfigSet(args [][]byte) ([][2]string, string) {
	if len(args) < 4 {
		return nil, "ERR wrong number of arguments for 'config|set' command"
	}
	if len(args)%2 != 0 {
		return nil, "ERR syntax error"
	}
	pairs := make([][2]string, 0, (len(args)-2)/2)
	for i := 2; i < len(args); i += 2 {
		name := strings.ToLower(string(args[i]))
		if slices.ContainsFunc(pairs, func(p [2]string) bool { return p[0] == name }) {
			return nil, "ERR CONFIG SET failed (possibly related to argument '" + printable(args[i]) + "') - duplicate parameter"
		}
		if msg := configSetRefusal(name); msg != "" {
			return nil, msg
		}
		pairs = append(pairs, [2]string{name, string(args[i+1])})
	}
	return pairs, ""
}

// configSetRefusal is why CONFIG SET of name is not fanned out, or "".
func configSetRefusal(name string) string {
	if fanoutParams[name] {
		return ""
	}
	if key, ok := proxyParams[name]; ok {
		if key == "" {
			return "ERR slotway: CONFIG SET '" + name + "' is refused: the proxy answers it for itself"
		}
		return "ERR slotway: CONFIG SET '" + name + "' is refused: the proxy answers it for itself; set " + key + " in Slotway's config file"
	}
	for _, p := range nodeParams {
		if name == p || (strings.HasSuffix(p, "*") && strings.HasPrefix(name, p[:len(p)-1])) {
			return "ERR slotway: CONFIG SET '" + name + "' is refused: it identifies one node; set it on that node directly"
		}
	}
	return "ERR slotway: CONFIG SET '" + name + "' is not fanned out (it is not a parameter known to mean the same on every node); set it on each node directly"
}

// configNodes lists the nodes CONFIG SET and RESETSTAT run on: every node
// of the cluster the proxy knows, but those the cluster marks failed.
func (s *Server) configNodes() ([]string, []string) {
	var up, failed []string
	for _, n := range s.topo.load().nodes {
		if n.Health == "failed" {
			failed = append(failed, n.Addr)
			continue
		}
		up = append(up, n.Addr)
	}
	return up, failed
}

// eachNode runs fn on every address in parallel and returns the errors by
// address index.
func eachNode(addrs []string, fn func(i int, addr string) error) []error {
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Go(func() { errs[i] = fn(i, a) })
	}
	wg.Wait()
	return errs
}

// nodeRefusal is an error the node would have answered, in Redis's words.
type nodeRefusal string

func (e nodeRefusal) Error() string { return string(e) }

// nodeErrorText is what a client reads of a node's failure: a Redis error
// as the node wrote it, anything else (no connection, a timeout) as a
// Slotway error.
func nodeErrorText(err error) string {
	var re redis.Error
	var nr nodeRefusal
	if errors.As(err, &re) || errors.As(err, &nr) {
		return err.Error()
	}
	return "ERR slotway: " + err.Error()
}

const configTimeout = 10 * time.Second

// configSet runs CONFIG SET pairs on every node and returns the error to
// answer, or "" when every node took it.
func (s *Server) configSet(pairs [][2]string) string {
	addrs, failed := s.configNodes()
	if len(addrs) == 0 {
		return "CLUSTERDOWN slotway has not reached the cluster yet"
	}
	ctx, cancel := context.WithTimeout(context.Background(), configTimeout)
	defer cancel()
	names := make([]any, 0, 2+len(pairs))
	names = append(names, "CONFIG", "GET")
	set := make([]any, 0, 2+2*len(pairs))
	set = append(set, "CONFIG", "SET")
	for _, p := range pairs {
		names = append(names, p[0])
		set = append(set, p[0], p[1])
	}
	// The previous values, to roll back with: every node's own.
	prev := make([][]any, len(addrs))
	errs := eachNode(addrs, func(i int, addr string) error {
		m, err := s.topo.control(addr).Do(ctx, names...).Result()
		if err != nil {
			return err
		}
		vals, err := configValues(m)
		if err != nil {
			return err
		}
		undo := []any{"CONFIG", "SET"}
		for _, p := range pairs {
			v, ok := vals[p[0]]
			if !ok {
				return nodeRefusal("ERR Unknown option or number of arguments for CONFIG SET - '" + p[0] + "'")
			}
			undo = append(undo, p[0], v)
		}
		prev[i] = undo
		return nil
	})
	if i := slices.IndexFunc(errs, func(e error) bool { return e != nil }); i >= 0 {
		return nodeErrorText(errs[i]) + " (node " + addrs[i] + "; CONFIG SET not run on any node)"
	}
	errs = eachNode(addrs, func(_ int, addr string) error {
		return s.topo.control(addr).Do(ctx, set...).Err()
	})
	first := slices.IndexFunc(errs, func(e error) bool { return e != nil })
	if first < 0 {
		s.keepConfig(ctx, pairs)
		if len(failed) > 0 {
			s.log.Warn("CONFIG SET: nodes the cluster marks failed did not get it", "nodes", failed, "params", len(pairs))
		}
		return ""
	}
	var took []int
	for i, e := range errs {
		if e == nil {
			took = append(took, i)
		}
	}
	undoErrs := eachNode(addrs, func(i int, addr string) error {
		if errs[i] != nil {
			return nil
		}
		return s.topo.control(addr).Do(ctx, prev[i]...).Err()
	})
	msg := nodeErrorText(errs[first]) + fmt.Sprintf(" (node %s; rolled back on %d nodes", addrs[first], len(took))
	for i, e := range undoErrs {
		if e != nil {
			msg += "; the rollback failed on " + addrs[i] + ": " + strings.TrimPrefix(nodeErrorText(e), "ERR ")
			s.log.Error("CONFIG SET: rollback failed; the node keeps the new value", "node", addrs[i], "err", e)
		}
	}
	return msg + ")"
}

// configValues reads a CONFIG GET reply (a flat list in RESP2).
func configValues(reply any) (map[string]string, error) {
	out := map[string]string{}
	switch r := reply.(type) {
	case []any:
		for i := 0; i+1 < len(r); i += 2 {
			k, _ := r[i].(string)
			v, _ := r[i+1].(string)
			out[k] = v
		}
	case map[any]any:
		for k, v := range r {
			ks, _ := k.(string)
			vs, _ := v.(string)
			out[ks] = vs
		}
	default:
		return nil, fmt.Errorf("unexpected CONFIG GET reply %T", reply)
	}
	return out, nil
}

// keepConfig records values set through Slotway with its own state, for
// the nodes the scaler adds later. A failure is logged: the nodes have the
// values already.
func (s *Server) keepConfig(ctx context.Context, pairs [][2]string) {
	b := s.topo.load().slots[ownkeys.Slot]
	if b == nil {
		s.log.Warn("CONFIG SET: no master serves Slotway's own slot; new nodes will not get the values", "params", len(pairs))
		return
	}
	kv := make([]any, 0, 2*len(pairs))
	for _, p := range pairs {
		kv = append(kv, p[0], p[1])
	}
	if err := s.topo.control(b.addr).HSet(ctx, ownkeys.Config, kv...).Err(); err != nil {
		s.log.Warn("CONFIG SET: could not keep the values for new nodes", "key", ownkeys.Config, "node", b.addr, "err", err)
	}
}

// nodeConfig answers the fanned-out parameters matching patterns with the
// masters' common value, or with a text naming each master's value when
// they disagree. Masters that do not answer are left out.
func (s *Server) nodeConfig(patterns []string) [][2]string {
	masters := s.topo.load().masters
	if len(masters) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), configTimeout)
	defer cancel()
	args := []any{"CONFIG", "GET"}
	for _, p := range patterns {
		args = append(args, p)
	}
	vals := make([]map[string]string, len(masters))
	addrs := make([]string, len(masters))
	for i, m := range masters {
		addrs[i] = m.addr
	}
	eachNode(addrs, func(i int, addr string) error {
		r, err := s.topo.control(addr).Do(ctx, args...).Result()
		if err == nil {
			vals[i], _ = configValues(r)
		}
		return err
	})
	names := map[string]bool{}
	for _, v := range vals {
		for k := range v {
			if fanoutParams[k] {
				names[k] = true
			}
		}
	}
	var out [][2]string
	for _, name := range slices.Sorted(maps.Keys(names)) {
		out = append(out, [2]string{name, agreedValue(name, addrs, vals)})
	}
	return out
}

// agreedValue is the masters' common value of name, or a text that names
// each master's value when they differ.
func agreedValue(name string, addrs []string, vals []map[string]string) string {
	var common string
	agree, seen := true, false
	for _, v := range vals {
		if v == nil {
			continue
		}
		x := v[name]
		if seen && x != common {
			agree = false
		}
		common, seen = x, true
	}
	if agree {
		return common
	}
	parts := make([]string, 0, len(addrs))
	for i, v := range vals {
		if v != nil {
			parts = append(parts, addrs[i]+"="+v[name])
		}
	}
	return "slotway: the masters disagree: " + strings.Join(parts, ", ")
}

// configResetStat runs CONFIG RESETSTAT on every node and resets the
// counters the proxy shows in INFO; the error to answer, or "".
func (s *Server) configResetStat() string {
	s.resetStats()
	addrs, _ := s.configNodes()
	ctx, cancel := context.WithTimeout(context.Background(), configTimeout)
	defer cancel()
	errs := eachNode(addrs, func(_ int, addr string) error {
		return s.topo.control(addr).ConfigResetStat(ctx).Err()
	})
	var bad []string
	for i, e := range errs {
		if e != nil {
			bad = append(bad, addrs[i]+": "+strings.TrimPrefix(nodeErrorText(e), "ERR "))
		}
	}
	if len(bad) > 0 {
		return "ERR slotway: CONFIG RESETSTAT failed on " + strings.Join(bad, "; ")
	}
	return ""
}

// cmdConfigNodes answers the CONFIG subcommands that talk to the nodes;
// it runs off the event loops (stAdmin).
func cmdConfigNodes(c *client, args [][]byte, dst []byte) []byte {
	switch {
	case equalFold(args[1], "GET"):
		if len(args) < 3 {
			return appendError(dst, "ERR wrong number of arguments for 'config|get' command")
		}
		if msg := c.adminDenied("config|get"); msg != "" {
			return appendError(dst, msg)
		}
		patterns := make([]string, 0, len(args)-2)
		for _, a := range args[2:] {
			patterns = append(patterns, strings.ToLower(string(a)))
		}
		var out [][2]string
		for _, kv := range c.s.proxyConfig() {
			if slices.ContainsFunc(patterns, func(p string) bool { ok, _ := path.Match(p, kv[0]); return ok }) {
				out = append(out, kv)
			}
		}
		out = append(out, c.s.nodeConfig(patterns)...)
		dst = c.appendMap(dst, len(out))
		for _, kv := range out {
			dst = redcon.AppendBulkString(dst, kv[0])
			dst = redcon.AppendBulkString(dst, kv[1])
		}
		return dst
	case equalFold(args[1], "SET"):
		pairs, msg := checkConfigSet(args)
		if msg == "" {
			msg = c.adminDenied("config|set")
		}
		if msg == "" && c.s.settings().configSet == "refuse" {
			msg = "ERR slotway: CONFIG SET is turned off (proxy.config_set: refuse); set the parameter on each node directly"
		}
		if msg == "" {
			msg = c.s.configSet(pairs)
		}
		if msg != "" {
			return appendError(dst, msg)
		}
		return redcon.AppendOK(dst)
	default: // RESETSTAT
		if msg := c.adminDenied("config|resetstat"); msg != "" {
			return appendError(dst, msg)
		}
		if c.s.settings().configSet == "refuse" {
			return appendError(dst, "ERR slotway: CONFIG RESETSTAT is turned off (proxy.config_set: refuse)")
		}
		if msg := c.s.configResetStat(); msg != "" {
			return appendError(dst, msg)
		}
		return redcon.AppendOK(dst)
	}
}

// configNeedsNodes reports the CONFIG calls that talk to the nodes.
func configNeedsNodes(args [][]byte) bool {
	return len(args) >= 2 && (equalFold(args[1], "GET") || equalFold(args[1], "SET") || equalFold(args[1], "RESETSTAT"))
}

// cloneArgs copies arguments out of the reader's buffer.
func cloneArgs(args [][]byte) [][]byte {
	out := make([][]byte, len(args))
	for i, a := range args {
		out[i] = append([]byte(nil), a...)
	}
	return out
}

// restoreKept gives the parameters set through Slotway back to nodes that
// may lack them: a node seen for the first time, one that restarted (a
// new run_id: CONFIG SET does not survive a restart) and one that comes
// back after being down (it may have missed a CONFIG SET). A node is
// marked done only once it took them, so a failure is retried at the
// next check.
func (h *healthChecker) restoreKept(ctx context.Context, t *topology, next map[string]NodeHealth) {
	if h.kept == nil {
		h.kept = map[string]string{}
	}
	var todo []string
	for addr, nh := range next {
		switch {
		case !nh.Up || nh.Info.runID == "":
			delete(h.kept, addr)
		case h.kept[addr] != nh.Info.runID:
			todo = append(todo, addr)
		}
	}
	for addr := range h.kept {
		if _, ok := next[addr]; !ok {
			delete(h.kept, addr)
		}
	}
	b := t.slots[ownkeys.Slot]
	if len(todo) == 0 || b == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, h.timeout*4)
	defer cancel()
	kept, err := h.o.control(b.addr).HGetAll(ctx, ownkeys.Config).Result()
	if err != nil {
		return
	}
	args := []any{"CONFIG", "SET"}
	for _, k := range slices.Sorted(maps.Keys(kept)) {
		args = append(args, k, kept[k])
	}
	errs := eachNode(todo, func(_ int, addr string) error {
		if len(args) == 2 {
			return nil
		}
		return h.o.control(addr).Do(ctx, args...).Err()
	})
	for i, addr := range todo {
		if errs[i] != nil {
			h.o.log.Warn("could not give a node the parameters set through Slotway; retrying at the next check",
				"node", addr, "key", ownkeys.Config, "err", errs[i])
			continue
		}
		if len(args) > 2 {
			h.o.log.Info("gave a node the parameters set through Slotway", "node", addr, "params", len(kept))
		}
		h.kept[addr] = next[addr].Info.runID
	}
}
