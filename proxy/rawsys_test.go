package proxy

import (
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestSkipWritten(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string // the segments left, joined by |
	}{
		{0, "ab|cde|f"},
		{1, "b|cde|f"},
		{2, "cde|f"},
		{4, "e|f"},
		{5, "f"},
		{6, ""},
	} {
		v := skipWritten([][]byte{[]byte("ab"), []byte("cde"), []byte("f")}, tc.n)
		var got []string
		for _, b := range v {
			got = append(got, string(b))
		}
		if s := strings.Join(got, "|"); s != tc.want {
			t.Errorf("skipWritten(%d) = %q, want %q", tc.n, s, tc.want)
		}
	}
}

// writevOnce writes the non-empty segments in order, and leaves no
// reference to them in the vector it returns.
func TestWritevOnce(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	for _, raw := range []bool{true, false} {
		n, iov, err := writevOnce(fds[0], [][]byte{[]byte("GET"), nil, []byte(" k\r\n")}, nil, raw)
		if err != nil || n != 7 {
			t.Fatalf("raw=%v: %d, %v", raw, n, err)
		}
		if !slices.Equal(iov[:cap(iov)], make([]unix.Iovec, cap(iov))) {
			t.Errorf("raw=%v: the vector keeps references: %v", raw, iov[:cap(iov)])
		}
		buf := make([]byte, 16)
		m, _ := unix.Read(fds[1], buf)
		if got := string(buf[:m]); got != "GET k\r\n" {
			t.Errorf("raw=%v: read %q", raw, got)
		}
	}
	if n, _, err := writevOnce(fds[0], [][]byte{nil, {}}, nil, true); n != 0 || err != nil {
		t.Errorf("only empty segments: %d, %v; want 0, nil", n, err)
	}
}
