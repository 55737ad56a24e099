package main

import "errors"

// errProtocol is a malformed request or reply.
var errProtocol = errors.New("protocol error")

// crlf returns the index of the '\r' of the first "\r\n" at or after pos,
// or -1 when the line is not complete yet.
func crlf(b []byte, pos int) int {
	for i := pos; i+1 < len(b); i++ {
		if b[i] == '\r' {
			if b[i+1] != '\n' {
				return -2
			}
			return i
		}
	}
	return -1
}

// atoi parses a decimal integer, optionally negative, without allocating.
func atoi(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	neg := false
	if b[0] == '-' {
		neg = true
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// replyEnd returns the end of the RESP value that starts at pos: -1 when it
// is not complete yet. It handles + - : $ * (RESP2) and the RESP3 types a
// Redis 7 node can send on a RESP2 connection, iteratively (no recursion).
func replyEnd(b []byte, pos int) (int, error) {
	need := 1
	for need > 0 {
		if pos >= len(b) {
			return -1, nil
		}
		t := b[pos]
		le := crlf(b, pos+1)
		if le == -1 {
			return -1, nil
		}
		if le < 0 {
			return 0, errProtocol
		}
		need--
		switch t {
		case '+', '-', ':', '_', ',', '#', '(':
			pos = le + 2
		case '$', '=', '!':
			n, ok := atoi(b[pos+1 : le])
			if !ok {
				return 0, errProtocol
			}
			pos = le + 2
			if n >= 0 {
				if pos+n+2 > len(b) {
					return -1, nil
				}
				pos += n + 2
			}
		case '*', '~', '>', '%', '|':
			n, ok := atoi(b[pos+1 : le])
			if !ok {
				return 0, errProtocol
			}
			pos = le + 2
			if n > 0 {
				if t == '%' || t == '|' {
					n *= 2
				}
				need += n
			}
		default:
			return 0, errProtocol
		}
	}
	return pos, nil
}

// command is one parsed multi-bulk request: slices of the input buffer.
type command struct {
	argc int
	name []byte // argument 0
	key  []byte // argument 1, if any
}

// parseCommand parses the multi-bulk request starting at pos (b[pos] is
// '*'). It returns the end of the request, -1 when it is not complete yet.
func parseCommand(b []byte, pos int, cmd *command) (int, error) {
	le := crlf(b, pos+1)
	if le == -1 {
		return -1, nil
	}
	if le < 0 {
		return 0, errProtocol
	}
	argc, ok := atoi(b[pos+1 : le])
	if !ok || argc < 1 || argc > 1<<20 {
		return 0, errProtocol
	}
	cmd.argc = argc
	cmd.name, cmd.key = nil, nil
	pos = le + 2
	for i := 0; i < argc; i++ {
		if pos >= len(b) {
			return -1, nil
		}
		if b[pos] != '$' {
			return 0, errProtocol
		}
		le = crlf(b, pos+1)
		if le == -1 {
			return -1, nil
		}
		if le < 0 {
			return 0, errProtocol
		}
		n, ok := atoi(b[pos+1 : le])
		if !ok || n < 0 || n > 512<<20 {
			return 0, errProtocol
		}
		pos = le + 2
		if pos+n+2 > len(b) {
			return -1, nil
		}
		switch i {
		case 0:
			cmd.name = b[pos : pos+n]
		case 1:
			cmd.key = b[pos : pos+n]
		}
		pos += n + 2
	}
	return pos, nil
}

// is reports whether name equals upper (an upper-case ASCII word), ignoring
// the case of name.
func is(name []byte, upper string) bool {
	if len(name) != len(upper) {
		return false
	}
	for i, c := range name {
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != upper[i] {
			return false
		}
	}
	return true
}

// appendBulk appends b as a RESP bulk string.
func appendBulk(dst, b []byte) []byte {
	dst = append(dst, '$')
	dst = appendInt(dst, len(b))
	dst = append(dst, '\r', '\n')
	dst = append(dst, b...)
	return append(dst, '\r', '\n')
}

func appendInt(dst []byte, n int) []byte {
	var tmp [20]byte
	i := len(tmp)
	if n == 0 {
		return append(dst, '0')
	}
	for n > 0 {
		i--
		tmp[i] = byte('0' + n%10)
		n /= 10
	}
	return append(dst, tmp[i:]...)
}
