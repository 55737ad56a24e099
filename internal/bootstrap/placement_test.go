package bootstrap

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/slotway/slotway/internal/hashslot"
)

// render writes a plan as "MASTER[lo-hi]<-R1,R2" per master, one per
// line, so a want reads like the layout.
func render(p Plan) string {
	var b strings.Builder
	for _, m := range p.Masters {
		fmt.Fprintf(&b, "%s[%d-%d]<-%s\n", m.Addr, m.Slots.Start, m.Slots.End, strings.Join(m.Replicas, ","))
	}
	return b.String()
}

func prefixLines(p, s string) string {
	return p + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n"+p)
}

// hostsN is n nodes, each on its own host.
func hostsN(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("h%d:1", i+1)
	}
	return out
}

func TestPlace(t *testing.T) {
	tests := []struct {
		name     string
		addrs    []string
		replicas int
		want     string
		sameHost []string
	}{
		{
			name:  "three masters, no replicas",
			addrs: []string{"a:1", "a:2", "a:3"},
			want:  "a:1[0-5460]<-\na:2[5461-10921]<-\na:3[10922-16383]<-\n",
		},
		{
			name:     "one host: masters first, replicas in order, all flagged",
			addrs:    []string{"127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003", "127.0.0.1:7004", "127.0.0.1:7005"},
			replicas: 1,
			want: "127.0.0.1:7000[0-5460]<-127.0.0.1:7003\n" +
				"127.0.0.1:7001[5461-10921]<-127.0.0.1:7004\n" +
				"127.0.0.1:7002[10922-16383]<-127.0.0.1:7005\n",
			sameHost: []string{"127.0.0.1:7003 (master 127.0.0.1:7000)", "127.0.0.1:7004 (master 127.0.0.1:7001)", "127.0.0.1:7005 (master 127.0.0.1:7002)"},
		},
		{
			name:     "three hosts given host by host: masters spread, replicas elsewhere",
			addrs:    []string{"a:1", "a:2", "b:1", "b:2", "c:1", "c:2"},
			replicas: 1,
			want:     "a:1[0-5460]<-c:2\nb:1[5461-10921]<-a:2\nc:1[10922-16383]<-b:2\n",
		},
		{
			name:     "greedy corner fixed by a swap",
			addrs:    []string{"a:1", "a:2", "b:1", "c:1", "c:2", "c:3"},
			replicas: 1,
			want:     "a:1[0-5460]<-c:2\nb:1[5461-10921]<-c:3\nc:1[10922-16383]<-a:2\n",
		},
		{
			name:     "two replicas on three hosts: no replica shares a host with its master or sibling",
			addrs:    []string{"a:1", "a:2", "a:3", "b:1", "b:2", "b:3", "c:1", "c:2", "c:3"},
			replicas: 2,
			want:     "a:1[0-5460]<-b:2,c:2\nb:1[5461-10921]<-a:2,c:3\nc:1[10922-16383]<-a:3,b:3\n",
		},
		{
			name:     "more nodes on one host than the others can balance",
			addrs:    []string{"a:1", "a:2", "a:3", "a:4", "b:1", "b:2"},
			replicas: 1,
			want:     "a:1[0-5460]<-b:2\nb:1[5461-10921]<-a:3\na:2[10922-16383]<-a:4\n",
			sameHost: []string{"a:4 (master a:2)"},
		},
		{
			name:     "extra node becomes a second replica of the first master",
			addrs:    []string{"a:1", "b:1", "c:1", "a:2", "b:2", "c:2", "d:1"},
			replicas: 1,
			want:     "a:1[0-5460]<-d:1,c:2\nb:1[5461-10921]<-a:2\nc:1[10922-16383]<-b:2\n",
		},
		{
			name:     "more extra nodes than masters go round",
			addrs:    hostsN(23),
			replicas: 5,
			want: "h1:1[0-5460]<-h4:1,h5:1,h6:1,h7:1,h8:1,h19:1,h22:1\n" +
				"h2:1[5461-10921]<-h9:1,h10:1,h11:1,h12:1,h13:1,h20:1,h23:1\n" +
				"h3:1[10922-16383]<-h14:1,h15:1,h16:1,h17:1,h18:1,h21:1\n",
		},
		{
			name:     "IPv6 hosts",
			addrs:    []string{"[::1]:1", "[::2]:1", "[::3]:1", "[::1]:2", "[::2]:2", "[::3]:2"},
			replicas: 1,
			want:     "[::1]:1[0-5460]<-[::3]:2\n[::2]:1[5461-10921]<-[::1]:2\n[::3]:1[10922-16383]<-[::2]:2\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Place(tc.addrs, tc.replicas)
			if err != nil {
				t.Fatal(err)
			}
			if got := render(p); got != tc.want {
				t.Errorf("plan (-want +got):\n%s\n%s", prefixLines("-", tc.want), prefixLines("+", got))
			}
			if !reflect.DeepEqual(p.SameHost, tc.sameHost) {
				t.Errorf("SameHost (-want +got):\n-%q\n+%q", tc.sameHost, p.SameHost)
			}
		})
	}
}

func TestPlaceErrors(t *testing.T) {
	six := []string{"a:1", "a:2", "a:3", "a:4", "a:5", "a:6"}
	tests := []struct {
		name     string
		addrs    []string
		replicas int
		want     string
	}{
		{"too few nodes for the replicas", six[:5], 1, "5 nodes with 1 replicas per master make 2 masters; a cluster needs at least 3, so give at least 6 nodes"},
		{"two masters", six[:2], 0, "make 2 masters"},
		{"no nodes", nil, 0, "make 0 masters"},
		{"negative replicas", six, -1, "replicas: must be >= 0, got -1"},
		{"no port", []string{"a", "b:1", "c:1"}, 0, `node "a": want HOST:PORT`},
		{"port out of range", []string{"a:0", "b:1", "c:1"}, 0, `node "a:0": port must be 1..65535`},
		{"port not a number", []string{"a:x", "b:1", "c:1"}, 0, `node "a:x": port must be 1..65535`},
		{"empty host", []string{":7000", "b:1", "c:1"}, 0, `node ":7000": empty host`},
		{"duplicate", []string{"a:1", "b:1", "a:1"}, 0, "node a:1: given twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Place(tc.addrs, tc.replicas)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Place error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestPlaceInvariants checks every layout over a range of sizes: each node
// used once, the master count, full contiguous slot coverage with range
// sizes one apart, replicas per master within one of each other and at
// least the asked number, SameHost telling the truth, and a second call
// giving the same plan.
func TestPlaceInvariants(t *testing.T) {
	for hosts := 1; hosts <= 4; hosts++ {
		for n := 3; n <= 20; n++ {
			for r := 0; r <= 3; r++ {
				addrs := make([]string, n)
				for i := range addrs {
					addrs[i] = fmt.Sprintf("h%d:%d", i%hosts, i+1)
				}
				p, err := Place(addrs, r)
				if n/(r+1) < MinMasters {
					if err == nil {
						t.Errorf("hosts=%d n=%d r=%d: no error", hosts, n, r)
					}
					continue
				}
				if err != nil {
					t.Fatalf("hosts=%d n=%d r=%d: %v", hosts, n, r, err)
				}
				checkInvariants(t, fmt.Sprintf("hosts=%d n=%d r=%d", hosts, n, r), addrs, r, p)
				if again, _ := Place(addrs, r); !reflect.DeepEqual(p, again) {
					t.Errorf("hosts=%d n=%d r=%d: not deterministic:\n%s\n%s", hosts, n, r, render(p), render(again))
				}
			}
		}
	}
}

func checkInvariants(t *testing.T, name string, addrs []string, r int, p Plan) {
	t.Helper()
	if len(p.Masters) != len(addrs)/(r+1) {
		t.Errorf("%s: %d masters, want %d", name, len(p.Masters), len(addrs)/(r+1))
	}
	used := map[string]int{}
	next, minSize, maxSize := 0, hashslot.Count, 0
	minRep, maxRep := len(addrs), 0
	same := 0
	for _, m := range p.Masters {
		used[m.Addr]++
		if m.Slots.Start != next {
			t.Errorf("%s: master %s starts at slot %d, want %d", name, m.Addr, m.Slots.Start, next)
		}
		next = m.Slots.End + 1
		minSize, maxSize = min(minSize, m.Slots.Len()), max(maxSize, m.Slots.Len())
		minRep, maxRep = min(minRep, len(m.Replicas)), max(maxRep, len(m.Replicas))
		mh, _ := splitAddr(m.Addr)
		for _, rep := range m.Replicas {
			used[rep]++
			if rh, _ := splitAddr(rep); rh == mh {
				same++
			}
		}
	}
	if next != hashslot.Count || maxSize-minSize > 1 {
		t.Errorf("%s: slots end at %d, range sizes %d..%d", name, next, minSize, maxSize)
	}
	if minRep < r || maxRep-minRep > 1 {
		t.Errorf("%s: replicas per master %d..%d, want >= %d and one apart", name, minRep, maxRep, r)
	}
	for _, a := range addrs {
		if used[a] != 1 {
			t.Errorf("%s: node %s used %d times", name, a, used[a])
		}
	}
	if same != len(p.SameHost) {
		t.Errorf("%s: %d replicas share their master's host, SameHost lists %d", name, same, len(p.SameHost))
	}
}
