package proxy_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"

	"github.com/slotway/slotway/internal/hashslot"
	"github.com/slotway/slotway/internal/redistest"
)

// TestScriptsAndFunctionsOnEveryMaster: scripts and function libraries
// work whichever master a key lives on, including a master that lost them
// (or never had them, as one added by scaling).
func TestScriptsAndFunctionsOnEveryMaster(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	p := startProxy(t, c)
	ctx := context.Background()
	masters, err := c.Masters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// One key per master.
	keys := map[string]string{}
	for i := 0; len(keys) < len(masters); i++ {
		k := "fk" + strconv.Itoa(i)
		m, err := c.MasterOf(ctx, hashslot.Of([]byte(k)))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := keys[m.Addr]; !ok {
			keys[m.Addr] = k
		}
	}
	r := dialRaw(t, p.Addr().String())
	lib := "#!lua name=mylib\nredis.register_function('myget', function(keys, args) return redis.call('GET', keys[1]) end)"
	r.send(respCmd("FUNCTION", "LOAD", lib))
	if got := r.reply(); got != "mylib" {
		t.Fatalf("FUNCTION LOAD = %q", got)
	}
	for _, k := range keys {
		r.expect("set", respCmd("SET", k, "v-"+k), "+OK")
		r.expect("fcall", respCmd("FCALL", "myget", "1", k), "v-"+k)
	}
	r.send("FUNCTION LIST\r\n")
	if got := r.reply(); !strings.Contains(got, "mylib") {
		t.Fatalf("FUNCTION LIST = %q", got)
	}
	// A master without the library gets it on the first FCALL there.
	victim := masters[0]
	if err := victim.Client().FunctionFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	r.expect("fcall after flush", respCmd("FCALL", "myget", "1", keys[victim.Addr]), "v-"+keys[victim.Addr])
	r.expect("unknown function", respCmd("FCALL", "nosuch", "1", keys[victim.Addr]), "-ERR Function not found")

	// EVALSHA of a script run once with EVAL works on every master, even
	// after the masters flushed their script caches.
	body := "return redis.call('GET', KEYS[1])"
	sum := sha1.Sum([]byte(body))
	sha := hex.EncodeToString(sum[:])
	first := keys[masters[1].Addr]
	r.expect("eval", respCmd("EVAL", body, "1", first), "v-"+first)
	for _, m := range masters {
		if err := m.Client().ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range keys {
		r.expect("evalsha", respCmd("EVALSHA", sha, "1", k), "v-"+k)
	}
	r.expect("script exists", respCmd("SCRIPT", "EXISTS", sha, strings.Repeat("0", 40)), "[:1 :0]")
	r.expect("unknown sha", respCmd("EVALSHA", strings.Repeat("1", 40), "1", first), "-NOSCRIPT No matching script. Please use EVAL.")
	r.expect("script flush", "SCRIPT FLUSH\r\n", "+OK")
	r.expect("after flush", respCmd("EVALSHA", sha, "1", first), "-NOSCRIPT No matching script. Please use EVAL.")
	r.expect("function delete", "FUNCTION DELETE mylib\r\n", "+OK")
	r.expect("fcall deleted", respCmd("FCALL", "myget", "1", first), "-ERR Function not found")
}

// respCmd encodes a command as a RESP array.
func respCmd(args ...string) string {
	var b strings.Builder
	b.WriteString("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b.WriteString("$" + strconv.Itoa(len(a)) + "\r\n" + a + "\r\n")
	}
	return b.String()
}
