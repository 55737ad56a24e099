package proxy

import (
	"errors"
	"fmt"
	"io"
)

// ProtocolError is a malformed request. The client gets "-ERR Protocol error: ..."
// and its connection is closed, as Redis does.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return "Protocol error: " + e.Msg }

// Limits bound what one request may declare. They are checked against the
// declared lengths, before any buffer is grown for them.
type Limits struct {
	MaxBulkLen  int64 // bytes in one argument
	MaxArgs     int   // arguments in one request
	MaxInline   int   // bytes in one inline (telnet-style) request line
	MaxBatchLen int   // requests handed out per read batch
}

// reader parses client requests out of a growable buffer without allocating
// per request. The args returned by next point into the buffer and stay valid
// until the next fill: a batch is parsed, served and answered before the
// reader touches the socket again.
type reader struct {
	window // unread data is buf[r:w]
	rd     io.Reader
	lim    Limits
	need   int // bytes (from r) that the partial request at r needs at least
	args   [][]byte
	inline []byte // RESP encoding of the last inline request
}

func newReader(rd io.Reader, lim Limits) *reader {
	return &reader{window: newWindow(), rd: rd, lim: lim}
}

var errIncomplete = errors.New("incomplete request")

// fill reads more bytes from the connection, compacting or growing the
// buffer only as far as the partial request at r needs.
func (p *reader) fill() error {
	n, err := p.readFrom(p.rd, p.need)
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// shrink ends a batch: a buffer grown for large requests goes back to its
// base size once small ones are all that come (or at once above 1 MiB).
func (p *reader) shrink() bool { return p.release(1 << 20) }

// next parses the request at r. It returns the arguments and the request's
// RESP bytes (for inline requests, a RESP encoding of them). An empty args
// with a nil error means a blank line or "*0", which Redis ignores.
func (p *reader) next() (args [][]byte, raw []byte, err error) {
	b := p.buf[p.r:p.w]
	if len(b) == 0 {
		return nil, nil, errIncomplete
	}
	if b[0] != '*' {
		return p.nextInline(b)
	}
	line, pos, ok := readLine(b, 1)
	if !ok {
		if len(b) > 64 {
			return nil, nil, &ProtocolError{"invalid multibulk length"}
		}
		return nil, nil, errIncomplete
	}
	count, ok := parseLen(line)
	if !ok || count > int64(p.lim.MaxArgs) {
		return nil, nil, &ProtocolError{"invalid multibulk length"}
	}
	args = p.args[:0]
	for i := int64(0); i < count; i++ {
		if pos >= len(b) {
			p.need = pos + 4
			return nil, nil, errIncomplete
		}
		if b[pos] != '$' {
			return nil, nil, &ProtocolError{fmt.Sprintf("expected '$', got '%c'", b[pos])}
		}
		line, next, ok := readLine(b, pos+1)
		if !ok {
			if len(b)-pos > 64 {
				return nil, nil, &ProtocolError{"invalid bulk length"}
			}
			p.need = len(b) + 1
			return nil, nil, errIncomplete
		}
		n, ok := parseLen(line)
		if !ok || n > p.lim.MaxBulkLen {
			return nil, nil, &ProtocolError{"invalid bulk length"}
		}
		end := next + int(n)
		if end+2 > len(b) {
			// Declared lengths are within limits, so growing to them is safe.
			p.need = end + 2
			return nil, nil, errIncomplete
		}
		if b[end] != '\r' || b[end+1] != '\n' {
			return nil, nil, &ProtocolError{"invalid bulk terminator"}
		}
		args = append(args, b[next:end])
		pos = end + 2
	}
	p.args = args
	p.need = 0
	p.r += pos
	return args, b[:pos], nil
}

// nextInline parses a telnet-style line: arguments separated by spaces, with
// "double" (escapes allowed) and 'single' quotes, like Redis's sdssplitargs.
func (p *reader) nextInline(b []byte) ([][]byte, []byte, error) {
	end := -1
	for i, c := range b {
		if c == '\n' {
			end = i
			break
		}
	}
	if end < 0 {
		if len(b) > p.lim.MaxInline {
			return nil, nil, &ProtocolError{"too big inline request"}
		}
		p.need = len(b) + 1
		return nil, nil, errIncomplete
	}
	line := b[:end]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	args, err := splitInline(line, p.args[:0])
	if err != nil {
		return nil, nil, err
	}
	if len(args) > p.lim.MaxArgs {
		return nil, nil, &ProtocolError{"invalid multibulk length"}
	}
	p.args = args
	p.need = 0
	p.r += end + 1
	// Each inline request of a batch gets its own region: the client resets
	// p.inline once per batch, and earlier regions stay valid when append
	// moves the buffer (they keep the old array).
	start := len(p.inline)
	p.inline = appendCommand(p.inline, args)
	return args, p.inline[start:], nil
}

// splitInline splits in place: unquoted arguments are sub-slices of line;
// quoted ones are unescaped into line itself, which only ever shrinks.
func splitInline(line []byte, args [][]byte) ([][]byte, error) {
	i := 0
	for {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		if i == len(line) {
			return args, nil
		}
		switch q := line[i]; q {
		case '"', '\'':
			start := i
			w := i
			i++
			closed := false
			for i < len(line) {
				c := line[i]
				if c == q {
					closed = true
					i++
					break
				}
				if c == '\\' && i+1 < len(line) && q == '"' {
					i++
					switch line[i] {
					case 'n':
						c = '\n'
					case 'r':
						c = '\r'
					case 't':
						c = '\t'
					case 'b':
						c = '\b'
					case 'a':
						c = '\a'
					case 'x':
						if i+2 < len(line) && isHex(line[i+1]) && isHex(line[i+2]) {
							c = unhex(line[i+1])<<4 | unhex(line[i+2])
							i += 2
						} else {
							c = 'x'
						}
					default:
						c = line[i]
					}
				} else if c == '\\' && q == '\'' && i+1 < len(line) && line[i+1] == '\'' {
					i++
					c = '\''
				}
				line[w] = c
				w++
				i++
			}
			if !closed || (i < len(line) && line[i] != ' ' && line[i] != '\t') {
				return nil, &ProtocolError{"unbalanced quotes in request"}
			}
			args = append(args, line[start:w])
		default:
			start := i
			for i < len(line) && line[i] != ' ' && line[i] != '\t' {
				i++
			}
			args = append(args, line[start:i])
		}
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// readLine returns the bytes from start up to "\r\n" and the index after it.
func readLine(b []byte, start int) (line []byte, next int, ok bool) {
	for i := start; i+1 < len(b); i++ {
		if b[i] == '\r' {
			if b[i+1] != '\n' {
				return nil, 0, false
			}
			return b[start:i], i + 2, true
		}
	}
	return nil, 0, false
}

// parseLen parses a non-negative decimal length of at most 18 digits.
func parseLen(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// appendCommand appends args as a RESP array of bulk strings.
func appendCommand(dst []byte, args [][]byte) []byte {
	dst = appendHeader(dst, '*', int64(len(args)))
	for _, a := range args {
		dst = appendHeader(dst, '$', int64(len(a)))
		dst = append(dst, a...)
		dst = append(dst, '\r', '\n')
	}
	return dst
}

func appendHeader(dst []byte, c byte, n int64) []byte {
	dst = append(dst, c)
	dst = appendInt(dst, n)
	return append(dst, '\r', '\n')
}

func appendInt(dst []byte, n int64) []byte {
	if n >= 0 && n < 10 {
		return append(dst, byte('0'+n))
	}
	var tmp [20]byte
	i := len(tmp)
	neg := n < 0
	u := uint64(n)
	if neg {
		u = uint64(-n)
	}
	for u > 0 {
		i--
		tmp[i] = byte('0' + u%10)
		u /= 10
	}
	if neg {
		i--
		tmp[i] = '-'
	}
	return append(dst, tmp[i:]...)
}
