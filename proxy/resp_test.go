package proxy

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

var testLimits = Limits{MaxBulkLen: 512 << 20, MaxArgs: 1 << 20, MaxInline: 64 << 10, MaxBatchLen: 1024}

func readAll(t *testing.T, in string, lim Limits) ([][]string, error) {
	t.Helper()
	p := newReader(strings.NewReader(in), lim)
	var out [][]string
	for {
		args, _, err := p.next()
		if errors.Is(err, errIncomplete) {
			if ferr := p.fill(); ferr != nil {
				if ferr == io.EOF {
					return out, nil
				}
				return out, ferr
			}
			continue
		}
		if err != nil {
			return out, err
		}
		var s []string
		for _, a := range args {
			s = append(s, string(a))
		}
		out = append(out, s)
	}
}

func TestReaderParses(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"resp", "*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n", "[GET foo]"},
		{"pipeline", "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$0\r\n\r\n", "[PING][ECHO ]"},
		{"inline", "SET a \"b c\\n\"\r\nGET 'it\\'s'\n", "[SET a b c\n][GET it's]"},
		{"blank lines", "\r\n\nPING\r\n", "[][][PING]"},
		{"empty array", "*0\r\nPING\r\n", "[][PING]"},
		{"binary", "*2\r\n$4\r\nECHO\r\n$4\r\n\r\n\x00\xff\r\n", "[ECHO \r\n\x00\xff]"},
		{"hex escape", "ECHO \"\\x41\\x4a\"\n", "[ECHO AJ]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAll(t, tc.in, testLimits)
			if err != nil {
				t.Fatal(err)
			}
			var sb strings.Builder
			for _, c := range got {
				sb.WriteString("[" + strings.Join(c, " ") + "]")
			}
			if sb.String() != tc.want {
				t.Errorf("got %q, want %q", sb.String(), tc.want)
			}
		})
	}
}

// oneByteReader hands out one byte per Read to exercise every partial state.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(b []byte) (int, error) { return o.r.Read(b[:1]) }

func TestReaderByteAtATime(t *testing.T) {
	in := "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$10\r\n0123456789\r\nPING\r\n"
	p := newReader(oneByteReader{strings.NewReader(in)}, testLimits)
	var got []string
	for len(got) < 2 {
		args, raw, err := p.next()
		if errors.Is(err, errIncomplete) {
			if err := p.fill(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(bytes.Join(args, []byte(" "))))
		if len(got) == 1 && string(raw) != in[:len(raw)] {
			t.Errorf("raw %q is not the request's bytes", raw)
		}
	}
	if got[0] != "SET key 0123456789" || got[1] != "PING" {
		t.Errorf("got %q", got)
	}
}

func TestReaderRejects(t *testing.T) {
	small := testLimits
	small.MaxBulkLen = 1024
	small.MaxArgs = 8
	tests := []struct {
		name, in, want string
		lim            Limits
	}{
		{"4GB bulk", "*2\r\n$3\r\nSET\r\n$4294967296\r\n", "invalid bulk length", testLimits},
		{"over limit bulk", "*1\r\n$1025\r\n", "invalid bulk length", small},
		{"too many args", "*9\r\n", "invalid multibulk length", small},
		{"negative count", "*-5\r\n", "invalid multibulk length", testLimits},
		{"not a bulk", "*1\r\n:5\r\n", "expected '$', got ':'", testLimits},
		{"bad terminator", "*1\r\n$3\r\nGETxx", "invalid bulk terminator", testLimits},
		{"bad count", "*x\r\n", "invalid multibulk length", testLimits},
		{"quotes", "SET \"a\n", "unbalanced quotes", testLimits},
		{"junk after quote", "SET \"a\"b\n", "unbalanced quotes", testLimits},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readAll(t, tc.in, tc.lim)
			var pe *ProtocolError
			if !errors.As(err, &pe) || !strings.Contains(pe.Msg, tc.want) {
				t.Fatalf("got %v, want protocol error %q", err, tc.want)
			}
		})
	}
}

func TestReaderDoesNotGrowForDeclaredLength(t *testing.T) {
	p := newReader(strings.NewReader("*2\r\n$3\r\nSET\r\n$536870912\r\nabc"), testLimits)
	for range 3 {
		if _, _, err := p.next(); !errors.Is(err, errIncomplete) {
			t.Fatalf("want incomplete, got %v", err)
		}
		if err := p.fill(); err != nil && err != io.EOF {
			t.Fatal(err)
		}
	}
	// The buffer grows to what the declared (allowed) length needs, which is
	// the point of checking limits first: only allowed sizes are grown to.
	if len(p.buf) > 512<<20+64 {
		t.Fatalf("buffer grew to %d", len(p.buf))
	}
}

func TestScanReply(t *testing.T) {
	tests := []struct {
		in  string
		n   int
		bad bool
	}{
		{"+OK\r\n", 5, false},
		{"-ERR x\r\n", 8, false},
		{":123\r\n", 6, false},
		{"$3\r\nfoo\r\n", 9, false},
		{"$-1\r\n", 5, false},
		{"*-1\r\n", 5, false},
		{"*2\r\n$1\r\na\r\n*1\r\n:1\r\n", 19, false},
		{"%1\r\n+k\r\n+v\r\n", 12, false},
		{"|1\r\n+a\r\n+b\r\n:1\r\n", 16, false},
		{">2\r\n+a\r\n+b\r\n", 12, false},
		{"_\r\n", 3, false},
		{"$3\r\nfoo", 0, false},
		{"*2\r\n:1\r\n", 0, false},
		{"?x\r\n", 0, true},
		{"$3\r\nfooXX", 0, true},
	}
	for _, tc := range tests {
		n, _, err := scanReply([]byte(tc.in))
		if (err != nil) != tc.bad || n != tc.n {
			t.Errorf("scanReply(%q) = %d, %v; want %d, bad=%v", tc.in, n, err, tc.n, tc.bad)
		}
	}
}

func TestClassify(t *testing.T) {
	k, s, a := classify([]byte("-MOVED 3999 127.0.0.1:6381\r\n"))
	if k != redirMoved || s != 3999 || string(a) != "127.0.0.1:6381" {
		t.Errorf("moved: %v %d %q", k, s, a)
	}
	k, s, a = classify([]byte("-ASK 1 :7001\r\n"))
	if k != redirAsk || s != 1 || string(a) != ":7001" {
		t.Errorf("ask: %v %d %q", k, s, a)
	}
	if k, _, _ := classify([]byte("-TRYAGAIN Multiple keys request during rehashing of slot\r\n")); k != redirTryAgain {
		t.Errorf("tryagain: %v", k)
	}
	if k, _, _ := classify([]byte("-ERR MOVED\r\n")); k != redirNone {
		t.Errorf("plain error: %v", k)
	}
}

func FuzzReader(f *testing.F) {
	seeds := []string{
		"*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n",
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\nPING\r\n",
		"SET \"a b\" 'c'\r\n",
		"*1\r\n$99999999999\r\n",
		"*0\r\n\r\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	lim := Limits{MaxBulkLen: 1 << 16, MaxArgs: 64, MaxInline: 1 << 12, MaxBatchLen: 16}
	f.Fuzz(func(t *testing.T, in []byte) {
		p := newReader(bytes.NewReader(in), lim)
		for range 10000 {
			args, raw, err := p.next()
			if errors.Is(err, errIncomplete) {
				if p.fill() != nil {
					return
				}
				continue
			}
			if err != nil {
				return
			}
			if len(args) > lim.MaxArgs {
				t.Fatalf("%d args over the limit", len(args))
			}
			// Whatever parsed must round-trip through the RESP encoding.
			if len(args) > 0 {
				q := newReader(bytes.NewReader(appendCommand(nil, args)), lim)
				_ = q.fill()
				back, _, err := q.next()
				if err != nil || len(back) != len(args) {
					t.Fatalf("re-encoded %q did not parse: %v", raw, err)
				}
			}
		}
	})
}

func FuzzScanReply(f *testing.F) {
	for _, s := range []string{"+OK\r\n", "*2\r\n$1\r\na\r\n:1\r\n", "%1\r\n+a\r\n_\r\n", "$-1\r\n", "|1\r\n+a\r\n+b\r\n+c\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		n, _, err := scanReply(in)
		if err == nil && n > len(in) {
			t.Fatalf("n=%d beyond input %d", n, len(in))
		}
	})
}

func TestParseMyMigrations(t *testing.T) {
	a1, b2, c3 := strings.Repeat("a", 40), strings.Repeat("b", 40), strings.Repeat("c", 40)
	nodes := a1 + " 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460 [42->-" + b2 + "] [77-<-" + c3 + "] [43->-" + b2 + "]\n" +
		b2 + " 127.0.0.1:7001@17001 master - 0 0 2 connected 5461-10922 [42-<-" + a1 + "]\n"
	m, i := parseMyMigrations(nodes)
	if len(m) != 2 || m[0] != 42 || m[1] != 43 || len(i) != 1 || i[0] != 77 {
		t.Errorf("migrating %v importing %v", m, i)
	}
}
