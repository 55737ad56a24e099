package main

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"sync"

	"github.com/slotway/slotway/ha"
	"github.com/slotway/slotway/scaler"
)

// groupSeeds returns this instance's proxy.cluster.seeds and those every
// other live member shows in its GET /api/v1/status (cluster.seeds), for
// the scaler: a scale in never drains a node that any member lists. A
// member whose status cannot be read is logged; its seeds are then
// unknown for that decision.
func groupSeeds(own []string, name string, group *ha.Group, client *http.Client, log *slog.Logger) scaler.MemberSeedsFunc {
	return func(ctx context.Context) []string {
		out := slices.Clone(own)
		if group == nil {
			return out
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, m := range group.State().Members {
			if m.Name == name || !m.Alive || m.StatsAddr == "" {
				continue
			}
			wg.Go(func() {
				seeds, err := scaler.FetchSeeds(ctx, client, m.StatsAddr)
				if err != nil {
					log.Warn("scaler: a member's proxy.cluster.seeds are unknown; scale in does not protect them", "member", m.Name, "err", err)
					return
				}
				mu.Lock()
				out = append(out, seeds...)
				mu.Unlock()
			})
		}
		wg.Wait()
		return out
	}
}
