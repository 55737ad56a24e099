// Package bench is a throughput and latency load generator for a Redis
// endpoint (a Slotway or a Redis), the classic redis-benchmark SET/GET
// measurement with honest latencies. It backs `slotway bench`.
//
// It owns: the load phases (SET then GET per value size, Clients plain
// connections, optional pipelining), the open-loop schedule of -rate runs,
// the latency histogram, the bounded key space and its removal at the end,
// and the result files (CSV, JSON, a self-contained SVG chart).
//
// It does not own: flag parsing, the terminal progress bar (Run reports
// progress through callbacks) or anything cluster-aware; it speaks plain
// RESP2 through go-redis, so it measures whatever is behind the address.
package bench
