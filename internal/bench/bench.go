package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Defaults for zero Config fields, and limits.
const (
	DefaultDuration   = 60 * time.Second
	DefaultClients    = 50
	DefaultPipeline   = 1
	DefaultMaxKeys    = 10000
	DefaultKeySpace   = 256 << 20 // bytes of values per size, so memory stays bounded
	DefaultOpTimeout  = 5 * time.Second
	DefaultProgress   = 250 * time.Millisecond
	CleanupTimeout    = 30 * time.Second
	MaxSize           = 512 << 20 // Redis's largest string (proto-max-bulk-len)
	MaxRate           = 10_000_000
	KeyPrefix         = "slotway:bench:"
	maxClients        = 10_000
	maxPipeline       = 10_000
	commandSet        = "SET"
	commandGet        = "GET"
	valuePatternBytes = "slotway-bench-"
)

// DefaultSizes are the value sizes in bytes, 128 bit to 4 Mbit.
var DefaultSizes = []int{16, 128, 1024, 8192, 65536, 524288}

// Config of a Run. Zero values get the defaults; out-of-range values are
// errors (never clamped).
type Config struct {
	Addr     string        // endpoint host:port; required
	Duration time.Duration // length of each phase (one size, one command); default 60s
	Clients  int           // parallel connections, one per worker; default 50
	Pipeline int           // commands per round trip on a connection; default 1
	Sizes    []int         // value sizes in bytes, 1..512 MB; default DefaultSizes
	// Rate is the total commands per second over all clients. 0 runs a
	// closed loop (each connection sends as soon as its last reply is in);
	// above 0 an open loop whose latencies count from each command's
	// scheduled send time.
	Rate int

	Username, Password string // AUTH; empty Password: no AUTH

	MaxKeys   int           // keys per size at most; default 10000
	KeySpace  int64         // value bytes per size at most (keys = KeySpace/size); default 256 MB
	OpTimeout time.Duration // one round trip, dial included; default 5s

	// Progress, if set, is called every ProgressInterval (default 250ms)
	// while a phase runs, from one goroutine (never concurrently with
	// itself or PhaseDone); it must not block.
	Progress         func(Progress)
	ProgressInterval time.Duration
	// PhaseDone, if set, is called with each phase's result as it ends.
	PhaseDone func(Result)
}

// Progress is a snapshot of the running phase.
type Progress struct {
	Phase, Phases     int    // 1-based index of this phase, number of phases
	SizeIndex, NSizes int    // 1-based index of the size, number of sizes
	Size              int    // value size in bytes
	Command           string // SET or GET
	Elapsed, Duration time.Duration
	Ops               int64   // commands answered so far in this phase
	OpsPerSec         float64 // over the last interval
}

func (c Config) withDefaults() (Config, error) {
	if c.Addr == "" {
		return c, errors.New("bench: endpoint is required")
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return c, fmt.Errorf("bench: endpoint %q: want HOST:PORT: %w", c.Addr, err)
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("bench: "+format, args...)) }
	defInt := func(name string, v *int, def, limit int) {
		switch {
		case *v == 0:
			*v = def
		case *v < 0 || *v > limit:
			bad("%s must be 1..%d, got %d", name, limit, *v)
		}
	}
	defInt("clients", &c.Clients, DefaultClients, maxClients)
	defInt("pipeline", &c.Pipeline, DefaultPipeline, maxPipeline)
	defInt("max keys", &c.MaxKeys, DefaultMaxKeys, 1<<30)
	defDur := func(name string, v *time.Duration, def time.Duration) {
		switch {
		case *v == 0:
			*v = def
		case *v < 0:
			bad("%s must be positive, got %v", name, *v)
		}
	}
	defDur("duration", &c.Duration, DefaultDuration)
	defDur("op timeout", &c.OpTimeout, DefaultOpTimeout)
	defDur("progress interval", &c.ProgressInterval, DefaultProgress)
	if c.Rate < 0 || c.Rate > MaxRate {
		bad("rate must be 0 (as fast as possible) or 1..%d, got %d", MaxRate, c.Rate)
	}
	if c.KeySpace == 0 {
		c.KeySpace = DefaultKeySpace
	} else if c.KeySpace < 0 {
		bad("key space must be positive, got %d", c.KeySpace)
	}
	if len(c.Sizes) == 0 {
		c.Sizes = DefaultSizes
	}
	seen := map[int]bool{}
	for _, s := range c.Sizes {
		if err := checkSize(s); err != nil {
			errs = append(errs, fmt.Errorf("bench: %w", err))
		}
		if seen[s] {
			bad("size %d listed twice", s)
		}
		seen[s] = true
	}
	return c, errors.Join(errs...)
}

// Validate reports every bad field of c; zero fields are fine (defaults).
func (c Config) Validate() error {
	_, err := c.withDefaults()
	return err
}

// checkSize rejects a value size Redis cannot store.
func checkSize(n int) error {
	switch {
	case n <= 0:
		return fmt.Errorf("size %d: must be at least 1 byte", n)
	case n > MaxSize:
		return fmt.Errorf("size %d bytes: exceeds 512 MB, the largest Redis string", n)
	}
	return nil
}

// KeysFor is the key space of one size: MaxKeys, fewer for large values so
// that size*keys stays within KeySpace, and at least one.
func KeysFor(size, maxKeys int, keySpace int64) int {
	return int(max(1, min(int64(maxKeys), keySpace/int64(size))))
}

// Run benchmarks SET then GET for each size in turn and deletes the keys
// it wrote (best effort, bounded by CleanupTimeout, even after ctx ends).
// It returns an error, and no report, for a bad Config or an endpoint that
// does not answer PING on every connection; failed commands later on are
// counted in the results. Cancelling ctx ends the run early: the report
// holds the phases run so far and Interrupted is set.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, opBase: context.WithoutCancel(ctx), written: map[int]int{}}
	if err := r.connect(); err != nil {
		return nil, err
	}
	defer r.close()

	rep := &Report{Config: reportConfig(cfg), Start: time.Now()}
	nph := 2 * len(cfg.Sizes)
phases:
	for k, size := range cfg.Sizes {
		value := makeValue(size)
		keys := KeysFor(size, cfg.MaxKeys, cfg.KeySpace)
		for _, cmd := range []string{commandSet, commandGet} {
			p := &phase{cmd: cmd, size: size, value: value, keys: keys, rate: cfg.Rate,
				index: len(rep.Results) + 1, phases: nph, sizeIndex: k + 1, nsizes: len(cfg.Sizes)}
			if cmd == commandGet {
				// Read only what SET wrote; with nothing written every GET misses.
				p.keys = max(1, r.written[size])
			}
			res := r.runPhase(ctx, p)
			if cmd == commandSet {
				r.written[size] = min(keys, int(p.issued()))
			}
			rep.Results = append(rep.Results, res)
			if cfg.PhaseDone != nil {
				cfg.PhaseDone(res)
			}
			if ctx.Err() != nil {
				rep.Interrupted = true
				break phases
			}
		}
	}
	rep.Cleanup = r.cleanup()
	rep.End = time.Now()
	return rep, nil
}

// runner is what the workers of one Run share.
type runner struct {
	cfg     Config
	opBase  context.Context // ctx without its cancellation: commands end by OpTimeout
	workers []*worker
	written map[int]int // size -> keys 0..n-1 SET was sent for
}

func (r *runner) newClient() *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr: r.cfg.Addr, Username: r.cfg.Username, Password: r.cfg.Password,
		Protocol: 2,
		// Plain SET/GET only: no CLIENT SETINFO (absent before Redis 7.2)
		// and no maintenance-notification handshake on connect.
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
		// A retry would hide a failure and distort a latency.
		MaxRetries:    -1,
		DialerRetries: 1,
		DialTimeout:   r.cfg.OpTimeout, ReadTimeout: r.cfg.OpTimeout, WriteTimeout: r.cfg.OpTimeout,
		PoolTimeout:           r.cfg.OpTimeout,
		ContextTimeoutEnabled: true,
		// One connection per worker: exactly Clients connections, each
		// dialled (and PINGed) before the clock starts.
		PoolSize: 1,
	})
}

// connect opens and PINGs every worker's connection.
func (r *runner) connect() error {
	r.workers = make([]*worker, r.cfg.Clients)
	errs := make([]error, r.cfg.Clients)
	var wg sync.WaitGroup
	for i := range r.workers {
		w := &worker{run: r, client: r.newClient()}
		r.workers[i] = w
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(r.opBase, r.cfg.OpTimeout)
			defer cancel()
			errs[i] = w.client.Ping(ctx).Err()
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			r.close()
			return fmt.Errorf("bench: %s: PING: %w", r.cfg.Addr, err)
		}
	}
	return nil
}

func (r *runner) close() {
	for _, w := range r.workers {
		_ = w.client.Close()
	}
}

// cleanup deletes every key SET was sent for, one DEL per key (so it works
// through a proxy that refuses cross-slot commands), pipelined.
func (r *runner) cleanup() Cleanup {
	ctx, cancel := context.WithTimeout(r.opBase, CleanupTimeout)
	defer cancel()
	c := r.newClient()
	defer c.Close()
	var res Cleanup
	const batch = 1000
	for _, size := range r.cfg.Sizes {
		n := r.written[size]
		for lo := 0; lo < n; lo += batch {
			pipe := c.Pipeline()
			for i := lo; i < min(n, lo+batch); i++ {
				pipe.Del(ctx, key(size, int64(i)))
			}
			cmds, err := pipe.Exec(ctx)
			for _, cmd := range cmds {
				if d, ok := cmd.(*redis.IntCmd); ok && d.Err() == nil {
					res.Deleted += d.Val()
				}
			}
			if err != nil {
				res.Error = fmt.Sprintf("DEL %s%d:*: %v", KeyPrefix, size, err)
				return res
			}
		}
	}
	return res
}

func makeValue(size int) []byte {
	v := make([]byte, size)
	for i := range v {
		v[i] = valuePatternBytes[i%len(valuePatternBytes)]
	}
	return v
}
