package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
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
				seeds, err := fetchSeeds(ctx, client, m.StatsAddr)
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

func fetchSeeds(ctx context.Context, client *http.Client, statsAddr string) ([]string, error) {
	var body struct {
		Cluster struct {
			Seeds []string `json:"seeds"`
		} `json:"cluster"`
	}
	if err := getMemberJSON(ctx, client, statsAddr, "/api/v1/status", 16<<20, &body); err != nil {
		return nil, err
	}
	return body.Cluster.Seeds, nil
}

// getMemberJSON decodes the JSON answer of GET path on a member's stats
// address into v, reading at most limit bytes.
func getMemberJSON(ctx context.Context, client *http.Client, statsAddr, path string, limit int64, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+statsAddr+path, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s from %s: %s", path, statsAddr, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, limit)).Decode(v); err != nil {
		return fmt.Errorf("GET %s from %s: %w", path, statsAddr, err)
	}
	return nil
}
