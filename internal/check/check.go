// Package check is a write/read-back consistency checker for a Redis
// endpoint (a Slotway or a Redis), in the spirit of the small consistency
// test shipped with the Redis Cluster tutorial. It backs `slotway check`
// and can run in-process from tests of other packages.
//
// What it does: Workers connections write SET key value at Rate writes per
// second in total. Key i (Prefix+i, 0 <= i < Keys) belongs to worker
// i % Workers and nobody else writes it, so the order of its writes is
// known. The value is "RUN:N": RUN is random per Run and N counts up per
// key, so every write of a key carries a larger N than the one before.
// For every key the checker remembers the last acknowledged N (the SET
// answered OK) and the last attempted N (the SET was sent).
//
// After each write the worker reads one random key it already wrote (GET)
// and compares:
//   - an N below the last acknowledged one, a missing key or a value not
//     written by this run, while some write of the key was acknowledged:
//     Stale (the endpoint returned an older state than one it confirmed);
//   - an N above the last attempted one: error kind "corrupt" (nobody
//     wrote it).
//
// Any N between the last acknowledged and the last attempted is fine: a
// write that failed or timed out counts in Errors and its outcome is
// unknown, the key may hold either value.
//
// When the load ends (Duration, or ctx cancelled) a final verification pass
// reads every key written during the run (pipelined GETs, retried until
// VerifyTimeout): a missing key, a value of another run or an N below the
// last acknowledged one is Lost (an acknowledged write is gone); an N above
// the last attempted one is "corrupt". Keys the pass could not read in time
// are counted in Unverified.
//
// The keys are left in place; Prefix identifies them.
//
// The clients are plain go-redis clients; go-redis logs each failed dial
// through its process-wide logger (redis.SetLogger silences it).
package check

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/slotway/slotway/internal/bench"
)

// Defaults for zero Config fields.
const (
	DefaultRate          = 500
	DefaultWorkers       = 4
	DefaultKeys          = 10000
	DefaultPrefix        = "slotway:check:"
	DefaultOpTimeout     = 2 * time.Second
	DefaultVerifyTimeout = 10 * time.Second
)

// Config of a Run. Zero values get the defaults; negative ones are errors.
type Config struct {
	Addr     string        // endpoint host:port (a Slotway or a Redis); required
	Rate     int           // writes per second, total over all workers (default 500, at most 1,000,000)
	Workers  int           // concurrent connections (default 4); at most Keys
	Keys     int           // key space size, keys reused round robin (default 10000)
	Prefix   string        // key prefix (default "slotway:check:")
	Duration time.Duration // load phase length; 0: until ctx is cancelled

	Password, Username string // AUTH; empty Password: no AUTH

	OpTimeout     time.Duration // per command, dial included (default 2s)
	VerifyTimeout time.Duration // bound of the final verification pass (default 10s)

	// Progress, if set, is called about once a second during the load
	// phase, from a goroutine of its own (not concurrently with itself).
	Progress func(Progress)
}

// Progress is a snapshot of a running check.
type Progress struct {
	Elapsed                time.Duration
	Written, Acked, Errors int64
}

// Result of a Run.
type Result struct {
	Written int64 // SETs sent
	Acked   int64 // SETs answered OK
	Lost    int64 // keys whose acknowledged write was gone in the final pass
	Stale   int64 // GETs during the load that returned an older value than acknowledged
	Errors  int64 // failed commands (error reply, timeout, connection) and "corrupt" values
	Reads   int64 // GETs sent during the load (the final pass not included)

	// ErrorKinds splits Errors: the first word of a Redis error reply
	// ("CLUSTERDOWN", "LOADING", "MOVED", "ERR", ...), "timeout" (no reply
	// within OpTimeout), "conn" (connection refused, reset or closed),
	// "unexpected" (a SET not answered OK) or "corrupt" (a value above the
	// last attempted write).
	ErrorKinds map[string]int64

	// LongestErrorWindow is the longest error streak of any worker: from
	// the moment the first failing command of the streak was sent until the
	// last one failed, with no successful command of that worker in
	// between. A single failed command makes a window of its own duration.
	LongestErrorWindow time.Duration

	// Latencies of all commands of the load phase, failed ones included
	// (a timeout counts as OpTimeout): P50, P99 and Max for SET, ReadP50,
	// ReadP99 and ReadMax for GET. Percentiles come from a log-linear
	// histogram (under 1 % resolution), Max is exact.
	P50, P99, Max             time.Duration
	ReadP50, ReadP99, ReadMax time.Duration

	Verified   int64         // keys checked by the final pass
	Unverified int64         // keys the final pass could not read before VerifyTimeout
	Elapsed    time.Duration // length of the load phase
}

// OK reports whether no acknowledged write was lost and no read was stale.
// Errors alone do not make a check fail.
func (r Result) OK() bool { return r.Lost == 0 && r.Stale == 0 }

// String renders the result in six lines; the first is exactly
// "written N, acked A, lost L, stale S, errors E":
//
//	written 1000, acked 998, lost 0, stale 0, errors 2
//	reads 1000, verified 1000 keys, unverified 0, elapsed 2s
//	error kinds: timeout 2
//	longest error window: 2.01s
//	write latency: p50 212µs, p99 1.41ms, max 2.01s
//	read latency: p50 198µs, p99 1.2ms, max 3.02ms
//
// Error kinds are sorted by count, then name; "error kinds: none" without
// errors.
func (r Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "written %d, acked %d, lost %d, stale %d, errors %d\n", r.Written, r.Acked, r.Lost, r.Stale, r.Errors)
	fmt.Fprintf(&b, "reads %d, verified %d keys, unverified %d, elapsed %v\n", r.Reads, r.Verified, r.Unverified, roundDur(r.Elapsed))
	b.WriteString("error kinds: ")
	if len(r.ErrorKinds) == 0 {
		b.WriteString("none")
	} else {
		kinds := make([]string, 0, len(r.ErrorKinds))
		for k := range r.ErrorKinds {
			kinds = append(kinds, k)
		}
		sort.Slice(kinds, func(i, j int) bool {
			ci, cj := r.ErrorKinds[kinds[i]], r.ErrorKinds[kinds[j]]
			if ci != cj {
				return ci > cj
			}
			return kinds[i] < kinds[j]
		})
		for i, k := range kinds {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s %d", k, r.ErrorKinds[k])
		}
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "longest error window: %v\n", roundDur(r.LongestErrorWindow))
	fmt.Fprintf(&b, "write latency: p50 %v, p99 %v, max %v\n", roundDur(r.P50), roundDur(r.P99), roundDur(r.Max))
	fmt.Fprintf(&b, "read latency: p50 %v, p99 %v, max %v\n", roundDur(r.ReadP50), roundDur(r.ReadP99), roundDur(r.ReadMax))
	return b.String()
}

// roundDur keeps three or four significant digits.
func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

// defaultTo sets a zero *v to d and reports a negative one.
func defaultTo[T int | time.Duration](errs []error, name string, v *T, d T) []error {
	switch {
	case *v == 0:
		*v = d
	case *v < 0:
		errs = append(errs, fmt.Errorf("check: %s must be positive, got %v", name, *v))
	}
	return errs
}

func (c Config) withDefaults() (Config, error) {
	if c.Addr == "" {
		return c, errors.New("check: Addr is required")
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return c, fmt.Errorf("check: Addr %q: %w", c.Addr, err)
	}
	var errs []error
	errs = defaultTo(errs, "Rate", &c.Rate, DefaultRate)
	errs = defaultTo(errs, "Workers", &c.Workers, DefaultWorkers)
	errs = defaultTo(errs, "Keys", &c.Keys, DefaultKeys)
	errs = defaultTo(errs, "OpTimeout", &c.OpTimeout, DefaultOpTimeout)
	errs = defaultTo(errs, "VerifyTimeout", &c.VerifyTimeout, DefaultVerifyTimeout)
	if c.Duration < 0 {
		errs = append(errs, fmt.Errorf("check: Duration must not be negative, got %v", c.Duration))
	}
	if c.Rate > 1000000 {
		errs = append(errs, fmt.Errorf("check: Rate must be at most 1000000, got %d", c.Rate))
	}
	if c.Keys > 0 && c.Workers > c.Keys {
		errs = append(errs, fmt.Errorf("check: Workers (%d) must not exceed Keys (%d): each worker owns keys", c.Workers, c.Keys))
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	return c, errors.Join(errs...)
}

// Run runs a check: the load phase until cfg.Duration or until ctx is
// cancelled, then the final verification pass (bounded by
// cfg.VerifyTimeout; it runs even when ctx is cancelled). Commands in
// flight when the load ends finish first (bounded by OpTimeout). It returns
// an error, and no result, for a bad Config or when the endpoint does not
// answer PING at the start; everything that goes wrong later is in the
// Result.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Result{}, err
	}
	// Commands get their own timeouts and survive ctx: cancelling ctx ends
	// the load between commands, not in the middle of one.
	opBase := context.WithoutCancel(ctx)
	probe := newClient(cfg)
	pctx, cancel := context.WithTimeout(opBase, cfg.OpTimeout)
	err = probe.Ping(pctx).Err()
	cancel()
	_ = probe.Close()
	if err != nil {
		return Result{}, fmt.Errorf("check: %s: PING: %w", cfg.Addr, err)
	}

	var idb [4]byte
	_, _ = rand.Read(idb[:])
	run := &runner{cfg: cfg, runID: hex.EncodeToString(idb[:]), opBase: opBase}
	workers := make([]*worker, cfg.Workers)
	for i := range workers {
		workers[i] = newWorker(run, i)
	}

	loadCtx, cancelLoad := ctx, context.CancelFunc(func() {})
	if cfg.Duration > 0 {
		loadCtx, cancelLoad = context.WithTimeout(ctx, cfg.Duration)
	}
	defer cancelLoad()
	start := time.Now()
	run.limit = newLimiter(cfg.Rate, start)

	progressDone := make(chan struct{})
	stopProgress := make(chan struct{})
	go func() {
		defer close(progressDone)
		if cfg.Progress == nil {
			return
		}
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-t.C:
				cfg.Progress(Progress{Elapsed: time.Since(start), Written: run.written.Load(),
					Acked: run.acked.Load(), Errors: run.errors.Load()})
			}
		}
	}()

	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() { w.load(loadCtx) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stopProgress)
	<-progressDone

	vctx, cancelVerify := context.WithTimeout(opBase, cfg.VerifyTimeout)
	defer cancelVerify()
	for _, w := range workers {
		wg.Go(func() { w.verify(vctx) })
	}
	wg.Wait()

	res := Result{
		Written:    run.written.Load(),
		Acked:      run.acked.Load(),
		Errors:     run.errors.Load(),
		ErrorKinds: map[string]int64{},
		Elapsed:    elapsed,
	}
	var wl, rl bench.Histogram
	for _, w := range workers {
		_ = w.client.Close()
		res.Lost += w.lost
		res.Stale += w.stale
		res.Reads += w.reads
		res.Verified += w.verified
		res.Unverified += w.unverified
		for k, n := range w.kinds {
			res.ErrorKinds[k] += n
		}
		res.LongestErrorWindow = max(res.LongestErrorWindow, w.longest)
		wl.Merge(&w.writeLat)
		rl.Merge(&w.readLat)
	}
	wq, rq := wl.Quantiles(0.50, 0.99), rl.Quantiles(0.50, 0.99)
	res.P50, res.P99, res.Max = wq[0], wq[1], wl.Max()
	res.ReadP50, res.ReadP99, res.ReadMax = rq[0], rq[1], rl.Max()
	return res, nil
}

// runner is what the workers of one Run share.
type runner struct {
	cfg    Config
	runID  string
	opBase context.Context // ctx without its cancellation, for commands
	limit  *limiter

	written, acked, errors atomic.Int64
}

func newClient(cfg Config) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:     cfg.Addr,
		Username: cfg.Username,
		Password: cfg.Password,
		Protocol: 2,
		// No CLIENT SETINFO on connect (Redis before 7.2 has none): the
		// checker sends only AUTH, SET, GET and PING.
		DisableIdentity: true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
		// No hidden retries: every failure must show in the result.
		MaxRetries:            -1,
		DialerRetries:         1,
		DialTimeout:           cfg.OpTimeout,
		ReadTimeout:           cfg.OpTimeout,
		WriteTimeout:          cfg.OpTimeout,
		PoolTimeout:           cfg.OpTimeout,
		ContextTimeoutEnabled: true,
		PoolSize:              1, // a worker runs one command at a time
	})
}

// worker owns keys i with i % Workers == id and is the only writer of them.
type worker struct {
	run    *runner
	id     int
	client *redis.Client
	rng    *mrand.Rand

	// Per owned key, by local index j (global key index id + j*Workers).
	acked, attempted []uint64
	touched          []int32 // local indices written at least once, in first-write order
	next             int     // round-robin position

	lost, stale, reads, verified, unverified int64
	kinds                                    map[string]int64

	inStreak    bool
	streakStart time.Time
	longest     time.Duration

	writeLat, readLat bench.Histogram
}

func newWorker(run *runner, id int) *worker {
	n := (run.cfg.Keys - id + run.cfg.Workers - 1) / run.cfg.Workers
	return &worker{
		run:       run,
		id:        id,
		client:    newClient(run.cfg),
		rng:       mrand.New(mrand.NewPCG(mrand.Uint64(), uint64(id))),
		acked:     make([]uint64, n),
		attempted: make([]uint64, n),
		kinds:     map[string]int64{},
	}
}

func (w *worker) key(j int) string {
	return w.run.cfg.Prefix + strconv.Itoa(w.id+j*w.run.cfg.Workers)
}

func (w *worker) value(n uint64) string { return w.run.runID + ":" + strconv.FormatUint(n, 10) }

// parse returns N of a value written by this run; ok is false for anything
// else (a value of an earlier run, or not ours).
func (w *worker) parse(v string) (n uint64, ok bool) {
	id, num, found := strings.Cut(v, ":")
	if !found || id != w.run.runID {
		return 0, false
	}
	n, err := strconv.ParseUint(num, 10, 64)
	return n, err == nil
}

func (w *worker) load(ctx context.Context) {
	for ctx.Err() == nil {
		if !w.run.limit.wait(ctx) {
			return
		}
		w.write()
		w.read()
	}
}

func (w *worker) opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(w.run.opBase, w.run.cfg.OpTimeout)
}

func (w *worker) write() {
	j := w.next
	w.next = (w.next + 1) % len(w.attempted)
	if w.attempted[j] == 0 {
		w.touched = append(w.touched, int32(j))
	}
	n := w.attempted[j] + 1
	w.attempted[j] = n
	w.run.written.Add(1)

	ctx, cancel := w.opCtx()
	start := time.Now()
	reply, err := w.client.Set(ctx, w.key(j), w.value(n), 0).Result()
	end := time.Now()
	cancel()
	w.writeLat.Record(end.Sub(start))
	if err == nil && reply != "OK" {
		w.failed("unexpected", start, end)
		return
	}
	if err != nil {
		w.failed(w.classify(err), start, end)
		return
	}
	w.succeeded()
	w.run.acked.Add(1)
	w.acked[j] = max(w.acked[j], n)
}

func (w *worker) read() {
	if len(w.touched) == 0 {
		return
	}
	j := int(w.touched[w.rng.IntN(len(w.touched))])
	w.reads++
	ctx, cancel := w.opCtx()
	start := time.Now()
	v, err := w.client.Get(ctx, w.key(j)).Result()
	end := time.Now()
	cancel()
	w.readLat.Record(end.Sub(start))
	switch {
	case errors.Is(err, redis.Nil):
		w.succeeded()
		if w.acked[j] > 0 {
			w.stale++
		}
	case err != nil:
		w.failed(w.classify(err), start, end)
	default:
		w.succeeded()
		switch w.compare(j, v) {
		case older:
			w.stale++
		case corrupt:
			w.corrupt()
		}
	}
}

type verdict int

const (
	fine    verdict = iota
	older           // missing or older than the last acknowledged write
	corrupt         // newer than the last attempted write
)

// compare judges a value read for owned key j (not a missing key).
func (w *worker) compare(j int, v string) verdict {
	n, ok := w.parse(v)
	switch {
	case !ok || n < w.acked[j]:
		if w.acked[j] > 0 {
			return older
		}
		return fine // never acknowledged: an earlier run's value may remain
	case n > w.attempted[j]:
		return corrupt
	}
	return fine
}

func (w *worker) corrupt() {
	w.run.errors.Add(1)
	w.kinds["corrupt"]++
}

func (w *worker) failed(kind string, start, end time.Time) {
	w.run.errors.Add(1)
	w.kinds[kind]++
	if !w.inStreak {
		w.inStreak, w.streakStart = true, start
	}
	w.longest = max(w.longest, end.Sub(w.streakStart))
	if kind == "timeout" || kind == "conn" {
		// A fresh client for the next command: go-redis would otherwise
		// refuse to dial for up to a second after failed dials.
		_ = w.client.Close()
		w.client = newClient(w.run.cfg)
	}
}

func (w *worker) succeeded() { w.inStreak = false }

// classify names the kind of a failed command.
func (w *worker) classify(err error) string {
	var rerr redis.Error
	if errors.As(err, &rerr) {
		if f := strings.Fields(rerr.Error()); len(f) > 0 {
			return f[0]
		}
		return "ERR"
	}
	var nerr net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, redis.ErrPoolTimeout) ||
		(errors.As(err, &nerr) && nerr.Timeout()) {
		return "timeout"
	}
	return "conn"
}

// verifyBatch is how many GETs the final pass pipelines.
const verifyBatch = 100

// verify reads every key this worker wrote, retrying failed reads until
// ctx ends.
func (w *worker) verify(ctx context.Context) {
	todo := append([]int32(nil), w.touched...)
	for len(todo) > 0 && ctx.Err() == nil {
		var again []int32
		for len(todo) > 0 && ctx.Err() == nil {
			batch := todo[:min(verifyBatch, len(todo))]
			todo = todo[len(batch):]
			again = append(again, w.verifyBatch(ctx, batch)...)
		}
		again = append(again, todo...)
		todo = again
		if len(todo) > 0 {
			t := time.NewTimer(100 * time.Millisecond)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
	}
	w.unverified = int64(len(todo))
}

// verifyBatch checks keys with one pipeline and returns the ones it could
// not read.
func (w *worker) verifyBatch(ctx context.Context, keys []int32) (failed []int32) {
	octx, cancel := context.WithTimeout(ctx, w.run.cfg.OpTimeout)
	defer cancel()
	pipe := w.client.Pipeline()
	cmds := make([]*redis.StringCmd, len(keys))
	for i, j := range keys {
		cmds[i] = pipe.Get(octx, w.key(int(j)))
	}
	_, _ = pipe.Exec(octx)
	reset := false
	for i, cmd := range cmds {
		j := int(keys[i])
		v, err := cmd.Result()
		switch {
		case errors.Is(err, redis.Nil):
			w.verified++
			if w.acked[j] > 0 {
				w.lost++
			}
		case err != nil:
			failed = append(failed, keys[i])
			if k := w.classify(err); k == "timeout" || k == "conn" {
				reset = true
			}
		default:
			w.verified++
			switch w.compare(j, v) {
			case older:
				w.lost++
			case corrupt:
				w.corrupt()
			}
		}
	}
	if reset {
		_ = w.client.Close()
		w.client = newClient(w.run.cfg)
	}
	return failed
}

// limiter hands out send times interval apart to all workers. A worker
// that fell behind may catch up by at most burst (a tenth of a second of
// writes), so a stall is not followed by a flood.
type limiter struct {
	mu       sync.Mutex
	next     time.Time
	interval time.Duration
	burst    time.Duration
}

func newLimiter(rate int, start time.Time) *limiter {
	return &limiter{next: start, interval: max(time.Second/time.Duration(rate), 1), burst: 100 * time.Millisecond}
}

// wait blocks until the caller's send time; false if ctx ended first.
func (l *limiter) wait(ctx context.Context) bool {
	l.mu.Lock()
	now := time.Now()
	if floor := now.Add(-l.burst); l.next.Before(floor) {
		l.next = floor
	}
	at := l.next
	l.next = l.next.Add(l.interval)
	l.mu.Unlock()
	d := time.Until(at)
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
