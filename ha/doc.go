// Package ha will own the Slotway group: memberlist membership with node
// metadata, the VIP-holder and leader election (a pure function of the
// members), the floating address (netlink and gratuitous ARP, exec hooks or
// a status endpoint) and notify hooks. It routes no commands.
//
// It arrives with the HA issue; nothing lives here yet.
package ha
