package bench

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// phase is one command at one value size, run by every worker at once.
// Commands are numbered by a shared counter: number n uses key n % keys
// and, in an open loop, is due at start + n/rate.
type phase struct {
	cmd   string
	size  int
	value []byte
	keys  int
	rate  int

	index, phases, sizeIndex, nsizes int // for Progress

	start, end time.Time
	slots      int64 // open loop: commands due before end

	next     atomic.Int64 // next command number
	done     atomic.Int64 // commands answered (for Progress)
	firstErr atomic.Pointer[string]
}

// due is the scheduled send time of command n of an open loop, computed
// from n rather than accumulated so it never drifts.
func (p *phase) due(n int64) time.Time {
	r := int64(p.rate)
	return p.start.Add(time.Duration(n/r)*time.Second + time.Duration(n%r)*time.Second/time.Duration(r))
}

// slotsBefore is how many commands of an open loop are due strictly
// before d: those with n/rate < d. Integer math, split at the second so
// that d*rate cannot overflow.
func slotsBefore(d time.Duration, rate int) int64 {
	r := int64(rate)
	whole, frac := int64(d/time.Second), int64(d%time.Second)
	return whole*r + (frac*r+int64(time.Second)-1)/int64(time.Second)
}

// issued is how many command numbers were handed out to be sent.
func (p *phase) issued() int64 {
	n := p.next.Load()
	if p.rate > 0 {
		n = min(n, p.slots)
	}
	return n
}

func (p *phase) noteErr(err error) {
	s := err.Error()
	p.firstErr.CompareAndSwap(nil, &s)
}

func key(size int, i int64) string {
	return KeyPrefix + strconv.Itoa(size) + ":" + strconv.FormatInt(i, 10)
}

// runPhase runs p on every worker for the configured duration and merges
// their counts.
func (r *runner) runPhase(ctx context.Context, p *phase) Result {
	for _, w := range r.workers {
		w.reset()
	}
	p.start = time.Now()
	p.end = p.start.Add(r.cfg.Duration)
	if p.rate > 0 {
		p.slots = slotsBefore(r.cfg.Duration, p.rate)
	}
	stopProgress := make(chan struct{})
	var progress sync.WaitGroup
	if r.cfg.Progress != nil {
		progress.Go(func() { r.report(p, stopProgress) })
	}
	var wg sync.WaitGroup
	for _, w := range r.workers {
		wg.Go(func() { w.load(ctx, p) })
	}
	wg.Wait()
	elapsed := time.Since(p.start)
	close(stopProgress)
	progress.Wait()

	var h Histogram
	res := Result{SizeBytes: p.size, Command: p.cmd, Keys: p.keys, ElapsedSec: elapsed.Seconds()}
	var bytes int64
	for _, w := range r.workers {
		h.Merge(&w.hist)
		res.Ops += w.ops
		res.Errors += w.errs
		res.Misses += w.misses
		res.Unsent += w.unsent
		bytes += w.bytes
	}
	if p.rate > 0 && ctx.Err() == nil {
		// Commands nobody got to before end were due and never sent: a
		// stall at the end of the phase must weigh on the percentiles like
		// one in the middle, so each counts as late by end - due at least.
		for n := p.next.Load(); n < p.slots; n++ {
			h.Record(p.end.Sub(p.due(n)))
			res.Unsent++
		}
	}
	if s := p.firstErr.Load(); s != nil {
		res.FirstError = *s
	}
	if secs := elapsed.Seconds(); secs > 0 {
		res.OpsPerSec = float64(res.Ops) / secs
		res.MBPerSec = float64(bytes) / secs / 1e6
	}
	q := h.Quantiles(0.50, 0.95, 0.99, 0.999)
	res.P50, res.P95, res.P99, res.P999, res.Max = ms(q[0]), ms(q[1]), ms(q[2]), ms(q[3]), ms(h.Max())
	return res
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// report calls Progress every ProgressInterval until stop is closed.
func (r *runner) report(p *phase, stop <-chan struct{}) {
	t := time.NewTicker(r.cfg.ProgressInterval)
	defer t.Stop()
	lastOps, lastAt := int64(0), p.start
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			ops := p.done.Load()
			rate := 0.0
			if d := now.Sub(lastAt).Seconds(); d > 0 {
				rate = float64(ops-lastOps) / d
			}
			r.cfg.Progress(Progress{
				Phase: p.index, Phases: p.phases, SizeIndex: p.sizeIndex, NSizes: p.nsizes,
				Size: p.size, Command: p.cmd, Elapsed: now.Sub(p.start), Duration: r.cfg.Duration,
				Ops: ops, OpsPerSec: rate,
			})
			lastOps, lastAt = ops, now
		}
	}
}

// worker owns one connection and its phase counters.
type worker struct {
	run    *runner
	client *redis.Client
	cmds   []redis.Cmder
	timer  *time.Timer

	hist                             Histogram
	ops, errs, misses, unsent, bytes int64
}

func (w *worker) reset() {
	w.hist = Histogram{}
	w.ops, w.errs, w.misses, w.unsent, w.bytes = 0, 0, 0, 0, 0
}

// load sends batches of Pipeline commands until the phase ends.
func (w *worker) load(ctx context.Context, p *phase) {
	batch := int64(w.run.cfg.Pipeline)
	for ctx.Err() == nil {
		if p.rate == 0 {
			if !time.Now().Before(p.end) {
				return
			}
			w.exec(p, p.next.Add(batch)-batch, batch, false)
			continue
		}
		n := p.next.Add(batch) - batch
		if n >= p.slots {
			return
		}
		cnt := min(batch, p.slots-n)
		// A batch leaves when its last command is due; the earlier ones
		// count their wait from their own due times.
		if !w.waitUntil(ctx, p.due(n+cnt-1)) {
			return
		}
		if !time.Now().Before(p.end) {
			// Too far behind to send within the phase: these were due and
			// are as late as the phase is long past them.
			for j := range cnt {
				w.hist.Record(p.end.Sub(p.due(n + j)))
			}
			w.unsent += cnt
			return
		}
		w.exec(p, n, cnt, true)
	}
}

// waitUntil blocks until at; false if ctx ended first. A worker behind
// schedule does not wait: it catches up at full speed, as the clients the
// schedule stands for would all have been waiting.
func (w *worker) waitUntil(ctx context.Context, at time.Time) bool {
	d := time.Until(at)
	if d <= 0 {
		return ctx.Err() == nil
	}
	if w.timer == nil {
		w.timer = time.NewTimer(d)
	} else {
		w.timer.Reset(d)
	}
	select {
	case <-ctx.Done():
		w.timer.Stop()
		return false
	case <-w.timer.C:
		return true
	}
}

// exec sends commands n..n+cnt-1 in one round trip and records them.
// Latency counts from the send, or in an open loop from each due time.
func (w *worker) exec(p *phase, n, cnt int64, open bool) {
	ctx, cancel := context.WithTimeout(w.run.opBase, w.run.cfg.OpTimeout)
	defer cancel()
	var c redis.Cmdable = w.client
	var pipe redis.Pipeliner
	if cnt > 1 {
		pipe = w.client.Pipeline()
		c = pipe
	}
	w.cmds = w.cmds[:0]
	sent := time.Now()
	for j := range cnt {
		k := key(p.size, (n+j)%int64(p.keys))
		if p.cmd == commandSet {
			w.cmds = append(w.cmds, c.Set(ctx, k, p.value, 0))
		} else {
			w.cmds = append(w.cmds, c.Get(ctx, k))
		}
	}
	if pipe != nil {
		_, _ = pipe.Exec(ctx) // per-command errors are read below
	}
	done := time.Now()
	reconnect := false
	for j, cmd := range w.cmds {
		from := sent
		if open {
			from = p.due(n + int64(j))
		}
		w.hist.Record(done.Sub(from))
		switch err := cmd.Err(); {
		case err == nil:
			w.ops++
			if g, ok := cmd.(*redis.StringCmd); ok {
				w.bytes += int64(len(g.Val()))
			} else {
				w.bytes += int64(p.size)
			}
		case errors.Is(err, redis.Nil):
			w.ops++
			w.misses++
		default:
			w.errs++
			p.noteErr(err)
			var rerr redis.Error
			reconnect = reconnect || !errors.As(err, &rerr)
		}
	}
	p.done.Add(cnt)
	if reconnect {
		// A fresh client: go-redis refuses to redial for a while after a
		// failed dial, which would turn one outage into a flood of
		// instant errors.
		_ = w.client.Close()
		w.client = w.run.newClient()
	}
}
