package rediscluster

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// busPortOffset is the distance Redis puts the cluster bus port above the
// client port (cluster-port 0 means port+10000).
const busPortOffset = 10000

var (
	portMu sync.Mutex
	// handedOut remembers every port FreePort returned in this process, so
	// parallel tests in one binary never get the same port even if the first
	// caller has not bound it yet. Other processes are covered by the bind
	// check plus the retry in node start.
	handedOut = map[int]bool{}
)

// FreePort returns a port p such that p and p+10000 (the cluster bus port)
// are both free on 127.0.0.1 and p+10000 <= 65535.
//
// It prefers ports below the kernel's ephemeral range, so outgoing
// connections (including the ones Redis nodes open to each other) cannot
// grab the port between this check and redis-server binding it. The port is
// not reserved: callers must handle losing a race (node start retries).
func FreePort() (int, error) {
	portMu.Lock()
	defer portMu.Unlock()

	lo, hi := candidateRange()
	for range 200 {
		p := lo + rand.IntN(hi-lo)
		if handedOut[p] || !pairFree(p) {
			continue
		}
		handedOut[p] = true
		return p, nil
	}
	// Fall back to kernel-assigned ports, which are free by construction.
	for range 200 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("listen on 127.0.0.1:0: %w", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if p+busPortOffset > 65535 || handedOut[p] || !pairFree(p) {
			continue
		}
		handedOut[p] = true
		return p, nil
	}
	return 0, errors.New("find free port pair p, p+10000 on 127.0.0.1: none found")
}

// candidateRange returns [lo, hi) for p so that p and p+10000 both lie below
// the ephemeral port range.
func candidateRange() (lo, hi int) {
	const floor = 10000
	ephemeralLo := 32768 // Linux default
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				ephemeralLo = v
			}
		}
	}
	if ephemeralLo-busPortOffset-floor < 1000 {
		// Odd ephemeral range: use everything that leaves room for the bus port.
		return 1024, 65535 - busPortOffset + 1
	}
	return floor, ephemeralLo - busPortOffset
}

func pairFree(p int) bool {
	if p <= 0 || p+busPortOffset > 65535 {
		return false
	}
	a, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return false
	}
	defer a.Close()
	b, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+busPortOffset)))
	if err != nil {
		return false
	}
	_ = b.Close()
	return true
}
