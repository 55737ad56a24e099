// Package clusternodes parses CLUSTER NODES output (and nodes.conf files),
// for the scaler and the test harness.
package clusternodes

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/slotway/slotway/internal/hashslot"
)

// SlotRange is an inclusive range of hash slots.
type SlotRange struct {
	Start, End int
}

// Len is the number of slots in r.
func (r SlotRange) Len() int { return r.End - r.Start + 1 }

// NodeInfo is one line of CLUSTER NODES (or of a nodes.conf file).
type NodeInfo struct {
	ID string
	// Addr is "ip:port" without the bus port; empty for nodes flagged noaddr.
	Addr     string
	BusPort  int
	Hostname string
	Flags    []string
	// MasterID is the id of this node's master, empty if it has none.
	MasterID    string
	ConfigEpoch uint64
	// Connected is true if the link state is "connected".
	Connected bool
	// Slots are the slots this node serves. Migration markers are not
	// included here; they are in Migrating and Importing.
	Slots []SlotRange
	// Migrating maps slot -> destination node id ("[slot->-id]"); only the
	// node itself reports these.
	Migrating map[int]string
	// Importing maps slot -> source node id ("[slot-<-id]").
	Importing map[int]string
}

// Has reports whether the node carries flag (e.g. "fail", "fail?", "myself").
func (i NodeInfo) Has(flag string) bool { return slices.Contains(i.Flags, flag) }

// IsMaster reports whether the node is flagged master.
func (i NodeInfo) IsMaster() bool { return i.Has("master") }

// IsReplica reports whether the node is flagged slave.
func (i NodeInfo) IsReplica() bool { return i.Has("slave") }

// SlotCount is the number of slots the node serves.
func (i NodeInfo) SlotCount() int {
	n := 0
	for _, r := range i.Slots {
		n += r.Len()
	}
	return n
}

// Parse parses the output of CLUSTER NODES. It also accepts the
// contents of a nodes.conf file, whose "vars" line is skipped.
func Parse(s string) ([]NodeInfo, error) {
	var out []NodeInfo
	for lineNo, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "vars ") {
			continue
		}
		info, err := parseNodeLine(line)
		if err != nil {
			return nil, fmt.Errorf("parse CLUSTER NODES line %d %q: %w", lineNo+1, line, err)
		}
		out = append(out, info)
	}
	return out, nil
}

func parseNodeLine(line string) (NodeInfo, error) {
	f := strings.Fields(line)
	if len(f) < 8 {
		return NodeInfo{}, fmt.Errorf("want at least 8 fields, got %d", len(f))
	}
	info := NodeInfo{ID: f[0], Flags: strings.Split(f[2], ",")}
	if len(info.ID) != 40 {
		return NodeInfo{}, fmt.Errorf("node id %q: want 40 hex characters", info.ID)
	}

	// ip:port@cport[,hostname]
	addr := f[1]
	if i := strings.IndexByte(addr, ','); i >= 0 {
		info.Hostname = addr[i+1:]
		addr = addr[:i]
	}
	if i := strings.IndexByte(addr, '@'); i >= 0 {
		bus, err := strconv.Atoi(addr[i+1:])
		if err != nil {
			return NodeInfo{}, fmt.Errorf("bus port in %q: %w", f[1], err)
		}
		info.BusPort = bus
		addr = addr[:i]
	}
	// A node without a known address shows ":0" (or ":port" for itself in
	// some versions); keep Addr empty for those.
	if !strings.HasPrefix(addr, ":") {
		info.Addr = addr
	}

	if f[3] != "-" {
		info.MasterID = f[3]
	}
	epoch, err := strconv.ParseUint(f[6], 10, 64)
	if err != nil {
		return NodeInfo{}, fmt.Errorf("config epoch %q: %w", f[6], err)
	}
	info.ConfigEpoch = epoch
	info.Connected = f[7] == "connected"

	for _, s := range f[8:] {
		if strings.HasPrefix(s, "[") {
			if err := info.parseMigration(s); err != nil {
				return NodeInfo{}, err
			}
			continue
		}
		r, err := parseSlotRange(s)
		if err != nil {
			return NodeInfo{}, err
		}
		info.Slots = append(info.Slots, r)
	}
	return info, nil
}

// parseMigration parses "[slot->-id]" and "[slot-<-id]".
func (i *NodeInfo) parseMigration(s string) error {
	body := strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if sl, id, ok := strings.Cut(body, "->-"); ok {
		slot, err := parseSlot(sl)
		if err != nil {
			return fmt.Errorf("migrating marker %q: %w", s, err)
		}
		if i.Migrating == nil {
			i.Migrating = map[int]string{}
		}
		i.Migrating[slot] = id
		return nil
	}
	if sl, id, ok := strings.Cut(body, "-<-"); ok {
		slot, err := parseSlot(sl)
		if err != nil {
			return fmt.Errorf("importing marker %q: %w", s, err)
		}
		if i.Importing == nil {
			i.Importing = map[int]string{}
		}
		i.Importing[slot] = id
		return nil
	}
	return fmt.Errorf("unknown slot marker %q", s)
}

func parseSlotRange(s string) (SlotRange, error) {
	a, b, isRange := strings.Cut(s, "-")
	start, err := parseSlot(a)
	if err != nil {
		return SlotRange{}, fmt.Errorf("slot range %q: %w", s, err)
	}
	if !isRange {
		return SlotRange{start, start}, nil
	}
	end, err := parseSlot(b)
	if err != nil {
		return SlotRange{}, fmt.Errorf("slot range %q: %w", s, err)
	}
	if end < start {
		return SlotRange{}, fmt.Errorf("slot range %q: end before start", s)
	}
	return SlotRange{start, end}, nil
}

func parseSlot(s string) (int, error) {
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, err
	}
	if v < 0 || v >= hashslot.Count {
		return 0, fmt.Errorf("slot %d out of range 0..%d", v, hashslot.Count-1)
	}
	return v, nil
}
