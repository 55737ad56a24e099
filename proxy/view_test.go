package proxy

import (
	"strconv"
	"testing"
)

// testView builds a view of a node id whose cluster is members, with the
// masters among them sharing the 16384 slots.
func testView(addr, id string, ok bool, epoch int64, members []string, masters int) *view {
	var nodes []Node
	per := 16384 / max(masters, 1)
	for i, m := range members {
		n := Node{ID: m, Addr: m + ":1", Role: "replica"}
		if i < masters {
			n.Role = "master"
			end := (i+1)*per - 1
			if i == masters-1 {
				end = 16383
			}
			n.Slots = [][2]int{{i * per, end}}
		}
		nodes = append(nodes, n)
	}
	info := "cluster_state:fail\r\ncluster_current_epoch:" + strconv.FormatInt(epoch, 10) + "\r\n"
	if ok {
		info = "cluster_state:ok\r\ncluster_current_epoch:" + strconv.FormatInt(epoch, 10) + "\r\n"
	}
	return newView(addr, id, info, nodes)
}

// partial drops the last master's slots from v.
func partial(v *view) *view {
	last := v.nodes[len(v.nodes)-1]
	return newView(v.addr, v.id, "cluster_state:ok\r\ncluster_current_epoch:"+strconv.FormatInt(v.epoch, 10), append(v.nodes[:len(v.nodes)-1:len(v.nodes)-1], Node{ID: last.ID, Addr: last.Addr, Role: "master"}))
}

func TestBestView(t *testing.T) {
	abc := []string{"a", "b", "c"}
	for _, tc := range []struct {
		name  string
		views []*view
		want  string // addr of the best view
	}{
		{"reset node first", []*view{
			testView("r", "r", false, 0, []string{"r"}, 0),
			testView("a", "a", true, 3, abc, 3),
		}, "a"},
		{"reset node first, cluster restarting (no ok)", []*view{
			testView("r", "r", false, 0, []string{"r"}, 0),
			testView("b", "b", false, 5, abc, 3),
			testView("c", "c", false, 5, abc, 3),
		}, "b"},
		{"other cluster with a higher epoch", []*view{
			testView("f", "f", true, 9, []string{"f"}, 1),
			testView("a", "a", true, 3, abc, 3),
			testView("b", "b", true, 3, abc, 3),
		}, "a"},
		{"more slots served wins", []*view{
			partial(testView("a", "a", true, 3, abc, 3)),
			testView("b", "b", true, 3, abc, 3),
		}, "b"},
		{"ties: the first candidate", []*view{
			testView("a", "a", true, 3, abc, 3),
			testView("b", "b", true, 3, abc, 3),
		}, "a"},
		{"higher epoch wins", []*view{
			testView("a", "a", true, 3, abc, 3),
			testView("b", "b", true, 4, abc, 3),
		}, "b"},
		{"ok beats fail", []*view{
			testView("a", "a", false, 7, abc, 3),
			testView("b", "b", true, 4, abc, 3),
		}, "b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := bestView(tc.views)
			if got == nil || got.addr != tc.want {
				t.Fatalf("best view from %v, want %s", got, tc.want)
			}
		})
	}
	if bestView(nil) != nil {
		t.Error("best of no view is not nil")
	}
}

func TestSettledAndWhyNotMember(t *testing.T) {
	abc := []string{"a", "b", "c"}
	a := testView("a", "a", true, 3, abc, 3)
	b := testView("b", "b", true, 3, abc, 3)
	r := testView("r", "r", false, 0, []string{"r"}, 0)
	f := testView("f", "f", true, 1, []string{"f", "g"}, 1)
	old := testView("o", "o", false, 1, []string{"o", "a", "b"}, 2)
	if !settled(a, []*view{a, b}, 16384) {
		t.Error("two agreeing members are not settled")
	}
	if settled(a, []*view{r, a, b}, 16384) {
		t.Error("settled although a reset node answered")
	}
	if settled(r, []*view{r}, 16384) {
		t.Error("settled on a view that serves nothing over one that serves")
	}
	for _, tc := range []struct {
		v    *view
		want string
	}{
		{b, ""},
		{r, "knows only itself (reset, or never joined)"},
		{f, "belongs to another cluster"},
		{old, "not a member of the cluster (forgotten by it)"},
	} {
		if got := whyNotMember(tc.v, a); got != tc.want {
			t.Errorf("whyNotMember(%s) = %q, want %q", tc.v.addr, got, tc.want)
		}
	}
}
