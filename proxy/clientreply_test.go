package proxy_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/proxy"
)

// TestClientReply: CLIENT REPLY OFF, ON and SKIP drop a client's replies
// request by request, in a pipeline too, large replies included, on an
// event loop and on a goroutine-served client.
func TestClientReply(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	for _, loops := range []int{0, -1} {
		p := startProxy(t, c, func(cfg *proxy.Config) { cfg.EventLoops = loops })
		r := dialRaw(t, p.Addr().String())
		r.send("DEL reply:n\r\n")
		r.reply()
		big := strings.Repeat("v", 200<<10)
		r.expect("a large value", "*3\r\n$3\r\nSET\r\n$9\r\nreply:big\r\n$"+strconv.Itoa(len(big))+"\r\n"+big+"\r\n", "+OK")
		// Keys on several masters: the muted replies come back from
		// different pipes, and only the unmuted ones reach the client.
		r.expect("OFF then ON, pipelined",
			"CLIENT REPLY OFF\r\nSET reply:a 1\r\nSET reply:b 2\r\nGET reply:big\r\nMGET reply:a reply:b\r\nNOSUCHCMD\r\nCLIENT REPLY ON\r\nGET reply:a\r\n",
			"+OK", "1")
		r.expect("SKIP mutes the next command only", "CLIENT REPLY SKIP\r\nGET reply:a\r\nGET reply:b\r\n", "2")
		r.expect("SKIP across batches", "CLIENT REPLY SKIP\r\n")
		r.expect("the skipped command", "GET reply:a\r\n")
		r.expect("the next one is answered", "GET reply:b\r\n", "2")
		r.expect("RESET turns replies back on", "CLIENT REPLY OFF\r\nRESET\r\nPING\r\n", "+RESET", "+PONG")
		r.expect("a bad mode", "CLIENT REPLY MAYBE\r\n", "-ERR syntax error")
		r.expect("OFF in MULTI's neighbourhood", "CLIENT REPLY OFF\r\nMULTI\r\nINCR reply:n\r\nEXEC\r\nCLIENT REPLY ON\r\nGET reply:n\r\n", "+OK", "1")
	}
}
