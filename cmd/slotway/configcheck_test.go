package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunCheck: `slotway run -check` validates the whole file without
// starting anything (exit 0 or 1, every problem listed with its line),
// and `slotway run` makes the same checks before it starts.
func TestRunCheck(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	token := write("admin.token", "0123456789abcdef0123\n")
	short := write("short.token", "abc\n")
	key := write("gossip.key", strings.Repeat("k", 32))
	badKey := write("bad.key", strings.Repeat("k", 32)+"\n")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	ports := freePorts(t, 3)
	conf := func(proxyListen, tokenFile, keyFile string) string {
		return fmt.Sprintf(`proxy:
  listen: %s
  cluster:
    seeds: ["127.0.0.1:1"]
stats:
  listen: 127.0.0.1:%d
  admin_token_file: %s
ha:
  name: p1
  bind: 127.0.0.1:%d
  secret_key_file: %s
  vip:
    mode: status
`, proxyListen, ports[1], tokenFile, ports[2], keyFile)
	}
	free := fmt.Sprintf("127.0.0.1:%d", ports[0])
	tests := []struct {
		name string
		args []string
		yaml string
		code int
		want []string
	}{
		{"good", []string{"-check"}, conf(free, token, key), 0, []string{"config ", ": ok"}},
		{"every problem", []string{"-check"}, conf(busy.Addr().String(), filepath.Join(dir, "missing.token"), badKey), 1, []string{
			"line 2: proxy.listen: listen tcp " + busy.Addr().String() + ": bind: address already in use",
			"line 7: stats.admin_token_file: open " + filepath.Join(dir, "missing.token") + ": no such file or directory",
			"line 11: ha.secret_key_file: " + badKey + ": must hold exactly 32 bytes (raw, no newline), has 33",
		}},
		{"short token", []string{"-check"}, conf(free, short, key), 1, []string{"line 7: stats.admin_token_file: " + short + ": the token must be at least 16 characters, got 3"}},
		{"same address twice", []string{"-check"}, strings.Replace(conf(free, token, key), fmt.Sprintf("127.0.0.1:%d", ports[1]), free, 1), 1, []string{"line 6: stats.listen: listen tcp " + free + ": bind: address already in use"}},
		{"type error", []string{"-check"}, "proxy:\n  retry_timeout: 3\n  cluster:\n    seeds: [\"a:1\"]\n", 1, []string{"line 2: proxy.retry_timeout: want a duration such as 3s, got 3"}},
		{"run checks before it starts", nil, conf(free, filepath.Join(dir, "missing.token"), key), 1, []string{"line 7: stats.admin_token_file: open "}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := write("slotway.yaml", tc.yaml)
			var out, errb strings.Builder
			code := runMain(append([]string{"run", "-c", path}, tc.args...), &out, &errb)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, errb.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errb.String())
				}
			}
			if strings.Contains(errb.String(), "slotway started") {
				t.Errorf("it started:\n%s", errb.String())
			}
			// Nothing is left bound.
			for _, a := range []string{free, fmt.Sprintf("127.0.0.1:%d", ports[1]), fmt.Sprintf("127.0.0.1:%d", ports[2])} {
				ln, err := net.Listen("tcp", a)
				if err != nil {
					t.Fatalf("%s still bound: %v", a, err)
				}
				ln.Close()
			}
		})
	}
	var out, errb strings.Builder
	if code := runMain([]string{"run", "-check"}, &out, &errb); code != 2 {
		t.Errorf("run -check without -config: exit %d, want 2", code)
	}
}
