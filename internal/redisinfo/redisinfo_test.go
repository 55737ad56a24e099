package redisinfo

import (
	"reflect"
	"testing"
)

const sample = "# Server\r\nredis_version:7.0.15\r\nrun_id:abc\r\n\r\n# Replication\r\nrole:master\r\nslave0:ip=127.0.0.1,port=7001,state=online,offset=42,lag=0\r\n\r\n# Keyspace\r\ndb0:keys=12,expires=3,avg_ttl=0\r\n"

func TestParse(t *testing.T) {
	secs := Parse("stray:line\r\n" + sample)
	var names []string
	for _, s := range secs {
		names = append(names, s.Name)
	}
	if want := []string{"server", "replication", "keyspace"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("sections %q, want %q", names, want)
	}
	if got := Find(secs, "replication").Fields[0]; got != [2]string{"role", "master"} {
		t.Errorf("replication's first field %q", got)
	}
	if Find(secs, "memory") != nil {
		t.Error("Find of an absent section is not nil")
	}
}

func TestEachFieldPairs(t *testing.T) {
	var keys []string
	Each(sample, func(k, _ string) { keys = append(keys, k) })
	if want := []string{"redis_version", "run_id", "role", "slave0", "db0"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("Each keys %q, want %q", keys, want)
	}
	if got := Field(sample, "role"); got != "master" {
		t.Errorf("Field role = %q", got)
	}
	if got := Field(sample, "maxmemory"); got != "" {
		t.Errorf("Field of an absent key = %q", got)
	}
	got := map[string]string{}
	Pairs(Field(sample, "db0"), func(n, v string) { got[n] = v })
	if want := map[string]string{"keys": "12", "expires": "3", "avg_ttl": "0"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Pairs %v, want %v", got, want)
	}
}
