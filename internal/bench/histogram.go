package bench

import (
	"math"
	"math/bits"
	"time"
)

// octaveBits sets the resolution: 2^octaveBits buckets per power of two,
// so a reported percentile is at most 1/128 (under 0.8 %) above the true
// one. Values below 2*octaveSize ns are counted exactly.
const (
	octaveBits = 7
	octaveSize = 1 << octaveBits
)

// Histogram is an HDR-style log-linear histogram of latencies with
// nanosecond resolution and no upper limit. The zero value is empty and
// ready to use. It is not safe for concurrent use: each worker keeps its
// own and they are merged at the end of a phase.
type Histogram struct {
	counts []uint64 // by bucket index; grown to the largest value seen
	total  uint64
	max    time.Duration
}

// bucket maps a value to its bucket: exact below 2*octaveSize, then the
// top octaveBits+1 bits of v select one of octaveSize buckets per octave.
func bucket(v uint64) int {
	if v < 2*octaveSize {
		return int(v)
	}
	shift := bits.Len64(v) - octaveBits - 1
	return shift*octaveSize + int(v>>shift)
}

// bucketTop is the largest value that falls in bucket i; HDR histograms
// report this "highest equivalent value" so a percentile never
// understates.
func bucketTop(i int) uint64 {
	if i < 2*octaveSize {
		return uint64(i)
	}
	shift := i/octaveSize - 1
	lead := uint64(i - shift*octaveSize)
	return (lead+1)<<shift - 1
}

// Record adds one latency; negative ones count as 0.
func (h *Histogram) Record(d time.Duration) {
	d = max(d, 0)
	i := bucket(uint64(d))
	if i >= len(h.counts) {
		h.counts = append(h.counts, make([]uint64, i+1-len(h.counts))...)
	}
	h.counts[i]++
	h.total++
	h.max = max(h.max, d)
}

// Merge adds every value of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if len(o.counts) > len(h.counts) {
		h.counts = append(h.counts, make([]uint64, len(o.counts)-len(h.counts))...)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.max = max(h.max, o.max)
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.total }

// Max is the largest recorded value, exact.
func (h *Histogram) Max() time.Duration { return h.max }

// Quantiles returns, for each q in qs (0 <= q <= 1, ascending), the
// nearest-rank q-quantile rounded up to its bucket's top and capped at
// Max, in one pass over the buckets; zeros when empty.
func (h *Histogram) Quantiles(qs ...float64) []time.Duration {
	out := make([]time.Duration, len(qs))
	if h.total == 0 {
		return out
	}
	k := 0 // next quantile to place
	var below uint64
	for i, c := range h.counts {
		below += c
		for k < len(qs) && below >= h.rank(qs[k]) {
			out[k] = min(time.Duration(min(bucketTop(i), uint64(math.MaxInt64))), h.max)
			k++
		}
		if k == len(qs) {
			break
		}
	}
	return out
}

// rank is the 1-based nearest rank of quantile q.
func (h *Histogram) rank(q float64) uint64 {
	r := uint64(math.Ceil(q * float64(h.total)))
	return min(max(r, 1), h.total)
}
