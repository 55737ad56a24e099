// Package ha will own the Slotway group: memberlist membership with node
// metadata, the VIP-holder and leader election (a pure function of the
// members), the floating address (netlink and gratuitous ARP, exec hooks or
// a status endpoint) and notify hooks. It routes no commands.
//
// So far it holds the election (election.go, pure and table-tested) and
// the `ha:` config schema; the memberlist group, the VIP and the hooks come
// next, and cmd/slotway does not accept an `ha:` section until they do.
package ha
