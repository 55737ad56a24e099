package stats

import "github.com/slotway/slotway/internal/hashslot"

// SlotOps is GET /api/v1/slot_ops: an instance's cumulative per-slot
// command counters, non-zero slots only, as [slot, count] pairs, for the
// leader's autoscaler (scaler.FetchSlotOps reads it).
type SlotOps struct {
	Name  string      `json:"name"`
	Slots [][2]uint64 `json:"slots"`
}

// NewSlotOps encodes counts, one per slot; Counts decodes them.
func NewSlotOps(name string, counts []uint64) SlotOps {
	out := SlotOps{Name: name, Slots: [][2]uint64{}}
	for slot, n := range counts {
		if n > 0 {
			out.Slots = append(out.Slots, [2]uint64{uint64(slot), n})
		}
	}
	return out
}

// Counts is one counter per slot, as NewSlotOps was given them; pairs
// naming a slot that does not exist are left out.
func (o SlotOps) Counts() []uint64 {
	counts := make([]uint64, hashslot.Count)
	for _, sc := range o.Slots {
		if sc[0] < hashslot.Count {
			counts[sc[0]] = sc[1]
		}
	}
	return counts
}
