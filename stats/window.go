package stats

import (
	"math"
	"time"
)

// latencyWindow is how far back the p50/p99 tiles look: a quantile
// counted since start hides both an idle proxy (it keeps the old figure)
// and a recovery (one slow minute dominates for hours).
const latencyWindow = seriesEvery

// LatencyBucket is one bucket of the proxy's latency histogram, counted
// since start: Count commands took at most UpperMS and more than the
// previous bucket's bound. The last bucket's UpperMS is +Inf.
type LatencyBucket struct {
	UpperMS float64
	Count   uint64
}

// windowQuantile is the q-quantile, in milliseconds, of the commands
// counted in newer and not yet in older (two snapshots of the same
// histogram), interpolated within its bucket like Prometheus'
// histogram_quantile; n is the number of those commands, and with n == 0
// there is no quantile. A nil older counts from zero. A bucket that went
// down (a restarted counter) counts from zero too.
func windowQuantile(older, newer []LatencyBucket, q float64) (ms float64, n uint64) {
	if len(older) != len(newer) {
		older = nil
	}
	diff := make([]uint64, len(newer))
	for i, b := range newer {
		diff[i] = b.Count
		if older != nil && b.Count >= older[i].Count {
			diff[i] -= older[i].Count
		}
		n += diff[i]
	}
	if n == 0 {
		return 0, 0
	}
	rank := q * float64(n)
	var cum float64
	lo := 0.0
	for i, c := range diff {
		hi := newer[i].UpperMS
		if math.IsInf(hi, 1) {
			hi = 2 * lo // the proxy's own reading of the open bucket
		}
		if c > 0 && cum+float64(c) >= rank {
			return lo + (hi-lo)*(rank-cum)/float64(c), n
		}
		cum += float64(c)
		lo = hi
	}
	return lo, n
}

// histSnap is the histogram at one sampler tick.
type histSnap struct {
	t time.Time
	b []LatencyBucket
}

// latencyOver returns p50 and p99 of the commands since base (nil, nil
// when there were none) and the window's length in seconds.
func latencyOver(base histSnap, now time.Time, cur []LatencyBucket) (p50, p99 *float64, secs float64) {
	if !base.t.IsZero() {
		secs = now.Sub(base.t).Seconds()
	}
	v50, n := windowQuantile(base.b, cur, 0.5)
	if n == 0 {
		return nil, nil, secs
	}
	v99, _ := windowQuantile(base.b, cur, 0.99)
	return &v50, &v99, secs
}
