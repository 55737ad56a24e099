package bootstrap

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/slotway/slotway/internal/clusternodes"
	"github.com/slotway/slotway/internal/hashslot"
)

// The I/O paths run against real servers in cmd/slotway (TestClusterCreate
// and friends); these cover the decisions on what the nodes reported.

func id(c byte) string { return strings.Repeat(string(c), 40) }

func fresh(addr string, c byte) nodeState {
	self := clusternodes.NodeInfo{ID: id(c), Flags: []string{"myself", "master"}, Connected: true}
	return nodeState{addr: addr, clusterEnabled: true, self: self, view: []clusternodes.NodeInfo{self}, clusterState: "fail"}
}

func TestFreshProblems(t *testing.T) {
	keys := fresh("b:1", 'b')
	keys.keys = 3
	member := fresh("c:1", 'c')
	member.self.Slots = []clusternodes.SlotRange{{Start: 0, End: 99}}
	member.self.ConfigEpoch = 2
	member.view = append(member.view, clusternodes.NodeInfo{ID: id('x'), Addr: "10.0.0.9:7000"}, clusternodes.NodeInfo{ID: id('y')})
	off := fresh("d:1", 'd')
	off.clusterEnabled = false
	twin := fresh("e:1", 'a')

	got := freshProblems([]nodeState{fresh("a:1", 'a'), keys, member, off, twin})
	want := []string{
		"b:1: holds 3 key(s)",
		"c:1: already knows 2 other node(s), e.g. 10.0.0.9:7000, id " + id('y') + ": it belongs to a cluster; already serves 100 slot(s); config epoch is 2, not 0 (CLUSTER RESET HARD clears it)",
		"d:1: cluster support is off (cluster_enabled:0; set cluster-enabled yes)",
		"e:1: the same node as a:1 (id " + id('a') + ")",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems (-want +got):\n-%s\n+%s", strings.Join(want, "\n-"), strings.Join(got, "\n+"))
	}
	if got := freshProblems([]nodeState{fresh("a:1", 'a'), fresh("b:1", 'b'), fresh("c:1", 'c')}); got != nil {
		t.Errorf("fresh nodes: %q", got)
	}
}

func TestFormed(t *testing.T) {
	member := func(addr string, c byte) nodeState {
		s := fresh(addr, c)
		s.view = []clusternodes.NodeInfo{{ID: id('a')}, {ID: id('b')}, {ID: id('c')}}
		s.clusterState, s.slotsAssigned = "ok", hashslot.Count
		return s
	}
	all := func(mod func([]nodeState)) []nodeState {
		s := []nodeState{member("a:1", 'a'), member("b:1", 'b'), member("c:1", 'c')}
		if mod != nil {
			mod(s)
		}
		return s
	}
	tests := []struct {
		name   string
		states []nodeState
		want   bool
	}{
		{"one healthy cluster", all(nil), true},
		{"fresh nodes", []nodeState{fresh("a:1", 'a'), fresh("b:1", 'b'), fresh("c:1", 'c')}, false},
		{"one node in fail", all(func(s []nodeState) { s[1].clusterState = "fail" }), false},
		{"slots missing", all(func(s []nodeState) { s[2].slotsAssigned = 100 }), false},
		{"a node outside the given ones", all(func(s []nodeState) { s[0].view[2].ID = id('z') }), false},
		{"given nodes are a part of a bigger cluster", all(func(s []nodeState) {
			for i := range s {
				s[i].view = append(s[i].view, clusternodes.NodeInfo{ID: id('z')})
			}
		}), false},
		{"same node twice", all(func(s []nodeState) { s[2].self.ID = id('a') }), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := formed(tc.states); got != tc.want {
				t.Errorf("formed = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestKeyCount(t *testing.T) {
	tests := []struct {
		info    string
		want    int64
		wantErr bool
	}{
		{"# Keyspace\r\n", 0, false},
		{"# Keyspace\r\ndb0:keys=12,expires=1,avg_ttl=0\r\n", 12, false},
		{"# Keyspace\r\ndb0:keys=2,expires=0,avg_ttl=0\r\ndb3:keys=5,expires=0,avg_ttl=0\r\n", 7, false},
		{"# Keyspace\r\ndb0:keys=x,expires=0\r\n", 0, true},
	}
	for _, tc := range tests {
		got, err := keyCount(tc.info)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("keyCount(%q) = %d, %v; want %d, error %v", tc.info, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestIsUnknownCommand(t *testing.T) {
	for msg, want := range map[string]bool{
		"ERR unknown subcommand 'addslotsrange'. Try CLUSTER HELP.": true,
		"ERR unknown command 'CLUSTER', with args beginning with:":  true,
		"ERR Slot 5 is already busy":                                false,
		"NOPERM this user has no permissions to run the command":    false,
	} {
		if got := isUnknownCommand(errors.New(msg)); got != want {
			t.Errorf("isUnknownCommand(%q) = %v, want %v", msg, got, want)
		}
	}
}
