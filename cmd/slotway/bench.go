package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/bench"
	"github.com/slotway/slotway/internal/config"
)

const benchUsage = `Usage: slotway bench -endpoint HOST:PORT [flags]

Measures SET and GET throughput and latency, like redis-benchmark: for each
value size, SET for -duration, then GET for -duration on the keys the SET
phase wrote, over -clients connections sending -pipeline commands per round
trip. Without -rate every connection sends as soon as its replies are in
(closed loop). With -rate N the commands are scheduled at N per second in
total and each latency counts from the command's scheduled time, so a stall
shows in the percentiles instead of quietly slowing the schedule down.

Keys are slotway:bench:SIZE:I, at most 10000 per size and at most 256 MB
of values per size; they are deleted at the end, also after Ctrl-C.
Writes DIR/results.csv, DIR/results.json and DIR/results.svg (throughput
and p99 latency by size) and prints a table to stdout; progress goes to
stderr. Sizes are bytes, or with a unit: 16,1kb,512kb (up to 512mb).

Exit status: 0 when every phase ran (failed commands are counted in the
results, not fatal); 1 if the endpoint does not answer PING, the results
cannot be written, or the run was interrupted (the partial results are
written); 2 for bad flags. -password falls back to $REDISCLI_AUTH.

Flags:
`

// cmdBench runs the load generator against an endpoint.
func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, auth := newToolFlags("bench", benchUsage, stderr)
	endpoint := fs.String("endpoint", "", "host:port of a Slotway or a Redis (required)")
	duration := fs.Duration("duration", bench.DefaultDuration, "length of each phase (one size, one command)")
	clients := fs.Int("clients", bench.DefaultClients, "parallel connections")
	pipeline := fs.Int("pipeline", bench.DefaultPipeline, "commands per round trip on each connection")
	sizes := fs.String("sizes", joinInts(bench.DefaultSizes), "value sizes, comma-separated")
	out := fs.String("out", ".", "directory for results.csv, results.json and results.svg")
	rate := fs.Int("rate", 0, "total commands per second (open loop); 0: as fast as possible")
	if err := auth.parse(fs, args); err != nil {
		return err
	}
	if *endpoint == "" {
		return usageError{errors.New("-endpoint HOST:PORT is required")}
	}
	// Zero means "default" to bench.Config; on the command line it is a mistake.
	if *clients <= 0 || *pipeline <= 0 || *duration <= 0 || *rate < 0 {
		return usageError{errors.New("-clients, -pipeline and -duration must be positive, -rate not negative")}
	}
	sz, err := parseSizes(*sizes)
	if err != nil {
		return usageError{err}
	}
	cfg := bench.Config{
		Addr: *endpoint, Duration: *duration, Clients: *clients, Pipeline: *pipeline,
		Sizes: sz, Rate: *rate, Username: auth.user, Password: auth.password,
	}
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	// Fail now rather than after the whole run.
	if err := checkWritableDir(*out); err != nil {
		return fmt.Errorf("-out: %w", err)
	}
	progress := newBenchProgress(stderr, 2*len(sz))
	cfg.Progress, cfg.PhaseDone = progress.update, progress.phaseDone
	fmt.Fprintf(stderr, "slotway bench: %d sizes x SET, GET, %v each (about %v) against %s\n",
		len(sz), *duration, 2*time.Duration(len(sz))*(*duration), *endpoint)
	// go-redis logs each failed dial; the results count them instead.
	redis.SetLogger(quietLogger{})
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	paths, err := bench.WriteFiles(*out, rep)
	if err != nil {
		return err
	}
	if err := bench.WriteTable(stdout, rep.Results); err != nil {
		return err
	}
	for _, p := range paths {
		fmt.Fprintf(stdout, "wrote %s\n", p)
	}
	if rep.Cleanup.Error != "" {
		fmt.Fprintf(stderr, "slotway bench: some keys were not deleted (%s): remove %s* by hand\n", rep.Cleanup.Error, bench.KeyPrefix)
	}
	if rep.Interrupted {
		return fmt.Errorf("interrupted after %d of %d phases; partial results written", len(rep.Results), 2*len(sz))
	}
	return nil
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// parseSizes reads "16,1kb,512kb"; range checks are bench.Config's.
func parseSizes(s string) ([]int, error) {
	var sizes []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := config.ParseByteSize(f)
		if err != nil {
			return nil, fmt.Errorf("-sizes: %w", err)
		}
		sizes = append(sizes, int(n))
	}
	return sizes, nil
}

func checkWritableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".slotway-bench-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

// benchProgress draws a progress bar on a terminal; elsewhere (a pipe, a
// file, CI logs) it writes one line per finished phase only, as carriage
// returns would make a mess there.
type benchProgress struct {
	w            io.Writer
	tty          bool
	done, phases int
}

func newBenchProgress(w io.Writer, phases int) *benchProgress {
	return &benchProgress{w: w, tty: isTerminal(w), phases: phases}
}

// isTerminal reports a character device. That is what a terminal is to
// os.Stat, without a dependency on x/term; /dev/null also passes, harmlessly.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

const barWidth = 24

func (b *benchProgress) update(p bench.Progress) {
	if !b.tty {
		return
	}
	done := min(barWidth, int(float64(barWidth)*p.Elapsed.Seconds()/p.Duration.Seconds()))
	bar := strings.Repeat("=", done) + strings.Repeat(" ", barWidth-done)
	fmt.Fprintf(b.w, "\r\x1b[2K[%s] size %d/%d %s %s  %v/%v  %.0f ops/s", bar, p.SizeIndex, p.NSizes,
		bench.SizeLabel(p.Size), p.Command, p.Elapsed.Round(100*time.Millisecond), p.Duration, p.OpsPerSec)
}

func (b *benchProgress) phaseDone(r bench.Result) {
	if b.tty {
		fmt.Fprint(b.w, "\r\x1b[2K")
	}
	b.done++
	line := fmt.Sprintf("[%d/%d] %s %s: %.0f ops/s, %.2f MB/s, p50 %.3f ms, p99 %.3f ms, max %.3f ms, errors %d",
		b.done, b.phases, bench.SizeLabel(r.SizeBytes), r.Command, r.OpsPerSec, r.MBPerSec, r.P50, r.P99, r.Max, r.Errors)
	if r.FirstError != "" {
		line += " (first: " + r.FirstError + ")"
	}
	if r.Unsent > 0 {
		line += fmt.Sprintf(", %d due but not sent (too far behind -rate)", r.Unsent)
	}
	fmt.Fprintln(b.w, line)
}
