package ha

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// vipHolder puts the floating address on this machine or takes it away.
// Only the group's loop goroutine calls it.
type vipHolder interface {
	// Reconcile makes "address present" equal "holder"; claimed is true
	// right after this member claimed, so announcements start at once.
	Reconcile(holder, claimed bool, now time.Time) error
	// Release removes the address (shutdown, fencing).
	Release() error
}

// noVIP is the status and hook modes: nothing to put on an interface.
type noVIP struct{}

func (noVIP) Reconcile(bool, bool, time.Time) error { return nil }
func (noVIP) Release() error                        { return nil }

// garpSchedule is when gratuitous ARPs go out after a claim: at once, then
// with backoff, then a refresh every 30 s so caches that missed the burst
// (or a switch that came up later) learn the holder.
var garpSchedule = []time.Duration{0, 250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second}

const garpRefresh = 30 * time.Second

// netlinkVIP holds the VIP as a /32 on an interface, with preferred
// lifetime 0 so the kernel never picks it as a source address, and
// announces it with gratuitous ARP.
type netlinkVIP struct {
	addr   netip.Addr
	link   netlink.Link
	mac    net.HardwareAddr
	onGARP func()

	claimedAt time.Time
	step      int
	nextGARP  time.Time
	refreshed time.Time
	linkUp    bool
}

// vipLease is the address's valid lifetime in the kernel. The holder
// refreshes it every vipRefresh, so a holder that dies without cleaning up
// (kill -9, a frozen process) loses the address on its own.
const (
	vipLease   = 2 * time.Second
	vipRefresh = 500 * time.Millisecond
)

func newNetlinkVIP(cfg VIPConfig, onGARP func()) (*netlinkVIP, error) {
	if missing := missingCaps(); len(missing) > 0 {
		return nil, fmt.Errorf("ha.vip.mode netlink needs %s (run as root, or grant them, e.g. systemd AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW)", strings.Join(missing, " and "))
	}
	pfx, err := netip.ParsePrefix(cfg.Address)
	if err != nil || !pfx.Addr().Is4() {
		return nil, fmt.Errorf("ha.vip.address: want an IPv4 address with prefix, got %q", cfg.Address)
	}
	link, err := netlink.LinkByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("ha.vip.interface %q: %w", cfg.Interface, err)
	}
	v := &netlinkVIP{addr: pfx.Addr(), link: link, mac: link.Attrs().HardwareAddr, onGARP: onGARP}
	// A copy left by a crash of this process must not answer ARP while
	// another member holds the VIP.
	if err := v.Release(); err != nil {
		return nil, fmt.Errorf("remove a stale VIP at start: %w", err)
	}
	return v, nil
}

func (v *netlinkVIP) nlAddr() *netlink.Addr {
	return &netlink.Addr{
		IPNet:       &net.IPNet{IP: v.addr.AsSlice(), Mask: net.CIDRMask(32, 32)},
		PreferedLft: 0,
		ValidLft:    int(vipLease / time.Second),
	}
}

func (v *netlinkVIP) present() (bool, error) {
	addrs, err := netlink.AddrList(v.link, netlink.FAMILY_V4)
	if err != nil {
		return false, fmt.Errorf("list addresses of %s: %w", v.link.Attrs().Name, err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == v.addr {
			return true, nil
		}
	}
	return false, nil
}

func (v *netlinkVIP) Reconcile(holder, claimed bool, now time.Time) error {
	have, err := v.present()
	if err != nil {
		return err
	}
	// A link that comes back up may face neighbours whose caches expired
	// or point elsewhere: announce again.
	if l, err := netlink.LinkByIndex(v.link.Attrs().Index); err == nil {
		up := l.Attrs().Flags&net.FlagUp != 0 && l.Attrs().OperState != netlink.OperDown
		if up && !v.linkUp {
			claimed = true
		}
		v.linkUp = up
	}
	if !holder {
		if have {
			return v.Release()
		}
		return nil
	}
	if !have || now.Sub(v.refreshed) >= vipRefresh {
		if err := netlink.AddrReplace(v.link, v.nlAddr()); err != nil {
			return fmt.Errorf("add VIP %s to %s: %w", v.addr, v.link.Attrs().Name, err)
		}
		v.refreshed = now
		claimed = claimed || !have
	}
	if claimed {
		v.claimedAt, v.step, v.nextGARP = now, 0, now
	}
	if now.Before(v.nextGARP) {
		return nil
	}
	err = v.sendGARP()
	v.step++
	if v.step < len(garpSchedule) {
		v.nextGARP = v.claimedAt.Add(garpSchedule[v.step])
	} else {
		v.nextGARP = now.Add(garpRefresh)
	}
	return err
}

func (v *netlinkVIP) Release() error {
	have, err := v.present()
	if err != nil || !have {
		return err
	}
	if err := netlink.AddrDel(v.link, v.nlAddr()); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return fmt.Errorf("remove VIP %s from %s: %w", v.addr, v.link.Attrs().Name, err)
	}
	return nil
}

// sendGARP broadcasts a gratuitous ARP request and reply for the VIP:
// some hosts update their caches on one, some on the other.
func (v *netlinkVIP) sendGARP() error {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ARP)))
	if err != nil {
		return fmt.Errorf("gratuitous ARP: raw socket: %w", err)
	}
	defer unix.Close(fd)
	to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: v.link.Attrs().Index, Halen: 6}
	copy(to.Addr[:], broadcastMAC)
	for _, op := range []uint16{1, 2} {
		if err := unix.Sendto(fd, arpFrame(v.mac, v.addr, op), 0, to); err != nil {
			return fmt.Errorf("gratuitous ARP on %s: %w", v.link.Attrs().Name, err)
		}
		if v.onGARP != nil {
			v.onGARP()
		}
	}
	return nil
}

var broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// arpFrame builds an Ethernet frame with a gratuitous ARP (op 1 request,
// 2 reply) announcing ip at mac.
func arpFrame(mac net.HardwareAddr, ip netip.Addr, op uint16) []byte {
	f := make([]byte, 0, 42)
	f = append(f, broadcastMAC...)
	f = append(f, mac...)
	f = append(f, 0x08, 0x06)            // ethertype ARP
	f = append(f, 0, 1, 0x08, 0, 6, 4)   // Ethernet, IPv4, hlen, plen
	f = append(f, byte(op>>8), byte(op)) // operation
	f = append(f, mac...)                // sender MAC
	f = append(f, ip.AsSlice()...)       // sender IP
	if op == 1 {
		f = append(f, 0, 0, 0, 0, 0, 0) // target MAC unknown in a request
	} else {
		f = append(f, broadcastMAC...)
	}
	return append(f, ip.AsSlice()...) // target IP: the VIP itself
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// missingCaps names the capabilities the netlink mode needs and lacks.
func missingCaps() []string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil // cannot tell; the first netlink call will say
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		hex, ok := strings.CutPrefix(line, "CapEff:")
		if !ok {
			continue
		}
		caps, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
		if err != nil {
			return nil
		}
		var missing []string
		if caps&(1<<unix.CAP_NET_ADMIN) == 0 {
			missing = append(missing, "CAP_NET_ADMIN")
		}
		if caps&(1<<unix.CAP_NET_RAW) == 0 {
			missing = append(missing, "CAP_NET_RAW")
		}
		return missing
	}
	return nil
}
