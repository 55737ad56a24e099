package scaler

// The swarm provider: spare nodes are the tasks of one replicated Docker
// Swarm service, grown through the Docker Engine API on its unix socket
// (plain net/http, no Docker SDK). The service runs redis-server with
// cluster-enabled yes and a nodes.conf that does not outlive the task;
// Slotway talks to a manager's socket and is attached to the network the
// cluster uses (provider.network).

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// swarmAPI is the Engine API version spoken: 1.44 is Docker Engine 25.0,
// the oldest engine this provider works with. Docker Engine 29 refuses
// versions below 1.44, so an older pin would break on current engines.
// Every field read or sent here exists unchanged since API 1.24.
const swarmAPI = "/v1.44"

// swarmProvider hands out tasks of cfg.Service. What is free comes from
// the cluster, as for the pool (checkFree): a running task whose address
// no cluster node knows and that answers empty is a spare.
//
// Release does not scale the service down: see Release.
type swarmProvider struct {
	service, network string
	port             int
	timeout, poll    time.Duration // poll: how often to list tasks while waiting
	hc               *http.Client
	// free says for each address why it cannot be handed out (nil: free).
	free func(ctx context.Context, addrs []string) ([]error, error)
}

func newSwarmProvider(c ProviderConfig, free func(context.Context, []string) ([]error, error)) *swarmProvider {
	socket := c.Socket
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}
	tr := &http.Transport{DialContext: dial, MaxIdleConns: 2, IdleConnTimeout: 30 * time.Second}
	return &swarmProvider{service: c.Service, network: c.Network, port: c.Port, timeout: c.Timeout,
		poll: 500 * time.Millisecond, hc: &http.Client{Transport: tr}, free: free}
}

// swarmService is GET /services/{id}. Spec stays raw JSON so that fields
// this code does not know go back to the engine unchanged.
type swarmService struct {
	ID      string
	Version struct{ Index uint64 }
	Spec    json.RawMessage
}

// swarmTask is an element of GET /tasks, the fields read.
type swarmTask struct {
	ID                  string
	Slot                int
	Status              struct{ State, Message, Err string }
	NetworksAttachments []struct {
		Network struct {
			ID   string
			Spec struct {
				Name    string
				Ingress bool
			}
		}
		Addresses []string // CIDR: "10.0.1.5/24"
	}
}

// engineError is a non-2xx answer; Message is the engine's {"message"}.
type engineError struct {
	Method, Path string
	Status       int
	Message      string
}

func (e *engineError) Error() string {
	return fmt.Sprintf("%s %s: engine answered %d: %s", e.Method, e.Path, e.Status, e.Message)
}

// Acquire hands out a free running task if there is one, else adds a
// replica and waits (up to provider.timeout) for a task that was not
// running before to run, have an address and answer empty.
func (p *swarmProvider) Acquire(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	before, free, err := p.freeTasks(ctx)
	if err != nil {
		return "", p.errorf("%w", err)
	}
	if len(free) > 0 {
		return free[0], nil
	}
	replicas, err := p.scaleUp(ctx)
	if err != nil {
		return "", err
	}
	wasRunning := map[string]bool{}
	for _, t := range before {
		wasRunning[t.ID] = t.Status.State == "running"
	}
	tick := time.NewTicker(p.poll)
	defer tick.Stop()
	last := errors.New("no new task seen yet")
	for {
		addr, why := p.newTask(ctx, wasRunning)
		if why == nil {
			return addr, nil
		}
		if ctx.Err() == nil { // else why is only the cut-short request
			last = why
		}
		select {
		case <-ctx.Done():
			return "", p.errorf("wait for a new task (replicas now %d, provider.timeout %v): %w; last: %v",
				replicas, p.timeout, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// newTask returns the address of a task not in wasRunning that runs and
// is free, or why there is none yet.
func (p *swarmProvider) newTask(ctx context.Context, wasRunning map[string]bool) (string, error) {
	ts, err := p.tasks(ctx)
	if err != nil {
		return "", fmt.Errorf("list tasks: %w", err)
	}
	last := errors.New("no new task yet")
	for _, t := range ts {
		switch {
		case wasRunning[t.ID]:
			continue
		case t.Status.State != "running":
			last = fmt.Errorf("task %s is %s %s", t.ID, t.Status.State, strings.TrimSpace(t.Status.Message+" "+t.Status.Err))
			continue
		}
		addr, err := p.taskAddr(t)
		if err != nil {
			last = err
			continue
		}
		why, err := p.free(ctx, []string{addr})
		if err != nil {
			return "", fmt.Errorf("check task %s at %s: %w", t.ID, addr, err)
		}
		if why[0] == nil {
			return addr, nil
		}
		last = fmt.Errorf("task %s runs but is not free yet: %w", t.ID, why[0])
	}
	return "", last
}

// Release leaves the service as it is, on purpose. Swarm cannot remove a
// chosen task: scaling down stops whichever task the orchestrator picks,
// possibly a master still holding slots, and stopping the task's
// container only makes Swarm start a replacement. The released node comes
// back reset (CLUSTER RESET HARD: empty, knows no one), so it is free by
// the cluster's own account and the next Acquire hands it out before it
// grows the service. Shrinking the service is the operator's call, made
// knowing that Swarm picks the task.
func (p *swarmProvider) Release(context.Context, string) error { return nil }

// List returns the running tasks that are free now.
func (p *swarmProvider) List(ctx context.Context) ([]string, error) {
	_, free, err := p.freeTasks(ctx)
	if err != nil {
		return nil, p.errorf("%w", err)
	}
	return free, nil
}

// freeTasks lists the tasks and the addresses of the free running ones.
func (p *swarmProvider) freeTasks(ctx context.Context) ([]swarmTask, []string, error) {
	ts, err := p.tasks(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list tasks: %w", err)
	}
	var addrs []string
	for _, t := range ts {
		if a, err := p.taskAddr(t); err == nil && t.Status.State == "running" {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return ts, nil, nil
	}
	why, err := p.free(ctx, addrs)
	if err != nil {
		return nil, nil, fmt.Errorf("check which tasks are free: %w", err)
	}
	var free []string
	for i, a := range addrs {
		if why[i] == nil {
			free = append(free, a)
		}
	}
	return ts, free, nil
}

// scaleUp adds one replica, keeping the rest of the spec as the engine
// returned it. A concurrent update makes the engine refuse ours as out of
// sequence: read the service again and retry, twice.
func (p *swarmProvider) scaleUp(ctx context.Context) (int64, error) {
	for attempt := 1; ; attempt++ {
		var svc swarmService
		if err := p.do(ctx, "GET", swarmAPI+"/services/"+url.PathEscape(p.service), nil, nil, &svc); err != nil {
			return 0, p.errorf("inspect: %w", err)
		}
		spec, replicas, err := addReplica(svc.Spec)
		if err != nil {
			return 0, p.errorf("%w", err)
		}
		body, err := json.Marshal(spec)
		if err != nil {
			return 0, p.errorf("encode the spec: %w", err)
		}
		q := url.Values{"version": {strconv.FormatUint(svc.Version.Index, 10)}}
		err = p.do(ctx, "POST", swarmAPI+"/services/"+url.PathEscape(svc.ID)+"/update", q, body, nil)
		var ee *engineError
		if errors.As(err, &ee) && strings.Contains(ee.Message, "out of sequence") && attempt < 3 {
			continue
		}
		if err != nil {
			return 0, p.errorf("scale to %d replicas: %w", replicas, err)
		}
		return replicas, nil
	}
}

// addReplica decodes spec keeping numbers as written (a memory limit may
// not survive a float64) and adds one to Mode.Replicated.Replicas.
func addReplica(raw json.RawMessage) (map[string]any, int64, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var spec map[string]any
	if err := dec.Decode(&spec); err != nil {
		return nil, 0, fmt.Errorf("decode the service spec: %w", err)
	}
	mode, _ := spec["Mode"].(map[string]any)
	rep, _ := mode["Replicated"].(map[string]any)
	n, ok := rep["Replicas"].(json.Number)
	if !ok {
		return nil, 0, fmt.Errorf("not a replicated service (Mode is %v)", mode)
	}
	cur, err := n.Int64()
	if err != nil {
		return nil, 0, fmt.Errorf("replicas %q: %w", n, err)
	}
	rep["Replicas"] = cur + 1
	return spec, cur + 1, nil
}

// tasks lists the service's tasks meant to run, by slot.
func (p *swarmProvider) tasks(ctx context.Context) ([]swarmTask, error) {
	f, _ := json.Marshal(map[string][]string{"service": {p.service}, "desired-state": {"running"}})
	var ts []swarmTask
	if err := p.do(ctx, "GET", swarmAPI+"/tasks", url.Values{"filters": {string(f)}}, nil, &ts); err != nil {
		return nil, err
	}
	slices.SortFunc(ts, func(a, b swarmTask) int { return cmp.Or(a.Slot-b.Slot, strings.Compare(a.ID, b.ID)) })
	return ts, nil
}

// taskAddr is ip:port on p.network, or on the first attachment that is
// not the ingress network (the routing mesh, not a way to the task).
func (p *swarmProvider) taskAddr(t swarmTask) (string, error) {
	for _, a := range t.NetworksAttachments {
		n := a.Network
		if (p.network != "" && p.network != n.ID && p.network != n.Spec.Name) || (p.network == "" && n.Spec.Ingress) || len(a.Addresses) == 0 {
			continue
		}
		pfx, err := netip.ParsePrefix(a.Addresses[0])
		if err != nil {
			return "", fmt.Errorf("task %s: address on network %s: %w", t.ID, n.Spec.Name, err)
		}
		return net.JoinHostPort(pfx.Addr().String(), strconv.Itoa(p.port)), nil
	}
	if p.network != "" {
		return "", fmt.Errorf("task %s has no address on network %q", t.ID, p.network)
	}
	return "", fmt.Errorf("task %s has no address outside the ingress network", t.ID)
}

// do sends body (JSON) and decodes a 2xx answer into out; any other
// answer is an *engineError.
func (p *swarmProvider) do(ctx context.Context, method, path string, q url.Values, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	u := "http://docker" + path
	if q != nil {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := p.hc.Do(req)
	if ue := (*url.Error)(nil); errors.As(err, &ue) {
		err = ue.Err // it repeats method and URL
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read the answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Message string }
		if json.Unmarshal(data, &e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(string(data[:min(len(data), 200)]))
		}
		return &engineError{Method: method, Path: path, Status: resp.StatusCode, Message: e.Message}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode the answer: %w", method, path, err)
		}
	}
	return nil
}

func (p *swarmProvider) errorf(format string, args ...any) error {
	return fmt.Errorf("swarm service %s: "+format, append([]any{p.service}, args...)...)
}
