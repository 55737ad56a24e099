package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/clusternodes"
	"github.com/slotway/slotway/internal/redistest"
)

// runCreate runs `slotway cluster create ARGS...` in-process.
func runCreate(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = runMain(append([]string{"cluster", "create"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// TestClusterCreate forms a cluster with one replica per master from six
// empty password-protected nodes, the password taken from a config file,
// then runs the same command again and expects "already created" with the
// cluster unchanged.
func TestClusterCreate(t *testing.T) {
	requireRedis(t)
	c := redistest.NewEmpty(t, redistest.Options{}, 6)
	const pass = "s3cret-create"
	ctx := context.Background()
	var addrs []string
	var clients []*redis.Client
	for _, n := range c.Spares() {
		// masterauth first: the cached client is still unauthenticated
		// and stays usable after requirepass only on its open connection.
		for _, kv := range [][2]string{{"masterauth", pass}, {"requirepass", pass}} {
			if err := n.Client().ConfigSet(ctx, kv[0], kv[1]).Err(); err != nil {
				t.Fatalf("%s: CONFIG SET %s: %v", n.Addr, kv[0], err)
			}
		}
		addrs = append(addrs, n.Addr)
		rc := redis.NewClient(&redis.Options{Addr: n.Addr, Password: pass, Protocol: 2, DisableIdentity: true})
		t.Cleanup(func() { _ = rc.Close() })
		clients = append(clients, rc)
	}
	cfg := filepath.Join(t.TempDir(), "slotway.yaml")
	yaml := fmt.Sprintf("proxy:\n  cluster:\n    seeds: [%q]\n    password: %s\n", addrs[0], pass)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := runCreate(append([]string{"-replicas", "1", "-password", "wrong"}, addrs...)...)
	if code != 1 || !strings.Contains(errOut, "\n  "+addrs[0]+": INFO cluster: WRONGPASS") {
		t.Errorf("wrong password: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	code, out, errOut = runCreate(append([]string{"-replicas", "1", "-config", cfg}, addrs...)...)
	t.Logf("create output:\n%s", out)
	if code != 0 {
		t.Fatalf("create: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"cluster created: 3 masters, 3 replicas, cluster_state:ok\n",
		fmt.Sprintf("  master %s slots 0-5460 (5461 slots)\n    replica %s\n", addrs[0], addrs[3]),
		fmt.Sprintf("  master %s slots 5461-10921 (5461 slots)\n    replica %s\n", addrs[1], addrs[4]),
		fmt.Sprintf("  master %s slots 10922-16383 (5462 slots)\n    replica %s\n", addrs[2], addrs[5]),
		"waiting for every node to know every other\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("create output lacks %q:\n%s", want, out)
		}
	}
	for i, rc := range clients {
		ci := rc.ClusterInfo(ctx).Val()
		for _, want := range []string{"cluster_state:ok", "cluster_slots_assigned:16384", "cluster_known_nodes:6", "cluster_size:3"} {
			if !strings.Contains(ci, want) {
				t.Errorf("%s: CLUSTER INFO lacks %s:\n%s", addrs[i], want, ci)
			}
		}
	}
	view := clusterNodes(t, clients[0])
	masters, replicaOf := 0, map[string]int{}
	for _, e := range view {
		if e.IsMaster() {
			masters++
		} else {
			replicaOf[e.MasterID]++
		}
	}
	if masters != 3 || len(replicaOf) != 3 {
		t.Errorf("want 3 masters with one replica each, got:\n%s", strings.Join(fingerprint(view), "\n"))
	}
	for id, n := range replicaOf {
		if n != 1 {
			t.Errorf("master %s has %d replicas, want 1", id, n)
		}
	}
	before := fingerprint(view)

	code, out, errOut = runCreate(append([]string{"-replicas", "1", "-password", pass}, addrs...)...)
	if code != 0 || !strings.Contains(out, "cluster already created: 3 masters, 3 replicas, cluster_state:ok\n") {
		t.Fatalf("second create: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if strings.Contains(out, "assigning slots") || strings.Contains(out, "meeting") {
		t.Errorf("second create changed something:\n%s", out)
	}
	if after := fingerprint(clusterNodes(t, clients[0])); !slices.Equal(before, after) {
		t.Errorf("topology changed (-before +after):\n-%s\n+%s", strings.Join(before, "\n-"), strings.Join(after, "\n+"))
	}
}

func clusterNodes(t *testing.T, rc *redis.Client) []clusternodes.NodeInfo {
	t.Helper()
	txt, err := rc.ClusterNodes(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	view, err := clusternodes.Parse(txt)
	if err != nil {
		t.Fatal(err)
	}
	return view
}

// fingerprint is CLUSTER NODES without timestamps and link states, sorted,
// so two reads of an unchanged cluster compare equal.
func fingerprint(view []clusternodes.NodeInfo) []string {
	var out []string
	for _, e := range view {
		out = append(out, fmt.Sprintf("%s %s %s master=%s epoch=%d slots=%v", e.ID, e.Addr, strings.Join(e.Flags, ","), e.MasterID, e.ConfigEpoch, e.Slots))
	}
	slices.Sort(out)
	return out
}

// TestClusterCreateRefuses: a node holding a key, or one that belongs to
// another cluster, makes create fail naming that node, and no node is
// changed.
func TestClusterCreateRefuses(t *testing.T) {
	requireRedis(t)
	c := redistest.NewEmpty(t, redistest.Options{}, 6)
	ctx := context.Background()
	var addrs []string
	for _, n := range c.Spares() {
		addrs = append(addrs, n.Addr)
	}
	// A cluster node only takes a key in a slot it serves, and only once
	// all slots are served: serve them long enough to write the key, then
	// let them go. The key stays.
	dirty := c.Spares()[2].Client()
	if err := dirty.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		t.Fatal(err)
	}
	redistest.WaitFor(t, 10*time.Second, "a key written on "+addrs[2], func() bool {
		return dirty.Set(ctx, "left-over", "v", 0).Err() == nil
	})
	if err := dirty.Do(ctx, "CLUSTER", "DELSLOTSRANGE", 0, 16383).Err(); err != nil {
		t.Fatal(err)
	}
	untouched := func(t *testing.T, nodes []*redistest.Node) {
		t.Helper()
		for _, n := range nodes {
			ci := n.Client().ClusterInfo(ctx).Val()
			if !strings.Contains(ci, "cluster_known_nodes:1\r\n") || !strings.Contains(ci, "cluster_slots_assigned:0\r\n") {
				t.Errorf("%s was changed:\n%s", n.Addr, ci)
			}
		}
	}

	code, out, errOut := runCreate(append([]string{"-replicas", "1"}, addrs...)...)
	want := "slotway cluster: create: refusing to create the cluster, no node was changed:\n  " + addrs[2] + ": holds 1 key(s)\n"
	if code != 1 || errOut != want {
		t.Errorf("node with a key: exit %d\nstdout:\n%s\nstderr:\n%s\nwant stderr:\n%s", code, out, errOut, want)
	}
	untouched(t, c.Spares())

	if err := dirty.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	other := redistest.New(t, redistest.Options{Masters: 3})
	addrs[5] = other.Seeds()[0]
	code, out, errOut = runCreate(append([]string{"-replicas", "1"}, addrs...)...)
	if code != 1 || !strings.Contains(errOut, "\n  "+addrs[5]+": already knows 2 other node(s), e.g. ") ||
		!strings.Contains(errOut, "it belongs to a cluster; already serves 5461 slot(s)") ||
		strings.Count(errOut, "\n  ") != 1 {
		t.Errorf("node of another cluster: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	untouched(t, c.Spares()[:5])
}

// TestClusterCreateArgs: bad arguments exit 2 before any node is dialled;
// a node nobody listens on exits 1 naming it.
func TestClusterCreateArgs(t *testing.T) {
	ports := freePorts(t, 3)
	var down []string
	for _, p := range ports {
		down = append(down, fmt.Sprintf("127.0.0.1:%d", p))
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no nodes", nil, 2, "Usage: slotway cluster create"},
		{"too few for the replicas", append([]string{"-replicas", "1"}, down...), 2, "3 nodes with 1 replicas per master make 1 masters; a cluster needs at least 3, so give at least 6 nodes"},
		{"flag after the addresses", append(append([]string{}, down...), "-replicas", "1"), 2, "flag -replicas after the addresses; put flags first"},
		{"bad address", []string{"a:1", "b:1", "c"}, 2, `node "c": want HOST:PORT`},
		{"bad timeout", append([]string{"-timeout", "0s"}, down...), 2, "-timeout must be positive"},
		{"unreachable", append([]string{"-timeout", "20s"}, down...), 1, down[0] + ": unreachable: "},
		{"help", []string{"-h"}, 0, "-replicas R     replicas per master (default 0)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCreate(tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, want %d; stderr lacks %q?\nstdout:\n%s\nstderr:\n%s", code, tc.code, tc.want, out, errOut)
			}
		})
	}
	// `slotway cluster` itself knows the command.
	var out, errb bytes.Buffer
	if code := runMain([]string{"cluster", "-h"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "create HOST:PORT...") {
		t.Errorf("cluster -h: exit %d\n%s", code, errb.String())
	}
}
