package proxy_test

import (
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/redistest"
)

// infoSections parses an INFO reply: section → field → value.
func infoSections(info string) map[string]map[string]string {
	out := map[string]map[string]string{}
	var cur map[string]string
	for _, line := range strings.Split(info, "\r\n") {
		switch {
		case strings.HasPrefix(line, "# "):
			cur = map[string]string{}
			out[strings.ToLower(line[2:])] = cur
		case line == "":
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok || cur == nil {
				continue
			}
			cur[k] = v
		}
	}
	return out
}

// TestInfoLikeOneRedis: INFO everything through Slotway has every section
// and every field a standalone Redis 7.0 has (field by field, for the
// sections whose fields do not depend on the data), with the proxy's own
// values where they describe the one server a client sees.
func TestInfoLikeOneRedis(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3, Replicas: 1})
	alone := redistest.StartStandalone(t)
	p := startProxy(t, c)
	ctx := context.Background()
	ref, err := redis.NewClient(&redis.Options{Addr: alone.Addr, Protocol: 2}).Info(ctx, "everything").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := infoSections(ref)

	r := dialRaw(t, p.Addr().String())
	r.expect("data", "SET info:a 1\r\nSET info:a 2\r\nEVAL \"return 1\" 0\r\nLPUSH info:a x\r\n", "+OK", "+OK", ":1",
		"-WRONGTYPE Operation against a key holding the wrong kind of value")
	blocked := dialRaw(t, p.Addr().String())
	blocked.send("BLPOP info:list 0\r\n")
	sub := dialRaw(t, p.Addr().String())
	sub.expect("subscribe", "SUBSCRIBE info:ch\r\n", "[subscribe info:ch :1]")

	var got map[string]map[string]string
	redistest.WaitFor(t, 20*time.Second, "INFO to show the blocked client and the masters' health checks", func() bool {
		r.send("INFO everything\r\n")
		got = infoSections(r.reply())
		return got["clients"]["blocked_clients"] == "1" && got["memory"]["used_memory"] != ""
	})
	for _, name := range []string{"server", "clients", "memory", "persistence", "stats", "replication", "cpu", "modules",
		"errorstats", "cluster", "keyspace", "commandstats", "latencystats"} {
		if got[name] == nil {
			t.Errorf("INFO everything lacks the %s section", name)
		}
	}
	for _, name := range []string{"server", "clients", "memory", "persistence", "stats", "replication", "cpu"} {
		for field := range want[name] {
			if _, ok := got[name][field]; !ok {
				t.Errorf("INFO %s lacks %s (a standalone Redis has it: %q)", name, field, want[name][field])
			}
		}
	}
	checks := []struct{ section, field, pattern string }{
		{"server", "redis_mode", "^standalone$"},
		{"server", "run_id", "^[0-9a-f]{40}$"},
		{"server", "tcp_port", "^" + strings.Split(p.Addr().String(), ":")[1] + "$"},
		{"server", "slotway_version", "."},
		{"clients", "connected_clients", "^[3-9]$"},
		{"clients", "blocked_clients", "^1$"},
		{"memory", "used_memory", "^[1-9][0-9]+$"},
		{"memory", "used_memory_human", `^[0-9.]+[BKMG]$`},
		{"memory", "maxmemory_policy", "^noeviction$"},
		{"memory", "number_of_cached_scripts", "^[0-9]+$"},
		{"stats", "pubsub_channels", "^1$"},
		{"stats", "total_commands_processed", "^[1-9][0-9]*$"},
		{"stats", "keyspace_hits", "^[0-9]+$"},
		{"replication", "role", "^master$"},
		{"replication", "connected_slaves", "^0$"},
		{"cpu", "used_cpu_user", `^[0-9]+\.[0-9]{6}$`},
		{"cluster", "cluster_enabled", "^0$"},
		{"errorstats", "errorstat_WRONGTYPE", "^count=1$"},
		{"commandstats", "cmdstat_set", `^calls=2,usec=[0-9]+,usec_per_call=[0-9.]+,rejected_calls=0,failed_calls=0$`},
		{"commandstats", "cmdstat_lpush", `^calls=1,.*,failed_calls=1$`},
		{"keyspace", "db0", `^keys=1,expires=0,avg_ttl=0$`},
	}
	for _, ck := range checks {
		if v := got[ck.section][ck.field]; !regexp.MustCompile(ck.pattern).MatchString(v) {
			t.Errorf("INFO %s %s = %q, want %s", ck.section, ck.field, v, ck.pattern)
		}
	}
	r.send("INFO\r\n")
	if def := infoSections(r.reply()); def["server"] == nil || def["keyspace"] == nil || def["commandstats"] != nil {
		t.Errorf("INFO without arguments (the default sections): %v", def)
	}
	r.send("INFO memory\r\n")
	if mem := infoSections(r.reply()); len(mem) != 1 || mem["memory"] == nil {
		t.Errorf("INFO memory: sections %v", mem)
	}

	// redis-cli --stat reads INFO every interval: sane figures, not the
	// -9223372036854775808B it printed when used_memory was missing.
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-cli: %v", err)
	}
	sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	host, port, _ := strings.Cut(p.Addr().String(), ":")
	// stdbuf: redis-cli buffers its output when it is not a terminal.
	out, _ := exec.CommandContext(sctx, "stdbuf", "-oL", cli, "-h", host, "-p", port, "--stat", "-i", "0.2").Output()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	row := regexp.MustCompile(`^\s*1\s+[0-9.]+[BKMG]\s+[3-9]\s+1\s+[0-9]+`) // keys mem clients blocked requests
	rows := 0
	for _, l := range lines {
		if row.MatchString(l) {
			rows++
		}
	}
	if rows < 2 || strings.Contains(string(out), "-9223372036854775808") {
		t.Errorf("redis-cli --stat through Slotway:\n%s", out)
	}
	blocked.c.Close()

	// CLIENT INFO and CLIENT LIST: every field a standalone 7.0 prints.
	raw, err := redis.NewClient(&redis.Options{Addr: alone.Addr, Protocol: 2}).Do(ctx, "CLIENT", "INFO").Text()
	if err != nil {
		t.Fatal(err)
	}
	r.send("CLIENT INFO\r\n")
	mine := clientFields(r.reply())
	for k := range clientFields(raw) {
		if _, ok := mine[k]; !ok {
			t.Errorf("CLIENT INFO lacks %s (a standalone Redis has it)", k)
		}
	}
	if !regexp.MustCompile(`^[0-9]+$`).MatchString(mine["fd"]) || mine["tot-mem"] == "0" || mine["rbs"] == "" {
		t.Errorf("CLIENT INFO values: %v", mine)
	}
	r.expect("MULTI", "MULTI\r\nSET info:m 1\r\n", "+OK", "+QUEUED")
	sub.expect("RESET", "RESET\r\n", "+RESET")
	sub.send("CLIENT LIST ID " + mine["id"] + "\r\n")
	if inTx := clientFields(sub.reply()); inTx["multi"] != "1" || inTx["multi-mem"] == "0" || inTx["flags"] != "x" {
		t.Errorf("CLIENT LIST in MULTI: %v", inTx)
	}
	r.expect("DISCARD", "DISCARD\r\n", "+OK")
}

// clientFields parses one CLIENT INFO/LIST line.
func clientFields(line string) map[string]string {
	out := map[string]string{}
	for _, f := range strings.Fields(line) {
		k, v, _ := strings.Cut(f, "=")
		out[k] = v
	}
	return out
}
