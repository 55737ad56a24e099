package redistest

import "github.com/slotway/slotway/internal/rediscluster"

// The launcher's types and functions, under the names the tests use.
type (
	Cluster   = rediscluster.Cluster
	Node      = rediscluster.Node
	NodeInfo  = rediscluster.NodeInfo
	Options   = rediscluster.Options
	SlotRange = rediscluster.SlotRange
	TLSFiles  = rediscluster.TLSFiles
)

var (
	StartCluster      = rediscluster.StartCluster
	FreePort          = rediscluster.FreePort
	ParseClusterNodes = rediscluster.ParseClusterNodes
)
