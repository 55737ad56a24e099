package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/internal/testutil"
)

// TestReload runs `slotway run` against a real cluster and reloads its
// config with SIGHUP and with POST /api/v1/reload: reloadable keys apply
// without a restart and without dropping an open connection, a changed
// listen address is a warning, an invalid file changes nothing.
func TestReload(t *testing.T) {
	requireRedis(t)
	c := redistest.New(t, redistest.Options{Masters: 3})
	bin := buildBinary(t)
	dir := t.TempDir()
	ports := freePorts(t, 3)
	proxyAddr, statsURL := fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	const token = "reload-test-token-0123456789"
	tokenFile := filepath.Join(dir, "admin.token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "slotway.yaml")
	write := func(listenPort int, password, extraProxy, level string) {
		t.Helper()
		cfg := fmt.Sprintf("proxy:\n  listen: 127.0.0.1:%d\n  cluster:\n    seeds: [%q]\n  users:\n    - name: default\n      password: %s\n%s"+
			"stats:\n  listen: 127.0.0.1:%d\n  admin_token_file: %s\nlog:\n  level: %s\n",
			listenPort, c.Seeds()[0], password, extraProxy, ports[1], tokenFile, level)
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(ports[0], "old-password-1", "", "warn")

	cmd := exec.Command(bin, "run", "-c", path)
	var out testutil.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	running := func() {
		t.Helper()
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("slotway exited (%v)\n%s", err, out.String())
		default:
		}
	}
	waitLog := func(what string, from int) string {
		t.Helper()
		var line string
		redistest.WaitFor(t, 30*time.Second, "log line "+strconv.Quote(what), func() bool {
			running() // fail at once if it exited
			for l := range strings.Lines(out.String()[from:]) {
				if strings.Contains(l, what) {
					line = l
					return true
				}
			}
			return false
		})
		return line
	}
	ctx := context.Background()
	client := func(password string) *redis.Client {
		rc := redis.NewClient(&redis.Options{Addr: proxyAddr, Password: password, MaxRetries: -1})
		t.Cleanup(func() { rc.Close() })
		return rc
	}
	redistest.WaitFor(t, 30*time.Second, "slotway to serve", func() bool {
		return client("old-password-1").Set(ctx, "reload:key", "v", 0).Err() == nil
	})
	if strings.Contains(out.String(), "slotway started") {
		t.Errorf("log.level warn at start, but the Info line is there:\n%s", out.String())
	}
	// An open connection, authenticated with the old password.
	conn, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	roundTrip := func(cmd, want string) {
		t.Helper()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(conn, cmd); err != nil {
			t.Fatalf("open connection: write: %v", err)
		}
		got, err := br.ReadString('\n')
		if err != nil || got != want {
			t.Fatalf("open connection: %q -> %q, %v; want %q", cmd, got, err, want)
		}
	}
	roundTrip("AUTH old-password-1\r\n", "+OK\r\n")
	roundTrip("PING\r\n", "+PONG\r\n")

	// SIGHUP: a new password, a lower max_args, log level info and a new
	// listen address, which needs a restart.
	write(ports[2], "new-password-2", "  limits:\n    max_args: 5\n", "info")
	mark := len(out.String())
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	done := waitLog("config reloaded", mark)
	running()
	for _, k := range []string{"proxy.users", "proxy.limits.max_args", "log.level"} {
		if !strings.Contains(done, k) {
			t.Errorf("reload line does not apply %s: %s", k, done)
		}
	}
	warn := waitLog("key=proxy.listen", mark)
	if !strings.Contains(warn, "level=WARN") || !strings.Contains(warn, "needs a restart") {
		t.Errorf("listen change: %s", warn)
	}
	roundTrip("PING\r\n", "+PONG\r\n") // the open connection survived
	roundTrip("SET reload:open v2\r\n", "+OK\r\n")
	if err := client("old-password-1").Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Errorf("old password after the reload: %v", err)
	}
	fresh := client("new-password-2")
	if err := fresh.Set(ctx, "reload:key", "v3", 0).Err(); err != nil {
		t.Errorf("new password after the reload: %v", err)
	}
	// HELLO 3 AUTH default PASSWORD, which go-redis sends, is 5 arguments.
	if err := fresh.Del(ctx, "a", "b", "c", "d", "e").Err(); err == nil || !strings.Contains(err.Error(), "Protocol error") {
		t.Errorf("DEL with 6 arguments over max_args 5: %v", err)
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", ports[2]), time.Second); err == nil {
		c.Close()
		t.Errorf("the new listen address serves without a restart")
	}

	// An invalid file changes nothing; the error has its line.
	write(ports[2], "third-password-3", "  max_clientz: 5\n", "info")
	mark = len(out.String())
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	failed := waitLog("config reload failed", mark)
	running()
	if !strings.Contains(failed, "line 8: unknown key proxy.max_clientz") || !strings.Contains(failed, "level=ERROR") {
		t.Errorf("invalid file: %s", failed)
	}
	if err := client("new-password-2").Ping(ctx).Err(); err != nil {
		t.Errorf("the invalid file changed the password: %v", err)
	}
	roundTrip("PING\r\n", "+PONG\r\n")

	// The API: 401 without the token, 400 with the same text as the log.
	post := func(auth string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, statsURL+"/api/v1/reload", nil)
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post(""); code != http.StatusUnauthorized {
		t.Errorf("no token: %d %s", code, body)
	}
	if code, body := post("wrong-token-0123456789"); code != http.StatusForbidden {
		t.Errorf("wrong token: %d %s", code, body)
	}
	mark = len(out.String())
	code, body := post(token)
	text := strings.TrimSuffix(body, "\n")
	if code != http.StatusBadRequest || !strings.Contains(text, "line 8: unknown key proxy.max_clientz") {
		t.Errorf("invalid file through the API: %d %s", code, body)
	}
	if l := waitLog("config reload failed", mark); !strings.Contains(l, "err="+strconv.Quote(text)) {
		t.Errorf("the log's error is not the answer's text %q:\n%s", text, l)
	}
	// A valid file: 200 with the keys; listen still differs from what runs.
	write(ports[2], "new-password-2", "  limits:\n    max_args: 5\n  max_clients: 50\n", "info")
	code, body = post(token)
	var res struct{ Applied, Ignored []string }
	if err := json.Unmarshal([]byte(body), &res); code != http.StatusOK || err != nil {
		t.Fatalf("valid file through the API: %d %s (%v)", code, body, err)
	}
	if !slices.Equal(res.Applied, []string{"proxy.max_clients"}) || !slices.Equal(res.Ignored, []string{"proxy.listen"}) {
		t.Errorf("API summary %+v", res)
	}
	roundTrip("PING\r\n", "+PONG\r\n")
	running()

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no exit after SIGTERM\n%s", out.String())
	}
}
