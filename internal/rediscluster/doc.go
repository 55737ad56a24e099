// Package rediscluster starts real redis-server processes and joins them
// into a Redis Cluster, for `slotway demo`, the benchmarks and (through
// internal/redistest) the tests. It does not import testing.
//
// It owns: node processes (started with exec, one directory per node,
// killed by PID), cluster formation without redis-cli (ADDSLOTSRANGE,
// MEET, REPLICATE), topology queries parsed from CLUSTER NODES, failover
// and step-by-step slot migration helpers, and polling waits bounded by a
// context.
//
// It does not own: the directory the nodes live in (the caller removes
// it), any cluster-aware client (everything here uses plain go-redis
// clients, one per node), or the Redis binary (found on PATH unless
// Options.RedisServer is set).
package rediscluster
