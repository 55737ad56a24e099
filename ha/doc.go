// Package ha will own the Slotway group: memberlist membership with node
// metadata, the VIP-holder and leader election (a pure function of the
// members), the floating address (netlink and gratuitous ARP, exec hooks or
// a status endpoint) and notify hooks. It routes no commands.
//
// Here so far: the election (election.go, a pure function, table-tested),
// the `ha:` config schema, and the group (group.go): memberlist for
// membership, a direct heartbeat every 100 ms that carries each member's
// metadata (so quorum, fencing and role changes never wait for gossip),
// self-fencing after fence_after, draining handover, and the VIP in
// `status` mode. The netlink and hook VIP modes, gratuitous ARP, notify
// hooks and the network-namespace tests come next.
package ha
