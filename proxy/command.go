package proxy

import (
	"fmt"
	"strings"

	"github.com/slotway/slotway/internal/hashslot"
)

// cmdKind says how the proxy serves a command.
type cmdKind uint8

const (
	kindForward     cmdKind = iota // route by the slot of its keys
	kindAnyMaster                  // keyless, any master answers correctly
	kindLocal                      // answered by Slotway itself
	kindUnsupported                // refused with a clear error
	kindFanout                     // sent to every master, replies merged
	kindBlocking                   // run on a dedicated connection (BLPOP, WAIT)
)

type cmdFlags uint16

const (
	flagWrite cmdFlags = 1 << iota
	flagReadonly
	flagBlocking
	flagPubsub
	flagMovableKeys
	flagNoScript
	flagNoMulti
	flagMayReplicate
)

var flagNames = map[string]cmdFlags{
	"write": flagWrite, "readonly": flagReadonly, "blocking": flagBlocking,
	"pubsub": flagPubsub, "movablekeys": flagMovableKeys, "noscript": flagNoScript,
	"no_multi": flagNoMulti, "may_replicate": flagMayReplicate,
}

// keySpec is one Redis 7 key specification: where to start looking
// (begin_search) and how to find the keys from there (find_keys).
type keySpec struct {
	beginIndex int    // begin_search index; 0 when keyword is used
	keyword    string // begin_search keyword (upper case)
	startFrom  int    // keyword search start; negative counts from the end
	findRange  bool   // find_keys range (else keynum)
	lastKey    int    // range: last key offset from the first; negative from the end
	keyStep    int
	limit      int // range with lastkey<0: use 1/limit of the remaining args
	keyNumIdx  int // keynum: where the key count is, relative to the begin
	firstKey   int // keynum: first key, relative to the begin
}

// cmdInfo describes one command or subcommand. Instances are immutable once
// the table is published.
type cmdInfo struct {
	name   string // lower case; subcommands as "object|encoding"
	arity  int
	flags  cmdFlags
	specs  []keySpec
	subs   map[string]*cmdInfo
	kind   cmdKind
	reason string // for kindUnsupported
	// blockArg: blocking only when a BLOCK argument is given (XREAD).
	blockArg bool
	local    *localCmd // for kindLocal
	family   uint8     // index into familyNames
	split    splitKind // how a cross-slot call is split, if at all
	cats     uint64    // ACL categories as a bitmask (see categoryBit)
	stats    *cmdStats
}

// commandTable maps lower-case command names to their description.
type commandTable struct {
	cmds map[string]*cmdInfo
}

// lookup finds args[0] (and args[1] for container commands) without
// allocating. A nil result with sub=true means an unknown subcommand.
func (t *commandTable) lookup(args [][]byte) (ci *cmdInfo, unknownSub bool) {
	var buf [32]byte
	name, ok := lower(buf[:0], args[0])
	if !ok {
		return nil, false
	}
	ci = t.cmds[string(name)]
	if ci == nil || ci.subs == nil || ci.kind == kindLocal || len(args) < 2 {
		return ci, false
	}
	sub, ok := lower(buf[:0], args[1])
	if !ok {
		return nil, true
	}
	if s := ci.subs[string(sub)]; s != nil {
		return s, false
	}
	return nil, true
}

func lower(dst, b []byte) ([]byte, bool) {
	if len(b) > cap(dst) {
		return nil, false
	}
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst, true
}

// arityOK applies Redis's arity rule: positive is exact, negative a minimum.
func (ci *cmdInfo) arityOK(n int) bool {
	if ci.arity >= 0 {
		return n == ci.arity
	}
	return n >= -ci.arity
}

// resendable: running ci twice is the same as running it once, so when
// the connection breaks after it was sent it can be sent again: Redis
// flags it readonly (GET, MGET, SCAN, EVAL_RO, FCALL_RO ...) and not
// write. Blocking commands, transactions and subscriptions never ask:
// they run on connections of their own.
func (ci *cmdInfo) resendable() bool {
	return ci.flags&(flagReadonly|flagWrite|flagPubsub) == flagReadonly && ci.kind != kindBlocking
}

// slotOf returns the slot all keys of args hash to, -1 when the command names
// no key, and cross=true when keys hash to different slots.
func (ci *cmdInfo) slotOf(args [][]byte) (slot int, cross bool) {
	slot = -1
	ci.eachKey(args, func(k []byte) bool {
		s := hashslot.Of(k)
		if slot >= 0 && s != slot {
			cross = true
			return false
		}
		slot = s
		return true
	})
	return slot, cross
}

// eachKey calls fn with every key of args until fn returns false. It
// follows getKeysUsingKeySpecs in Redis's db.c.
func (ci *cmdInfo) eachKey(args [][]byte, fn func(key []byte) bool) {
	argc := len(args)
	for i := range ci.specs {
		ks := &ci.specs[i]
		first := ks.beginIndex
		if ks.keyword != "" {
			first = findKeyword(args, ks.keyword, ks.startFrom)
			if first < 0 {
				continue
			}
		}
		if first <= 0 || first >= argc {
			continue
		}
		var last, step int
		if ks.findRange {
			step = ks.keyStep
			switch {
			case ks.lastKey >= 0:
				last = first + ks.lastKey
			case ks.limit <= 1:
				last = argc + ks.lastKey
			default:
				last = first + (argc-first)/ks.limit + ks.lastKey
			}
		} else {
			idx := first + ks.keyNumIdx
			if idx >= argc {
				continue
			}
			n, ok := parseLen(args[idx])
			if !ok || n == 0 || n > int64(argc) {
				continue
			}
			first += ks.firstKey
			step = ks.keyStep
			last = first + (int(n)-1)*step
		}
		if step <= 0 {
			step = 1
		}
		for k := first; k <= last && k < argc; k += step {
			if !fn(args[k]) {
				return
			}
		}
	}
}

// findKeyword returns the index after keyword, searching from startFrom
// (negative: backwards from the end), or -1.
func findKeyword(args [][]byte, kw string, startFrom int) int {
	argc := len(args)
	if startFrom >= 0 {
		for i := max(startFrom, 1); i < argc-1; i++ {
			if equalFold(args[i], kw) {
				return i + 1
			}
		}
		return -1
	}
	for i := argc + startFrom; i >= 1; i-- {
		if i < argc-1 && equalFold(args[i], kw) {
			return i + 1
		}
	}
	return -1
}

func equalFold(b []byte, upper string) bool {
	if len(b) != len(upper) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != upper[i] {
			return false
		}
	}
	return true
}

// parseCommandTable builds the table from a RESP2 COMMAND reply as decoded
// by go-redis ([]any of []any, strings and int64s).
func parseCommandTable(reply any) (*commandTable, error) {
	list, ok := reply.([]any)
	if !ok || len(list) == 0 {
		return nil, fmt.Errorf("COMMAND reply is %T, want a non-empty array", reply)
	}
	t := &commandTable{cmds: make(map[string]*cmdInfo, len(list))}
	for _, e := range list {
		ci, err := parseCommandEntry(e)
		if err != nil {
			return nil, err
		}
		t.cmds[ci.name] = ci
	}
	applyOverrides(t)
	return t, nil
}

func parseCommandEntry(e any) (*cmdInfo, error) {
	f, ok := e.([]any)
	if !ok || len(f) < 6 {
		return nil, fmt.Errorf("COMMAND entry %v: want an array of at least 6 fields", e)
	}
	name, _ := f[0].(string)
	arity, _ := f[1].(int64)
	if name == "" {
		return nil, fmt.Errorf("COMMAND entry without a name: %v", e)
	}
	ci := &cmdInfo{name: strings.ToLower(name), arity: int(arity), stats: &cmdStats{}}
	if fl, ok := f[2].([]any); ok {
		for _, x := range fl {
			if s, ok := x.(string); ok {
				ci.flags |= flagNames[strings.ToLower(s)]
			}
		}
	}
	ci.family = familyOther
	if len(f) >= 7 {
		if cats, ok := f[6].([]any); ok {
			var names []string
			for _, c := range cats {
				if s, ok := c.(string); ok {
					names = append(names, strings.ToLower(s))
				}
			}
			ci.family = familyOf(names)
			for _, n := range names {
				ci.cats |= categoryBit(n)
			}
		}
	}
	if len(f) >= 9 {
		specs, err := parseKeySpecs(f[8])
		if err != nil {
			return nil, fmt.Errorf("command %s: %w", ci.name, err)
		}
		ci.specs = specs
	} else {
		// Redis before 7 has no key specs: use first/last/step.
		first, _ := f[3].(int64)
		last, _ := f[4].(int64)
		step, _ := f[5].(int64)
		if first > 0 {
			ci.specs = []keySpec{{beginIndex: int(first), findRange: true, lastKey: int(last - first), keyStep: int(step)}}
			if last < 0 {
				ci.specs[0].lastKey = int(last)
			}
		}
	}
	if len(f) >= 10 {
		if subs, ok := f[9].([]any); ok && len(subs) > 0 {
			ci.subs = make(map[string]*cmdInfo, len(subs))
			for _, s := range subs {
				sci, err := parseCommandEntry(s)
				if err != nil {
					return nil, err
				}
				_, subName, _ := strings.Cut(sci.name, "|")
				ci.subs[subName] = sci
			}
		}
	}
	return ci, nil
}

// pairs reads a RESP2 flat map ["k", v, "k", v, ...].
func pairs(v any) map[string]any {
	l, _ := v.([]any)
	m := make(map[string]any, len(l)/2)
	for i := 0; i+1 < len(l); i += 2 {
		if k, ok := l[i].(string); ok {
			m[k] = l[i+1]
		}
	}
	return m
}

func asInt(v any) int {
	n, _ := v.(int64)
	return int(n)
}

func parseKeySpecs(v any) ([]keySpec, error) {
	l, _ := v.([]any)
	var specs []keySpec
	for _, raw := range l {
		m := pairs(raw)
		var ks keySpec
		bs := pairs(m["begin_search"])
		bspec := pairs(bs["spec"])
		switch bs["type"] {
		case "index":
			ks.beginIndex = asInt(bspec["index"])
		case "keyword":
			ks.keyword = strings.ToUpper(fmt.Sprint(bspec["keyword"]))
			ks.startFrom = asInt(bspec["startfrom"])
		default:
			continue // "unknown": see applyOverrides
		}
		fk := pairs(m["find_keys"])
		fspec := pairs(fk["spec"])
		switch fk["type"] {
		case "range":
			ks.findRange = true
			ks.lastKey = asInt(fspec["lastkey"])
			ks.keyStep = asInt(fspec["keystep"])
			ks.limit = asInt(fspec["limit"])
		case "keynum":
			ks.keyNumIdx = asInt(fspec["keynumidx"])
			ks.firstKey = asInt(fspec["firstkey"])
			ks.keyStep = asInt(fspec["keystep"])
		default:
			continue
		}
		specs = append(specs, ks)
	}
	return specs, nil
}

// Pub/Sub commands are served by the client's subscription session
// (pubsub.go); the table marks them so nothing else routes them (inside
// MULTI they are refused).
var pubsubCommands = []string{
	"subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ssubscribe", "sunsubscribe",
}

// Commands that watch or replicate one node make no sense for a proxy.
var nodeStreamCommands = []string{"sync", "psync"}

// Keyless commands whose answer is the same from any master (functions are
// loaded on every master, see fanoutCommands).
var anyMasterCommands = []string{"publish", "command", "time", "lolwut",
	"function|list", "function|dump", "function|stats"}

// applyOverrides fixes what key specs cannot say and sets each command's kind.
func applyOverrides(t *commandTable) {
	for _, ci := range t.cmds {
		classify := func(ci *cmdInfo) {
			switch {
			case ci.flags&flagBlocking != 0:
				ci.kind, ci.reason = kindBlocking, ""
			case strings.HasSuffix(ci.name, "|help"):
				ci.kind, ci.reason = kindAnyMaster, "" // the same text from any master
			case len(ci.specs) == 0 && ci.subs == nil:
				ci.kind, ci.reason = kindUnsupported, "it administers one node; run it against the cluster nodes directly"
			}
		}
		classify(ci)
		for _, s := range ci.subs {
			classify(s)
		}
	}
	for _, name := range pubsubCommands {
		if ci := t.cmds[name]; ci != nil {
			ci.kind, ci.reason = kindUnsupported, "it needs connection state"
		}
	}
	for _, name := range nodeStreamCommands {
		if ci := t.cmds[name]; ci != nil {
			ci.kind, ci.reason = kindUnsupported, "it streams one node's traffic; run it against the cluster nodes directly"
		}
	}
	for _, name := range anyMasterCommands {
		top, sub, isSub := strings.Cut(name, "|")
		ci := t.cmds[top]
		if ci != nil && isSub {
			ci = ci.subs[sub]
		}
		if ci != nil {
			ci.kind, ci.reason = kindAnyMaster, ""
			for _, s := range ci.subs {
				s.kind, s.reason = kindAnyMaster, ""
			}
		}
	}
	for name, k := range fanoutCommands {
		top, sub, isSub := strings.Cut(name, "|")
		ci := t.cmds[top]
		if ci != nil && isSub {
			ci = ci.subs[sub]
		}
		if ci != nil {
			ci.kind, ci.reason, ci.split = kindFanout, "", k
		}
	}
	for name, k := range splitCommands {
		if ci := t.cmds[name]; ci != nil {
			ci.split = k
		}
	}
	// The proxy answers these itself; one lookup then serves both kinds.
	for name, lc := range localCmds {
		t.cmds[name] = lc.info
	}
	// SORT's STORE destination has an "unknown" spec: find it by keyword.
	for _, name := range []string{"sort", "sort_ro"} {
		if ci := t.cmds[name]; ci != nil {
			ci.specs = append(ci.specs, keySpec{keyword: "STORE", startFrom: 2, findRange: true, keyStep: 1})
		}
	}
	// XREAD and XREADGROUP block only with BLOCK; without it they are plain reads.
	for _, name := range []string{"xread", "xreadgroup"} {
		if ci := t.cmds[name]; ci != nil {
			ci.kind, ci.reason, ci.blockArg = kindForward, "", true
		}
	}
	// WAIT blocks on replication acknowledgements (see block.go).
	if ci := t.cmds["wait"]; ci != nil {
		ci.kind, ci.reason = kindBlocking, ""
	}
	// MIGRATE moves keys between servers; it is an operator's tool, not an
	// application command, and its target is a backend address.
	if ci := t.cmds["migrate"]; ci != nil {
		ci.kind, ci.reason = kindUnsupported, "it addresses backend nodes directly"
	}
}
