package proxy

import (
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/redcon"
)

// localFunc answers a command in the proxy, appending the reply to dst.
type localFunc func(c *client, args [][]byte, dst []byte) []byte

type localCmd struct {
	info *cmdInfo
	fn   localFunc
	// remote reports the calls that talk to the nodes: they run off the
	// event loops (stAdmin). nil: none do.
	remote func(args [][]byte) bool
}

var localCmds map[string]*localCmd

func init() {
	localCmds = map[string]*localCmd{}
	add := func(name string, arity int, fn localFunc) {
		lc := &localCmd{info: &cmdInfo{name: name, arity: arity, kind: kindLocal, family: familyConnection, stats: &cmdStats{}}, fn: fn}
		lc.info.local = lc
		localCmds[name] = lc
	}
	add("ping", -1, cmdPing)
	add("echo", 2, cmdEcho)
	add("quit", -1, cmdQuit)
	add("select", 2, cmdSelect)
	add("info", -1, cmdInfo_)
	add("hello", -1, cmdHello)
	add("auth", -2, cmdAuth)
	add("client", -2, cmdClient)
	add("cluster", -2, cmdCluster)
	add("readonly", 1, cmdReadMode)
	add("readwrite", 1, cmdReadMode)
	add("config", -2, cmdConfig)
	localCmds["config"].remote = configNeedsNodes
	add("reset", 1, cmdReset)
}

// localInfo finds a command Slotway answers itself; it serves clients
// before the command table is known.
func localInfo(name []byte) *cmdInfo {
	var buf [16]byte
	n, ok := lower(buf[:0], name)
	if !ok {
		return nil
	}
	if lc := localCmds[string(n)]; lc != nil {
		return lc.info
	}
	return nil
}

func (lc *localCmd) run(c *client, args [][]byte, dst []byte) []byte {
	lc.info.stats.calls.Add(1)
	if !lc.info.arityOK(len(args)) {
		lc.info.stats.errors.Add(1)
		return appendError(dst, "ERR wrong number of arguments for '"+lc.info.name+"' command")
	}
	n := len(dst)
	dst = lc.fn(c, args, dst)
	if len(dst) > n && dst[n] == '-' {
		lc.info.stats.errors.Add(1)
	}
	return dst
}

func localStats() []*cmdInfo {
	out := make([]*cmdInfo, 0, len(localCmds))
	for _, lc := range localCmds {
		out = append(out, lc.info)
	}
	return out
}

func cmdPing(c *client, args [][]byte, dst []byte) []byte {
	switch len(args) {
	case 1:
		return append(dst, "+PONG\r\n"...)
	case 2:
		return redcon.AppendBulk(dst, args[1])
	}
	return appendError(dst, "ERR wrong number of arguments for 'ping' command")
}

func cmdEcho(c *client, args [][]byte, dst []byte) []byte {
	return redcon.AppendBulk(dst, args[1])
}

func cmdQuit(c *client, args [][]byte, dst []byte) []byte {
	c.quit = true
	return redcon.AppendOK(dst)
}

func cmdSelect(c *client, args [][]byte, dst []byte) []byte {
	db, err := strconv.Atoi(string(args[1]))
	if err != nil {
		return appendError(dst, "ERR value is not an integer or out of range")
	}
	if db != 0 {
		// A Redis Cluster has only database 0.
		return appendError(dst, "ERR SELECT is not allowed in cluster mode")
	}
	return redcon.AppendOK(dst)
}

func cmdAuth(c *client, args [][]byte, dst []byte) []byte {
	switch len(args) {
	case 2:
		return c.authenticate([]byte("default"), args[1], dst)
	case 3:
		return c.authenticate(args[1], args[2], dst)
	}
	return appendError(dst, "ERR syntax error")
}

// HELLO negotiates RESP2 or RESP3. RESP3 clients get RESP3 from the
// backends too: their commands use pipes and dedicated connections that
// said HELLO 3.
func cmdHello(c *client, args [][]byte, dst []byte) []byte {
	i, proto := 1, int(c.proto.Load())
	if len(args) > 1 {
		v, err := strconv.Atoi(string(args[1]))
		if err != nil {
			return appendError(dst, "ERR Protocol version is not an integer or out of range")
		}
		if v != 2 && v != 3 {
			return appendError(dst, "NOPROTO unsupported protocol version")
		}
		proto, i = v, 2
	}
	for ; i < len(args); i++ {
		switch {
		case equalFold(args[i], "AUTH") && i+2 < len(args):
			n := len(dst)
			dst = c.authenticate(args[i+1], args[i+2], dst)
			if dst[n] == '-' {
				return dst
			}
			dst = dst[:n]
			i += 2
		case equalFold(args[i], "SETNAME") && i+1 < len(args):
			c.name = append(c.name[:0], args[i+1]...)
			c.updateView()
			i++
		default:
			return appendError(dst, "ERR Syntax error in HELLO option '"+printable(args[i])+"'")
		}
	}
	if len(c.s.settings().users) > 0 && c.user == nil {
		return appendError(dst, "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
	}
	c.setProto(proto)
	dst = c.appendMap(dst, 7)
	dst = redcon.AppendBulkString(dst, "server")
	dst = redcon.AppendBulkString(dst, "redis")
	dst = redcon.AppendBulkString(dst, "version")
	dst = redcon.AppendBulkString(dst, c.s.redisVersion())
	dst = redcon.AppendBulkString(dst, "proto")
	dst = redcon.AppendInt(dst, int64(proto))
	dst = redcon.AppendBulkString(dst, "id")
	dst = redcon.AppendInt(dst, int64(c.id))
	dst = redcon.AppendBulkString(dst, "mode")
	dst = redcon.AppendBulkString(dst, "standalone")
	dst = redcon.AppendBulkString(dst, "role")
	dst = redcon.AppendBulkString(dst, "master")
	dst = redcon.AppendBulkString(dst, "modules")
	return redcon.AppendArray(dst, 0)
}

func (c *client) setProto(v int) {
	c.resp3 = v == 3
	c.proto.Store(int32(v))
}

// appendMap starts a map of n pairs: a RESP3 map, or a flat RESP2 array.
func (c *client) appendMap(dst []byte, n int) []byte {
	if c.resp3 {
		return appendHeader(dst, '%', int64(n))
	}
	return appendHeader(dst, '*', int64(2*n))
}

func (c *client) appendNull(dst []byte) []byte {
	if c.resp3 {
		return append(dst, "_\r\n"...)
	}
	return append(dst, "$-1\r\n"...)
}

func cmdClient(c *client, args [][]byte, dst []byte) []byte {
	sub := strings.ToLower(string(args[1]))
	switch sub {
	case "setname":
		if len(args) != 3 {
			return appendError(dst, "ERR wrong number of arguments for 'client|setname' command")
		}
		for _, ch := range args[2] {
			if ch <= ' ' || ch > '~' {
				return appendError(dst, "ERR Client names cannot contain spaces, newlines or special characters.")
			}
		}
		c.name = append(c.name[:0], args[2]...)
		c.updateView()
		return redcon.AppendOK(dst)
	case "getname":
		if len(c.name) == 0 {
			return c.appendNull(dst)
		}
		return redcon.AppendBulk(dst, c.name)
	case "id":
		return redcon.AppendInt(dst, int64(c.id))
	case "setinfo":
		if len(args) != 4 {
			return appendError(dst, "ERR wrong number of arguments for 'client|setinfo' command")
		}
		switch strings.ToLower(string(args[2])) {
		case "lib-name":
			c.libName = append(c.libName[:0], args[3]...)
		case "lib-ver":
			c.libVer = append(c.libVer[:0], args[3]...)
		default:
			return appendError(dst, "ERR Unrecognized option '"+printable(args[2])+"'")
		}
		c.updateView()
		return redcon.AppendOK(dst)
	case "list":
		return cmdClientList(c, args, dst)
	case "info":
		if len(args) != 2 {
			return appendError(dst, "ERR wrong number of arguments for 'client|info' command")
		}
		return redcon.AppendBulkString(dst, c.clientLine(time.Now()))
	case "kill":
		if len(args) < 3 {
			return appendError(dst, "ERR wrong number of arguments for 'client|kill' command")
		}
		return cmdClientKill(c, args, dst)
	case "no-evict":
		// The proxy never evicts clients, so either setting holds.
		if len(args) != 3 || (!equalFold(args[2], "ON") && !equalFold(args[2], "OFF")) {
			return appendError(dst, "ERR syntax error")
		}
		return redcon.AppendOK(dst)
	case "pause":
		// CLIENT PAUSE timeout [WRITE|ALL], in the proxy (pause.go).
		if len(args) != 3 && len(args) != 4 {
			return appendError(dst, "ERR wrong number of arguments for 'client|pause' command")
		}
		if msg := c.adminDenied("client|pause"); msg != "" {
			return appendError(dst, msg)
		}
		ms, err := strconv.ParseInt(string(args[2]), 10, 64)
		switch {
		case err != nil:
			return appendError(dst, "ERR timeout is not an integer or out of range")
		case ms < 0:
			return appendError(dst, "ERR timeout is negative")
		}
		writeOnly := false
		if len(args) == 4 {
			switch {
			case equalFold(args[3], "WRITE"):
				writeOnly = true
			case equalFold(args[3], "ALL"):
			default:
				return appendError(dst, "ERR syntax error")
			}
		}
		c.s.Pause(time.Duration(ms)*time.Millisecond, writeOnly)
		return redcon.AppendOK(dst)
	case "unpause":
		if len(args) != 2 {
			return appendError(dst, "ERR wrong number of arguments for 'client|unpause' command")
		}
		if msg := c.adminDenied("client|unpause"); msg != "" {
			return appendError(dst, msg)
		}
		c.s.Unpause()
		return redcon.AppendOK(dst)
	case "reply":
		// Replies are dropped by the proxy (completeBatch), per request in
		// order, so a pipeline keeps its sense; the backends reply as usual.
		if len(args) != 3 {
			return appendError(dst, "ERR wrong number of arguments for 'client|reply' command")
		}
		switch {
		case equalFold(args[2], "ON"):
			c.replyMode = replyOn
		case equalFold(args[2], "OFF"):
			c.replyMode = replyOff
		case equalFold(args[2], "SKIP"):
			c.replyMode = replySkip
		default:
			return appendError(dst, "ERR syntax error")
		}
		c.replySet = true
		return redcon.AppendOK(dst)
	case "no-touch":
		if len(args) != 3 || (!equalFold(args[2], "ON") && !equalFold(args[2], "OFF")) {
			return appendError(dst, "ERR syntax error")
		}
		if equalFold(args[2], "ON") {
			// Backend connections are shared by many clients, so the
			// flag cannot apply to one client's reads.
			return appendError(dst, "ERR CLIENT NO-TOUCH ON is not supported by slotway: backend connections are shared")
		}
		return redcon.AppendOK(dst)
	}
	return appendError(dst, "ERR command 'client|"+strings.ToLower(printable(args[1]))+"' is not supported by slotway: it acts on backend connections, which the proxy shares between clients")
}

// cmdInfo_ answers INFO as one Redis 7.0 would (info.go).
func cmdInfo_(c *client, args [][]byte, dst []byte) []byte {
	return redcon.AppendBulkString(dst, c.s.info(args))
}
