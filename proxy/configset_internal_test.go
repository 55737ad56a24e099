package proxy

import (
	"strings"
	"testing"
)

func TestCheckConfigSet(t *testing.T) {
	cases := []struct {
		args  string
		pairs int
		err   string
	}{
		{"CONFIG SET hz 10", 1, ""},
		{"CONFIG SET HZ 10 Maxmemory-Policy allkeys-lru", 2, ""},
		{"CONFIG SET list-max-listpack-size -2 save x", 2, ""},
		{"CONFIG SET hz", 0, "ERR wrong number of arguments"},
		{"CONFIG SET hz 10 maxmemory", 0, "ERR syntax error"},
		{"CONFIG SET hz 10 HZ 11", 0, "ERR CONFIG SET failed (possibly related to argument 'HZ') - duplicate parameter"},
		{"CONFIG SET port 7000", 0, "it identifies one node"},
		{"CONFIG SET tls-port 7000", 0, "it identifies one node"},
		{"CONFIG SET cluster-announce-ip 1.2.3.4", 0, "it identifies one node"},
		{"CONFIG SET requirepass x", 0, "it identifies one node"},
		{"CONFIG SET maxclients 5", 0, "set proxy.max_clients"},
		{"CONFIG SET databases 5", 0, "the proxy answers it for itself"},
		{"CONFIG SET hz 10 dir /tmp", 0, "'dir' is refused"},
		{"CONFIG SET enable-debug-command yes", 0, "is not fanned out"},
	}
	for _, tc := range cases {
		var args [][]byte
		for _, a := range strings.Fields(tc.args) {
			args = append(args, []byte(a))
		}
		pairs, msg := checkConfigSet(args)
		if tc.err == "" {
			if msg != "" || len(pairs) != tc.pairs {
				t.Errorf("%s: %v %q, want %d pairs", tc.args, pairs, msg, tc.pairs)
			}
			for _, p := range pairs {
				if p[0] != strings.ToLower(p[0]) {
					t.Errorf("%s: name %q not lower case", tc.args, p[0])
				}
			}
			continue
		}
		if !strings.Contains(msg, tc.err) {
			t.Errorf("%s: %q, want it to contain %q", tc.args, msg, tc.err)
		}
	}
}

func TestAgreedValue(t *testing.T) {
	addrs := []string{"a:1", "b:2", "c:3"}
	same := []map[string]string{{"hz": "10"}, nil, {"hz": "10"}}
	if got := agreedValue("hz", addrs, same); got != "10" {
		t.Errorf("agreeing masters (one silent): %q", got)
	}
	differ := []map[string]string{{"hz": "10"}, {"hz": "20"}, {"hz": "10"}}
	if got := agreedValue("hz", addrs, differ); got != "slotway: the masters disagree: a:1=10, b:2=20, c:3=10" {
		t.Errorf("disagreeing masters: %q", got)
	}
}
