package main

import (
	"context"
	"net/http"
	"sync"

	"github.com/slotway/slotway/ha"
	"github.com/slotway/slotway/internal/hashslot"
	"github.com/slotway/slotway/proxy"
	"github.com/slotway/slotway/scaler"
)

// slotOpsJSON is GET /api/v1/slot_ops: this instance's cumulative per-slot
// command counters, non-zero slots only, as [slot, count] pairs.
type slotOpsJSON struct {
	Name  string      `json:"name"`
	Slots [][2]uint64 `json:"slots"`
}

func encodeSlotOps(name string, p *proxy.Server) slotOpsJSON {
	counts := make([]uint64, hashslot.Count)
	p.SlotOps(counts)
	out := slotOpsJSON{Name: name, Slots: [][2]uint64{}}
	for slot, n := range counts {
		if n > 0 {
			out.Slots = append(out.Slots, [2]uint64{uint64(slot), n})
		}
	}
	return out
}

// groupSlotOps pulls the per-slot counters of this instance and of every
// live group member (over their stats HTTP address) for the autoscaler.
func groupSlotOps(name string, p *proxy.Server, group *ha.Group, client *http.Client) scaler.SlotOpsFunc {
	return func(ctx context.Context) (map[string][]uint64, error) {
		local := make([]uint64, hashslot.Count)
		p.SlotOps(local)
		out := map[string][]uint64{name: local}
		if group == nil {
			return out, nil
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, m := range group.State().Members {
			if m.Name == name || !m.Alive || m.StatsAddr == "" || m.Witness {
				continue
			}
			wg.Go(func() {
				counts, err := fetchSlotOps(ctx, client, m.StatsAddr)
				if err != nil {
					return // that member's traffic is missing this round
				}
				mu.Lock()
				out[m.Name] = counts
				mu.Unlock()
			})
		}
		wg.Wait()
		return out, nil
	}
}

func fetchSlotOps(ctx context.Context, client *http.Client, statsAddr string) ([]uint64, error) {
	var body slotOpsJSON
	if err := getMemberJSON(ctx, client, statsAddr, "/api/v1/slot_ops", 4<<20, &body); err != nil {
		return nil, err
	}
	counts := make([]uint64, hashslot.Count)
	for _, sc := range body.Slots {
		if sc[0] < hashslot.Count {
			counts[sc[0]] = sc[1]
		}
	}
	return counts, nil
}

// SlotOps serves GET /api/v1/slot_ops (an empty list on a witness).
func (s *statusSource) SlotOps() any {
	if s.proxy == nil {
		return slotOpsJSON{Name: s.name, Slots: [][2]uint64{}}
	}
	return encodeSlotOps(s.name, s.proxy)
}
