package rediscluster

import (
	"context"
	"fmt"
	"time"
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

// checkFunc reports whether a condition holds. why describes, for the error
// message, what is still missing; err aborts the wait (use it only for
// conditions that cannot become true by waiting).
type checkFunc func(ctx context.Context) (done bool, why string, err error)

// poll runs check every pollInterval until it is done, fails, or ctx ends.
// The timeout error carries the last why.
func poll(ctx context.Context, what string, check checkFunc) error {
	ctx, cancel := withDefaultTimeout(ctx, defaultWait)
	defer cancel()
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	why := "not checked yet"
	for {
		done, w, err := check(ctx)
		if err != nil {
			return fmt.Errorf("wait for %s: %w", what, err)
		}
		if done {
			return nil
		}
		// A check cut short by the deadline only reports the deadline;
		// keep the state seen before it.
		if w != "" && ctx.Err() == nil {
			why = w
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w (last state: %s)", what, context.Cause(ctx), why)
		case <-t.C:
		}
	}
}

// probeCtx bounds one command sent while polling.
func probeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, probeTimeout)
}
