// Package proxy is Slotway's data plane: a RESP server that makes a Redis
// Cluster look like one Redis server.
//
// It owns the client connections, the command table (read from the
// cluster's own COMMAND reply, so new commands route without code changes),
// slot math, immutable topology snapshots, the shared backend pipes,
// MOVED/ASK/TRYAGAIN handling and node health checks. It knows nothing of
// the VIP, the group or the scaler; those read it through the small
// accessors on Server (Nodes, Health, Ready, SlotOps).
//
// The client-facing reader is Slotway's own rather than redcon's server
// loop: limits must be checked against declared lengths before a buffer
// grows, and the per-command path must not allocate. redcon's RESP append
// helpers build the replies the proxy writes itself.
package proxy
