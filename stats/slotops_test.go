package stats

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/slotway/slotway/internal/hashslot"
)

// The wire format round-trips: non-zero slots only, as [slot, count]
// pairs, and a pair for a slot that does not exist is dropped.
func TestSlotOpsRoundTrip(t *testing.T) {
	counts := make([]uint64, hashslot.Count)
	counts[0], counts[7], counts[hashslot.Count-1] = 3, 1<<40, 9
	b, err := json.Marshal(NewSlotOps("p1", counts))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"name":"p1","slots":[[0,3],[7,1099511627776],[16383,9]]}`; string(b) != want {
		t.Errorf("JSON %s, want %s", b, want)
	}
	var got SlotOps
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Counts(), counts) {
		t.Error("Counts after a round trip differ")
	}
	got.Slots = append(got.Slots, [2]uint64{hashslot.Count, 5})
	if !slices.Equal(got.Counts(), counts) {
		t.Error("a slot out of range was counted")
	}
	if b, _ := json.Marshal(NewSlotOps("w", make([]uint64, hashslot.Count))); string(b) != `{"name":"w","slots":[]}` {
		t.Errorf("no traffic: %s, want an empty list", b)
	}
}
