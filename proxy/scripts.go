package proxy

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"sync"
	"time"
)

// scriptCache remembers the scripts clients ran with EVAL or loaded with
// SCRIPT LOAD. Redis caches a script only on the master that ran it, and a
// master added later has none; when EVALSHA meets NOSCRIPT on a master the
// proxy sends the body there (as EVAL, which also caches it) instead of
// failing, so EVALSHA works wherever its keys live.
type scriptCache struct {
	mu     sync.RWMutex
	bySHA  map[string][]byte // lower-case hex sha1 → body
	byBody map[string]string // body → sha1, to skip hashing known scripts
	size   int
}

// Bound the cache: scripts generated per call (an anti-pattern Redis also
// suffers from) must not grow the proxy without limit.
const (
	maxScripts     = 10000
	maxScriptBytes = 64 << 20
)

func (sc *scriptCache) add(body []byte) {
	sc.mu.RLock()
	_, known := sc.byBody[string(body)]
	sc.mu.RUnlock()
	if known {
		return
	}
	sum := sha1.Sum(body)
	sha := hex.EncodeToString(sum[:])
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.bySHA == nil {
		sc.bySHA, sc.byBody = map[string][]byte{}, map[string]string{}
	}
	if len(sc.bySHA) >= maxScripts || sc.size+len(body) > maxScriptBytes {
		return
	}
	b := string(body)
	sc.bySHA[sha] = []byte(b)
	sc.byBody[b] = sha
	sc.size += len(body)
}

func (sc *scriptCache) get(sha []byte) ([]byte, bool) {
	sc.mu.RLock()
	defer sc.mu.RUnlock()
	var buf [40]byte
	l, ok := lower(buf[:0], sha)
	if !ok {
		return nil, false
	}
	b, ok := sc.bySHA[string(l)]
	return b, ok
}

func (sc *scriptCache) flush() {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.bySHA, sc.byBody, sc.size = nil, nil, 0
}

// noteScript records script bodies as EVAL and SCRIPT LOAD pass through.
func (c *client) noteScript(ci *cmdInfo, args [][]byte) {
	switch ci.name {
	case "eval", "eval_ro":
		c.s.scripts.add(args[1])
	case "script|load":
		c.s.scripts.add(args[2])
	case "script|flush":
		c.s.scripts.flush()
	}
}

// reloadScript turns an EVALSHA that met NOSCRIPT into the EVAL of the
// cached body, sent to the same master. It reports whether r is to be
// sent again.
func (c *client) reloadScript(r *request) bool {
	name := r.info.name
	if (name != "evalsha" && name != "evalsha_ro") || r.repaired || !bytes.HasPrefix(r.reply, []byte("-NOSCRIPT")) {
		return false
	}
	args := parseRequest(r.raw)
	if len(args) < 3 {
		return false
	}
	body, ok := c.s.scripts.get(args[1])
	if !ok {
		return false
	}
	eval := []byte("EVAL")
	if name == "evalsha_ro" {
		eval = []byte("EVAL_RO")
	}
	args[0], args[1] = eval, body
	r.own = appendCommand(r.own[:0], args)
	r.raw = r.own
	r.repaired = true
	r.state = stSend
	return true
}

// parseRequest decodes one RESP request (as the reader produced it).
func parseRequest(raw []byte) [][]byte {
	rd := newReader(bytes.NewReader(raw), Limits{MaxBulkLen: int64(len(raw)), MaxArgs: len(raw), MaxInline: len(raw), MaxBatchLen: 1})
	rd.buf = append([]byte(nil), raw...)
	rd.w = len(raw)
	args, _, err := rd.next()
	if err != nil {
		return nil
	}
	return args
}

// orKnown sets to 1 the SCRIPT EXISTS answers for scripts the proxy can
// load where they are missing: EVALSHA of them works through the proxy.
func (sc *scriptCache) orKnown(reply, raw []byte) []byte {
	elems, ok := arrayElems(reply)
	args := parseRequest(raw)
	if !ok || len(args) != len(elems)+2 {
		return reply
	}
	out := appendHeader(nil, '*', int64(len(elems)))
	for i, e := range elems {
		if _, known := sc.get(args[i+2]); known {
			e = []byte(":1\r\n")
		}
		out = append(out, e...)
	}
	return append(reply[:0], out...)
}

// repairFunctions answers FCALL's "Function not found" on a master that
// lacks libraries the others have (a master added by scaling, or one whose
// functions were flushed): it copies them there with FUNCTION DUMP and
// RESTORE from another master, then the call is sent again. It reports
// whether r is to be sent again.
func (c *client) repairFunctions(r *request) bool {
	name := r.info.name
	if (name != "fcall" && name != "fcall_ro") || r.target == nil || r.repaired ||
		!bytes.HasPrefix(r.reply, []byte("-ERR Function not found")) {
		return false
	}
	t := c.s.topo.load()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, m := range t.masters {
		if m.addr == r.target.addr {
			continue
		}
		dump, err := c.s.topo.control(m.addr).FunctionDump(ctx).Result()
		if err != nil || dump == "" {
			continue
		}
		if mine, err := c.s.topo.control(r.target.addr).FunctionDump(ctx).Result(); err == nil && mine == dump {
			return false // the same libraries: the function exists nowhere
		}
		err = c.s.topo.control(r.target.addr).Do(ctx, "FUNCTION", "RESTORE", dump, "REPLACE").Err()
		if err != nil {
			c.s.log.Warn("could not copy functions to a master", "to", r.target.addr, "from", m.addr, "err", err)
			return false
		}
		c.s.log.Info("copied functions to a master that lacked them", "to", r.target.addr, "from", m.addr)
		r.repaired = true
		r.state = stSend
		return true
	}
	return false
}
