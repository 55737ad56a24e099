// Package ha owns the Slotway group: memberlist membership with node
// metadata, the VIP-holder and leader election (a pure function of the
// members), the floating address (netlink and gratuitous ARP, exec hooks or
// a status endpoint) and notify hooks. It routes no commands.
//
// Not yet: POST /ha/handover, the witness-only instance, the two-node
// partition-heal scenario in the namespace test and re-GARP after a
// link-up or an address conflict.
package ha
