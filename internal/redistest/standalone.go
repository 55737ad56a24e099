package redistest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotway/slotway/internal/rediscluster"
	"github.com/slotway/slotway/internal/testutil"
)

// RequireServer returns the redis-server binary on PATH. Without one the
// test is skipped, or fails under CI=true.
func RequireServer(t testing.TB) string {
	t.Helper()
	return testutil.RequireTool(t, "redis-server", "apt-get install -y redis-server")
}

// Standalone is one non-cluster redis-server (no persistence unless asked
// with SHUTDOWN SAVE) on a free loopback port, killed by PID when the test
// ends.
type Standalone struct {
	Addr string
	Dir  string
	t    testing.TB
	bin  string
	port int
	pid  int
	done chan struct{} // closed when the current process is reaped
}

// StartStandalone starts a standalone server for t.
func StartStandalone(t testing.TB) *Standalone {
	t.Helper()
	s := &Standalone{t: t, bin: RequireServer(t), Dir: t.TempDir()}
	for attempt := 1; ; attempt++ {
		port, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		s.port, s.Addr = port, "127.0.0.1:"+strconv.Itoa(port)
		if s.launch() {
			break
		}
		if attempt == 5 {
			t.Fatalf("redistest: standalone redis-server did not start; log:\n%s", s.log())
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("redis log:\n%s", s.log())
		}
		s.Kill()
	})
	return s
}

func (s *Standalone) log() []byte {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
	return b
}

// launch starts the process and waits for PING; false if it exited
// (e.g. the port was taken meanwhile).
func (s *Standalone) launch() bool {
	s.t.Helper()
	cmd := exec.Command(s.bin, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--protected-mode", "no", "--daemonize", "no", "--save", "", "--appendonly", "no",
		"--dir", s.Dir, "--logfile", filepath.Join(s.Dir, "redis.log"))
	cmd.SysProcAttr = rediscluster.ProcAttr()
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.pid, s.done = cmd.Process.Pid, make(chan struct{})
	done := s.done
	go func() { _ = cmd.Wait(); close(done) }()
	c := s.Client()
	defer c.Close()
	ok := false
	WaitFor(s.t, 10*time.Second, "standalone redis-server to answer", func() bool {
		select {
		case <-done:
			return true
		default:
		}
		ok = c.Ping(context.Background()).Err() == nil
		return ok
	})
	return ok
}

// Restart starts the server again on the same port and directory (after
// Kill or SHUTDOWN).
func (s *Standalone) Restart() {
	s.t.Helper()
	<-s.done
	if !s.launch() {
		s.t.Fatalf("redistest: standalone redis-server did not restart; log:\n%s", s.log())
	}
}

// Kill kills the process (by PID) and waits for it.
func (s *Standalone) Kill() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = syscall.Kill(s.pid, syscall.SIGKILL)
	<-s.done
}

// Exited is closed when the current process has exited.
func (s *Standalone) Exited() <-chan struct{} { return s.done }

// Client returns a new client of the server (the caller closes it).
func (s *Standalone) Client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: s.Addr, Protocol: 2, DisableIdentity: true, MaxRetries: -1})
}
