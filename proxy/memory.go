package proxy

import (
	"context"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// released counts the bytes of grown buffers given back (shrunk, or
// dropped with their connection) that returnMemory has not acted on yet.
// Process-wide, like the memory it is about.
var released atomic.Int64

// noteReleased counts a buffer of n bytes that is dropped, if it had grown.
func noteReleased(n int) {
	if n > bufKeep {
		released.Add(int64(n))
	}
}

const (
	// releaseEvery is how often returnMemory looks at released.
	releaseEvery = 10 * time.Second
	// releaseMin: less than this given back is left to the runtime's
	// background scavenger.
	releaseMin = 16 << 20
)

// returnMemory gives memory back to the OS after a burst of large values.
// Buffers given back are garbage, but an idle proxy allocates too little to
// start a collection: the heap keeps the garbage, and the process its RSS,
// until the runtime forces a collection (every two minutes), and only then
// can the background scavenger return the pages. So once at least
// releaseMin was given back, it runs debug.FreeOSMemory (a collection, then
// every free page returned). At most once per releaseEvery and never for
// small amounts: a forced collection costs CPU, and returned pages cost
// page faults when the next burst comes.
func (s *Server) returnMemory(ctx context.Context) {
	t := time.NewTicker(releaseEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if releaseDue() {
				debug.FreeOSMemory()
			}
		}
	}
}

// releaseDue reports whether at least releaseMin was given back since it
// last said so.
func releaseDue() bool {
	n := released.Load()
	if n < releaseMin {
		return false
	}
	released.Add(-n)
	return true
}
