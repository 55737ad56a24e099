// Package redisinfo reads Redis's INFO replies: "# Section" headers and
// "key:value" lines, some values made of "name=value" pairs (keyspace's
// db0:keys=1,expires=0,avg_ttl=0, replication's slave0:ip=...). The proxy's
// health check and INFO command, the scaler's collector, the cluster
// bootstrap and the test clusters all read INFO through it.
package redisinfo

import "strings"

// Section is one "# Name" block of an INFO reply; Name is lowercased.
type Section struct {
	Name   string
	Fields [][2]string // key and value, in the reply's order
}

// Parse reads an INFO reply into its sections, in order. Lines before the
// first header, and lines that are not "key:value", are left out.
func Parse(info string) []Section {
	var out []Section
	for line := range strings.SplitSeq(info, "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.HasPrefix(line, "# "):
			out = append(out, Section{Name: strings.ToLower(line[2:])})
		case line == "" || len(out) == 0:
		default:
			if k, v, ok := strings.Cut(line, ":"); ok {
				s := &out[len(out)-1]
				s.Fields = append(s.Fields, [2]string{k, v})
			}
		}
	}
	return out
}

// Find returns the section named name (lowercase) of secs, or nil.
func Find(secs []Section, name string) *Section {
	for i := range secs {
		if secs[i].Name == name {
			return &secs[i]
		}
	}
	return nil
}

// Each calls fn for every "key:value" line of info, in order, whatever
// its section.
func Each(info string, fn func(key, value string)) {
	for line := range strings.SplitSeq(info, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			fn(k, v)
		}
	}
}

// Field returns the value of key in info, "" if it has none.
func Field(info, key string) string {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key+":"); ok {
			return v
		}
	}
	return ""
}

// Pairs calls fn for each "name=value" of a compound value, in order.
func Pairs(value string, fn func(name, value string)) {
	for kv := range strings.SplitSeq(value, ",") {
		name, v, _ := strings.Cut(kv, "=")
		fn(name, v)
	}
}
