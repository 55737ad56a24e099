// Package scaler will own the autoscaler that runs on the group's leader:
// metrics collection, the scaling policy (pure), providers of spare nodes,
// the rebalance planner (pure), the fenced slot migrator, events and
// notifications. It serves no HTTP.
//
// It arrives with the scaling issues; nothing lives here yet.
package scaler
