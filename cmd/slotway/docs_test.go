package main

import (
	"encoding"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// configReference is the configuration reference checked against the
// config structs.
var configReference = filepath.Join("..", "..", "docs", "configuration.md")

// TestConfigReference keeps docs/configuration.md and the config structs in
// step both ways: every key the YAML file accepts has a row in the
// reference, and every key the reference's tables and headings name
// exists. It also loads every Slotway config shown in docs/*.md.
func TestConfigReference(t *testing.T) {
	leaves, sections := map[string]bool{}, map[string]bool{}
	configKeys(reflect.TypeFor[fileConfig](), "", leaves, sections)
	if len(leaves) < 50 {
		t.Fatalf("found only %d config keys in fileConfig; the walk is broken", len(leaves))
	}
	var roots []string
	for k := range sections {
		if !strings.ContainsAny(k, ".[") {
			roots = append(roots, k)
		}
	}
	doc, err := os.ReadFile(configReference)
	if err != nil {
		t.Fatal(err)
	}
	rows, headings := documentedKeys(string(doc), roots)

	t.Run("every key documented", func(t *testing.T) {
		for _, k := range docKeysSorted(leaves) {
			if _, ok := rows[k]; !ok {
				t.Errorf("config key %s has no row in %s; add | `%s` | type | default | meaning |", k, configReference, k)
			}
		}
	})
	t.Run("no unknown key documented", func(t *testing.T) {
		for _, where := range []map[string][]int{rows, headings} {
			for _, k := range docKeysSorted(where) {
				if !leaves[k] && !sections[k] {
					t.Errorf("%s:%s documents %s, which the config structs do not have", configReference, docLines(where[k]), k)
				}
			}
		}
		for _, k := range docKeysSorted(rows) {
			if len(rows[k]) > 1 {
				t.Errorf("%s:%s: %s has more than one row", configReference, docLines(rows[k]), k)
			}
		}
	})
}

// configKeys records the dotted path of every key under t: leaves are
// values (scalars, lists of scalars, maps of scalars), sections are
// mappings of keys (structs, and lists or maps of structs, written
// `proxy.users[].name` and `a.<name>.b`). Named scalar types
// (time.Duration, config.ByteSize, scaler.Percent) are leaves by their
// kind; structs are walked even when they unmarshal themselves (ha.Config
// and scaler.Config do, to fill in defaults), as the loader does, unless
// they read a scalar (encoding.TextUnmarshaler, e.g. time.Time).
func configKeys(t reflect.Type, path string, leaves, sections map[string]bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if reflect.PointerTo(t).Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) {
			leaves[path] = true
			return
		}
		if path != "" {
			sections[path] = true
		}
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			switch {
			case name == "-":
				continue
			case strings.Contains(opts, "inline"):
				configKeys(f.Type, path, leaves, sections)
				continue
			case name == "":
				name = strings.ToLower(f.Name)
			}
			if path != "" {
				name = path + "." + name
			}
			configKeys(f.Type, name, leaves, sections)
		}
	case reflect.Slice, reflect.Array, reflect.Map:
		elem := t.Elem()
		for elem.Kind() == reflect.Pointer {
			elem = elem.Elem()
		}
		if elem.Kind() != reflect.Struct || reflect.PointerTo(elem).Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) {
			leaves[path] = true
			return
		}
		sections[path] = true
		sub := path + "[]"
		if t.Kind() == reflect.Map {
			sub = path + ".<name>"
		}
		configKeys(elem, sub, leaves, sections)
	default:
		leaves[path] = true
	}
}

// documentedKeys returns, with their line numbers, the keys in the first
// cell of table rows (| `proxy.listen` | ...) and the keys in headings
// (### `proxy.cluster`), counting only backticked names under one of the
// roots (proxy, stats, ...). Prose is not checked: it may name keys that
// are still to come.
func documentedKeys(doc string, roots []string) (rows, headings map[string][]int) {
	rows, headings = map[string][]int{}, map[string][]int{}
	isKey := func(s string) bool {
		for _, r := range roots {
			if s == r || strings.HasPrefix(s, r+".") || strings.HasPrefix(s, r+"[") {
				return true
			}
		}
		return false
	}
	tick := regexp.MustCompile("`([^`]+)`")
	inCode := false
	for i, line := range strings.Split(doc, "\n") {
		n := i + 1
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") {
			inCode = !inCode
			continue
		}
		switch {
		case inCode:
		case strings.HasPrefix(trimmed, "|"):
			cell, _, _ := strings.Cut(strings.TrimPrefix(trimmed, "|"), "|")
			cell = strings.TrimSpace(cell)
			if m := tick.FindStringSubmatch(cell); m != nil && m[0] == cell && isKey(m[1]) {
				rows[m[1]] = append(rows[m[1]], n)
			}
		case strings.HasPrefix(trimmed, "#"):
			for _, m := range tick.FindAllStringSubmatch(trimmed, -1) {
				if isKey(m[1]) {
					headings[m[1]] = append(headings[m[1]], n)
				}
			}
		}
	}
	return rows, headings
}

func docLines(lines []int) string {
	s := make([]string, len(lines))
	for i, n := range lines {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func docKeysSorted[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
