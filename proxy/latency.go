package proxy

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Command families are Redis's data-type ACL categories: a bounded label
// set that still tells "lists are slow" from "strings are slow".
var familyNames = []string{"string", "hash", "list", "set", "sortedset", "stream", "bitmap",
	"hyperloglog", "geo", "pubsub", "scripting", "keyspace", "connection", "transaction", "server", "other"}

const (
	familyScripting  = 10
	familyConnection = 12
	familyOther      = 15
)

var familyIndex = func() map[string]uint8 {
	m := map[string]uint8{}
	for i, n := range familyNames {
		m["@"+n] = uint8(i)
	}
	return m
}()

// familyOf picks the first data-type category of a command's ACL
// categories; generic keyspace commands (DEL, EXPIRE) are "keyspace".
func familyOf(categories []string) uint8 {
	best := uint8(familyOther)
	for _, c := range categories {
		if i, ok := familyIndex[c]; ok && i < best {
			best = i
		}
	}
	return best
}

// latencyBuckets are the upper bounds, in seconds, of the time a command
// spends in the proxy (read to reply ready).
var latencyBuckets = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}

// latencyHist is a lock-free histogram: the data path adds with atomics,
// the scrape reads.
type latencyHist struct {
	counts [16]atomic.Uint64 // len(latencyBuckets)+1, the last is +Inf
	sumNs  atomic.Uint64
}

func (h *latencyHist) observe(d time.Duration, n uint64) {
	s := d.Seconds()
	i := 0
	for i < len(latencyBuckets) && s > latencyBuckets[i] {
		i++
	}
	h.counts[i].Add(n)
	h.sumNs.Add(uint64(d) * n)
}

// quantile interpolates within the bucket holding the q-th observation;
// 0 when there is none.
func (h *latencyHist) quantile(q float64) time.Duration {
	var counts [16]uint64
	var total uint64
	for i := range counts {
		counts[i] = h.counts[i].Load()
		total += counts[i]
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var cum float64
	for i, c := range counts {
		if cum+float64(c) >= rank && c > 0 {
			lo := 0.0
			if i > 0 {
				lo = latencyBuckets[i-1]
			}
			hi := lo * 2
			if i < len(latencyBuckets) {
				hi = latencyBuckets[i]
			}
			frac := (rank - cum) / float64(c)
			return time.Duration((lo + (hi-lo)*frac) * float64(time.Second))
		}
		cum += float64(c)
	}
	return time.Duration(latencyBuckets[len(latencyBuckets)-1] * float64(time.Second))
}

func (h *latencyHist) merge(into *[16]uint64) (sum uint64) {
	for i := range into {
		into[i] += h.counts[i].Load()
	}
	return h.sumNs.Load()
}

var latencyDesc = prometheus.NewDesc("slotway_proxy_command_duration_seconds",
	"Time commands spend in the proxy, from read to reply ready, by command family.",
	[]string{"family"}, nil)

type latencyCollector struct{ s *Server }

func (c latencyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- latencyDesc }

func (c latencyCollector) Collect(ch chan<- prometheus.Metric) {
	for f := range c.s.latency {
		h := &c.s.latency[f]
		var counts [16]uint64
		sum := h.merge(&counts)
		var total uint64
		buckets := map[float64]uint64{}
		for i, b := range latencyBuckets {
			total += counts[i]
			buckets[b] = total
		}
		total += counts[len(latencyBuckets)]
		if total == 0 {
			continue
		}
		ch <- prometheus.MustNewConstHistogram(latencyDesc, total, float64(sum)/1e9, buckets, familyNames[f])
	}
}
