package proxy

import (
	"net"
	"strings"
	"testing"
	"time"
)

func TestAppendMonitorLine(t *testing.T) {
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555}
	at := time.Unix(1700000000, 5000) // 5 µs
	cases := []struct{ cmd, want string }{
		{"SET k v", `+1700000000.000005 [0 127.0.0.1:5555] "SET" "k" "v"`},
		{"AUTH user secret", `+1700000000.000005 [0 127.0.0.1:5555] "AUTH" "(redacted)" "(redacted)"`},
		{"HELLO 3 AUTH user secret SETNAME app", `+1700000000.000005 [0 127.0.0.1:5555] "HELLO" "3" "AUTH" "(redacted)" "(redacted)" "SETNAME" "app"`},
		{"SET k a\"b\\\x01\n", `+1700000000.000005 [0 127.0.0.1:5555] "SET" "k" "a\"b\\\x01\n"`},
	}
	for _, tc := range cases {
		var args [][]byte
		for _, a := range strings.Split(tc.cmd, " ") {
			args = append(args, []byte(a))
		}
		if got := string(appendMonitorLine(nil, at, addr, args)); got != tc.want+"\r\n" {
			t.Errorf("%q:\n got %q\nwant %q", tc.cmd, got, tc.want+"\r\n")
		}
	}
}
