package proxy

import (
	"bytes"
	"strconv"

	"github.com/slotway/slotway/internal/hashslot"
)

// splitKind says how a multi-key command is split across slots and how
// the parts' replies are merged.
type splitKind uint8

const (
	splitNone  splitKind = iota
	splitMGet            // values in request order
	splitMSet            // OK only when every part is OK
	splitCount           // integers summed (DEL, UNLINK, EXISTS, TOUCH)
	// Fan-out: the same command to every master.
	fanSum      // PUBSUB NUMPAT: integers summed
	fanDBSize   // DBSIZE: integers summed, minus the last part (Slotway's own keys)
	fanConcat   // KEYS: arrays concatenated (capped)
	fanAllOK    // FLUSHALL, FLUSHDB, SCRIPT FLUSH: OK when every master says OK
	fanFirst    // SCRIPT LOAD: every master answers the same; return one
	fanAnyBulk  // RANDOMKEY: the first non-nil answer
	fanAndArray // SCRIPT EXISTS: per element, 1 only when every master has it
	fanAnyOK    // SCRIPT KILL, FUNCTION KILL: OK when one master had something to kill
	fanUnion    // PUBSUB CHANNELS: arrays merged without duplicates
	fanPairSum  // PUBSUB NUMSUB: [name count ...] with counts summed
	scanOne     // SCAN: one master at a time, the cursor rewritten
)

// A SCAN cursor through Slotway is the master's own cursor shifted left by
// scanNodeBits, plus the master's index in the slot map's masters sorted by
// address: another instance with the same slot map continues it.
const scanNodeBits = 10

// fanoutCommands go to every master.
var fanoutCommands = map[string]splitKind{
	"dbsize": fanDBSize, "keys": fanConcat, "flushall": fanAllOK, "flushdb": fanAllOK, "randomkey": fanAnyBulk,
	"script|load": fanFirst, "script|exists": fanAndArray, "script|flush": fanAllOK, "script|kill": fanAnyOK,
	"function|load": fanFirst, "function|delete": fanAllOK, "function|flush": fanAllOK,
	"function|restore": fanAllOK, "function|kill": fanAnyOK,
	"pubsub|channels": fanUnion, "pubsub|shardchannels": fanUnion, "pubsub|numpat": fanSum,
	"pubsub|numsub": fanPairSum, "pubsub|shardnumsub": fanPairSum,
	"scan": scanOne,
}

// prepareScan sends SCAN to the master the cursor names, with that
// master's own cursor.
func (c *client) prepareScan(req *request, ci *cmdInfo, args [][]byte) {
	cur, ok := parseLen(args[1])
	if !ok {
		req.reply = appendError(req.reply, "ERR invalid cursor")
		return
	}
	t := c.s.topo.load()
	idx, nodeCur := int(uint64(cur)&(1<<scanNodeBits-1)), uint64(cur)>>scanNodeBits
	if idx >= len(t.masters) {
		req.reply = append(req.reply, "*2\r\n$1\r\n0\r\n*0\r\n"...) // an old cursor past the last master
		return
	}
	req.subFrom = len(c.subs)
	sub := c.newSub(ci)
	var num [20]byte
	rest := append([][]byte{strconv.AppendUint(num[:0], nodeCur, 10)}, args[2:]...)
	sub.own = appendCommandName(sub.own[:0], args[0], rest)
	sub.raw = sub.own
	sub.target, sub.pinned = t.masters[idx], true
	req.subTo = len(c.subs)
	req.info = ci
	req.scanMaster = uint64(idx)
	req.scanMasters = uint64(len(t.masters))
}

// mergeScan rewrites the master's next cursor into a Slotway cursor.
func mergeScan(r *request, part *request) []byte {
	elems, ok := arrayElems(part.reply)
	if !ok || len(elems) != 2 {
		return appendError(r.reply[:0], "ERR slotway: malformed SCAN reply from a master")
	}
	line, next, ok := readLine(elems[0], 1)
	if !ok || elems[0][0] != '$' {
		return appendError(r.reply[:0], "ERR slotway: malformed SCAN reply from a master")
	}
	n, _ := parseSigned(line)
	nodeNext, ok := parseLen(elems[0][next : next+int(n)])
	if !ok || uint64(nodeNext) >= 1<<(64-scanNodeBits) {
		return appendError(r.reply[:0], "ERR slotway: SCAN cursor from a master too large to encode")
	}
	var cur uint64
	switch {
	case nodeNext != 0:
		cur = uint64(nodeNext)<<scanNodeBits | r.scanMaster
	case r.scanMaster+1 < r.scanMasters:
		cur = r.scanMaster + 1 // this master is done: the next one, from its start
	}
	var num [20]byte
	out := append(r.reply[:0], "*2\r\n"...)
	s := strconv.AppendUint(num[:0], cur, 10)
	out = appendHeader(out, '$', int64(len(s)))
	out = append(out, s...)
	out = append(out, '\r', '\n')
	return filterOwnArray(out, elems[1])
}

// prepareFanout sends raw to every master of the current slot map, one
// part each, pinned to that master. Commands that would show or delete
// Slotway's own keys send their replacement (ownkeys.go) instead; DBSIZE
// gets one more part that counts the own keys, subtracted when merging.
func (c *client) prepareFanout(req *request, ci *cmdInfo, args [][]byte, raw []byte) {
	t := c.s.topo.load()
	if len(t.masters) == 0 {
		req.reply = appendError(req.reply, "CLUSTERDOWN Hash slot not served")
		return
	}
	req.subFrom = len(c.subs)
	for _, b := range t.masters {
		sub := c.newSub(ci)
		if own := ownFanoutRaw(sub.own, ci, args); own != nil {
			sub.own = own
			sub.asking = ci.name != "randomkey" // FLUSH: see flushScript
		} else {
			sub.own = append(sub.own[:0], raw...)
		}
		sub.raw = sub.own
		sub.target, sub.pinned = b, true
	}
	if ci.split == fanDBSize {
		sub := c.newSub(ci)
		sub.own = appendCommandName(sub.own[:0], existsCmd, ownKeyArgs)
		sub.raw = sub.own
		sub.slot = ownSlot
	}
	req.subTo = len(c.subs)
	req.info = ci
}

// Splittable commands. Atomic multi-key commands (MSETNX, RENAME, SMOVE,
// SINTERSTORE ...) are never split: a silent non-atomic split would break
// their contract, so they keep -CROSSSLOT.
var splitCommands = map[string]splitKind{
	"mget": splitMGet, "mset": splitMSet,
	"del": splitCount, "unlink": splitCount, "exists": splitCount, "touch": splitCount,
}

// splitState is per-client scratch, reused across batches.
type splitState struct {
	slotPart map[int]int // slot -> part index within the current command
	keyPart  []int32     // for MGET: part index of each key, in order
	parts    [][][]byte  // args of each part, without the command name
}

func (c *client) resetSubs() {
	for i := range c.subs {
		r := &c.subs[i]
		if cap(r.reply) > 64<<10 {
			r.reply = nil
		}
		if cap(r.own) > 64<<10 {
			r.own = nil
		}
		r.info, r.target, r.raw, r.pinned = nil, nil, nil, false
	}
	c.subs = c.subs[:0]
}

// prepareSplit turns a cross-slot command into one part per slot, queued
// in c.subs; the parent is answered by mergeSplits once they are done.
func (c *client) prepareSplit(req *request, ci *cmdInfo, args [][]byte) {
	sp := &c.split
	if sp.slotPart == nil {
		sp.slotPart = map[int]int{}
	}
	clear(sp.slotPart)
	sp.keyPart = sp.keyPart[:0]
	for i := range sp.parts {
		sp.parts[i] = sp.parts[i][:0]
	}
	step := 1
	if ci.split == splitMSet {
		step = 2
		if len(args)%2 == 0 {
			// Checked before any part runs: a half pair must not leave
			// the other parts written.
			req.reply = appendError(req.reply, "ERR wrong number of arguments for '"+ci.name+"' command")
			ci.stats.errors.Add(1)
			return
		}
	}
	nparts := 0
	for i := 1; i+step-1 < len(args); i += step {
		slot := hashslot.Of(args[i])
		p, ok := sp.slotPart[slot]
		if !ok {
			p = nparts
			nparts++
			sp.slotPart[slot] = p
			if p == len(sp.parts) {
				sp.parts = append(sp.parts, nil)
			}
			sp.parts[p] = sp.parts[p][:0]
		}
		sp.parts[p] = append(sp.parts[p], args[i:i+step]...)
		sp.keyPart = append(sp.keyPart, int32(p))
	}
	req.subFrom = len(c.subs)
	for p := range nparts {
		sub := c.newSub(ci)
		sub.own = appendCommandName(sub.own[:0], args[0], sp.parts[p])
		sub.raw = sub.own
		sub.slot = hashslot.Of(sp.parts[p][0])
		c.s.slotOps[sub.slot].Add(1)
	}
	req.subTo = len(c.subs)
	req.info = ci
	if ci.split == splitMGet {
		// Remember which part each key went to, in the parent's own buffer.
		req.own = req.own[:0]
		for _, p := range sp.keyPart {
			req.own = strconv.AppendInt(req.own, int64(p), 10)
			req.own = append(req.own, ' ')
		}
	}
	c.s.m.splits.Inc()
}

// newSub appends a part to c.subs, reusing an old slot's buffers, and
// resets it to be sent.
func (c *client) newSub(ci *cmdInfo) *request {
	if len(c.subs) == cap(c.subs) {
		c.subs = append(c.subs, request{})
	} else {
		c.subs = c.subs[:len(c.subs)+1]
	}
	sub := &c.subs[len(c.subs)-1]
	sub.batch = &c.batch
	sub.err, sub.target, sub.asking, sub.redirects, sub.pinned = nil, nil, false, 0, false
	sub.reply = sub.reply[:0]
	sub.info, sub.slot, sub.state = ci, -1, stSend
	return sub
}

// appendCommandName encodes name followed by args as a RESP array.
func appendCommandName(dst, name []byte, args [][]byte) []byte {
	dst = appendHeader(dst, '*', int64(len(args)+1))
	dst = appendBulks(dst, name)
	return appendBulks(dst, args...)
}

// appendBulks appends each of args as a RESP bulk string.
func appendBulks(dst []byte, args ...[]byte) []byte {
	for _, a := range args {
		dst = appendHeader(dst, '$', int64(len(a)))
		dst = append(dst, a...)
		dst = append(dst, '\r', '\n')
	}
	return dst
}

// mergeSplits builds each split parent's reply from its parts.
func (c *client) mergeSplits(reqs []request) {
	for i := range reqs {
		r := &reqs[i]
		if r.subTo == r.subFrom {
			continue
		}
		parts := c.subs[r.subFrom:r.subTo]
		if r.info.split == fanAnyOK {
			r.reply = anyOK(r.reply, parts)
			continue
		}
		// Any part that failed makes the whole command fail, as one
		// server would have answered it.
		failed := false
		for j := range parts {
			if len(parts[j].reply) > 0 && parts[j].reply[0] == '-' {
				r.reply = append(r.reply[:0], parts[j].reply...)
				failed = true
				break
			}
		}
		if failed {
			r.info.stats.errors.Add(1)
			continue
		}
		switch r.info.split {
		case fanSum:
			r.reply = sumReplies(r.reply, parts)
		case fanDBSize:
			r.reply = sumReplies(r.reply, parts[:len(parts)-1])
			own := parts[len(parts)-1].reply
			if len(own) > 3 && own[0] == ':' {
				n, _ := parseSigned(own[1 : len(own)-2])
				sum, _ := parseSigned(r.reply[1 : len(r.reply)-2])
				r.reply = appendHeader(r.reply[:0], ':', max(sum-n, 0))
			}
		case fanConcat:
			r.reply = c.concatReplies(r, parts)
		case fanFirst:
			r.reply = append(r.reply[:0], parts[0].reply...)
		case fanAnyBulk:
			r.reply = c.appendNull(r.reply[:0])
			for j := range parts {
				if rep := parts[j].reply; len(rep) > 0 && rep[0] == '$' && string(rep[:3]) != "$-1" {
					r.reply = append(r.reply[:0], rep...)
					break
				}
			}
		case fanAndArray:
			r.reply = andArrays(r.reply, parts)
			r.reply = c.s.scripts.orKnown(r.reply, r.raw)
		case fanUnion:
			r.reply = unionArrays(r.reply, parts)
		case fanPairSum:
			r.reply = sumPairs(r.reply, parts)
		case scanOne:
			r.reply = mergeScan(r, &parts[0])
		case splitMSet, fanAllOK:
			r.reply = append(r.reply[:0], "+OK\r\n"...)
		case splitCount:
			r.reply = sumReplies(r.reply, parts)
		case splitMGet:
			r.reply = c.mergeMGet(r, parts)
		}
	}
}

// mergeMGet interleaves the parts' arrays back into request order.
func (c *client) mergeMGet(r *request, parts []request) []byte {
	cursor := make([]int, len(parts)) // per part: offset of its next element
	for j := range parts {
		rep := parts[j].reply
		_, next, ok := readLine(rep, 1)
		if !ok || rep[0] != '*' {
			return appendError(r.reply[:0], "ERR slotway: malformed MGET reply from a master")
		}
		cursor[j] = next
	}
	out := r.reply[:0]
	nkeys := 0
	for _, b := range r.own {
		if b == ' ' {
			nkeys++
		}
	}
	out = appendHeader(out, '*', int64(nkeys))
	idx := r.own
	for len(idx) > 0 {
		sp := 0
		for idx[sp] != ' ' {
			sp++
		}
		p, _ := parseLen(idx[:sp])
		idx = idx[sp+1:]
		rep := parts[p].reply
		n, _, err := scanReply(rep[cursor[p]:])
		if err != nil || n == 0 {
			return appendError(r.reply[:0], "ERR slotway: malformed MGET reply from a master")
		}
		out = append(out, rep[cursor[p]:cursor[p]+n]...)
		cursor[p] += n
	}
	return out
}

func sumReplies(dst []byte, parts []request) []byte {
	var sum int64
	for j := range parts {
		rep := parts[j].reply
		if len(rep) > 3 && rep[0] == ':' {
			n, _ := parseSigned(rep[1 : len(rep)-2])
			sum += n
		}
	}
	return appendHeader(dst[:0], ':', sum)
}

// arrayElems returns the elements of a RESP array reply.
func arrayElems(rep []byte) ([][]byte, bool) {
	line, next, ok := readLine(rep, 1)
	if !ok || (rep[0] != '*' && rep[0] != '%' && rep[0] != '~') {
		return nil, false
	}
	n, ok := parseSigned(line)
	if !ok {
		return nil, false
	}
	if rep[0] == '%' {
		n *= 2 // a RESP3 map: keys and values
	}
	elems := make([][]byte, 0, max(n, 0))
	for range n {
		l, _, err := scanReply(rep[next:])
		if err != nil || l == 0 {
			return nil, false
		}
		elems = append(elems, rep[next:next+l])
		next += l
	}
	return elems, true
}

// concatReplies merges KEYS answers, refusing past proxy.keys_limit.
func (c *client) concatReplies(r *request, parts []request) []byte {
	total := 0
	all := make([][][]byte, len(parts))
	for j := range parts {
		e, ok := arrayElems(parts[j].reply)
		if !ok {
			return appendError(r.reply[:0], "ERR slotway: malformed reply from a master")
		}
		if bytes.Contains(parts[j].reply, ownMarker) {
			e = dropOwn(e)
		}
		all[j] = e
		total += len(e)
	}
	if limit := c.s.settings().keysLimit; limit > 0 && total > limit {
		return appendError(r.reply[:0], "ERR KEYS would return "+strconv.Itoa(total)+" keys, over proxy.keys_limit "+strconv.Itoa(limit)+"; use SCAN")
	}
	out := appendHeader(r.reply[:0], '*', int64(total))
	for _, e := range all {
		for _, x := range e {
			out = append(out, x...)
		}
	}
	return out
}

// andArrays merges SCRIPT EXISTS: a script exists only if every master
// has it, since EVALSHA may land on any of them.
func andArrays(dst []byte, parts []request) []byte {
	var res []bool
	for j := range parts {
		e, ok := arrayElems(parts[j].reply)
		if !ok {
			return appendError(dst[:0], "ERR slotway: malformed reply from a master")
		}
		if res == nil {
			res = make([]bool, len(e))
			for i := range res {
				res[i] = true
			}
		}
		for i := range min(len(e), len(res)) {
			res[i] = res[i] && string(e[i]) == ":1\r\n"
		}
	}
	out := appendHeader(dst[:0], '*', int64(len(res)))
	for _, ok := range res {
		if ok {
			out = append(out, ":1\r\n"...)
		} else {
			out = append(out, ":0\r\n"...)
		}
	}
	return out
}

// anyOK: +OK when any part said OK, else the first part's error.
func anyOK(dst []byte, parts []request) []byte {
	for j := range parts {
		if string(parts[j].reply) == "+OK\r\n" {
			return append(dst[:0], "+OK\r\n"...)
		}
	}
	return append(dst[:0], parts[0].reply...)
}

// unionArrays merges arrays of bulk strings, dropping duplicates.
func unionArrays(dst []byte, parts []request) []byte {
	seen := map[string]bool{}
	var elems [][]byte
	for j := range parts {
		es, ok := arrayElems(parts[j].reply)
		if !ok {
			return appendError(dst[:0], "ERR slotway: malformed reply from a master")
		}
		for _, e := range es {
			if !seen[string(e)] {
				seen[string(e)] = true
				elems = append(elems, e)
			}
		}
	}
	dst = appendHeader(dst[:0], '*', int64(len(elems)))
	for _, e := range elems {
		dst = append(dst, e...)
	}
	return dst
}

// sumPairs adds up [name count name count ...] arrays that list the same
// names in the same order (PUBSUB NUMSUB answers for every name asked).
func sumPairs(dst []byte, parts []request) []byte {
	first, ok := arrayElems(parts[0].reply)
	if !ok || len(first)%2 != 0 {
		return appendError(dst[:0], "ERR slotway: malformed reply from a master")
	}
	isMap := parts[0].reply[0] == '%' // RESP3
	sums := make([]int64, len(first)/2)
	for j := range parts {
		es, ok := arrayElems(parts[j].reply)
		if !ok || len(es) != len(first) {
			return appendError(dst[:0], "ERR slotway: malformed reply from a master")
		}
		for i := 1; i < len(es); i += 2 {
			if len(es[i]) > 3 && es[i][0] == ':' {
				n, _ := parseSigned(es[i][1 : len(es[i])-2])
				sums[i/2] += n
			}
		}
	}
	if isMap {
		dst = appendHeader(dst[:0], '%', int64(len(first)/2))
	} else {
		dst = appendHeader(dst[:0], '*', int64(len(first)))
	}
	for i := 0; i < len(first); i += 2 {
		dst = append(dst, first[i]...)
		dst = appendHeader(dst, ':', sums[i/2])
	}
	return dst
}
