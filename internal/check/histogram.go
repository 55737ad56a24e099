package check

import (
	"math"
	"math/bits"
	"time"
)

// subBits sets the histogram's resolution: 2^subBits buckets per power of
// two, so a bucket is at most 1/32 (about 3 %) of its values wide.
const subBits = 5

// histogram is a log-linear histogram of durations (in nanoseconds):
// exact below 2^(subBits+1) ns, then 2^subBits buckets per power of two.
type histogram struct {
	counts [(64 - subBits) << subBits]int64
	n      int64
	max    time.Duration
}

func bucketOf(v uint64) int {
	if v < 1<<(subBits+1) {
		return int(v)
	}
	shift := bits.Len64(v) - (subBits + 1)
	top := v >> shift // in [2^subBits, 2^(subBits+1))
	return (shift+1)<<subBits + int(top-1<<subBits)
}

// upperBound is the largest value of bucket i.
func upperBound(i int) uint64 {
	if i < 1<<(subBits+1) {
		return uint64(i)
	}
	shift := i>>subBits - 1
	top := uint64(i&(1<<subBits-1)) + 1<<subBits
	return (top+1)<<shift - 1
}

func (h *histogram) add(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	h.n++
	h.max = max(h.max, d)
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the upper bound of the bucket holding the q-quantile,
// capped at the maximum; 0 for an empty histogram.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			ub := upperBound(i)
			if ub > uint64(math.MaxInt64) {
				return h.max
			}
			return min(time.Duration(ub), h.max)
		}
	}
	return h.max
}
