// Package scaler changes the shape of the Redis Cluster behind Slotway:
// adding and removing masters and moving slots between them with no key
// lost, on an operator's request (the admin API, `slotway scale`) or on
// the autoscaler's decision. The autoscaler runs on the group's leader
// only.
//
// Its parts: the collector (collect.go: per-master load from INFO and the
// proxies' per-slot counters), the policy (policy.go, pure: when to scale
// and by how much), the rebalance planner (planner.go, loadplan.go, pure:
// which slots go where), the migrator (migrate.go, lease.go: fenced, step-by-step
// slot moves with a lease in the cluster so two scalers never move at
// once), the providers of spare nodes (provider*.go: a pool, an exec hook,
// Docker Swarm), and events and webhooks (events.go, notify.go). Pure
// decision logic is kept apart from I/O and table-tested. It serves no
// HTTP: stats exposes it through the interfaces stats declares.
package scaler
