//go:build linux

package proxy_test

import (
	"bufio"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/proxy"
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

// diffSequences is the script. Key names are spread over many slots;
// multi-key commands that Redis Cluster needs in one slot use hash tags.
func diffSequences() []diffSeq {
	big := strings.Repeat("0123456789abcdef", 8192) // 128 KiB
	evalShaScript := "return KEYS[1]"
	evalSha := diffSHA1(evalShaScript)
	cachedScript := "return 'cached by EVAL'"
	cachedSha := diffSHA1(cachedScript)
	keyA, keyB := diffKeysOnDifferentMasters()

	return []diffSeq{
		{name: "strings", steps: []diffStep{
			dEx("SET", "s1", "hello"),
			dEx("GET", "s1"),
			dEx("SET", "s1", "world", "XX", "GET"),
			dEx("SET", "s1", "x", "NX"),
			dEx("SET", "s2", "v", "NX"),
			dEx("SET", "s2", "v", "NX", "GET"),
			dEx("SET", "nosuch-s", "v", "XX"),
			dEx("SET", "s3", "v", "EX", "100"),
			dNear(2, "TTL", "s3"),
			dEx("SET", "s3", "v2", "KEEPTTL"),
			dNear(2, "TTL", "s3"),
			dEx("SET", "s3", "v3"),
			dEx("TTL", "s3"),
			dEx("SET", "s4", "v", "PX", "100000"),
			dNear(2000, "PTTL", "s4"),
			dEx("SET", "s5", "v", "EX", "0"),
			dEx("SET", "s5", "v", "NX", "XX"),
			dEx("SET", "s5", "v", "EX", "notanumber"),
			dEx("GET", "nosuch-s"),
			dEx("GETEX", "s1", "EX", "50"),
			dNear(2, "TTL", "s1"),
			dEx("GETEX", "s1", "PERSIST"),
			dEx("TTL", "s1"),
			dEx("GETEX", "nosuch-s"),
			dEx("GETDEL", "s2"),
			dEx("GETDEL", "s2"),
			dEx("GETSET", "s1", "new"),
			dEx("GETSET", "nosuch-gs", "first"),
			dEx("APPEND", "s6", "abc"),
			dEx("APPEND", "s6", "def"),
			dEx("STRLEN", "s6"),
			dEx("STRLEN", "nosuch-s"),
			dEx("INCR", "n1"),
			dEx("INCRBY", "n1", "10"),
			dEx("INCRBYFLOAT", "n1", "1.5"),
			dEx("INCRBYFLOAT", "f1", "3.0e3"),
			dEx("INCRBYFLOAT", "f1", "-0.25"),
			dEx("DECR", "n2"),
			dEx("DECRBY", "n2", "5"),
			dEx("INCR", "s6"),
			dEx("INCRBY", "n3", "abc"),
			dEx("INCRBYFLOAT", "n1", "abc"),
			dEx("SET", "n4", "9223372036854775807"),
			dEx("INCR", "n4"),
			dEx("SETNX", "s7", "a"),
			dEx("SETNX", "s7", "b"),
			dEx("GET", "s7"),
			dEx("SETEX", "s8", "100", "v"),
			dNear(2, "TTL", "s8"),
			dEx("SETEX", "s8", "-1", "v"),
			dEx("PSETEX", "s9", "100000", "v"),
			dNear(2000, "PTTL", "s9"),
			dEx("SETRANGE", "s10", "5", "xyz"),
			dEx("GET", "s10"),
			dEx("SETRANGE", "s6", "1", "ZZ"),
			dEx("GETRANGE", "s6", "1", "3"),
			dEx("GETRANGE", "s6", "-3", "-1"),
			dEx("GETRANGE", "nosuch-s", "0", "10"),
			dEx("SUBSTR", "s6", "0", "1"),
			dEx("SET", "bin", "a\r\nb\x00c$3\r\n"),
			dEx("GET", "bin"),
			dEx("SET", "empty", ""),
			dEx("GET", "empty"),
			dEx("SET", "big", big),
			dEx("GET", "big"),
			dEx("STRLEN", "big"),
			// MSET/MGET across slots: Slotway splits them per slot.
			dEx("MSET", "a1", "1", "b1", "2", "c1", "3", "d1", "4", "e1", "5"),
			dEx("MGET", "a1", "b1", "nosuch-s", "c1", "d1", "e1", "a1"),
			dEx("HSET", "hash-in-mget", "f", "v"),
			dEx("MGET", "a1", "hash-in-mget", "b1"),
			dEx("MGET", "a1"),
			// An odd number of arguments: Redis rejects the whole MSET,
			// whatever slots the keys are in.
			dEx("MSET", "odd-a", "written", "odd-b"),
			dEx("EXISTS", "odd-a", "odd-b"),
			dEx("MSET", "{m}x", "1", "{m}y"),
			dEx("MSET", "{m}x", "1", "{m}y", "2"),
			dEx("MSETNX", "{m}x", "5", "{m}z", "6"),
			dEx("MSETNX", "{m}p", "1", "{m}q", "2"),
			dEx("MGET", "{m}x", "{m}y", "{m}z", "{m}p", "{m}q"),
			dEx("SET", "{lcs}a", "ohmytext"),
			dEx("SET", "{lcs}b", "mynewtext"),
			dEx("LCS", "{lcs}a", "{lcs}b"),
			dEx("LCS", "{lcs}a", "{lcs}b", "LEN"),
			dEx("LCS", "{lcs}a", "{lcs}b", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"),
			dEx("GET", "hash-in-mget"),
			// Case-insensitive names, also for the commands Slotway splits.
			dEx("mget", "a1", "b1"),
			dEx("MgEt", "c1", "nosuch-s", "d1"),
			dEx("set", "Mixed", "case"),
			dEx("get", "Mixed"),
			// Odd keys: empty, CR/LF inside, braces that are not a hash tag.
			dEx("SET", "", "empty-key"),
			dEx("SET", "key\r\nwith crlf", "v1"),
			dEx("SET", "{}a", "v2"),
			dEx("SET", "{b", "v3"),
			dEx("MGET", "", "key\r\nwith crlf", "{}a", "{b", "a1"),
			dEx("EXISTS", "", "key\r\nwith crlf", "{}a", "{b"),
			dEx("MGET"),
			dEx("GET"),
			dEx("GETEX", "s1", "EX", "10", "PX", "10"),
		}},

		{name: "hashes", steps: []diffStep{
			dEx("HSET", "h1", "f1", "v1", "f2", "v2"),
			dEx("HGET", "h1", "f1"),
			dEx("HGET", "h1", "nofield"),
			dEx("HGET", "nosuch-h", "f1"),
			dEx("HMSET", "h1", "f3", "v3"),
			dEx("HMGET", "h1", "f1", "nofield", "f3"),
			dEx("HMGET", "nosuch-h", "a", "b"),
			dEx("HDEL", "h1", "f2", "nofield"),
			dEx("HLEN", "h1"),
			dEx("HEXISTS", "h1", "f1"),
			dEx("HEXISTS", "h1", "f2"),
			dEx("HINCRBY", "h1", "cnt", "5"),
			dEx("HINCRBY", "h1", "cnt", "-7"),
			dEx("HINCRBY", "h1", "f1", "1"),
			dEx("HINCRBYFLOAT", "h1", "fl", "2.5"),
			dEx("HINCRBYFLOAT", "h1", "fl", "1e2"),
			dEx("HINCRBYFLOAT", "h1", "f1", "1"),
			dUn("HKEYS", "h1"),
			dUn("HVALS", "h1"),
			dPairs("HGETALL", "h1"),
			dEx("HGETALL", "nosuch-h"),
			dEx("HSETNX", "h1", "f1", "x"),
			dEx("HSETNX", "h1", "new", "x"),
			dEx("HSTRLEN", "h1", "f1"),
			dEx("HSTRLEN", "h1", "nofield"),
			dLen("HRANDFIELD", "h1", "2"),
			dLen("HRANDFIELD", "h1", "-5", "WITHVALUES"),
			dLen("HRANDFIELD", "h1", "100"),
			dType("HRANDFIELD", "h1"),
			dEx("HRANDFIELD", "nosuch-h"),
			dScanPairs("HSCAN", "h1", "0"),
			dScanPairs("HSCAN", "h1", "0", "MATCH", "f*", "COUNT", "100"),
			dEx("HSET", "h1"),
			dEx("HSET", "h1", "a", "b", "c"),
			dEx("SET", "str-not-hash", "x"),
			dEx("HGET", "str-not-hash", "f"),
			dEx("HSET", "h2", "a", "1", "b", "2", "c", "3"),
			dPairs("HGETALL", "h2"),
			dEx("HDEL", "h2", "a", "b", "c"),
			dEx("EXISTS", "h2"),
		}},

		{name: "lists", steps: []diffStep{
			dEx("RPUSH", "l1", "a", "b", "c", "d"),
			dEx("LPUSH", "l1", "z"),
			dEx("LPUSHX", "l1", "y"),
			dEx("LPUSHX", "nosuch-l", "y"),
			dEx("RPUSHX", "l1", "e"),
			dEx("RPUSHX", "nosuch-l", "e"),
			dEx("LRANGE", "l1", "0", "-1"),
			dEx("LRANGE", "l1", "2", "3"),
			dEx("LRANGE", "nosuch-l", "0", "-1"),
			dEx("LLEN", "l1"),
			dEx("LINDEX", "l1", "2"),
			dEx("LINDEX", "l1", "-1"),
			dEx("LINDEX", "l1", "100"),
			dEx("LSET", "l1", "0", "Y"),
			dEx("LSET", "l1", "100", "x"),
			dEx("LSET", "nosuch-l", "0", "x"),
			dEx("LINSERT", "l1", "BEFORE", "c", "cc"),
			dEx("LINSERT", "l1", "AFTER", "nope", "x"),
			dEx("LINSERT", "nosuch-l", "AFTER", "a", "x"),
			dEx("RPUSH", "l1", "a", "a"),
			dEx("LREM", "l1", "2", "a"),
			dEx("LRANGE", "l1", "0", "-1"),
			dEx("LTRIM", "l1", "0", "4"),
			dEx("LRANGE", "l1", "0", "-1"),
			dEx("LPOS", "l1", "c"),
			dEx("LPOS", "l1", "nope"),
			dEx("RPUSH", "l2", "x", "y", "x", "z", "x"),
			dEx("LPOS", "l2", "x", "RANK", "2"),
			dEx("LPOS", "l2", "x", "COUNT", "0"),
			dEx("LPOS", "l2", "x", "RANK", "-1", "COUNT", "2", "MAXLEN", "0"),
			dEx("LPOS", "l2", "x", "RANK", "0"),
			dEx("LPOP", "l1"),
			dEx("RPOP", "l1", "2"),
			dEx("LPOP", "l1", "0"),
			dEx("LPOP", "nosuch-l"),
			dEx("RPOP", "nosuch-l", "2"),
			dEx("RPOP", "l1", "100"),
			dEx("EXISTS", "l1"),
			dEx("RPUSH", "{q}src", "1", "2", "3", "4"),
			dEx("LMOVE", "{q}src", "{q}dst", "LEFT", "RIGHT"),
			dEx("LMOVE", "{q}src", "{q}dst", "RIGHT", "LEFT"),
			dEx("LMOVE", "{q}none", "{q}dst", "RIGHT", "LEFT"),
			dEx("RPOPLPUSH", "{q}src", "{q}dst"),
			dEx("RPOPLPUSH", "{q}none", "{q}dst"),
			dEx("LRANGE", "{q}src", "0", "-1"),
			dEx("LRANGE", "{q}dst", "0", "-1"),
			dEx("LMPOP", "2", "{q}empty", "{q}dst", "RIGHT", "COUNT", "2"),
			dEx("LMPOP", "1", "{q}none", "LEFT"),
			dEx("LMPOP", "2", "{q}src", "{q}dst", "LEFT"),
			dEx("LMPOP", "0", "{q}src", "LEFT"),
			dEx("SET", "str-not-list", "x"),
			dEx("LRANGE", "str-not-list", "0", "-1"),
			dEx("LPUSH", "str-not-list", "x"),
		}},

		{name: "sets", steps: []diffStep{
			dEx("SADD", "st1", "a", "b", "c", "d"),
			dEx("SADD", "st1", "a"),
			dEx("SREM", "st1", "d", "x"),
			dUn("SMEMBERS", "st1"),
			dEx("SMEMBERS", "nosuch-set"),
			dEx("SISMEMBER", "st1", "a"),
			dEx("SISMEMBER", "st1", "zz"),
			dEx("SMISMEMBER", "st1", "a", "x", "c"),
			dEx("SCARD", "st1"),
			dEx("SCARD", "nosuch-set"),
			dEx("SADD", "{s}1", "a", "b", "c"),
			dEx("SADD", "{s}2", "b", "c", "d"),
			dEx("SADD", "{s}3", "c", "d", "e"),
			dEx("SMOVE", "{s}1", "{s}2", "a"),
			dEx("SMOVE", "{s}1", "{s}2", "nope"),
			dUn("SINTER", "{s}1", "{s}2"),
			dEx("SINTER", "{s}1", "{s}none"),
			dEx("SINTERCARD", "2", "{s}1", "{s}2"),
			dEx("SINTERCARD", "3", "{s}1", "{s}2", "{s}3", "LIMIT", "1"),
			dEx("SINTERSTORE", "{s}dst", "{s}1", "{s}2"),
			dUn("SMEMBERS", "{s}dst"),
			dUn("SUNION", "{s}1", "{s}2", "{s}3"),
			dEx("SUNIONSTORE", "{s}dst", "{s}1", "{s}3"),
			dUn("SMEMBERS", "{s}dst"),
			dUn("SDIFF", "{s}2", "{s}1"),
			dEx("SDIFFSTORE", "{s}dst", "{s}3", "{s}2"),
			dUn("SMEMBERS", "{s}dst"),
			dScanSet("SSCAN", "st1", "0"),
			dScanSet("SSCAN", "st1", "0", "MATCH", "a*"),
			dLen("SRANDMEMBER", "st1", "2"),
			dLen("SRANDMEMBER", "st1", "-5"),
			dType("SRANDMEMBER", "st1"),
			dEx("SRANDMEMBER", "nosuch-set"),
			dEx("SADD", "ints", "1", "2", "3"),
			dEx("OBJECT", "ENCODING", "ints"),
			dEx("OBJECT", "ENCODING", "st1"),
			dType("SPOP", "st1"),
			dEx("SCARD", "st1"),
			dLen("SPOP", "st1", "5"),
			dEx("EXISTS", "st1"),
			dEx("SPOP", "nosuch-set"),
			dEx("SPOP", "nosuch-set", "3"),
			dEx("SET", "str-not-set", "x"),
			dEx("SADD", "str-not-set", "a"),
			dEx("SINTERCARD", "0", "{s}1"),
			// The one cross-slot case: an atomic multi-key command whose keys
			// have no common hash tag.
			dAllow("Redis Cluster (and so Slotway) cannot run an atomic multi-key command across slots; standalone Redis can",
				dfWantErrPrefix("CROSSSLOT "), "SUNIONSTORE", "cross-dst", "{s}1", "{s}3"),
		}},

		{name: "sorted sets", steps: []diffStep{
			dEx("ZADD", "z1", "1", "a", "2", "b", "3", "c", "4", "d"),
			dEx("ZADD", "z1", "NX", "10", "a", "5", "e"),
			dEx("ZADD", "z1", "XX", "CH", "7", "b", "1", "nope"),
			dEx("ZADD", "z1", "GT", "1", "c"),
			dEx("ZADD", "z1", "LT", "CH", "0.5", "c"),
			dEx("ZADD", "z1", "INCR", "2", "a"),
			dEx("ZADD", "z1", "NX", "INCR", "2", "a"),
			dEx("ZADD", "z1", "NX", "XX", "1", "a"),
			dEx("ZADD", "z1", "GT", "LT", "1", "a"),
			dEx("ZADD", "z1", "nan", "a"),
			dEx("ZADD", "z1", "1"),
			dEx("ZSCORE", "z1", "a"),
			dEx("ZSCORE", "z1", "nope"),
			dEx("ZMSCORE", "z1", "a", "nope", "c"),
			dEx("ZINCRBY", "z1", "1.5", "a"),
			dEx("ZINCRBY", "z1", "-inf", "d"),
			dEx("ZRANGE", "z1", "0", "-1", "WITHSCORES"),
			dEx("ZRANGE", "z1", "(0.5", "5", "BYSCORE", "LIMIT", "0", "2"),
			dEx("ZRANGE", "z1", "5", "1", "BYSCORE", "REV", "WITHSCORES"),
			dEx("ZRANGE", "z1", "0", "-1", "BYLEX"),
			dEx("ZADD", "zl", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e"),
			dEx("ZRANGE", "zl", "[b", "+", "BYLEX"),
			dEx("ZRANGE", "zl", "+", "-", "BYLEX", "REV", "LIMIT", "1", "2"),
			dEx("ZRANGEBYSCORE", "z1", "-inf", "+inf", "WITHSCORES", "LIMIT", "1", "2"),
			dEx("ZRANGEBYSCORE", "z1", "(1", "7"),
			dEx("ZREVRANGE", "z1", "0", "1"),
			dEx("ZREVRANGE", "z1", "0", "-1", "WITHSCORES"),
			dEx("ZREVRANGEBYSCORE", "z1", "+inf", "2"),
			dEx("ZREVRANGEBYSCORE", "z1", "+inf", "-inf", "WITHSCORES", "LIMIT", "0", "3"),
			dEx("ZRANGEBYLEX", "zl", "-", "(c"),
			dEx("ZRANGEBYLEX", "zl", "a", "c"),
			dEx("ZREVRANGEBYLEX", "zl", "[c", "-"),
			dEx("ZRANK", "z1", "b"),
			dEx("ZREVRANK", "z1", "b"),
			dEx("ZRANK", "z1", "nope"),
			dEx("ZCARD", "z1"),
			dEx("ZCARD", "nosuch-z"),
			dEx("ZCOUNT", "z1", "1", "3"),
			dEx("ZCOUNT", "z1", "-inf", "+inf"),
			dEx("ZLEXCOUNT", "zl", "-", "+"),
			dEx("ZLEXCOUNT", "zl", "[b", "(d"),
			dEx("ZREM", "z1", "e", "nope"),
			dEx("ZREMRANGEBYRANK", "zl", "0", "0"),
			dEx("ZREMRANGEBYLEX", "zl", "[d", "[d"),
			dEx("ZRANGE", "zl", "0", "-1"),
			dEx("ZADD", "z2", "1", "x", "2", "y", "3", "z"),
			dEx("ZREMRANGEBYSCORE", "z2", "(1", "2"),
			dEx("ZRANGE", "z2", "0", "-1", "WITHSCORES"),
			dEx("ZPOPMIN", "z1"),
			dEx("ZPOPMAX", "z1", "2"),
			dEx("ZPOPMIN", "nosuch-z"),
			dEx("ZPOPMAX", "nosuch-z", "3"),
			dEx("ZADD", "{z}a", "1", "one", "2", "two", "3", "three"),
			dEx("ZADD", "{z}b", "10", "two", "20", "three", "30", "four"),
			dEx("ZUNION", "2", "{z}a", "{z}b", "WITHSCORES"),
			dEx("ZUNION", "2", "{z}a", "{z}b", "WEIGHTS", "2", "0.5", "AGGREGATE", "MIN", "WITHSCORES"),
			dEx("ZUNIONSTORE", "{z}u", "2", "{z}a", "{z}b", "WEIGHTS", "1", "2", "AGGREGATE", "MAX"),
			dEx("ZRANGE", "{z}u", "0", "-1", "WITHSCORES"),
			dEx("ZINTER", "2", "{z}a", "{z}b", "WITHSCORES"),
			dEx("ZINTERSTORE", "{z}i", "2", "{z}a", "{z}b", "AGGREGATE", "SUM"),
			dEx("ZRANGE", "{z}i", "0", "-1", "WITHSCORES"),
			dEx("ZINTERCARD", "2", "{z}a", "{z}b"),
			dEx("ZINTERCARD", "2", "{z}a", "{z}b", "LIMIT", "1"),
			dEx("ZDIFF", "2", "{z}a", "{z}b", "WITHSCORES"),
			dEx("ZDIFFSTORE", "{z}d", "2", "{z}b", "{z}a"),
			dEx("ZRANGE", "{z}d", "0", "-1", "WITHSCORES"),
			dEx("ZRANGESTORE", "{z}r", "{z}b", "0", "1"),
			dEx("ZRANGESTORE", "{z}r2", "{z}b", "(10", "+inf", "BYSCORE", "REV"),
			dEx("ZRANGE", "{z}r", "0", "-1", "WITHSCORES"),
			dEx("ZMPOP", "2", "{z}none", "{z}a", "MIN", "COUNT", "2"),
			dEx("ZMPOP", "1", "{z}none", "MAX"),
			dEx("ZMPOP", "2", "{z}a", "{z}b", "MAX"),
			dScanPairs("ZSCAN", "{z}b", "0"),
			dLen("ZRANDMEMBER", "{z}b", "3", "WITHSCORES"),
			dLen("ZRANDMEMBER", "{z}b", "-4"),
			dType("ZRANDMEMBER", "{z}b"),
			dEx("ZRANDMEMBER", "nosuch-z"),
			dEx("OBJECT", "ENCODING", "{z}b"),
			dEx("SET", "str-not-zset", "x"),
			dEx("ZADD", "str-not-zset", "1", "a"),
			dEx("ZUNIONSTORE", "{z}u", "0", "{z}a"),
		}},

		{name: "streams", steps: []diffStep{
			dEx("XADD", "xs", "1-1", "f", "v"),
			dEx("XADD", "xs", "1-2", "f", "v2"),
			dEx("XADD", "xs", "2-0", "a", "b", "c", "d"),
			dEx("XADD", "xs", "3-*", "g", "h"),
			dEx("XADD", "xs", "1-0", "x", "y"),
			dEx("XADD", "nosuch-x", "NOMKSTREAM", "5-0", "f", "v"),
			dEx("XADD", "xs", "MAXLEN", "100", "4-0", "i", "j"),
			dEx("XLEN", "xs"),
			dEx("XLEN", "nosuch-x"),
			dEx("XRANGE", "xs", "-", "+"),
			dEx("XRANGE", "xs", "-", "+", "COUNT", "1"),
			dEx("XRANGE", "xs", "(1-1", "2"),
			dEx("XREVRANGE", "xs", "+", "-", "COUNT", "2"),
			dEx("XDEL", "xs", "1-2", "9-9"),
			dEx("XTRIM", "xs", "MAXLEN", "10"),
			dEx("XREAD", "COUNT", "10", "STREAMS", "xs", "0-0"),
			dEx("XADD", "{x}a", "1-0", "k", "1"),
			dEx("XADD", "{x}b", "2-0", "k", "2"),
			dEx("XREAD", "STREAMS", "{x}a", "{x}b", "0", "0"),
			dEx("XREAD", "STREAMS", "xs", "$"),
			dEx("XREAD", "STREAMS", "xs", "99-0"),
			dEx("XGROUP", "CREATE", "xs", "g1", "0"),
			dEx("XGROUP", "CREATE", "xs", "g1", "0"),
			dEx("XGROUP", "CREATE", "nosuch-x", "g", "0"),
			dEx("XGROUP", "CREATE", "xs2", "g", "$", "MKSTREAM"),
			dEx("XGROUP", "CREATECONSUMER", "xs", "g1", "c1"),
			dEx("XGROUP", "CREATECONSUMER", "xs", "g1", "c1"),
			dEx("XREADGROUP", "GROUP", "g1", "c1", "COUNT", "1", "STREAMS", "xs", ">"),
			dEx("XREADGROUP", "GROUP", "g1", "c2", "STREAMS", "xs", ">"),
			dEx("XREADGROUP", "GROUP", "g1", "c2", "STREAMS", "xs", ">"),
			dEx("XREADGROUP", "GROUP", "g1", "c1", "STREAMS", "xs", "0"),
			dEx("XREADGROUP", "GROUP", "nogroup", "c1", "STREAMS", "xs", ">"),
			dEx("XPENDING", "xs", "g1"),
			dMaskIdx(2, "XPENDING", "xs", "g1", "-", "+", "10"), // [id, consumer, idle ms, deliveries]
			dMaskIdx(2, "XPENDING", "xs", "g1", "-", "+", "10", "c2"),
			dEx("XCLAIM", "xs", "g1", "c3", "0", "1-1"),
			dEx("XCLAIM", "xs", "g1", "c3", "0", "2-0", "JUSTID"),
			dEx("XAUTOCLAIM", "xs", "g1", "c4", "0", "0-0", "COUNT", "1"),
			dEx("XAUTOCLAIM", "xs", "g1", "c4", "0", "0-0", "COUNT", "10", "JUSTID"),
			dEx("XACK", "xs", "g1", "1-1", "9-9"),
			dEx("XPENDING", "xs", "g1"),
			dEx("XINFO", "STREAM", "xs"),
			dEx("XINFO", "GROUPS", "xs"),
			dMask([]string{"idle", "inactive"}, "XINFO", "CONSUMERS", "xs", "g1"),
			dEx("XINFO", "STREAM", "nosuch-x"),
			dEx("XGROUP", "SETID", "xs", "g1", "0"),
			dEx("XGROUP", "SETID", "xs", "nogroup", "0"),
			dEx("XINFO", "GROUPS", "xs"),
			dEx("XGROUP", "DELCONSUMER", "xs", "g1", "c2"),
			dEx("XGROUP", "DELCONSUMER", "xs", "g1", "c4"),
			dMask([]string{"idle", "inactive"}, "XINFO", "CONSUMERS", "xs", "g1"),
			dEx("XGROUP", "DESTROY", "xs", "g1"),
			dEx("XGROUP", "DESTROY", "xs", "g1"),
			dEx("XSETID", "xs", "10-0"),
			dEx("XSETID", "xs", "1-0"),
			dEx("XTRIM", "xs", "MINID", "3"),
			dEx("XRANGE", "xs", "-", "+"),
			dEx("XINFO", "STREAM", "xs"),
			dEx("SET", "str-not-stream", "x"),
			dEx("XADD", "str-not-stream", "1-0", "f", "v"),
		}},

		{name: "bitmaps and hyperloglog", steps: []diffStep{
			dEx("SETBIT", "b1", "7", "1"),
			dEx("SETBIT", "b1", "7", "0"),
			dEx("SETBIT", "b1", "100", "1"),
			dEx("SETBIT", "b1", "-1", "1"),
			dEx("SETBIT", "b1", "1", "2"),
			dEx("GETBIT", "b1", "100"),
			dEx("GETBIT", "b1", "7"),
			dEx("GETBIT", "nosuch-b", "7"),
			dEx("BITCOUNT", "b1"),
			dEx("BITCOUNT", "b1", "0", "-1", "BIT"),
			dEx("BITCOUNT", "b1", "1", "20", "BYTE"),
			dEx("BITPOS", "b1", "1"),
			dEx("BITPOS", "b1", "0", "2", "-1", "BYTE"),
			dEx("BITPOS", "b1", "1", "0", "99", "BIT"),
			dEx("SET", "{b}1", "foobar"),
			dEx("SET", "{b}2", "abcdef"),
			dEx("BITOP", "AND", "{b}and", "{b}1", "{b}2"),
			dEx("BITOP", "OR", "{b}or", "{b}1", "{b}2"),
			dEx("BITOP", "XOR", "{b}xor", "{b}1", "{b}2"),
			dEx("BITOP", "NOT", "{b}not", "{b}1"),
			dEx("BITOP", "NOT", "{b}not", "{b}1", "{b}2"),
			dEx("MGET", "{b}and", "{b}or", "{b}xor", "{b}not"),
			dEx("BITFIELD", "bf", "SET", "u8", "0", "255", "GET", "u4", "0", "INCRBY", "i5", "100", "1"),
			dEx("BITFIELD", "bf", "OVERFLOW", "SAT", "INCRBY", "u2", "102", "5", "OVERFLOW", "FAIL", "INCRBY", "u2", "102", "5"),
			dEx("BITFIELD", "bf", "GET", "u99", "0"),
			dEx("BITFIELD_RO", "bf", "GET", "u8", "0", "GET", "i5", "100"),
			dEx("BITFIELD_RO", "bf", "SET", "u8", "0", "1"),
			dEx("PFADD", "hll", "a", "b", "c", "d"),
			dEx("PFADD", "hll", "a"),
			dEx("PFADD", "hll2"),
			dEx("PFCOUNT", "hll"),
			dEx("PFCOUNT", "nosuch-hll"),
			dEx("PFADD", "{h}1", "a", "b", "c"),
			dEx("PFADD", "{h}2", "c", "d", "e", "f"),
			dEx("PFCOUNT", "{h}1", "{h}2"),
			dEx("PFMERGE", "{h}m", "{h}1", "{h}2"),
			dEx("PFCOUNT", "{h}m"),
			dEx("GET", "{h}m"),
			dEx("SET", "str-not-hll", "x"),
			dEx("PFADD", "str-not-hll", "a"),
		}},

		{name: "geo", steps: []diffStep{
			dEx("GEOADD", "geo", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"),
			dEx("GEOADD", "geo", "NX", "CH", "12.758489", "38.788135", "edge1", "13.361389", "38.115556", "Palermo"),
			dEx("GEOADD", "geo", "200", "100", "bad"),
			dEx("GEOPOS", "geo", "Palermo", "NonExisting"),
			dEx("GEODIST", "geo", "Palermo", "Catania"),
			dEx("GEODIST", "geo", "Palermo", "Catania", "km"),
			dEx("GEODIST", "geo", "Palermo", "NonExisting"),
			dEx("GEOHASH", "geo", "Palermo", "Catania", "NonExisting"),
			dEx("GEOSEARCH", "geo", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "ASC", "WITHCOORD", "WITHDIST", "WITHHASH"),
			dEx("GEOSEARCH", "geo", "FROMMEMBER", "Palermo", "BYBOX", "400", "400", "km", "DESC", "COUNT", "2"),
			dEx("GEOSEARCH", "geo", "FROMMEMBER", "Nope", "BYRADIUS", "1", "km"),
			dEx("GEOADD", "{g}src", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"),
			dEx("GEOSEARCHSTORE", "{g}dst", "{g}src", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "ASC", "STOREDIST"),
			dEx("ZRANGE", "{g}dst", "0", "-1", "WITHSCORES"),
			dEx("GEORADIUS", "geo", "15", "37", "200", "km", "WITHDIST", "ASC"),
			dEx("GEORADIUS", "{g}src", "15", "37", "200", "km", "STORE", "{g}dst2"),
			dEx("ZRANGE", "{g}dst2", "0", "-1"),
			dEx("GEORADIUSBYMEMBER", "geo", "Palermo", "200", "km", "ASC"),
			dEx("GEORADIUS_RO", "geo", "15", "37", "100", "km", "WITHCOORD", "ASC"),
			dEx("GEORADIUSBYMEMBER_RO", "geo", "Catania", "300", "km", "DESC", "COUNT", "1"),
		}},

		{name: "keys and expiry", steps: []diffStep{
			dEx("MSET", "k1", "v", "k2", "v", "k3", "v", "k4", "v"),
			// Multi-key counts across slots: Slotway splits and sums.
			dEx("EXISTS", "k1", "k2", "nosuch-k", "k1", "k3"),
			dEx("TOUCH", "k1", "k2", "nosuch-k", "k4"),
			dEx("TYPE", "k1"),
			dEx("TYPE", "nosuch-k"),
			dEx("RPUSH", "tl", "a"),
			dEx("TYPE", "tl"),
			dEx("DEL", "k1", "k2", "nosuch-k", "k1"),
			dEx("UNLINK", "k3", "k4", "nosuch-k"),
			dEx("EXISTS", "k1", "k2", "k3", "k4"),
			dEx("DEL", "nosuch-k"),
			dEx("DEL"),
			dEx("Del", "nosuch-k", "nosuch-k2"),
			dEx("SET", "{r}a", "1"),
			dEx("RENAME", "{r}a", "{r}b"),
			dEx("RENAME", "{r}nosuch", "{r}x"),
			dEx("RENAME", "{r}b", "{r}b"),
			dEx("RENAMENX", "{r}b", "{r}c"),
			dEx("SET", "{r}d", "2"),
			dEx("RENAMENX", "{r}c", "{r}d"),
			dEx("COPY", "{r}c", "{r}e"),
			dEx("COPY", "{r}c", "{r}e"),
			dEx("COPY", "{r}d", "{r}e", "REPLACE"),
			dEx("COPY", "{r}nosuch", "{r}f"),
			dEx("MGET", "{r}a", "{r}b", "{r}c", "{r}d", "{r}e"),
			dEx("SET", "e1", "v"),
			dEx("EXPIRE", "e1", "100"),
			dNear(2, "TTL", "e1"),
			dEx("PEXPIRE", "e1", "100000"),
			dNear(2000, "PTTL", "e1"),
			dEx("EXPIREAT", "e1", "4102444800"),
			dEx("EXPIRETIME", "e1"),
			dEx("PEXPIREAT", "e1", "4102444800123"),
			dEx("PEXPIRETIME", "e1"),
			dEx("EXPIRETIME", "nosuch-k"),
			dEx("SET", "e2", "v"),
			dEx("EXPIRETIME", "e2"),
			dEx("PEXPIRETIME", "e2"),
			dEx("TTL", "e2"),
			dEx("PTTL", "nosuch-k"),
			dEx("PERSIST", "e1"),
			dEx("PERSIST", "e1"),
			dEx("TTL", "e1"),
			dEx("EXPIRE", "e1", "100", "NX"),
			dEx("EXPIRE", "e1", "100", "NX"),
			dEx("EXPIRE", "e1", "50", "GT"),
			dEx("EXPIRE", "e1", "50", "LT"),
			dEx("EXPIRE", "e1", "50", "XX", "NX"),
			dEx("EXPIRE", "nosuch-k", "10"),
			dEx("EXPIRE", "e1", "abc"),
			dEx("EXPIRE", "e2", "-1"),
			dEx("EXISTS", "e2"),
			dEx("RPUSH", "d1", "x", "y", "z"),
			dSave("dump", "DUMP", "d1"),
			dEx("DUMP", "nosuch-k"),
			dEx("RESTORE", "d2", "0", "$dump"),
			dEx("LRANGE", "d2", "0", "-1"),
			dEx("RESTORE", "d2", "0", "$dump"),
			dEx("RESTORE", "d2", "4102444800000", "$dump", "REPLACE", "ABSTTL"),
			dEx("PEXPIRETIME", "d2"),
			dEx("RESTORE", "d3", "0", "garbage"),
			dEx("SET", "int", "12345"),
			dEx("SET", "emb", "short"),
			dEx("OBJECT", "ENCODING", "int"),
			dEx("OBJECT", "ENCODING", "emb"),
			dEx("OBJECT", "ENCODING", "d1"),
			dEx("OBJECT", "ENCODING", "nosuch-k"),
			dEx("OBJECT", "FREQ", "int"),
			dNear(2, "OBJECT", "IDLETIME", "int"),
			dEx("OBJECT", "ENCODING"),
			dEx("XINFO", "STREAM"),
			dEx("SCRIPT", "EXISTS"),
			dEx("OBJECT", "NOSUCHSUB", "int"),
			dLen("OBJECT", "HELP"),
			dEx("RPUSH", "sl", "3", "1", "2", "10"),
			dEx("SORT", "sl"),
			dEx("SORT", "sl", "DESC", "LIMIT", "0", "2"),
			dEx("SORT", "sl", "ALPHA"),
			dEx("SORT", "sl", "BY", "nosort"),
			dEx("SORT_RO", "sl", "DESC"),
			dEx("SADD", "ss", "b", "a", "c"),
			dEx("SORT", "ss", "ALPHA"),
			dEx("SORT", "ss"),
			dEx("RPUSH", "{so}l", "5", "4", "6"),
			dEx("SORT", "{so}l", "STORE", "{so}dst"),
			dEx("LRANGE", "{so}dst", "0", "-1"),
			// Redis Cluster refuses SORT BY with a real pattern, because the
			// pattern's keys may live in other slots.
			dAllow("Redis in cluster mode refuses SORT BY <pattern> (keys may be in other slots)",
				dfWantErrPrefix("ERR BY option of SORT denied in Cluster mode"), "SORT", "sl", "BY", "weight_*"),
			dType("MEMORY", "USAGE", "sl"),
			dEx("MEMORY", "USAGE", "nosuch-k"),
			dEx("FLUSHDB", "SYNC"),
			dEx("SET", "only", "1"),
			dEx("RANDOMKEY"),
			dEx("DBSIZE"),
			dEx("MSET", "ka", "1", "kb", "2", "kc", "3", "other", "4"),
			dUn("KEYS", "k*"),
			dUn("KEYS", "*"),
			dScanAll("k*"),
			dScanAll("*"),
			dEx("DBSIZE"),
			dEx("FLUSHALL"),
			dEx("DBSIZE"),
			dEx("RANDOMKEY"),
			dEx("KEYS", "*"),
		}},

		{name: "transactions", steps: []diffStep{
			dEx("MULTI"),
			dEx("SET", "{t}a", "1"),
			dEx("INCR", "{t}a"),
			dEx("GET", "{t}a"),
			dEx("EXEC"),
			dEx("MULTI"),
			dEx("SET", "{t}a", "x"),
			dEx("INCR", "{t}a"),
			dEx("LPUSH", "{t}a", "y"),
			dEx("EXEC"),
			dEx("MULTI"),
			dEx("INCR"),
			dEx("SET", "{t}a", "2"),
			dEx("EXEC"),
			dEx("GET", "{t}a"),
			dEx("MULTI"),
			dEx("NOSUCHCOMMAND", "{t}a"),
			dEx("EXEC"),
			dEx("MULTI"),
			dEx("SET", "{t}b", "1"),
			dEx("DISCARD"),
			dEx("GET", "{t}b"),
			dEx("DISCARD"),
			dEx("EXEC"),
			dEx("MULTI"),
			dEx("MULTI"),
			dEx("DISCARD"),
			dEx("MULTI"),
			dEx("EXEC"),
			dEx("MULTI"),
			dEx("PING"),
			dEx("ECHO", "in-tx"),
			dEx("SET", "{t}c", "1"),
			dEx("EXEC"),
			// WATCH: another connection changes the key, EXEC aborts.
			dEx("SET", "{t}w", "orig"),
			dEx("WATCH", "{t}w"),
			dOn(1, "SET", "{t}w", "changed"),
			dEx("MULTI"),
			dEx("SET", "{t}w", "mine"),
			dEx("EXEC"),
			dEx("GET", "{t}w"),
			// UNWATCH: the change no longer matters.
			dEx("WATCH", "{t}w"),
			dEx("UNWATCH"),
			dOn(1, "SET", "{t}w", "again"),
			dEx("MULTI"),
			dEx("SET", "{t}w", "mine"),
			dEx("EXEC"),
			dEx("GET", "{t}w"),
			// WATCH with nothing touching the key: EXEC runs.
			dEx("WATCH", "{t}w", "{t}w2"),
			dEx("MULTI"),
			dEx("GET", "{t}w"),
			dEx("SET", "{t}w2", "set"),
			dEx("EXEC"),
			dEx("MULTI"),
			dEx("WATCH", "{t}w"),
			dEx("EXEC"),
			dEx("UNWATCH"),
		}},

		{name: "scripts", steps: []diffStep{
			dEx("SCRIPT", "FLUSH"),
			dEx("EVAL", "return 1", "0"),
			dEx("EVAL", "return {KEYS[1], ARGV[1], 3, 'x'}", "1", "sk1", "av"),
			dEx("EVAL", "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('GET', KEYS[1])", "1", "sk2", "val"),
			dEx("EVAL", "return redis.call('MSET', KEYS[1], ARGV[1], KEYS[2], ARGV[2])", "2", "{e}a", "{e}b", "1", "2"),
			dEx("MGET", "{e}a", "{e}b"),
			dEx("EVAL", "return redis.error_reply('MYERR custom')", "0"),
			dEx("EVAL", "return redis.status_reply('FINE')", "0"),
			dEx("EVAL", "return redis.call('INCR', KEYS[1])", "1", "sk2"),
			dEx("EVAL", "return redis.pcall('INCR', KEYS[1])", "1", "sk2"),
			dEx("EVAL", "return 3.99", "0"),
			dEx("EVAL", "return {1, 2, nil, 3}", "0"),
			dEx("EVAL", "return false", "0"),
			dEx("EVAL", "return true", "0"),
			dEx("EVAL", "return {}", "0"),
			dEx("EVAL", "syntax error(", "0"),
			dEx("EVAL", "return 1", "-1"),
			dEx("EVAL", "return 1", "5", "a"),
			dEx("SCRIPT", "LOAD", evalShaScript),
			dEx("SCRIPT", "EXISTS", evalSha, "ffffffffffffffffffffffffffffffffffffffff"),
			dEx("EVALSHA", evalSha, "1", "anykey"),
			dEx("EVALSHA", evalSha, "1", keyA),
			dEx("EVALSHA", evalSha, "1", keyB),
			dEx("EVALSHA", strings.ToUpper(evalSha), "1", "upper"),
			dEx("EVALSHA_RO", evalSha, "1", "k2"),
			dEx("EVAL_RO", "return redis.call('GET', KEYS[1])", "1", "sk2"),
			dEx("EVAL_RO", "return redis.call('SET', KEYS[1], 'x')", "1", "sk2"),
			dEx("EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "0"),
			dEx("EVALSHA_RO", "ffffffffffffffffffffffffffffffffffffffff", "1", "k"),
			// A script cached by EVAL (not SCRIPT LOAD) and then called by
			// SHA with a key on another master: one Redis has it cached.
			dEx("EVAL", cachedScript, "1", keyA),
			dEx("EVALSHA", cachedSha, "1", keyA),
			dEx("EVALSHA", cachedSha, "1", keyB),
			dEx("SCRIPT", "EXISTS", cachedSha),
			dEx("SCRIPT", "FLUSH"),
			dEx("SCRIPT", "EXISTS", evalSha),
			dEx("EVALSHA", evalSha, "1", "anykey"),
			dEx("SCRIPT", "FLUSH", "ASYNC"),
		}},

		{name: "connection and server", steps: []diffStep{
			dEx("PING"),
			dEx("PING", "hello"),
			dEx("PING", "a", "b"),
			dEx("ECHO", "x y"),
			dEx("ECHO"),
			dEx("SELECT", "0"),
			dEx("SELECT", "abc"),
			dAllow("a Redis Cluster has only database 0", dfWantErrPrefix("ERR "), "SELECT", "1"),
			dEx("SELECT", "0"),
			dEx("SET", "db0", "yes"),
			dEx("GET", "db0"),
			dEx("CLIENT", "GETNAME"),
			dEx("CLIENT", "SETNAME", "diff-test"),
			dEx("CLIENT", "GETNAME"),
			dEx("CLIENT", "SETNAME", "has space"),
			dEx("CLIENT", "SETNAME", ""),
			dEx("CLIENT", "GETNAME"),
			dShape(2, "TIME"),
			dEx("DBSIZE"),
			dEx("EXISTS", "db0"),
			dEx("NOSUCHCOMMAND", "a", "b"),
			dEx("GET", "a", "b"),
		}},
	}
}

// ---- steps and comparisons ----

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

// ---- RESP2 over a raw connection ----

// diffReply is one decoded RESP2 reply.
type diffReply struct {
	kind  byte // '+', '-', ':', '$', '*'; 0 for an I/O failure (str says why)
	str   string
	num   int64
	null  bool
	elems []diffReply
}

func (r diffReply) isErr() bool { return r.kind == '-' }

func (r diffReply) String() string {
	switch r.kind {
	case '+':
		return r.str
	case '-':
		return "(error) " + r.str
	case ':':
		return "(integer) " + strconv.FormatInt(r.num, 10)
	case '$':
		if r.null {
			return "(nil)"
		}
		s := r.str
		if len(s) > 120 {
			s = s[:120] + fmt.Sprintf("...(%d bytes)", len(r.str))
		}
		return strconv.Quote(s)
	case '*':
		if r.null {
			return "(nil array)"
		}
		parts := make([]string, len(r.elems))
		for i, e := range r.elems {
			parts[i] = e.String()
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return "(I/O failure: " + r.str + ")"
}

// diffSide is one server under comparison with up to two connections.
type diffSide struct {
	t     *testing.T
	name  string
	addr  string
	conns [2]*diffConn
	vars  map[string]string
}

type diffConn struct {
	c  net.Conn
	rd *bufio.Reader
}

func (s *diffSide) close() {
	for _, c := range s.conns {
		if c != nil {
			c.c.Close()
		}
	}
}

// do sends args (after $var substitution) on connection i and reads one
// reply. An I/O failure becomes a kind-0 reply and the connection is
// redialed for the next command.
func (s *diffSide) do(i int, args []string) diffReply {
	if s.conns[i] == nil {
		c, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
		if err != nil {
			s.t.Fatalf("%s: dial %s: %v", s.name, s.addr, err)
		}
		s.conns[i] = &diffConn{c: c, rd: bufio.NewReaderSize(c, 64<<10)}
	}
	c := s.conns[i]
	var b []byte
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, "\r\n"...)
	for _, a := range args {
		if v, ok := s.vars[strings.TrimPrefix(a, "$")]; ok && strings.HasPrefix(a, "$") {
			a = v
		}
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, "\r\n"...)
		b = append(b, a...)
		b = append(b, "\r\n"...)
	}
	c.c.SetDeadline(time.Now().Add(10 * time.Second))
	r, err := func() (diffReply, error) {
		if _, err := c.c.Write(b); err != nil {
			return diffReply{}, err
		}
		return diffRead(c.rd)
	}()
	if err != nil {
		c.c.Close()
		s.conns[i] = nil
		return diffReply{str: err.Error()}
	}
	return r
}

// scanAll iterates SCAN MATCH match to the end and returns every key as
// one array reply (Slotway's cursors differ from a single Redis's by
// design; the set of keys must not).
func (s *diffSide) scanAll(match string) diffReply {
	out := diffReply{kind: '*'}
	cursor := "0"
	for range 10000 {
		r := s.do(0, []string{"SCAN", cursor, "MATCH", match, "COUNT", "3"})
		if r.kind != '*' || len(r.elems) != 2 || r.elems[1].kind != '*' {
			return r
		}
		out.elems = append(out.elems, r.elems[1].elems...)
		cursor = r.elems[0].str
		if cursor == "0" {
			return out
		}
	}
	return diffReply{str: "SCAN did not finish"}
}

func diffRead(rd *bufio.Reader) (diffReply, error) {
	line, err := rd.ReadString('\n')
	if err != nil {
		return diffReply{}, err
	}
	if len(line) < 3 || !strings.HasSuffix(line, "\r\n") {
		return diffReply{}, fmt.Errorf("malformed reply line %q", line)
	}
	kind, body := line[0], line[1:len(line)-2]
	switch kind {
	case '+', '-':
		return diffReply{kind: kind, str: body}, nil
	case ':':
		n, err := strconv.ParseInt(body, 10, 64)
		if err != nil {
			return diffReply{}, fmt.Errorf("bad integer reply %q", line)
		}
		return diffReply{kind: ':', num: n}, nil
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil {
			return diffReply{}, fmt.Errorf("bad bulk length %q", line)
		}
		if n < 0 {
			return diffReply{kind: '$', null: true}, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(rd, buf); err != nil {
			return diffReply{}, err
		}
		return diffReply{kind: '$', str: string(buf[:n])}, nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil {
			return diffReply{}, fmt.Errorf("bad array length %q", line)
		}
		if n < 0 {
			return diffReply{kind: '*', null: true}, nil
		}
		r := diffReply{kind: '*', elems: make([]diffReply, n)}
		for i := range n {
			if r.elems[i], err = diffRead(rd); err != nil {
				return diffReply{}, err
			}
		}
		return r, nil
	}
	return diffReply{}, fmt.Errorf("unknown reply type %q", line)
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
		switch s := proxy.Slot([]byte(k)); {
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
