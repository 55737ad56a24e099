package scaler

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/slotway/slotway/stats"
)

// The client side of what the scaler reads from the other instances of
// its group over their stats API (stats serves it and owns its types).

// FetchSlotOps reads an instance's GET /api/v1/slot_ops (its cumulative
// per-slot command counters, non-zero slots as [slot, count] pairs) into
// one counter per slot.
func FetchSlotOps(ctx context.Context, client *http.Client, statsAddr string) ([]uint64, error) {
	var body stats.SlotOps
	if err := getMemberJSON(ctx, client, statsAddr, "/api/v1/slot_ops", 4<<20, &body); err != nil {
		return nil, err
	}
	return body.Counts(), nil
}

// FetchSeeds reads the proxy.cluster.seeds an instance shows in its GET
// /api/v1/status (cluster.seeds).
func FetchSeeds(ctx context.Context, client *http.Client, statsAddr string) ([]string, error) {
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
