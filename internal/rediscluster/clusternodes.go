package rediscluster

import (
	"fmt"

	"github.com/slotway/slotway/internal/clusternodes"
)

// The CLUSTER NODES parser lives in internal/clusternodes (the scaler uses
// it too); these names keep the harness's API.
type (
	SlotRange = clusternodes.SlotRange
	NodeInfo  = clusternodes.NodeInfo
)

// ParseClusterNodes parses the output of CLUSTER NODES or a nodes.conf.
func ParseClusterNodes(s string) ([]NodeInfo, error) { return clusternodes.Parse(s) }

// slotOwners maps every slot to the id of the node serving it in view ("" if
// none).
func slotOwners(view []NodeInfo) *[totalSlots]string {
	var owners [totalSlots]string
	for _, n := range view {
		for _, r := range n.Slots {
			for s := r.Start; s <= r.End; s++ {
				owners[s] = n.ID
			}
		}
	}
	return &owners
}

func findByID(view []NodeInfo, id string) (NodeInfo, bool) {
	for _, n := range view {
		if n.ID == id {
			return n, true
		}
	}
	return NodeInfo{}, false
}

func findMyself(view []NodeInfo) (NodeInfo, bool) {
	for _, n := range view {
		if n.Has("myself") {
			return n, true
		}
	}
	return NodeInfo{}, false
}

func validSlot(slot int) error {
	if slot < 0 || slot >= totalSlots {
		return fmt.Errorf("slot %d out of range 0..%d", slot, totalSlots-1)
	}
	return nil
}
