package proxy_test

import (
	"bufio"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/proxy"
)

// TestMonitor: MONITOR streams the commands of the proxy's clients in
// Redis's format, from two clients (one on a loop, one on a goroutine),
// with secrets redacted; RESET ends it and the connection serves again.
func TestMonitor(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	p := startProxy(t, c)
	mon := dialRaw(t, p.Addr().String())
	mon.expect("MONITOR", "MONITOR\r\n", "+OK")
	redistest.WaitFor(t, 10*time.Second, "the monitor to attach", func() bool {
		return strings.Contains(clientList(t, p.Addr().String()), "flags=O")
	})

	a := dialRaw(t, p.Addr().String())
	b := dialRaw(t, p.Addr().String())
	a.expect("a's commands", "SET mon:a \"x y\\n\"\r\nGET mon:a\r\n", "+OK", "x y\n")
	b.expect("b subscribes (goroutine-served) and leaves", "SUBSCRIBE mon:ch\r\n", "[subscribe mon:ch :1]")
	b.expect("unsubscribe", "UNSUBSCRIBE mon:ch\r\n", "[unsubscribe mon:ch :0]")
	b.expect("b's commands", "PING\r\nAUTH secret\r\n", "+PONG",
		"-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")

	aAddr, bAddr := a.c.LocalAddr().String(), b.c.LocalAddr().String()
	line := `^\+\d{10}\.\d{6} \[0 (127\.0\.0\.1:\d+)\] (.*)$`
	re := regexp.MustCompile(line)
	want := []struct{ addr, args string }{
		{aAddr, `"SET" "mon:a" "x y\n"`},
		{aAddr, `"GET" "mon:a"`},
		{bAddr, `"SUBSCRIBE" "mon:ch"`},
		{bAddr, `"UNSUBSCRIBE" "mon:ch"`},
		{bAddr, `"PING"`},
		{bAddr, `"AUTH" "(redacted)"`},
	}
	for i, w := range want {
		got := mon.reply()
		m := re.FindStringSubmatch(got)
		for m != nil && m[1] != aAddr && m[1] != bAddr { // the test's own CLIENT LISTs
			got = mon.reply()
			m = re.FindStringSubmatch(got)
		}
		if m == nil || m[1] != w.addr || m[2] != w.args {
			t.Fatalf("monitor line %d: %q, want [0 %s] %s", i, got, w.addr, w.args)
		}
	}
	mon.expect("other commands are refused in MONITOR mode", "GET mon:a\r\n", "-ERR only QUIT and RESET are allowed in MONITOR mode")
	if n := p.counter(t, "slotway_proxy_monitor_clients"); n != 1 {
		t.Errorf("slotway_proxy_monitor_clients = %v with one monitor", n)
	}
	mon.expect("RESET ends it", "RESET\r\n", "+RESET")
	mon.expect("and the connection serves again", "GET mon:a\r\n", "x y\n")
	if strings.Contains(clientList(t, p.Addr().String()), "flags=O") {
		t.Error("a monitor is still listed after RESET")
	}
}

// TestMonitorSlowReaderCutOff: a monitor that does not read is
// disconnected once the output limit of lines waits for it.
func TestMonitorSlowReaderCutOff(t *testing.T) {
	shortIf(t)
	c := redistest.New(t, redistest.Options{Masters: 2})
	p := startProxy(t, c, func(cfg *proxy.Config) {
		cfg.Limits.PubsubOutput.Hard = 256 << 10
		cfg.Limits.PubsubOutput.Soft = 0
	})
	mon, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close()
	if _, err := mon.Write([]byte("MONITOR\r\n")); err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(mon)
	if l, err := rd.ReadString('\n'); err != nil || l != "+OK\r\n" {
		t.Fatalf("MONITOR: %q, %v", l, err)
	}
	redistest.WaitFor(t, 10*time.Second, "the monitor to attach", func() bool {
		return strings.Contains(clientList(t, p.Addr().String()), "flags=O")
	})
	// 40 MB of commands: far more than the kernel's socket buffers and the
	// 256 KiB limit. The monitor reads nothing meanwhile.
	w := dialRaw(t, p.Addr().String())
	val := strings.Repeat("v", 64<<10)
	cmd := "*3\r\n$3\r\nSET\r\n$8\r\nmon:slow\r\n$" + strconv.Itoa(len(val)) + "\r\n" + val + "\r\n"
	for range 640 {
		w.expect("SET", cmd, "+OK")
		if !strings.Contains(clientList(t, p.Addr().String()), "flags=O") {
			break
		}
	}
	redistest.WaitFor(t, 30*time.Second, "the slow monitor to be cut off", func() bool {
		return !strings.Contains(clientList(t, p.Addr().String()), "flags=O")
	})
	// What it had been sent arrives, then the connection ends.
	mon.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.Copy(io.Discard, rd); err != nil {
		t.Fatalf("reading the cut-off monitor to its end: %v", err)
	}
}

func clientList(t *testing.T, addr string) string {
	t.Helper()
	r := dialRaw(t, addr)
	defer r.c.Close()
	r.send("CLIENT LIST\r\n")
	return r.reply()
}
