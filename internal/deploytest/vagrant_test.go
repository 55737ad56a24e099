package deploytest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/redistest"
)

// TestVagrantfile checks the Vagrantfile with Vagrant's own validation
// (provisioning script paths included), on a copy in a temp dir so that
// Vagrant's state (.vagrant/) never lands in the checkout. Without Vagrant
// it falls back to `ruby -c` (syntax only).
func TestVagrantfile(t *testing.T) {
	root := repoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "Vagrantfile"))
	if err != nil {
		t.Fatal(err)
	}
	// The plan the README describes.
	for _, want := range []string{
		`config.vm.box = "debian/bookworm64"`,
		`"redis-1"`, `"redis-2"`, `"redis-3"`, `"slotway-1"`, `"slotway-2"`,
		`VIP = "#{NET}.100/24"`,
		`deploy/vagrant/redis-node.sh`, `deploy/vagrant/slotway-node.sh`, `deploy/vagrant/cluster-create.sh`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("Vagrantfile lacks %s", want)
		}
	}

	if _, err := exec.LookPath("vagrant"); err != nil {
		if _, rerr := exec.LookPath("ruby"); rerr == nil && os.Getenv("CI") != "true" {
			t.Log("vagrant not installed: checking Ruby syntax only")
			run(t, root, nil, "ruby", "-c", "Vagrantfile")
			return
		}
	}
	vagrant := requireTool(t, "vagrant", "vagrant")
	tmp := t.TempDir()
	copyFile(t, filepath.Join(root, "Vagrantfile"), filepath.Join(tmp, "Vagrantfile"))
	scripts, _ := filepath.Glob(filepath.Join(root, "deploy", "vagrant", "*.sh"))
	for _, s := range scripts {
		copyFile(t, s, filepath.Join(tmp, "deploy", "vagrant", filepath.Base(s)))
	}
	env := []string{
		"VAGRANT_HOME=" + filepath.Join(tmp, "vagrant.d"),
		"VAGRANT_DOTFILE_PATH=" + filepath.Join(tmp, ".vagrant"),
		"VAGRANT_CHECKPOINT_DISABLE=1", // no version check over the network
	}
	cmd := exec.Command(vagrant, "validate")
	cmd.Dir, cmd.Env = tmp, append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil && strings.Contains(string(out), "No usable default provider") {
		// No VirtualBox or libvirt here: validate everything but the
		// provider blocks.
		t.Log("no Vagrant provider installed: vagrant validate --ignore-provider")
		cmd = exec.Command(vagrant, "validate", "--ignore-provider")
		cmd.Dir, cmd.Env = tmp, append(os.Environ(), env...)
		out, err = cmd.CombinedOutput()
	}
	if err != nil {
		t.Fatalf("vagrant validate: %v\n%s", err, out)
	}
}

// TestShellScripts runs `bash -n` (or `sh -n` for POSIX scripts) and
// shellcheck on every script under deploy/ and bench/, and checks each is
// executable with a shebang, since Vagrant and Swarm run them as programs
// (and `make bench` runs bench/run.sh).
func TestShellScripts(t *testing.T) {
	root := repoRoot(t)
	var scripts []string
	for _, dir := range []string{"deploy", "bench"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".sh") {
				scripts = append(scripts, p)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(scripts) < 6 {
		t.Fatalf("found only %d scripts under deploy/ and bench/: %v", len(scripts), scripts)
	}
	shellcheck := requireTool(t, "shellcheck", "shellcheck")
	for _, s := range scripts {
		rel, _ := filepath.Rel(root, s)
		t.Run(rel, func(t *testing.T) {
			b, err := os.ReadFile(s)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(b), "\n")
			shell := ""
			switch first {
			case "#!/bin/sh":
				shell = "sh"
			case "#!/usr/bin/env bash", "#!/bin/bash":
				shell = "bash"
			default:
				t.Fatalf("first line %q: want #!/bin/sh or #!/usr/bin/env bash", first)
			}
			if fi, err := os.Stat(s); err != nil || fi.Mode()&0o111 == 0 {
				t.Errorf("not executable (%v)", err)
			}
			run(t, root, nil, shell, "-n", s)
			run(t, root, nil, shellcheck, "-x", "-s", shell, s) // -x: follow sourced files
		})
	}
}

// TestRedisNodeScript runs deploy/vagrant/redis-node.sh for real in its
// test mode: real redis-server processes on free loopback ports, with every
// file under a temp dir. They must answer PING with cluster mode on, a
// second run must leave them alone (idempotent), and they are stopped by
// the PIDs in their pidfiles.
func TestRedisNodeScript(t *testing.T) {
	redistest.RequireServer(t)
	requireTool(t, "bash", "bash")
	root := repoRoot(t)
	tmp := t.TempDir()
	var ports []string
	for range 2 {
		p, err := redistest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, strconv.Itoa(p))
	}
	pidfile := func(port string) string { return filepath.Join(tmp, "run", "redis-"+port, "redis-server.pid") }
	// Registered before the start, so a failing run still stops whatever
	// it started.
	t.Cleanup(func() {
		for _, port := range ports {
			if pid := readPID(pidfile(port)); pid > 0 {
				stopPID(t, pid)
			}
		}
		if t.Failed() {
			for _, port := range ports {
				b, _ := os.ReadFile(filepath.Join(tmp, "var", "log", "redis", "redis-server-"+port+".log"))
				t.Logf("redis %s log:\n%s", port, b)
			}
		}
	})
	env := []string{"ROOT=" + tmp, "NO_SYSTEMD=1", "NODE_IP=127.0.0.1", "PORTS=" + strings.Join(ports, " ")}
	script := filepath.Join(root, "deploy", "vagrant", "redis-node.sh")
	run(t, root, env, "bash", script)

	pids := map[string]int{}
	for _, port := range ports {
		conf, err := os.ReadFile(filepath.Join(tmp, "etc", "redis", "redis-"+port+".conf"))
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`(?m)^cluster-enabled yes$`).Match(conf) {
			t.Errorf("redis-%s.conf is not cluster-enabled:\n%s", port, conf)
		}
		addr := "127.0.0.1:" + port
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		defer c.Close()
		var info string
		redistest.WaitFor(t, 10*time.Second, addr+" answers PING", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if c.Ping(ctx).Err() != nil {
				return false
			}
			info, _ = c.Info(ctx, "server", "cluster").Result()
			return info != ""
		})
		if !strings.Contains(info, "cluster_enabled:1") {
			t.Errorf("%s: INFO has no cluster_enabled:1:\n%s", addr, info)
		}
		// The pidfile names the process that answers, so stopping by PID
		// stops the right one.
		pids[port] = readPID(pidfile(port))
		if want := fmt.Sprintf("process_id:%d\r\n", pids[port]); pids[port] <= 0 || !strings.Contains(info, want) {
			t.Errorf("%s: pidfile says %d, INFO says otherwise:\n%s", addr, pids[port], info)
		}
	}

	// Idempotent: nothing changed, so nothing is restarted.
	run(t, root, env, "bash", script)
	for _, port := range ports {
		if got := readPID(pidfile(port)); got != pids[port] {
			t.Errorf("port %s: second run restarted the instance (pid %d -> %d)", port, pids[port], got)
		}
	}
}

// TestSlotwayNodeScript runs deploy/vagrant/slotway-node.sh in its test
// mode and checks what it installs: the binary, the unit and sysusers file
// from deploy/systemd, an admin token kept across runs, and a config that
// Slotway accepts, with the VIP on the interface that carries NODE_IP.
// Addresses are documentation ones (192.0.2.0/24): nothing dials them.
func TestSlotwayNodeScript(t *testing.T) {
	requireTool(t, "bash", "bash")
	requireTool(t, "ip", "iproute2")
	root := repoRoot(t)
	tmp := t.TempDir()
	bin := filepath.Join(t.TempDir(), "slotway")
	writeExec(t, bin, "#!/bin/sh\necho stand-in\n")
	env := []string{
		"ROOT=" + tmp, "NO_SYSTEMD=1", "BIN=" + bin, "DEPLOY=" + filepath.Join(root, "deploy"),
		"NAME=slotway-1", "NODE_IP=127.0.0.1", "PEERS=192.0.2.22:7946", "PRIORITY=100",
		"VIP=192.0.2.100/24", "SEEDS=192.0.2.11:7000 192.0.2.12:7000", "SPARES=192.0.2.11:7002 192.0.2.12:7002",
	}
	script := filepath.Join(root, "deploy", "vagrant", "slotway-node.sh")
	run(t, root, env, "bash", script)

	same := func(got, want string) {
		t.Helper()
		a, err1 := os.ReadFile(got)
		b, err2 := os.ReadFile(want)
		if err1 != nil || err2 != nil || string(a) != string(b) {
			t.Errorf("%s differs from %s (%v, %v)", got, want, err1, err2)
		}
	}
	same(filepath.Join(tmp, "usr", "local", "bin", "slotway"), bin)
	same(filepath.Join(tmp, "etc", "systemd", "system", "slotway.service"), filepath.Join(root, "deploy", "systemd", "slotway.service"))
	same(filepath.Join(tmp, "etc", "sysusers.d", "slotway.conf"), filepath.Join(root, "deploy", "systemd", "slotway.sysusers"))

	tokenPath := filepath.Join(tmp, "etc", "slotway", "admin-token")
	token, err := os.ReadFile(tokenPath)
	if err != nil || !regexp.MustCompile(`^[0-9a-f]{64}$`).Match(token) {
		t.Errorf("admin token %q (%v): want 64 hex digits", token, err)
	}
	if fi, err := os.Stat(tokenPath); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("admin token mode %v (%v): want no access for group or others until chown", fi.Mode(), err)
	}

	cfg := loadSlotwayConfig(t, filepath.Join(tmp, "etc", "slotway", "slotway.yaml"))
	if cfg.HA == nil || cfg.HA.Name != "slotway-1" || cfg.HA.Bind != "127.0.0.1:7946" ||
		cfg.HA.VIP.Mode != "netlink" || cfg.HA.VIP.Address != "192.0.2.100/24" || cfg.HA.VIP.Interface != "lo" {
		t.Errorf("rendered ha section %+v: want slotway-1 on 127.0.0.1:7946, netlink VIP 192.0.2.100/24 on lo", cfg.HA)
	}
	if got := strings.Join(cfg.Proxy.Cluster.Seeds, " "); got != "192.0.2.11:7000 192.0.2.12:7000" {
		t.Errorf("seeds %q", got)
	}
	if cfg.Scaler == nil || strings.Join(cfg.Scaler.Provider.Pool, " ") != "192.0.2.11:7002 192.0.2.12:7002" {
		t.Errorf("scaler pool: %+v", cfg.Scaler)
	}

	// A second run keeps the token (scripts and operators read it).
	run(t, root, env, "bash", script)
	if again, _ := os.ReadFile(tokenPath); string(again) != string(token) {
		t.Error("second run replaced the admin token")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(from)
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, fi.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
}

func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return pid
}

// stopPID stops a daemonized redis-server by PID (never by name): SIGTERM,
// then SIGKILL if it is still there after 10 s. The process is not our
// child, so "gone" is ESRCH or a zombie waiting for its new parent.
func stopPID(t *testing.T, pid int) {
	t.Helper()
	gone := func() bool {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return true
		}
		// pid (comm) STATE ...: comm may hold spaces, so look after ")".
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
			return s[i+2] == 'Z'
		}
		return false
	}
	if gone() {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for !gone() {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			deadline = time.Now().Add(10 * time.Second)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
