// Package redistest starts real redis-server processes and joins them into a
// Redis Cluster, for tests and for the `slotway demo` command.
//
// It owns: node processes (started with exec, one directory per node, killed
// by PID), cluster formation without redis-cli (ADDSLOTSRANGE, MEET,
// REPLICATE), topology queries parsed from CLUSTER NODES, failover and
// step-by-step slot migration helpers, and polling waits bounded by a
// context.
//
// It does not own: the directory the nodes live in (the caller removes it),
// any cluster-aware client (everything here uses plain go-redis clients, one
// per node), or the Redis binary (found on PATH unless Options.RedisServer is
// set).
//
// The core (StartCluster and the Cluster methods) does not need a testing.TB;
// New and WaitFor are thin wrappers for tests.
package redistest
