package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

type inner struct {
	Listen string           `yaml:"listen"`
	Seeds  []string         `yaml:"seeds"`
	Every  time.Duration    `yaml:"every"`
	Size   ByteSize         `yaml:"size"`
	Count  int              `yaml:"count"`
	Prio   uint8            `yaml:"prio"`
	On     bool             `yaml:"on"`
	Waits  []time.Duration  `yaml:"waits"`
	Limits map[string]int   `yaml:"limits"`
	Sub    *struct{ A int } `yaml:"sub"`
}

type top struct {
	Proxy inner `yaml:"proxy"`
}

func (t *top) Validate() error {
	var errs []error
	if !strings.Contains(t.Proxy.Listen, ":") {
		errs = append(errs, Errorf("listen", "want host:port, got %q", t.Proxy.Listen))
	}
	if len(t.Proxy.Seeds) == 0 {
		errs = append(errs, Errorf("seeds", "required"))
	}
	return Prefix("proxy", errors.Join(errs...))
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"unknown key", "proxy:\n  listen: a:1\n  seeds: [x]\n  bogus: 1\n", "line 4: unknown key proxy.bogus"},
		{"unknown top key", "proxi:\n  listen: a:1\n", "line 1: unknown key proxi"},
		{"bad address", "proxy:\n  listen: nowhere\n  seeds: [x]\n", "line 2: proxy.listen: want host:port"},
		{"empty seeds", "proxy:\n  listen: a:1\n  seeds: []\n", "line 3: proxy.seeds: required"},
		{"missing seeds", "proxy:\n  listen: a:1\n", "line 1: proxy.seeds: required"},
		{"bad duration", "proxy:\n  listen: a:1\n  seeds: [x]\n  every: 3 parsecs\n", "line 4"},
		{"bad size", "proxy:\n  listen: a:1\n  seeds: [x]\n  size: 12 potatoes\n", "line 4: proxy.size: want a size such as 64mb, got 12 potatoes"},
		{"wrong type", "proxy:\n  listen: [a]\n", "line 2: proxy.listen: want a string, got a list"},
		{"int for duration", "proxy:\n  listen: a:1\n  every: 3\n", "line 3: proxy.every: want a duration such as 3s, got 3"},
		{"word for duration", "proxy:\n  every: soon\n", "line 2: proxy.every: want a duration such as 3s, got soon"},
		{"word for int", "proxy:\n  count: many\n", "line 2: proxy.count: want an integer, got many"},
		{"uint8 overflow", "proxy:\n  prio: 300\n", "line 2: proxy.prio: want an integer 0..255, got 300"},
		{"word for bool", "proxy:\n  on: maybe\n", "line 2: proxy.on: want true or false, got maybe"},
		{"list element", "proxy:\n  waits: [1s, 2]\n", "line 2: proxy.waits[1]: want a duration such as 3s, got 2"},
		{"map value", "proxy:\n  limits:\n    a: 1\n    b: x y\n", "line 4: proxy.limits.b: want an integer, got x y"},
		{"scalar for list", "proxy:\n  seeds: x\n", "line 2: proxy.seeds: want a list, got x"},
		{"scalar for section", "proxy: 3\n", "line 1: proxy: want a mapping of keys, got 3"},
		{"scalar for pointer section", "proxy:\n  sub: 3\n", "line 2: proxy.sub: want a mapping of keys, got 3"},
		{"list for file", "- a\n", "line 1: want a mapping of keys, got a list"},
		{"every problem", "proxy:\n  every: 3\n  bogus: 1\n  count: x\n", "line 2: proxy.every: want a duration such as 3s, got 3\nline 3: unknown key proxy.bogus\nline 4: proxy.count: want an integer, got x"},
		{"empty", "", "empty file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var v top
			err := Parse([]byte(tc.in), &v)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestParseOK(t *testing.T) {
	var v top
	in := "proxy:\n  listen: a:1\n  seeds: [x, y]\n  every: 250ms\n  size: 8mb\n"
	if err := Parse([]byte(in), &v); err != nil {
		t.Fatal(err)
	}
	if v.Proxy.Every != 250*time.Millisecond || v.Proxy.Size != 8<<20 || len(v.Proxy.Seeds) != 2 {
		t.Fatalf("decoded %+v", v)
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"512": 512, "64kb": 64 << 10, "1mb": 1 << 20, "2GB": 2 << 30, "3 m": 3 << 20, "0": 0} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1tb", "mb", "1.5mb", "99999999999gb"} {
		if _, err := ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) accepted", in)
		}
	}
	if s := ByteSize(512 << 20).String(); s != "512mb" {
		t.Errorf("String() = %q", s)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("proxy:\n  listen: a:1\n  seeds: [x]\n"))
	f.Add([]byte("proxy: {listen: 'a:1', seeds: [], every: 1s, size: 1mb}\n"))
	f.Add([]byte("- a\n- b\n"))
	f.Add([]byte("proxy: &a {every: 3, count: x, sub: {A: *a}, limits: {a: *a}}\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var v top
		_ = Parse(in, &v) // must not panic, whatever the input
	})
}

func TestLocate(t *testing.T) {
	in := []byte("proxy:\n  listen: a:1\n  seeds: [x]\n")
	err := Locate(in, errors.Join(Errorf("proxy.seeds[0]", "unreadable"), errors.New("other")))
	if want := "line 3: proxy.seeds[0]: unreadable\nother"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
	if Locate(in, nil) != nil {
		t.Error("Locate(nil) is not nil")
	}
}
