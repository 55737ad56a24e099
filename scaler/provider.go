package scaler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Provider gives the scaler empty cluster-enabled nodes and takes them
// back.
type Provider interface {
	// Acquire returns host:port of a started, empty, cluster-enabled node
	// that no cluster node knows.
	Acquire(ctx context.Context) (string, error)
	// Release takes back a node the scaler removed (already forgotten by
	// the cluster and reset).
	Release(ctx context.Context, addr string) error
	// List returns the nodes the provider could hand out now.
	List(ctx context.Context) ([]string, error)
}

// poolProvider hands out configured spare addresses. Which are free is
// derived from the cluster itself: a node no cluster node knows, that
// answers and is empty, so there is no local state to lose or disagree on.
type poolProvider struct {
	pool  []string
	nodes *Nodes
	seeds func() []string
}

func (p *poolProvider) List(ctx context.Context) ([]string, error) {
	why, err := checkFree(ctx, p.nodes, p.seeds(), p.pool)
	if err != nil {
		return nil, err
	}
	var free []string
	for i, a := range p.pool {
		if why[i] == nil {
			free = append(free, a)
		}
	}
	return free, nil
}

func (p *poolProvider) Acquire(ctx context.Context) (string, error) {
	free, err := p.List(ctx)
	if err != nil {
		return "", err
	}
	if len(free) == 0 {
		return "", fmt.Errorf("no free node in the pool %v", p.pool)
	}
	return free[0], nil
}

func (p *poolProvider) Release(context.Context, string) error { return nil }

// checkFree says for each of addrs why it cannot be handed out, nil when
// it can: a free node is known by no cluster node, answers and is empty.
// The pool and swarm providers share it.
func checkFree(ctx context.Context, n *Nodes, seeds, addrs []string) ([]error, error) {
	v, err := ReadView(ctx, n, seeds)
	if err != nil {
		return nil, err
	}
	why := make([]error, len(addrs))
	for i, a := range addrs {
		if v.ByAddr(a) != nil {
			why[i] = fmt.Errorf("node %s is known by the cluster", a)
			continue
		}
		// By ID too: the master of a one-node cluster lists itself without
		// an IP (":6379"), and a node may be reached by another address
		// than the one it announces.
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		id, err := n.Client(a).ClusterMyID(cctx).Result()
		cancel()
		switch {
		case err != nil:
			why[i] = fmt.Errorf("node %s: %w", a, err)
		case v.Nodes[id] != nil:
			why[i] = fmt.Errorf("node %s is known by the cluster as %s", a, id)
		default:
			why[i] = checkEmptyNode(ctx, n, a)
		}
	}
	return why, nil
}

// checkEmptyNode: the node answers, runs in cluster mode, knows no other
// node and holds no key.
func checkEmptyNode(ctx context.Context, n *Nodes, addr string) error {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c := n.Client(addr)
	out, err := c.ClusterNodes(cctx).Result()
	if err != nil {
		return fmt.Errorf("node %s: %w", addr, err)
	}
	if lines := strings.Count(strings.TrimSpace(out), "\n") + 1; lines != 1 {
		return fmt.Errorf("node %s already knows %d other nodes", addr, lines-1)
	}
	size, err := c.DBSize(cctx).Result()
	if err != nil {
		return fmt.Errorf("node %s: %w", addr, err)
	}
	if size != 0 {
		return fmt.Errorf("node %s holds %d keys", addr, size)
	}
	return nil
}

// execProvider runs operator commands (sh -c) with a timeout.
type execProvider struct {
	acquire, release string
	timeout          time.Duration
}

func (p *execProvider) run(ctx context.Context, cmdline string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", append([]string{"-c", cmdline, "slotway-provider"}, args...)...)
	// On timeout the whole process group goes, children included, so a
	// child holding the output pipe cannot keep us waiting.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	captured := strings.TrimSpace(out.String() + " " + errOut.String())
	if len(captured) > 2000 {
		captured = captured[:2000] + "..."
	}
	if err != nil {
		return "", fmt.Errorf("%q: %w (output: %s)", cmdline, err, captured)
	}
	return strings.TrimSpace(out.String()), nil
}

func (p *execProvider) Acquire(ctx context.Context) (string, error) {
	out, err := p.run(ctx, p.acquire)
	if err != nil {
		return "", fmt.Errorf("acquire: %w", err)
	}
	lines := strings.Fields(out)
	if len(lines) == 0 {
		return "", errors.New("acquire: the command printed no host:port")
	}
	addr := lines[len(lines)-1]
	if _, _, err := splitHostPort(addr); err != nil {
		return "", fmt.Errorf("acquire: %w", err)
	}
	return addr, nil
}

func (p *execProvider) Release(ctx context.Context, addr string) error {
	if _, err := p.run(ctx, p.release, addr); err != nil {
		return fmt.Errorf("release %s: %w", addr, err)
	}
	return nil
}

func (p *execProvider) List(context.Context) ([]string, error) { return nil, nil }

func splitHostPort(a string) (string, int, error) {
	h, ps, err := net.SplitHostPort(a)
	if err != nil {
		return "", 0, fmt.Errorf("address %q: %w", a, err)
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("address %q: bad port", a)
	}
	return h, port, nil
}
