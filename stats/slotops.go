package stats

// SlotOps is GET /api/v1/slot_ops: an instance's cumulative per-slot
// command counters, non-zero slots only, as [slot, count] pairs, for the
// leader's autoscaler (scaler.FetchSlotOps reads it).
type SlotOps struct {
	Name  string      `json:"name"`
	Slots [][2]uint64 `json:"slots"`
}

// NewSlotOps encodes counts, one per slot.
func NewSlotOps(name string, counts []uint64) SlotOps {
	out := SlotOps{Name: name, Slots: [][2]uint64{}}
	for slot, n := range counts {
		if n > 0 {
			out.Slots = append(out.Slots, [2]uint64{uint64(slot), n})
		}
	}
	return out
}
