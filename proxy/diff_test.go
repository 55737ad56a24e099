package proxy_test

import (
	"crypto/sha1"
	"encoding/hex"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/slotway/slotway/internal/hashslot"
	"github.com/slotway/slotway/internal/redistest"
)

// TestDifferentialAgainstStandalone sends the same command sequences to a
// standalone redis-server (the oracle) and to Slotway in front of a
// 3-master cluster, over raw RESP2, and compares the replies. Every
// sequence starts from FLUSHALL on both sides.
//
// Replies are compared exactly (type, error text, nil vs empty) unless a
// step says otherwise: unordered for set-like replies, length or type only
// for random or time-dependent ones, a tolerance for TTLs. The few places
// where Slotway legitimately differs from a single Redis are explicit
// allow-list steps (dAllow) with the reason next to them.
func TestDifferentialAgainstStandalone(t *testing.T) {
	shortIf(t)
	oracleAddr := diffStartStandalone(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	p := startProxy(t, c)

	sides := [2]*diffSide{
		{name: "oracle", addr: oracleAddr},
		{name: "slotway", addr: p.Addr().String()},
	}
	for _, s := range sides {
		s.t = t
		defer s.close()
	}

	exercised := map[string]bool{} // top-level command names
	withSubs := map[string]bool{}  // plus container subcommands (object|encoding, ...)
	mismatches := 0
	verbose := os.Getenv("SLOTWAY_DIFF_VERBOSE") != "" // log every step's replies
	for _, seq := range diffSequences() {
		for _, s := range sides {
			s.vars = map[string]string{}
			if r := s.do(0, []string{"FLUSHALL"}); r.kind != '+' || r.str != "OK" {
				t.Fatalf("%s: FLUSHALL before %q: %s", s.name, seq.name, r)
			}
		}
		for i, st := range seq.steps {
			name := strings.ToLower(st.args[0])
			var o, s diffReply
			if st.scanAll {
				name = "scan"
				o, s = sides[0].scanAll(st.args[1]), sides[1].scanAll(st.args[1])
			} else {
				o, s = sides[0].do(st.conn, st.args), sides[1].do(st.conn, st.args)
			}
			if st.save != "" {
				sides[0].vars[st.save], sides[1].vars[st.save] = o.str, s.str
			}
			if !o.isErr() || !strings.HasPrefix(o.str, "ERR unknown command") {
				exercised[name] = true
				withSubs[name] = true
				if diffContainers[name] && len(st.args) > 1 {
					withSubs[name+"|"+strings.ToLower(st.args[1])] = true
				}
			}
			cmd := diffCmdline(st.args)
			if st.scanAll {
				cmd = "SCAN ... MATCH " + st.args[1] + " (full iteration)"
			}
			if verbose {
				t.Logf("%s step %d: %s\n\toracle:  %s\n\tslotway: %s", seq.name, i, cmd, o, s)
			}
			if st.allow != "" {
				// A legitimate difference: the oracle may answer anything,
				// Slotway must answer what the allow-list entry says.
				if !st.slotwayOK(s) {
					mismatches++
					t.Errorf("%s step %d: %s\n\tallow-listed difference (%s) did not hold\n\toracle:  %s\n\tslotway: %s",
						seq.name, i, cmd, st.allow, o, s)
				} else if dfExact(o, s) {
					t.Logf("%s step %d: %s: allow-listed difference (%s) no longer differs", seq.name, i, cmd, st.allow)
				}
				continue
			}
			cmp := st.cmp
			if cmp == nil {
				cmp = dfExact
			}
			if !cmp(o, s) {
				mismatches++
				t.Errorf("%s step %d: %s\n\toracle:  %s\n\tslotway: %s", seq.name, i, cmd, o, s)
			}
		}
	}
	names := make([]string, 0, len(exercised))
	for n := range exercised {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("distinct commands exercised: %d (%d counting subcommands), mismatches: %d", len(exercised), len(withSubs), mismatches)
	t.Logf("commands: %s", strings.Join(names, " "))
	if len(exercised) < 150 {
		t.Errorf("only %d distinct commands exercised, want at least 150", len(exercised))
	}
}

// diffContainers are commands whose first argument is a subcommand.
var diffContainers = map[string]bool{
	"object": true, "xgroup": true, "xinfo": true, "script": true, "client": true, "memory": true,
}

type diffSeq struct {
	name  string
	steps []diffStep
}

type diffStep struct {
	args    []string
	cmp     func(oracle, slotway diffReply) bool // nil: exact
	conn    int                                  // 0: main connection; 1: a second one
	save    string                               // store the reply's string under this name ($name in later args)
	scanAll bool                                 // args[1] is a MATCH pattern; iterate SCAN to the end
	// allow, when set, is why Slotway legitimately differs here; slotwayOK
	// then checks Slotway's reply alone.
	allow     string
	slotwayOK func(diffReply) bool
}

func dEx(args ...string) diffStep    { return diffStep{args: args} }
func dUn(args ...string) diffStep    { return diffStep{args: args, cmp: dfUnordered} }
func dPairs(args ...string) diffStep { return diffStep{args: args, cmp: dfPairs} }
func dLen(args ...string) diffStep   { return diffStep{args: args, cmp: dfLength} }
func dType(args ...string) diffStep  { return diffStep{args: args, cmp: dfType} }
func dScanSet(args ...string) diffStep {
	return diffStep{args: args, cmp: dfScan(dfUnordered)}
}
func dScanPairs(args ...string) diffStep {
	return diffStep{args: args, cmp: dfScan(dfPairs)}
}
func dScanAll(match string) diffStep {
	return diffStep{args: []string{"SCAN", match}, scanAll: true, cmp: dfUnordered}
}
func dNear(tol int64, args ...string) diffStep {
	return diffStep{args: args, cmp: func(o, s diffReply) bool {
		d := o.num - s.num
		return o.kind == ':' && s.kind == ':' && d <= tol && d >= -tol && (o.num < 0) == (s.num < 0)
	}}
}
func dShape(n int, args ...string) diffStep {
	return diffStep{args: args, cmp: func(o, s diffReply) bool {
		return dfType(o, s) && len(o.elems) == n && len(s.elems) == n
	}}
}
func dOn(conn int, args ...string) diffStep { return diffStep{args: args, conn: conn} }
func dSave(name string, args ...string) diffStep {
	return diffStep{args: args, save: name}
}

// dMask compares exactly after blanking the values of the named fields in
// every flat field/value array of the reply (idle times and the like).
func dMask(fields []string, args ...string) diffStep {
	return diffStep{args: args, cmp: func(o, s diffReply) bool {
		return dfExact(dfMaskFields(o, fields), dfMaskFields(s, fields))
	}}
}

// dMaskIdx compares exactly after blanking element i of every inner array.
func dMaskIdx(i int, args ...string) diffStep {
	return diffStep{args: args, cmp: func(o, s diffReply) bool {
		return dfExact(dfMaskIndex(o, i), dfMaskIndex(s, i))
	}}
}

func dAllow(why string, slotwayOK func(diffReply) bool, args ...string) diffStep {
	return diffStep{args: args, allow: why, slotwayOK: slotwayOK}
}

func dfWantErrPrefix(prefix string) func(diffReply) bool {
	return func(s diffReply) bool { return s.isErr() && strings.HasPrefix(s.str, prefix) }
}

func dfExact(o, s diffReply) bool {
	if o.kind != s.kind || o.null != s.null || o.str != s.str || o.num != s.num || len(o.elems) != len(s.elems) {
		return false
	}
	for i := range o.elems {
		if !dfExact(o.elems[i], s.elems[i]) {
			return false
		}
	}
	return true
}

// dfUnordered: both arrays hold the same elements in any order.
func dfUnordered(o, s diffReply) bool {
	if o.kind != '*' || s.kind != '*' || o.null != s.null || len(o.elems) != len(s.elems) {
		return dfExact(o, s)
	}
	a, b := make([]string, len(o.elems)), make([]string, len(s.elems))
	for i := range o.elems {
		a[i], b[i] = o.elems[i].String(), s.elems[i].String()
	}
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// dfPairs: both arrays hold the same field/value pairs in any order.
func dfPairs(o, s diffReply) bool {
	if o.kind != '*' || s.kind != '*' || o.null != s.null || len(o.elems) != len(s.elems) || len(o.elems)%2 != 0 {
		return dfExact(o, s)
	}
	pairs := func(r diffReply) []string {
		out := make([]string, 0, len(r.elems)/2)
		for i := 0; i < len(r.elems); i += 2 {
			out = append(out, r.elems[i].String()+" => "+r.elems[i+1].String())
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(pairs(o), pairs(s))
}

// dfScan compares a [cursor, elements] reply: the cursor exactly, the
// elements with inner.
func dfScan(inner func(o, s diffReply) bool) func(o, s diffReply) bool {
	return func(o, s diffReply) bool {
		if o.kind != '*' || s.kind != '*' || len(o.elems) != 2 || len(s.elems) != 2 {
			return dfExact(o, s)
		}
		return dfExact(o.elems[0], s.elems[0]) && inner(o.elems[1], s.elems[1])
	}
}

// dfLength: same type, and for arrays the same number of elements.
func dfLength(o, s diffReply) bool {
	if o.kind == '-' {
		return dfExact(o, s)
	}
	return dfType(o, s) && len(o.elems) == len(s.elems)
}

// dfType: same RESP type and the same nil-ness; errors must match exactly.
func dfType(o, s diffReply) bool {
	if o.kind == '-' {
		return dfExact(o, s)
	}
	return o.kind == s.kind && o.null == s.null
}

func dfMaskFields(r diffReply, fields []string) diffReply {
	if r.kind != '*' {
		return r
	}
	out := r
	out.elems = make([]diffReply, len(r.elems))
	copy(out.elems, r.elems)
	for i := range out.elems {
		e := out.elems[i]
		if e.kind == '$' && slices.Contains(fields, e.str) && i+1 < len(out.elems) {
			out.elems[i+1] = diffReply{kind: '+', str: "<masked>"}
		}
	}
	for i := range out.elems {
		if out.elems[i].kind == '*' {
			out.elems[i] = dfMaskFields(out.elems[i], fields)
		}
	}
	return out
}

func dfMaskIndex(r diffReply, idx int) diffReply {
	if r.kind != '*' {
		return r
	}
	out := r
	out.elems = make([]diffReply, len(r.elems))
	for i, e := range r.elems {
		if e.kind == '*' && idx < len(e.elems) {
			inner := e
			inner.elems = slices.Clone(e.elems)
			inner.elems[idx] = diffReply{kind: '+', str: "<masked>"}
			e = inner
		}
		out.elems[i] = e
	}
	return out
}

func diffCmdline(args []string) string {
	parts := make([]string, len(args))
	for i, a := range args {
		if len(a) > 40 {
			a = a[:40] + "..."
		}
		if a == "" || strings.ContainsAny(a, " \r\n\"\x00") {
			a = strconv.Quote(a)
		}
		parts[i] = a
	}
	return strings.Join(parts, " ")
}

func diffSHA1(s string) string {
	h := sha1.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// diffKeysOnDifferentMasters returns two keys whose slots are in the first
// and the last third of the slot space: redistest gives those to different
// masters.
func diffKeysOnDifferentMasters() (a, b string) {
	for i := 0; a == "" || b == ""; i++ {
		k := "evk-" + strconv.Itoa(i)
		switch s := hashslot.Of([]byte(k)); {
		case s < 5000 && a == "":
			a = k
		case s > 11500 && b == "":
			b = k
		}
	}
	return a, b
}

// ---- the standalone oracle ----

// diffStartStandalone starts the standalone oracle and returns its address.
func diffStartStandalone(t *testing.T) string { return redistest.StartStandalone(t).Addr }
