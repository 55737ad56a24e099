package proxy

import (
	"crypto/sha1"
	"encoding/hex"
	"net"
	"strconv"
	"strings"

	"github.com/tidwall/redcon"

	"github.com/slotway/slotway/internal/hashslot"
)

// CLUSTER emulation: a cluster-aware client pointed at Slotway sees one
// node, the address it connected to (the VIP), owning every slot; it never
// learns backend addresses it may not be able to reach.

// emulatedID is the node id Slotway reports: stable for an address, so
// every instance behind one VIP reports the same id.
func emulatedID(addr string) string {
	sum := sha1.Sum([]byte("slotway:" + addr))
	return hex.EncodeToString(sum[:])
}

func cmdCluster(c *client, args [][]byte, dst []byte) []byte {
	local := c.laddr.String()
	host, portStr, _ := net.SplitHostPort(local)
	port, _ := strconv.Atoi(portStr)
	id := emulatedID(local)
	switch strings.ToLower(string(args[1])) {
	case "keyslot":
		if len(args) != 3 {
			return appendError(dst, "ERR wrong number of arguments for 'cluster|keyslot' command")
		}
		return redcon.AppendInt(dst, int64(hashslot.Of(args[2])))
	case "myid":
		return redcon.AppendBulkString(dst, id)
	case "info":
		t := c.s.topo.load()
		state := "ok"
		if servedSlots(t) < hashslot.Count {
			state = "fail"
		}
		info := "cluster_enabled:1\r\ncluster_state:" + state + "\r\ncluster_slots_assigned:16384\r\n" +
			"cluster_slots_ok:" + strconv.Itoa(servedSlots(t)) + "\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:" +
			strconv.Itoa(hashslot.Count-servedSlots(t)) + "\r\ncluster_known_nodes:1\r\ncluster_size:1\r\n" +
			"cluster_current_epoch:1\r\ncluster_my_epoch:1\r\n"
		return redcon.AppendBulkString(dst, info)
	case "slots":
		dst = redcon.AppendArray(dst, 1)
		dst = redcon.AppendArray(dst, 3)
		dst = redcon.AppendInt(dst, 0)
		dst = redcon.AppendInt(dst, hashslot.Count-1)
		dst = redcon.AppendArray(dst, 3)
		dst = redcon.AppendBulkString(dst, host)
		dst = redcon.AppendInt(dst, int64(port))
		return redcon.AppendBulkString(dst, id)
	case "shards":
		dst = redcon.AppendArray(dst, 1)
		dst = c.appendMap(dst, 2)
		dst = redcon.AppendBulkString(dst, "slots")
		dst = redcon.AppendArray(dst, 2)
		dst = redcon.AppendInt(dst, 0)
		dst = redcon.AppendInt(dst, hashslot.Count-1)
		dst = redcon.AppendBulkString(dst, "nodes")
		dst = redcon.AppendArray(dst, 1)
		dst = c.appendMap(dst, 7)
		for _, kv := range [][2]string{{"id", id}, {"ip", host}, {"endpoint", host}, {"role", "master"}, {"health", "online"}} {
			dst = redcon.AppendBulkString(dst, kv[0])
			dst = redcon.AppendBulkString(dst, kv[1])
		}
		dst = redcon.AppendBulkString(dst, "port")
		dst = redcon.AppendInt(dst, int64(port))
		return append(redcon.AppendBulkString(dst, "replication-offset"), ":0\r\n"...)
	case "nodes":
		line := id + " " + local + "@" + portStr + " myself,master - 0 0 1 connected 0-16383\n"
		return redcon.AppendBulkString(dst, line)
	}
	return appendError(dst, "ERR command 'cluster "+printable(args[1])+"' is not supported by slotway: it shows one node, the proxy, owning every slot")
}

// cmdReadMode: READONLY/READWRITE switch replica reads for cluster
// clients; Slotway reads from masters, so both are accepted as no-ops.
func cmdReadMode(c *client, args [][]byte, dst []byte) []byte { return redcon.AppendOK(dst) }
