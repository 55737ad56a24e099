// Package ha owns the Slotway group: memberlist membership with node
// metadata, the VIP-holder and leader election (a pure function of the
// members), the floating address (netlink and gratuitous ARP, exec hooks or
// a status endpoint) and notify hooks. It routes no commands.
//
// The pieces: election.go (a pure function of the members, table-tested),
// group.go (memberlist membership, a 100 ms heartbeat carrying each
// member's metadata and view, fencing, handover), vip.go (netlink VIP with
// a kernel lease, gratuitous ARP), hooks.go (notify hooks from one queue),
// meta.go (the gossiped metadata), metrics.go.
package ha
