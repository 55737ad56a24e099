// Package ownkeys names the keys Slotway keeps in the cluster for itself
// (the event stream, the scaling lease, the intent of a slot move, the
// autoscaler's state, the node parameters set through Slotway). The scaler writes them; the proxy hides them from
// clients and refuses commands that name them. It owns no I/O.
package ownkeys

// The keys. They share one slot: Events is the hash tag of the others.
const (
	Events     = "slotway:events"
	Lease      = "{slotway:events}:lease"
	Intent     = "{slotway:events}:intent"
	Autoscaler = "{slotway:events}:autoscaler"
	// Config holds the node parameters set through Slotway (CONFIG SET),
	// for the nodes the scaler adds later.
	Config = "{slotway:events}:config"
)

// Slot is the hash slot of every own key (CRC16 of Events modulo 16384; a
// proxy test checks it). A constant, so package initialisation order does
// not matter.
const Slot = 16008

// All lists every key Slotway writes.
var All = []string{Events, Lease, Intent, Autoscaler, Config}

// tag is the reserved prefix: every key starting with it is Slotway's.
const tag = "{" + Events + "}"

// Is reports whether key is reserved for Slotway: Events itself or any key
// starting with its hash tag. It does not allocate; a key of another
// length than Events and shorter than the tag costs one comparison.
func Is(key []byte) bool {
	if len(key) == len(Events) {
		return string(key) == Events
	}
	return len(key) >= len(tag) && string(key[:len(tag)]) == tag
}

// IsString is Is for a string.
func IsString(key string) bool {
	if len(key) == len(Events) {
		return key == Events
	}
	return len(key) >= len(tag) && key[:len(tag)] == tag
}
