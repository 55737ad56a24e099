package proxy

import (
	"bytes"
	"errors"
	"testing"
)

// TestHotPathAllocations pins the per-command budget: parsing a request,
// routing it and scanning its reply allocate nothing in the steady state.
func TestHotPathAllocations(t *testing.T) {
	c, req := getOnlyClient()

	in := bytes.Repeat([]byte("*2\r\n$3\r\nGET\r\n$10\r\nkey:000042\r\n"), 1000)
	rd := newReader(bytes.NewReader(nil), testLimits)
	rd.buf = in
	rd.w = len(in)
	reply := []byte("$3\r\nbar\r\n")

	allocs := testing.AllocsPerRun(500, func() {
		args, raw, err := rd.next()
		if err != nil {
			if errors.Is(err, errIncomplete) {
				rd.r = 0
				return
			}
			t.Fatal(err)
		}
		c.prepare(req, args, raw)
		if req.state != stSend {
			t.Fatalf("GET not routed: %q", req.reply)
		}
		if n, _, err := scanReply(reply); n != len(reply) || err != nil {
			t.Fatal("scan")
		}
		if k, _, _ := classify([]byte("-MOVED 1 127.0.0.1:7000\r\n")); k != redirMoved {
			t.Fatal("classify")
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per command, want 0", allocs)
	}
}

func BenchmarkPrepareGet(b *testing.B) {
	get := &cmdInfo{name: "get", arity: 2, stats: &cmdStats{},
		specs: []keySpec{{beginIndex: 1, findRange: true, keyStep: 1}}}
	s := &Server{}
	s.table.Store(&commandTable{cmds: map[string]*cmdInfo{"get": get}})
	c := &client{s: s}
	req := &request{}
	args := [][]byte{[]byte("GET"), []byte("key:000042")}
	b.ReportAllocs()
	for b.Loop() {
		c.prepare(req, args, nil)
	}
}

// getOnlyClient is a client of a server whose command table has only GET,
// and a request to reuse: the allocation budgets' fixture.
func getOnlyClient() (*client, *request) {
	get := &cmdInfo{name: "get", arity: 2, stats: &cmdStats{},
		specs: []keySpec{{beginIndex: 1, findRange: true, keyStep: 1}}}
	s := &Server{}
	s.table.Store(&commandTable{cmds: map[string]*cmdInfo{"get": get}})
	return &client{s: s}, &request{reply: make([]byte, 0, 64)}
}
