package main

import (
	"context"
	"net/http"
	"sync"

	"github.com/slotway/slotway/ha"
	"github.com/slotway/slotway/internal/hashslot"
	"github.com/slotway/slotway/proxy"
	"github.com/slotway/slotway/scaler"
	"github.com/slotway/slotway/stats"
)

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
				counts, err := scaler.FetchSlotOps(ctx, client, m.StatsAddr)
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

// SlotOps serves GET /api/v1/slot_ops (an empty list on a witness).
func (s *statusSource) SlotOps() stats.SlotOps {
	counts := make([]uint64, hashslot.Count)
	if s.proxy != nil {
		s.proxy.SlotOps(counts)
	}
	return stats.NewSlotOps(s.name, counts)
}
