// Package poll waits for a condition by checking it at an interval. It is
// the one such loop of the cluster launcher, the bootstrap and the demo;
// tests use internal/testutil.WaitFor.
package poll

import (
	"context"
	"fmt"
	"time"
)

// Check reports whether the condition holds. why says what is still
// missing, for progress reports and the timeout error; err ends the wait
// at once (use it only for conditions that cannot become true by waiting).
type Check func(ctx context.Context) (done bool, why string, err error)

// Options shape a wait.
type Options struct {
	// Every is the time between checks.
	Every time.Duration
	// Timeout caps a wait whose context has no deadline (0: no cap).
	Timeout time.Duration
	// Progress, when set, is called with what is still missing every
	// ProgressEvery while the wait goes on.
	Progress      func(why string)
	ProgressEvery time.Duration
}

// Until runs check every o.Every until it is done, fails, or ctx ends. The
// error names what was waited for and, on a timeout, the last state seen.
func Until(ctx context.Context, what string, o Options, check Check) error {
	if _, ok := ctx.Deadline(); !ok && o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	t := time.NewTicker(o.Every)
	defer t.Stop()
	why, lastSaid := "not checked yet", time.Now()
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
		if o.Progress != nil && time.Since(lastSaid) >= o.ProgressEvery {
			o.Progress(why)
			lastSaid = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w (last state: %s)", what, context.Cause(ctx), why)
		case <-t.C:
		}
	}
}
