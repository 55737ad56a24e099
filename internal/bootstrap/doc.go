// Package bootstrap forms a new Redis Cluster from empty cluster-enabled
// nodes, as `redis-cli --cluster create --cluster-replicas R` does, for the
// `slotway cluster create` command.
//
// It owns: the placement of masters, replicas and slot ranges (Place, pure,
// no I/O), the safety checks on the nodes (reachable, cluster-enabled,
// empty, in no other cluster), the formation itself (ADDSLOTSRANGE,
// SET-CONFIG-EPOCH, MEET, REPLICATE) and the wait until the cluster is ok.
//
// It does not own: resharding, adding nodes to a running cluster (the
// scaler does that), repairing a half-formed cluster (nodes must be reset
// with CLUSTER RESET HARD first), TLS to the nodes, or printing a summary
// (the caller formats the Result).
package bootstrap
