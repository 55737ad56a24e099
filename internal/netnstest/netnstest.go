// Package netnstest builds throwaway networks out of Linux network
// namespaces for tests: a bridge in a namespace of its own and hosts, each
// in its own namespace with one address on the bridge. Everything is
// removed when the test ends, also on failure. Addresses exist only inside
// the namespaces.
package netnstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/slotway/slotway/internal/testutil"
)

// Net is one test network.
type Net struct {
	t      testing.TB
	prefix string
	bridge string // namespace holding br0
	hosts  []*Host
}

// Host is one namespace attached to the bridge as eth0.
type Host struct {
	Name string
	NS   string
	IP   string
	net  *Net
}

// Require skips the test without root or the ip command, or fails it when
// CI=true.
func Require(t testing.TB) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "needs root for network namespaces"
	} else if _, err := exec.LookPath("ip"); err != nil {
		why = "needs the ip command (iproute2)"
	}
	if why == "" {
		return
	}
	testutil.Missing(t, "netnstest: %s", why)
}

// New makes a bridge namespace; hosts are added with AddHost.
func New(t testing.TB) *Net {
	t.Helper()
	Require(t)
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	n := &Net{t: t, prefix: "sw" + hex.EncodeToString(b)}
	n.bridge = n.prefix + "-br"
	t.Cleanup(n.cleanup)
	n.must("ip", "netns", "add", n.bridge)
	n.must("ip", "-n", n.bridge, "link", "set", "lo", "up")
	n.must("ip", "-n", n.bridge, "link", "add", "br0", "type", "bridge")
	n.must("ip", "-n", n.bridge, "link", "set", "br0", "up")
	return n
}

// AddHost makes a namespace with eth0 on the bridge holding ip/24.
func (n *Net) AddHost(name, ip string) *Host {
	n.t.Helper()
	h := &Host{Name: name, NS: n.prefix + "-" + name, IP: ip, net: n}
	idx := len(n.hosts)
	n.hosts = append(n.hosts, h)
	a, b := fmt.Sprintf("%s%da", n.prefix, idx), fmt.Sprintf("%s%db", n.prefix, idx)
	n.must("ip", "netns", "add", h.NS)
	n.must("ip", "link", "add", a, "type", "veth", "peer", "name", b)
	n.must("ip", "link", "set", a, "netns", h.NS)
	n.must("ip", "link", "set", b, "netns", n.bridge)
	n.must("ip", "-n", h.NS, "link", "set", a, "name", "eth0")
	n.must("ip", "-n", h.NS, "addr", "add", ip+"/24", "dev", "eth0")
	n.must("ip", "-n", h.NS, "link", "set", "eth0", "up")
	n.must("ip", "-n", h.NS, "link", "set", "lo", "up")
	n.must("ip", "-n", n.bridge, "link", "set", b, "master", "br0")
	n.must("ip", "-n", n.bridge, "link", "set", b, "up")
	return h
}

func (n *Net) must(args ...string) {
	n.t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		n.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// cleanup deletes every namespace this Net made; their veths go with them.
func (n *Net) cleanup() {
	for _, h := range n.hosts {
		_ = exec.Command("ip", "netns", "del", h.NS).Run()
	}
	_ = exec.Command("ip", "netns", "del", n.bridge).Run()
}

// Wrap is the command prefix that runs a program in the host's namespace.
func (h *Host) Wrap() []string { return []string{"ip", "netns", "exec", h.NS} }

// Command prepares a program to run in the host's namespace.
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
}

// IP runs `ip -n NS args...` and returns its output.
func (h *Host) Run(args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"-n", h.NS}, args...)...).CombinedOutput()
	return string(out), err
}

// HasAddr reports whether eth0 carries ip.
func (h *Host) HasAddr(ip string) bool {
	out, err := h.Run("-4", "-o", "addr", "show", "dev", "eth0")
	return err == nil && strings.Contains(out, " "+ip+"/")
}

// Dial connects from inside the host's namespace: the socket is made on a
// thread switched into the namespace and back.
func (h *Host) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := h.Do(func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// Do runs fn on an OS thread switched into the host's namespace, then
// switches the thread back. Sockets fn opens stay in the namespace.
//
// The thread must not die in between: a child started with Pdeathsig from
// that thread (as the Redis harness does) would be killed with it. Only if
// switching back fails does the goroutine exit locked, retiring the thread.
func (h *Host) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("current namespace: %w", err)
			return
		}
		defer orig.Close()
		ns, err := netns.GetFromName(h.NS)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open namespace %s: %w", h.NS, err)
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter namespace %s: %w", h.NS, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("leave namespace %s: %w", h.NS, err))
			return // still locked: the thread is retired with the goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
