package ha

import (
	"encoding/json"
	"fmt"
)

// Meta is what each member gossips about itself (memberlist node
// metadata, at most 512 bytes).
type Meta struct {
	Name      string `json:"n"`
	Priority  int    `json:"p"`           // configured
	Effective int    `json:"e"`           // after health; 0 = not electable
	Witness   bool   `json:"w,omitempty"` // votes, never holds
	Role      Role   `json:"r"`           // candidate, holder, draining
	Term      uint64 `json:"t"`           // term of its last claim
	// LeaseTerm is the highest term of the scaling lease this member knows
	// of (its own renewals and the others' metadata). Every member carries
	// it on, so it outlives the member that took the lease and a flush of
	// the Redis node that holds the lease.
	LeaseTerm uint64 `json:"lt,omitempty"`
	// Holder is who this member sees holding the VIP: a member that has
	// not heard the holder yet (rejoining after a partition) learns from
	// the others that there is one.
	Holder string `json:"h,omitempty"`
	// Gone lists members whose gossip port refused a connection after they
	// went quiet: proof their process is gone, shared so the member that
	// should claim does not wait for its own probe.
	Gone      []string `json:"g,omitempty"`
	ProxyAddr string   `json:"px,omitempty"` // client-facing address
	StatsAddr string   `json:"st,omitempty"` // HTTP address
	// Bind is the member's gossip address: heartbeats go back to it even
	// while memberlist has not (re)admitted the member.
	Bind    string `json:"b,omitempty"`
	Version string `json:"v,omitempty"`
}

// metaLimit is memberlist's cap on node metadata.
const metaLimit = 512

func (m Meta) encode() ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if len(b) > metaLimit {
		return nil, fmt.Errorf("node metadata is %d bytes, over memberlist's %d", len(b), metaLimit)
	}
	return b, nil
}

func decodeMeta(b []byte) (Meta, error) {
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("decode node metadata: %w", err)
	}
	return m, nil
}
