package proxy

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/tidwall/redcon"
)

// Connection and admin commands answered for the proxy itself: CLIENT
// LIST/INFO/KILL show and act on Slotway's own clients (backend
// connections are shared and not the application's), CONFIG GET reads the
// proxy's settings, RESET returns a connection to its initial state.

// clientLine formats one client the way CLIENT LIST does, with Redis
// 7.0's fields and the proxy's own values: fd is the proxy's socket; rbs
// and qbuf-free the read window (empty between batches: qbuf is 0, and
// argv-mem too, since arguments are views into the window); omem the
// reply buffer, obl/oll 0 between batches (a subscriber's queue counts in
// omem); multi-mem the commands queued in MULTI; redir -1 (no tracking).
func (c *client) clientLine(now time.Time) string {
	c.view.mu.Lock()
	name, user, libName, libVer := c.view.name, c.view.user, c.view.libName, c.view.libVer
	c.view.mu.Unlock()
	if user == "" {
		user = "default"
	}
	flags := "N"
	switch {
	case c.monitoring.Load():
		flags = "O"
	case c.inMulti.Load():
		flags = "x"
	case c.subCount.Load() > 0:
		flags = "P"
	}
	cmd := "NULL"
	if ci := c.lastInfo.Load(); ci != nil {
		cmd = ci.name
	}
	idle := int64(0)
	if t := c.lastCmd.Load(); t > 0 {
		idle = int64(now.Sub(time.Unix(0, t)).Seconds())
	} else {
		idle = int64(now.Sub(c.created).Seconds())
	}
	out := c.outBytes.Load()
	rbs := c.bufBytes.Load() - out
	if ps := c.psView.Load(); ps != nil {
		ps.outMu.Lock()
		out += int64(len(ps.out))
		ps.outMu.Unlock()
	}
	multiMem := c.multiMem.Load()
	return fmt.Sprintf("id=%d addr=%s laddr=%s fd=%d name=%s age=%d idle=%d flags=%s db=0 sub=%d psub=%d ssub=%d multi=%d "+
		"qbuf=0 qbuf-free=%d argv-mem=0 multi-mem=%d rbs=%d rbp=%d obl=0 oll=0 omem=%d tot-mem=%d events=r cmd=%s user=%s redir=-1 resp=%d lib-name=%s lib-ver=%s\n",
		c.id, c.raddr, c.laddr, c.fd.Load(), name, int64(now.Sub(c.created).Seconds()), idle, flags,
		c.subCounts[0].Load(), c.subCounts[1].Load(), c.subCounts[2].Load(), c.multiLen(),
		rbs, multiMem, rbs, rbs, out, rbs+out+multiMem+clientOverhead, cmd, user, c.proto.Load(), libName, libVer)
}

// clientOverhead is what a client costs the proxy besides its buffers.
const clientOverhead = int64(unsafe.Sizeof(client{}) + unsafe.Sizeof(reader{}))

func (c *client) multiLen() int {
	if !c.inMulti.Load() {
		return -1
	}
	return int(c.multiCount.Load())
}

// clientsSnapshot lists the connected clients by id.
func (s *Server) clientsSnapshot() []*client {
	s.mu.Lock()
	out := make([]*client, 0, len(s.clients))
	for cl := range s.clients {
		out = append(out, cl)
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b *client) int { return int(a.id - b.id) })
	return out
}

// The names as COMMAND and proxy.users spell them, with the "@".
var adminInfo = &cmdInfo{name: "admin", cats: categoryBit("@admin") | categoryBit("@dangerous")}

// adminDenied is the NOPERM error for a proxy user without the admin
// category, or "" when the command may run.
func (c *client) adminDenied(name string) string {
	if c.user == nil || c.user.permits(adminInfo) {
		return ""
	}
	return "NOPERM User " + c.user.name + " has no permissions to run the '" + name + "' command"
}

func cmdClientList(c *client, args [][]byte, dst []byte) []byte {
	if msg := c.adminDenied("client|list"); msg != "" {
		return appendError(dst, msg)
	}
	var ids map[uint64]bool
	typ := ""
	for i := 2; i < len(args); i++ {
		switch {
		case equalFold(args[i], "TYPE") && i+1 < len(args):
			typ = strings.ToLower(string(args[i+1]))
			if typ != "normal" && typ != "pubsub" && typ != "master" && typ != "replica" {
				return appendError(dst, "ERR Unknown client type '"+printable(args[i+1])+"'")
			}
			i++
		case equalFold(args[i], "ID") && i+1 < len(args):
			ids = map[uint64]bool{}
			for _, a := range args[i+1:] {
				id, err := strconv.ParseUint(string(a), 10, 64)
				if err != nil || id == 0 {
					return appendError(dst, "ERR Invalid client ID")
				}
				ids[id] = true
			}
			i = len(args)
		default:
			return appendError(dst, "ERR syntax error")
		}
	}
	now := time.Now()
	var b strings.Builder
	for _, cl := range c.s.clientsSnapshot() {
		if ids != nil && !ids[cl.id] {
			continue
		}
		if typ != "" && typ != cl.clientType() {
			continue
		}
		b.WriteString(cl.clientLine(now))
	}
	return redcon.AppendBulkString(dst, b.String())
}

func (c *client) clientType() string {
	if c.subCount.Load() > 0 {
		return "pubsub"
	}
	return "normal"
}

// cmdClientKill: CLIENT KILL addr, or the filter form (ID, ADDR, LADDR,
// USER, TYPE, SKIPME) answering the number of clients killed.
func cmdClientKill(c *client, args [][]byte, dst []byte) []byte {
	if msg := c.adminDenied("client|kill"); msg != "" {
		return appendError(dst, msg)
	}
	type filter struct {
		id                    uint64
		addr, laddr, user, ty string
		skipMe                bool
	}
	f := filter{skipMe: true}
	old := len(args) == 3
	if old {
		f.addr, f.skipMe = string(args[2]), false
	} else {
		if len(args)%2 != 0 {
			return appendError(dst, "ERR syntax error")
		}
		for i := 2; i < len(args); i += 2 {
			v := string(args[i+1])
			switch {
			case equalFold(args[i], "ID"):
				id, err := strconv.ParseUint(v, 10, 64)
				if err != nil || id == 0 {
					return appendError(dst, "ERR client-id should be greater than 0")
				}
				f.id = id
			case equalFold(args[i], "ADDR"):
				f.addr = v
			case equalFold(args[i], "LADDR"):
				f.laddr = v
			case equalFold(args[i], "USER"):
				if !c.s.userExists(v) {
					return appendError(dst, "ERR No such user '"+printable(args[i+1])+"'")
				}
				f.user = v
			case equalFold(args[i], "TYPE"):
				f.ty = strings.ToLower(v)
				if f.ty != "normal" && f.ty != "pubsub" && f.ty != "master" && f.ty != "replica" && f.ty != "slave" {
					return appendError(dst, "ERR Unknown client type '"+printable(args[i+1])+"'")
				}
			case equalFold(args[i], "SKIPME"):
				switch strings.ToLower(v) {
				case "yes":
					f.skipMe = true
				case "no":
					f.skipMe = false
				default:
					return appendError(dst, "ERR syntax error")
				}
			default:
				return appendError(dst, "ERR syntax error")
			}
		}
	}
	killed := 0
	for _, cl := range c.s.clientsSnapshot() {
		switch {
		case f.id != 0 && cl.id != f.id,
			f.addr != "" && cl.raddr.String() != f.addr,
			f.laddr != "" && cl.laddr.String() != f.laddr,
			f.ty != "" && f.ty != cl.clientType(),
			f.skipMe && cl == c:
			continue
		case f.user != "" && cl.userNameOrDefault() != f.user:
			continue
		}
		if cl == c {
			c.quit = true // after this reply, as Redis does
		} else {
			cl.kill()
		}
		killed++
	}
	if old {
		if killed == 0 {
			return appendError(dst, "ERR No such client")
		}
		return redcon.AppendOK(dst)
	}
	return redcon.AppendInt(dst, int64(killed))
}

// userExists reports a user clients can be: one of proxy.users, or
// "default" when there are none.
func (s *Server) userExists(name string) bool {
	users := s.settings().users
	if len(users) == 0 {
		return name == "default"
	}
	return users[name] != nil
}

// proxyConfig lists what CONFIG GET answers, by Redis's parameter names
// where one applies.
func (s *Server) proxyConfig() [][2]string {
	host, port, _ := net.SplitHostPort(s.cfg.Listen)
	if s.ln != nil {
		host, port, _ = net.SplitHostPort(s.ln.Addr().String())
	}
	set := s.settings()
	idle := int64(set.clientIdleTimeout / time.Second)
	return [][2]string{
		{"bind", host},
		{"port", port},
		{"maxclients", strconv.Itoa(set.maxClients)},
		{"timeout", strconv.FormatInt(idle, 10)},
		{"proto-max-bulk-len", strconv.FormatInt(set.limits.MaxBulkLen, 10)},
		{"databases", "1"},
		{"cluster-enabled", "no"},
		{"slotway-read-from", set.readFrom},
		{"slotway-max-redirects", strconv.Itoa(int(set.maxRedirects))},
		{"slotway-keys-limit", strconv.Itoa(set.keysLimit)},
	}
}

func cmdConfig(c *client, args [][]byte, dst []byte) []byte {
	switch {
	case configNeedsNodes(args):
		return cmdConfigNodes(c, args, dst)
	case equalFold(args[1], "HELP"):
		help := []string{
			"CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"GET <pattern>",
			"    Return the proxy's parameters and the nodes' common values of the parameters CONFIG SET fans out, matching the glob-like pattern.",
			"SET <directive> <value> [<directive> <value> ...]",
			"    Set the parameters on every node, masters and replicas; all or none (proxy.config_set).",
			"RESETSTAT",
			"    Reset the statistics of every node and the proxy's own.",
			"REWRITE is refused: each node keeps its own config file.",
		}
		dst = redcon.AppendArray(dst, len(help))
		for _, h := range help {
			dst = redcon.AppendBulkString(dst, h)
		}
		return dst
	case equalFold(args[1], "REWRITE"):
		return appendError(dst, "ERR slotway: CONFIG REWRITE is refused: each node has its own config file; run it on each node")
	}
	return appendError(dst, "ERR unknown subcommand '"+printable(args[1])+"'. Try CONFIG HELP.")
}

// cmdReset: RESET ends a transaction and its WATCH, leaves pub/sub, forgets
// the name and the authentication, and returns to RESP2.
func cmdReset(c *client, args [][]byte, dst []byte) []byte {
	c.endTx()
	c.endBlocking()
	c.resetPubsub()
	c.name = c.name[:0]
	c.setUser(nil)
	c.updateView()
	c.setProto(2)
	c.replyMode, c.replySet = replyOn, true // RESET itself is answered
	return append(dst, "+RESET\r\n"...)
}

// clientView is what other goroutines (CLIENT LIST, KILL) read of a
// client; its own goroutine updates it when the values change, which is
// rare (SETNAME, AUTH, SETINFO).
type clientView struct {
	mu                          sync.Mutex
	name, user, libName, libVer string
}

func (c *client) updateView() {
	user := ""
	if c.user != nil {
		user = c.user.name
	}
	c.view.mu.Lock()
	c.view.name, c.view.user, c.view.libName, c.view.libVer = string(c.name), user, string(c.libName), string(c.libVer)
	c.view.mu.Unlock()
}

func (c *client) setUser(u *user) {
	c.user = u
	c.updateView()
}

func (c *client) userNameOrDefault() string {
	c.view.mu.Lock()
	defer c.view.mu.Unlock()
	if c.view.user == "" {
		return "default"
	}
	return c.view.user
}
