package proxy_test

// RESP2 over raw connections for the differential test.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

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
