package proxy

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/slotway/slotway/internal/redistest"
)

// TestKeysMatchCommandGetKeys checks the key-spec interpreter against the
// server's own COMMAND GETKEYS for commands of every key-spec shape.
func TestKeysMatchCommandGetKeys(t *testing.T) {
	c := redistest.New(t, redistest.Options{Masters: 1})
	rc := c.Nodes()[0].Client()
	ctx := context.Background()
	reply, err := rc.Do(ctx, "COMMAND").Result()
	if err != nil {
		t.Fatal(err)
	}
	table, err := parseCommandTable(reply)
	if err != nil {
		t.Fatal(err)
	}
	cmds := []string{
		"GET k1", "SET k1 v EX 10", "MGET k1 k2 k3", "MSET k1 v1 k2 v2", "DEL k1 k2",
		"EXISTS k1 k2 k3", "RENAME k1 k2", "SMOVE k1 k2 m", "SINTERSTORE d k1 k2",
		"ZUNIONSTORE d 2 k1 k2 WEIGHTS 1 2", "ZUNION 2 k1 k2", "ZINTERCARD 2 k1 k2 LIMIT 1",
		"EVAL s 2 k1 k2 a1", "EVALSHA abc 1 k1 a1", "EVAL_RO s 1 k1", "FCALL f 2 k1 k2 a",
		"XREAD COUNT 2 STREAMS s1 s2 0 0", "XREADGROUP GROUP g c STREAMS s1 s2 > >",
		"XADD s * f v", "LMOVE k1 k2 LEFT RIGHT", "BLMOVE k1 k2 LEFT RIGHT 0",
		"BLPOP k1 k2 0", "BZPOPMIN k1 k2 1", "LMPOP 2 k1 k2 LEFT", "BLMPOP 0 2 k1 k2 LEFT",
		"ZMPOP 2 k1 k2 MIN", "SORT k1 BY nosort STORE d", "SORT_RO k1", "GEORADIUS g 0 0 1 km STORE d",
		"GEOSEARCHSTORE d src FROMLONLAT 0 0 BYRADIUS 1 km", "OBJECT ENCODING k1", "MEMORY USAGE k1",
		"XINFO STREAM s1", "BITOP AND d k1 k2", "PFMERGE d k1 k2", "PFCOUNT k1 k2",
		"COPY k1 k2", "LCS k1 k2", "SINTERCARD 2 k1 k2", "SPUBLISH ch msg", "GETEX k1 PERSIST",
		"HSET h f v", "ZADD z 1 m", "EXPIRE k1 10", "TOUCH k1 k2", "UNLINK k1 k2 k3", "WATCH k1 k2",
		"MSETNX k1 v k2 v", "SUNIONSTORE d k1", "SDIFF k1 k2", "RPOPLPUSH k1 k2", "BRPOPLPUSH k1 k2 0",
		"DUMP k1", "RESTORE k1 0 x", "TYPE k1", "GETDEL k1", "SETRANGE k1 0 v", "GEOADD g 0 0 m",
	}
	for _, line := range cmds {
		args := strings.Fields(line)
		t.Run(line, func(t *testing.T) {
			bargs := make([][]byte, len(args))
			for i, a := range args {
				bargs[i] = []byte(a)
			}
			ci, _ := table.lookup(bargs)
			if ci == nil {
				t.Fatalf("%s not in the table", args[0])
			}
			var got []string
			ci.eachKey(bargs, func(k []byte) bool { got = append(got, string(k)); return true })
			// Sharded pub/sub hashes the channel: its key spec is flagged
			// NOT_KEY, which GETKEYS leaves out but routing must use.
			notKey := map[string][]string{"SPUBLISH": {"ch"}}
			res, ok := notKey[args[0]]
			if !ok {
				q := append([]any{"COMMAND", "GETKEYS"}, anys(args)...)
				var err error
				if res, err = rc.Do(ctx, q...).StringSlice(); err != nil {
					t.Fatalf("COMMAND GETKEYS: %v", err)
				}
			}
			slices.Sort(got)
			slices.Sort(res)
			got = slices.Compact(got)
			res = slices.Compact(res)
			if !slices.Equal(got, res) {
				t.Errorf("keys %q, COMMAND GETKEYS says %q", got, res)
			}
		})
	}
}

func anys(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func BenchmarkSlotOf(b *testing.B) {
	ci := &cmdInfo{name: "mget", arity: -2, specs: []keySpec{{beginIndex: 1, findRange: true, lastKey: -1, keyStep: 1}}}
	args := [][]byte{[]byte("MGET"), []byte("{u}a"), []byte("{u}b"), []byte("{u}c")}
	b.ReportAllocs()
	for b.Loop() {
		if _, cross := ci.slotOf(args); cross {
			b.Fatal("cross")
		}
	}
}
