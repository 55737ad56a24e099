package rediscluster

import (
	"context"
	"time"

	"github.com/slotway/slotway/internal/poll"
)

const (
	// pollInterval is how often waits re-check their condition.
	pollInterval = 20 * time.Millisecond
	// probeTimeout bounds each single command a wait sends, so one hung node
	// cannot stall a poll loop past its context.
	probeTimeout = time.Second
	// defaultWait caps waits whose context has no deadline: no wait here is
	// unbounded.
	defaultWait = 30 * time.Second
	// StartTimeout caps StartCluster when its context has no deadline.
	StartTimeout = 60 * time.Second
)

// withDefaultTimeout returns ctx unchanged (with a no-op-equivalent cancel)
// if it already has a deadline, and ctx limited to d otherwise.
func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// until polls check every pollInterval until it is done, fails, or ctx
// ends (defaultWait when ctx has no deadline).
func until(ctx context.Context, what string, check poll.Check) error {
	return poll.Until(ctx, what, poll.Options{Every: pollInterval, Timeout: defaultWait}, check)
}

// probeCtx bounds one command sent while polling.
func probeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, probeTimeout)
}
