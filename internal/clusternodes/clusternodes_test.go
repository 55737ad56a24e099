package clusternodes

import (
	"reflect"
	"strings"
	"testing"
)

const (
	id1 = "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca"
	id2 = "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1"
	id3 = "292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []NodeInfo
	}{
		{
			name: "myself master with migrating marker",
			in:   id1 + " 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460 [5461->-" + id2 + "]\n",
			want: []NodeInfo{{
				ID: id1, Addr: "127.0.0.1:30001", BusPort: 40001, Flags: []string{"myself", "master"},
				ConfigEpoch: 1, Connected: true,
				Slots:     []SlotRange{{Start: 0, End: 5460}},
				Migrating: map[int]string{5461: id2},
			}},
		},
		{
			name: "importing marker, single slots, hostname",
			in:   id2 + " 127.0.0.1:30002@40002,host2 master - 0 1426238316232 2 connected 5462-10922 42 [5461-<-" + id1 + "]",
			want: []NodeInfo{{
				ID: id2, Addr: "127.0.0.1:30002", BusPort: 40002, Hostname: "host2", Flags: []string{"master"},
				ConfigEpoch: 2, Connected: true,
				Slots:     []SlotRange{{Start: 5462, End: 10922}, {Start: 42, End: 42}},
				Importing: map[int]string{5461: id1},
			}},
		},
		{
			name: "failed replica, noaddr, disconnected, nodes.conf vars line",
			in: id3 + " 127.0.0.1:30003@40003 slave,fail " + id1 + " 1 2 3 disconnected\n" +
				id2 + " :0@0 master,noaddr - 0 0 0 disconnected\n" +
				"vars currentEpoch 6 lastVoteEpoch 0\n",
			want: []NodeInfo{
				{ID: id3, Addr: "127.0.0.1:30003", BusPort: 40003, Flags: []string{"slave", "fail"}, MasterID: id1, ConfigEpoch: 3},
				{ID: id2, Flags: []string{"master", "noaddr"}},
			},
		},
		{name: "empty", in: "\n", want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(tc.want, got) {
				t.Errorf("ParseClusterNodes mismatch (-want +got):\n- %+v\n+ %+v", tc.want, got)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"short line", id1 + " 127.0.0.1:1@2 master - 0 0", "want at least 8 fields"},
		{"bad id", "abc 127.0.0.1:1@2 master - 0 0 1 connected", "want 40 hex"},
		{"slot out of range", id1 + " 127.0.0.1:1@2 master - 0 0 1 connected 0-16384", "out of range"},
		{"reversed range", id1 + " 127.0.0.1:1@2 master - 0 0 1 connected 10-5", "end before start"},
		{"bad marker", id1 + " 127.0.0.1:1@2 master - 0 0 1 connected [5=" + id2 + "]", "unknown slot marker"},
		{"bad epoch", id1 + " 127.0.0.1:1@2 master - 0 0 x connected", "config epoch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseClusterNodes error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add(id1 + " 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460 [5461->-" + id2 + "]\n")
	f.Add(id2 + " :0@0 master,noaddr - 0 0 0 disconnected\nvars currentEpoch 6 lastVoteEpoch 0\n")
	f.Fuzz(func(t *testing.T, s string) {
		nodes, err := Parse(s)
		if err != nil {
			return
		}
		for _, n := range nodes {
			for _, r := range n.Slots {
				if r.Start < 0 || r.End >= 16384 || r.End < r.Start {
					t.Fatalf("bad range %+v from %q", r, s)
				}
			}
		}
	})
}
