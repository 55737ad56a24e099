package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestHistogramQuantilesAgainstSorted compares every reported percentile
// with the nearest-rank percentile of the sorted samples: never below it,
// at most one bucket width (1/128) above it, never above the maximum.
func TestHistogramQuantilesAgainstSorted(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name string
		n    int
		gen  func() time.Duration
	}{
		{"exact range", 1000, func() time.Duration { return time.Duration(rng.IntN(256)) }},
		{"uniform to 10ms", 20000, func() time.Duration { return time.Duration(rng.Int64N(int64(10 * time.Millisecond))) }},
		{"log-normal around 200us", 50000, func() time.Duration {
			return time.Duration(200e3 * math.Exp(rng.NormFloat64()))
		}},
		{"rare 2s stalls", 10000, func() time.Duration {
			if rng.IntN(500) == 0 {
				return 2*time.Second + time.Duration(rng.IntN(1e6))
			}
			return time.Duration(100e3 + rng.IntN(50e3))
		}},
		{"one value", 7, func() time.Duration { return 1234567 }},
		{"huge", 100, func() time.Duration { return time.Duration(math.MaxInt64 - rng.Int64N(1e15)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h Histogram
			vals := make([]time.Duration, tc.n)
			for i := range vals {
				vals[i] = tc.gen()
				h.Record(vals[i])
			}
			slices.Sort(vals)
			if h.Count() != uint64(tc.n) || h.Max() != vals[len(vals)-1] {
				t.Fatalf("count %d max %v, want %d and %v", h.Count(), h.Max(), tc.n, vals[len(vals)-1])
			}
			qs := []float64{0, 0.001, 0.5, 0.9, 0.95, 0.99, 0.999, 1}
			all := h.Quantiles(qs...)
			for i, q := range qs {
				rank := max(int(math.Ceil(q*float64(tc.n))), 1)
				want := vals[rank-1]
				got := all[i]
				limit := want + min(want/octaveSize, math.MaxInt64-want) // no overflow near the top
				if got < want || got > limit || got > h.Max() {
					t.Errorf("q%v: got %v, want %v..%v (max %v)", q, got, want, limit, h.Max())
				}
			}
		})
	}
}

func TestHistogramMergeAndEmpty(t *testing.T) {
	var a, b, all Histogram
	if q := a.Quantiles(0.5, 0.99); q[0] != 0 || q[1] != 0 || a.Max() != 0 {
		t.Fatal("empty histogram reports a value")
	}
	for i := range 3000 {
		d := time.Duration(i*i) * time.Microsecond
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Record(-5) // clock step: counts as 0
	all.Record(0)
	a.Merge(&b)
	if m, d := a.Quantiles(0.5, 0.99, 0.999), all.Quantiles(0.5, 0.99, 0.999); !slices.Equal(m, d) {
		t.Errorf("merged %v, direct %v", m, d)
	}
	if a.Count() != all.Count() || a.Max() != all.Max() {
		t.Errorf("merged count %d max %v, direct %d %v", a.Count(), a.Max(), all.Count(), all.Max())
	}
}

// TestBucketBounds pins the bucket math: every value lies within its
// bucket, buckets are contiguous and at most 1/128 of their value wide.
func TestBucketBounds(t *testing.T) {
	for i := 1; i < bucket(math.MaxInt64); i++ {
		lo := bucketTop(i-1) + 1
		hi := bucketTop(i)
		if bucket(lo) != i || bucket(hi) != i {
			t.Fatalf("bucket %d = [%d, %d]: bucket(lo) %d, bucket(hi) %d", i, lo, hi, bucket(lo), bucket(hi))
		}
		if hi-lo > lo/octaveSize {
			t.Fatalf("bucket %d = [%d, %d] wider than 1/%d", i, lo, hi, octaveSize)
		}
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	b.ReportAllocs()
	var h Histogram
	h.Record(time.Minute) // grow once, as a real phase does early on
	for i := 0; b.Loop(); i++ {
		h.Record(time.Duration(i&0xfffff) * time.Microsecond)
	}
}
