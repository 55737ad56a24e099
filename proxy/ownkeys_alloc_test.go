package proxy

import (
	"strconv"
	"testing"

	"github.com/slotway/slotway/internal/hashslot"
)

// TestOwnKeyCheckAllocations: the reserved-key check allocates nothing, for
// a client key in the own keys' slot (the only slot where it looks at the
// keys) and elsewhere; an own key is refused.
func TestOwnKeyCheckAllocations(t *testing.T) {
	c, req := getOnlyClient()
	var near []byte
	for i := 0; near == nil; i++ {
		if k := []byte("user:" + strconv.Itoa(i)); hashslot.Of(k) == ownSlot {
			near = k
		}
	}
	for _, key := range [][]byte{near, []byte("key:000042")} {
		args := [][]byte{[]byte("GET"), key}
		allocs := testing.AllocsPerRun(500, func() {
			c.prepare(req, args, nil)
			if req.state != stSend {
				t.Fatalf("GET %s not routed: %q", key, req.reply)
			}
		})
		if allocs != 0 {
			t.Errorf("GET %s: %v allocations, want 0", key, allocs)
		}
	}
	c.prepare(req, [][]byte{[]byte("GET"), []byte("{slotway:events}:lease")}, nil)
	if want := "-ERR slotway: key '{slotway:events}:lease' is reserved for Slotway\r\n"; string(req.reply) != want {
		t.Errorf("GET of an own key: %q, want %q", req.reply, want)
	}
}
