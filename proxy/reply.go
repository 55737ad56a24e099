package proxy

import (
	"errors"

	"github.com/slotway/slotway/internal/hashslot"
)

// errBadReply means the backend sent bytes that are not RESP: the
// connection is out of step and must be dropped.
var errBadReply = errors.New("malformed reply from backend")

// scanReply returns the length of the complete RESP2/RESP3 reply at the
// start of b, 0 when b holds only part of one (need is then a lower bound on
// the bytes required), or errBadReply. It is iterative so that deeply nested
// replies cannot exhaust the stack.
func scanReply(b []byte) (n int, need int, err error) {
	pos := 0
	pending := 1 // replies still to scan at this point
	for pending > 0 {
		if pos >= len(b) {
			return 0, pos + 1, nil
		}
		t := b[pos]
		line, next, ok := readLine(b, pos+1)
		if !ok {
			if hasBareCR(b, pos+1) {
				return 0, 0, errBadReply
			}
			return 0, len(b) + 1, nil
		}
		pending--
		switch t {
		case '+', '-', ':', '_', ',', '#', '(':
			pos = next
		case '$', '=', '!':
			n, ok := parseSigned(line)
			if !ok {
				return 0, 0, errBadReply
			}
			if n < 0 { // null bulk
				pos = next
				continue
			}
			end := next + int(n) + 2
			if end > len(b) {
				return 0, end, nil
			}
			if b[end-2] != '\r' || b[end-1] != '\n' {
				return 0, 0, errBadReply
			}
			pos = end
		case '*', '~', '>':
			n, ok := parseSigned(line)
			if !ok {
				return 0, 0, errBadReply
			}
			if n > 0 {
				pending += int(n)
			}
			pos = next
		case '%':
			n, ok := parseSigned(line)
			if !ok {
				return 0, 0, errBadReply
			}
			if n > 0 {
				pending += 2 * int(n)
			}
			pos = next
		case '|': // attributes precede the reply they describe
			n, ok := parseSigned(line)
			if !ok {
				return 0, 0, errBadReply
			}
			pending += 2*max(int(n), 0) + 1
			pos = next
		default:
			return 0, 0, errBadReply
		}
	}
	return pos, 0, nil
}

func hasBareCR(b []byte, start int) bool {
	for i := start; i+1 < len(b); i++ {
		if b[i] == '\r' && b[i+1] != '\n' {
			return true
		}
	}
	return false
}

func parseSigned(b []byte) (int64, bool) {
	if len(b) > 0 && b[0] == '-' {
		n, ok := parseLen(b[1:])
		return -n, ok
	}
	return parseLen(b)
}

// redirect classifies error replies that Slotway handles itself.
type redirect uint8

const (
	redirNone redirect = iota
	redirMoved
	redirAsk
	redirTryAgain
	redirClusterDown
)

func (r redirect) String() string {
	switch r {
	case redirMoved:
		return "moved"
	case redirAsk:
		return "ask"
	case redirTryAgain:
		return "tryagain"
	case redirClusterDown:
		return "clusterdown"
	}
	return "none"
}

// classify looks at an error reply ("-MOVED 3999 127.0.0.1:6381\r\n") and
// returns its kind, the slot and the address it names.
func classify(reply []byte) (kind redirect, slot int, addr []byte) {
	if len(reply) < 4 || reply[0] != '-' {
		return redirNone, 0, nil
	}
	body := reply[1 : len(reply)-2]
	switch {
	case hasPrefix(body, "MOVED "):
		kind, body = redirMoved, body[6:]
	case hasPrefix(body, "ASK "):
		kind, body = redirAsk, body[4:]
	case hasPrefix(body, "TRYAGAIN"):
		return redirTryAgain, 0, nil
	case hasPrefix(body, "CLUSTERDOWN"):
		return redirClusterDown, 0, nil
	default:
		return redirNone, 0, nil
	}
	sp := -1
	for i, c := range body {
		if c == ' ' {
			sp = i
			break
		}
	}
	if sp <= 0 {
		return redirNone, 0, nil
	}
	s, ok := parseLen(body[:sp])
	if !ok || s >= hashslot.Count {
		return redirNone, 0, nil
	}
	return kind, int(s), body[sp+1:]
}

func hasPrefix(b []byte, p string) bool {
	return len(b) >= len(p) && string(b[:len(p)]) == p
}
