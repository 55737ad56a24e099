package scaler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/slotway/slotway/internal/redistest"
	"github.com/slotway/slotway/internal/testutil"
)

// fakeSpec is a service spec with fields the provider does not know, a
// number a float64 would round (2^53+1) and one replica.
const fakeSpec = `{"Name":"redis-spare","Labels":{"team":"cache"},
 "TaskTemplate":{"ContainerSpec":{"Image":"redis:7.2","Args":["redis-server","--cluster-enabled","yes"]},
  "Resources":{"Limits":{"MemoryBytes":9007199254740993}},"ForceUpdate":0},
 "Mode":{"Replicated":{"Replicas":1}},"EndpointSpec":{"Mode":"vip"},
 "FutureField":{"nested":[1,2.5,"x",null,true]}}`

type engineReply struct {
	status int
	body   string
}

type fakeUpdate struct {
	version string
	body    []byte
}

// fakeEngine serves GET /services/{name}, POST /services/{id}/update and
// GET /tasks of the Engine API on a unix socket in t.TempDir(). Each
// update adds a pending task that runs, on network "backend", after
// startAfter more task listings (never when negative).
type fakeEngine struct {
	t      *testing.T
	socket string
	srv    *http.Server

	mu            sync.Mutex
	version       uint64
	spec          string
	tasks         []map[string]any
	startAfter    int
	outOfSequence int                    // updates to refuse as out of sequence
	fail          map[string]engineReply // by "METHOD path"
	updates       []fakeUpdate
	requests      []string
	waiting       map[int]int // index in tasks -> listings until it runs
}

func newFakeEngine(t *testing.T) *fakeEngine {
	t.Helper()
	f := &fakeEngine{t: t, version: 41, spec: fakeSpec, startAfter: 2, fail: map[string]engineReply{}, waiting: map[int]int{},
		socket: filepath.Join(t.TempDir(), "docker.sock")}
	if len(f.socket) > 100 {
		t.Fatalf("socket path too long for a unix socket: %s", f.socket)
	}
	l, err := net.Listen("unix", f.socket)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = &http.Server{Handler: http.HandlerFunc(f.serve)}
	go f.srv.Serve(l)
	t.Cleanup(func() { f.srv.Close() })
	return f
}

func (f *fakeEngine) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := r.Method + " " + r.URL.Path
	f.requests = append(f.requests, key)
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if s, ok := v.(string); ok {
			w.Write([]byte(s))
			return
		}
		json.NewEncoder(w).Encode(v)
	}
	if e, ok := f.fail[key]; ok {
		reply(e.status, e.body)
		return
	}
	switch key {
	case "GET /v1.44/services/redis-spare":
		reply(200, fmt.Sprintf(`{"ID":"svc1","Version":{"Index":%d},"Spec":%s,"Endpoint":{"Spec":{}}}`, f.version, f.spec))
	case "POST /v1.44/services/svc1/update":
		body := new(bytes.Buffer)
		body.ReadFrom(r.Body)
		f.updates = append(f.updates, fakeUpdate{version: r.URL.Query().Get("version"), body: body.Bytes()})
		if f.outOfSequence > 0 {
			f.outOfSequence--
			f.version++ // someone else's update won
			reply(500, `{"message":"rpc error: code = Unknown desc = update out of sequence"}`)
			return
		}
		if r.URL.Query().Get("version") != fmt.Sprint(f.version) {
			reply(500, `{"message":"version mismatch"}`)
			return
		}
		f.version++
		f.spec = body.String()
		n := len(f.tasks)
		f.tasks = append(f.tasks, fakeTask(fmt.Sprintf("t%d", n+1), n+1, "pending", "no suitable node (insufficient resources on 1 node)"))
		if f.startAfter >= 0 {
			f.waiting[n] = f.startAfter
		}
		reply(200, `{"Warnings":null}`)
	case "GET /v1.44/tasks":
		var filters map[string][]string
		if err := json.Unmarshal([]byte(r.URL.Query().Get("filters")), &filters); err != nil ||
			!reflect.DeepEqual(filters, map[string][]string{"service": {"redis-spare"}, "desired-state": {"running"}}) {
			f.t.Errorf("tasks filters = %q (%v)", r.URL.Query().Get("filters"), err)
		}
		for i, left := range f.waiting {
			if left > 0 {
				f.waiting[i]--
				continue
			}
			delete(f.waiting, i)
			f.tasks[i] = fakeTask(f.tasks[i]["ID"].(string), i+1, "running", "started",
				fakeAttachment{"ingress", true, "10.0.0.9/24"}, fakeAttachment{"backend", false, fmt.Sprintf("10.0.1.%d/24", i+4)})
		}
		reply(200, f.tasks)
	default:
		reply(404, `{"message":"page not found"}`)
	}
}

type fakeAttachment struct {
	name    string
	ingress bool
	cidr    string
}

// fakeTask is a task as the engine writes it (only the fields read, plus
// a few it has).
func fakeTask(id string, slot int, state, msg string, atts ...fakeAttachment) map[string]any {
	var na []any
	for _, a := range atts {
		na = append(na, map[string]any{"Addresses": []string{a.cidr},
			"Network": map[string]any{"ID": "net-" + a.name, "Spec": map[string]any{"Name": a.name, "Ingress": a.ingress}}})
	}
	return map[string]any{"ID": id, "ServiceID": "svc1", "Slot": slot, "DesiredState": "running",
		"Status": map[string]any{"State": state, "Message": msg}, "NetworksAttachments": na}
}

func (f *fakeEngine) snapshot() (updates []fakeUpdate, requests []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.updates), slices.Clone(f.requests)
}

// freeSet is a free check: known addresses are cluster members, and an
// address in notYet is not answering for that many more checks.
type freeSet struct {
	mu     sync.Mutex
	known  map[string]bool
	notYet map[string]int
	err    error
	asked  [][]string
}

func (s *freeSet) check(_ context.Context, addrs []string) ([]error, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked = append(s.asked, slices.Clone(addrs))
	if s.err != nil {
		return nil, s.err
	}
	why := make([]error, len(addrs))
	for i, a := range addrs {
		switch {
		case s.known[a]:
			why[i] = fmt.Errorf("node %s is known by the cluster", a)
		case s.notYet[a] > 0:
			s.notYet[a]--
			why[i] = fmt.Errorf("node %s: connection refused", a)
		}
	}
	return why, nil
}

func testSwarmProvider(f *fakeEngine, free *freeSet) *swarmProvider {
	c := DefaultConfig().Provider
	c.Kind, c.Service, c.Socket, c.Timeout = "swarm", "redis-spare", f.socket, 5*time.Second
	p := newSwarmProvider(c, free.check)
	p.poll = 5 * time.Millisecond
	f.t.Cleanup(p.hc.CloseIdleConnections)
	return p
}

// TestSwarmProviderAcquire: with no free task the service grows by one
// replica (the rest of the spec sent back as read, at the version read)
// and the new task's address comes back once it runs and answers; a free
// running task is handed out without growing; a concurrent update is
// retried.
func TestSwarmProviderAcquire(t *testing.T) {
	noLeak := testutil.NoNewGoroutines(t, 0)
	ctx := t.Context()
	running := fakeTask("t0", 0, "running", "started", fakeAttachment{"ingress", true, "10.0.0.8/24"}, fakeAttachment{"backend", false, "10.0.1.4/24"})

	t.Run("grows", func(t *testing.T) {
		f := newFakeEngine(t)
		f.tasks = []map[string]any{running}
		free := &freeSet{known: map[string]bool{"10.0.1.4:6379": true}, notYet: map[string]int{"10.0.1.5:6379": 2}}
		addr, err := testSwarmProvider(f, free).Acquire(ctx)
		if err != nil || addr != "10.0.1.5:6379" {
			t.Fatalf("Acquire = %q, %v; want 10.0.1.5:6379", addr, err)
		}
		updates, _ := f.snapshot()
		if len(updates) != 1 || updates[0].version != "41" {
			t.Fatalf("updates %+v, want one at version 41", updates)
		}
		want := decodeSpec(t, []byte(fakeSpec))
		want["Mode"].(map[string]any)["Replicated"].(map[string]any)["Replicas"] = json.Number("2")
		if got := decodeSpec(t, updates[0].body); !reflect.DeepEqual(got, want) {
			t.Errorf("update body (-want +got):\n-%v\n+%v", want, got)
		}
		if !bytes.Contains(updates[0].body, []byte(`"MemoryBytes":9007199254740993`)) {
			t.Errorf("a big number did not round-trip: %s", updates[0].body)
		}
		if free.notYet["10.0.1.5:6379"] != 0 {
			t.Errorf("returned before the new node answered")
		}
	})

	t.Run("reuses", func(t *testing.T) {
		f := newFakeEngine(t)
		f.tasks = []map[string]any{running}
		addr, err := testSwarmProvider(f, &freeSet{}).Acquire(ctx)
		if updates, _ := f.snapshot(); err != nil || addr != "10.0.1.4:6379" || len(updates) != 0 {
			t.Fatalf("Acquire = %q, %v after %d updates; want the free task 10.0.1.4:6379 and no update", addr, err, len(updates))
		}
	})

	t.Run("retries", func(t *testing.T) {
		f := newFakeEngine(t)
		f.outOfSequence = 1
		addr, err := testSwarmProvider(f, &freeSet{}).Acquire(ctx)
		updates, _ := f.snapshot()
		if err != nil || addr != "10.0.1.4:6379" || len(updates) != 2 || updates[1].version != "42" {
			t.Fatalf("Acquire = %q, %v with updates %+v; want a retry at version 42", addr, err, updates)
		}
	})

	noLeak()
}

func decodeSpec(t *testing.T, b []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return m
}

// TestSwarmProviderErrors: every failure names the step and carries the
// engine's own message; a task that never runs ends in a timeout that
// says why.
func TestSwarmProviderErrors(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*fakeEngine, *freeSet, *swarmProvider)
		want []string
	}{
		{"inspect", func(f *fakeEngine, _ *freeSet, _ *swarmProvider) {
			f.fail["GET /v1.44/services/redis-spare"] = engineReply{404, `{"message":"service redis-spare not found"}`}
		}, []string{"swarm service redis-spare: inspect: GET /v1.44/services/redis-spare: engine answered 404: service redis-spare not found"}},
		{"update", func(f *fakeEngine, _ *freeSet, _ *swarmProvider) {
			f.fail["POST /v1.44/services/svc1/update"] = engineReply{400, `{"message":"rpc error: code = InvalidArgument desc = bad spec"}`}
		}, []string{"scale to 2 replicas", "engine answered 400: rpc error: code = InvalidArgument desc = bad spec"}},
		{"tasks", func(f *fakeEngine, _ *freeSet, _ *swarmProvider) {
			f.fail["GET /v1.44/tasks"] = engineReply{503, `{"message":"This node is not a swarm manager."}`}
		}, []string{"list tasks", "503: This node is not a swarm manager."}},
		{"plain", func(f *fakeEngine, _ *freeSet, _ *swarmProvider) {
			f.fail["GET /v1.44/tasks"] = engineReply{502, "Bad Gateway"}
		}, []string{"502: Bad Gateway"}},
		{"global", func(f *fakeEngine, _ *freeSet, _ *swarmProvider) {
			f.spec = `{"Name":"redis-spare","Mode":{"Global":{}}}`
		}, []string{"not a replicated service"}},
		{"nosocket", func(_ *fakeEngine, _ *freeSet, p *swarmProvider) {
			p.hc = newSwarmProvider(ProviderConfig{Socket: "/nonexistent/docker.sock"}, nil).hc
		}, []string{"list tasks: GET /v1.44/tasks: dial unix /nonexistent/docker.sock", "no such file or directory"}},
		{"view", func(f *fakeEngine, free *freeSet, _ *swarmProvider) {
			f.tasks = []map[string]any{fakeTask("t0", 0, "running", "", fakeAttachment{"backend", false, "10.0.1.4/24"})}
			free.err = errors.New("no seed answered")
		}, []string{"check which tasks are free: no seed answered"}},
		{"timeout", func(f *fakeEngine, _ *freeSet, p *swarmProvider) {
			f.startAfter = -1
			p.timeout = 100 * time.Millisecond
		}, []string{"wait for a new task (replicas now 2, provider.timeout 100ms): context deadline exceeded",
			"task t1 is pending no suitable node (insufficient resources on 1 node)"}},
		{"network", func(f *fakeEngine, _ *freeSet, p *swarmProvider) {
			p.network, p.timeout = "frontend", 100*time.Millisecond
		}, []string{`task t1 has no address on network "frontend"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeEngine(t)
			free := &freeSet{}
			p := testSwarmProvider(f, free)
			tc.mod(f, free, p)
			_, err := p.Acquire(t.Context())
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Acquire error = %v, want it to contain %q", err, w)
				}
			}
		})
	}
}

// TestSwarmProviderReleaseAndList: Release leaves the service alone (the
// node stays as a warm spare); List is the free running tasks.
func TestSwarmProviderReleaseAndList(t *testing.T) {
	f := newFakeEngine(t)
	f.tasks = []map[string]any{
		fakeTask("t0", 1, "running", "", fakeAttachment{"backend", false, "10.0.1.4/24"}),
		fakeTask("t1", 2, "running", "", fakeAttachment{"backend", false, "10.0.1.5/24"}),
		fakeTask("t2", 3, "starting", "", fakeAttachment{"backend", false, "10.0.1.6/24"}),
	}
	p := testSwarmProvider(f, &freeSet{known: map[string]bool{"10.0.1.4:6379": true}})
	if err := p.Release(t.Context(), "10.0.1.4:6379"); err != nil {
		t.Fatal(err)
	}
	if _, reqs := f.snapshot(); len(reqs) != 0 {
		t.Errorf("Release called the engine: %v", reqs)
	}
	got, err := p.List(t.Context())
	if err != nil || !slices.Equal(got, []string{"10.0.1.5:6379"}) {
		t.Errorf("List = %v, %v; want [10.0.1.5:6379]", got, err)
	}
}

// TestSwarmTaskAddr: the mask goes, provider.network picks the
// attachment (by name or ID), and without it the ingress network is
// passed over.
func TestSwarmTaskAddr(t *testing.T) {
	cases := []struct {
		network string
		atts    []fakeAttachment
		want    string
	}{
		{"", []fakeAttachment{{"ingress", true, "10.0.0.9/24"}, {"backend", false, "10.0.1.5/24"}}, "10.0.1.5:7000"},
		{"", []fakeAttachment{{"a", false, "10.0.2.5/16"}, {"b", false, "10.0.1.5/24"}}, "10.0.2.5:7000"},
		{"b", []fakeAttachment{{"a", false, "10.0.2.5/16"}, {"b", false, "10.0.1.5/24"}}, "10.0.1.5:7000"},
		{"net-b", []fakeAttachment{{"a", false, "10.0.2.5/16"}, {"b", false, "10.0.1.5/24"}}, "10.0.1.5:7000"},
		{"", []fakeAttachment{{"b", false, "fd00::5/64"}}, "[fd00::5]:7000"},
		{"", []fakeAttachment{{"ingress", true, "10.0.0.9/24"}}, "task t1 has no address outside the ingress network"},
		{"c", []fakeAttachment{{"b", false, "10.0.1.5/24"}}, `task t1 has no address on network "c"`},
		{"", []fakeAttachment{{"b", false, "10.0.1.5"}}, `address on network b: netip.ParsePrefix("10.0.1.5"): no '/'`},
	}
	for _, tc := range cases {
		raw, _ := json.Marshal(fakeTask("t1", 1, "running", "", tc.atts...))
		var task swarmTask
		if err := json.Unmarshal(raw, &task); err != nil {
			t.Fatal(err)
		}
		p := &swarmProvider{network: tc.network, port: 7000}
		got, err := p.taskAddr(task)
		if err != nil {
			got = err.Error()
		}
		if got != tc.want && !strings.HasSuffix(got, tc.want) {
			t.Errorf("network %q, %v: got %q, want %q", tc.network, tc.atts, got, tc.want)
		}
	}
}

// TestSwarmFreeCheck: the free check both providers share, against a real
// one-master cluster with a spare: the member is known, the spare is free
// (and a swarm task at its address is handed out without growing the
// service), a dead address is not.
func TestSwarmFreeCheck(t *testing.T) {
	c := redistest.New(t, redistest.Options{Masters: 1, Spares: 1})
	nodes := &Nodes{}
	t.Cleanup(nodes.Close)
	master, spare := c.Seeds()[0], c.Spares()[0].Addr
	why, err := checkFree(t.Context(), nodes, c.Seeds(), []string{master, spare, "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if why[0] == nil || !strings.Contains(why[0].Error(), "known by the cluster") || why[1] != nil || why[2] == nil {
		t.Errorf("checkFree(member, spare, dead) = %v", why)
	}

	f := newFakeEngine(t)
	f.tasks = []map[string]any{fakeTask("t0", 1, "running", "", fakeAttachment{"backend", false, "127.0.0.1/8"})}
	cfg := DefaultConfig().Provider
	cfg.Service, cfg.Socket, cfg.Timeout = "redis-spare", f.socket, 5*time.Second
	_, cfg.Port, _ = splitHostPort(spare)
	p := newSwarmProvider(cfg, func(ctx context.Context, addrs []string) ([]error, error) {
		return checkFree(ctx, nodes, c.Seeds(), addrs)
	})
	t.Cleanup(p.hc.CloseIdleConnections)
	addr, err := p.Acquire(t.Context())
	if updates, _ := f.snapshot(); err != nil || addr != spare || len(updates) != 0 {
		t.Errorf("Acquire = %q, %v after %d updates; want the spare %s and no update", addr, err, len(updates), spare)
	}
}

// TestSwarmProviderRealEngine talks to a real Docker engine when one
// answers /_ping on DOCKER_HOST (unix://) or /var/run/docker.sock. It
// only lists services and inspects one that does not exist (creating a
// service would pull an image, which needs the network): that checks the
// API version is accepted and that the engine's messages come through.
//
// Without an engine it skips, also under CI=true, unless the machine is
// expected to have one: set SLOTWAY_EXPECT_DOCKER=1 (with CI=true) and a
// missing engine fails the test.
func TestSwarmProviderRealEngine(t *testing.T) {
	socket := "/var/run/docker.sock"
	if h, ok := strings.CutPrefix(os.Getenv("DOCKER_HOST"), "unix://"); ok {
		socket = h
	}
	cfg := DefaultConfig().Provider
	cfg.Service, cfg.Socket = fmt.Sprintf("slotway-test-absent-%d", os.Getpid()), socket
	p := newSwarmProvider(cfg, nil)
	t.Cleanup(p.hc.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := p.do(ctx, "GET", "/_ping", nil, nil, nil); err != nil {
		if testutil.CI() && os.Getenv("SLOTWAY_EXPECT_DOCKER") == "1" {
			t.Fatalf("no Docker engine on %s, and SLOTWAY_EXPECT_DOCKER=1 says there is one: %v", socket, err)
		}
		t.Skipf("no Docker engine on %s (%v); under CI=true with SLOTWAY_EXPECT_DOCKER=1 this fails instead", socket, err)
	}
	var ee *engineError
	var services []json.RawMessage
	err := p.do(ctx, "GET", swarmAPI+"/services", nil, nil, &services)
	if errors.As(err, &ee) && ee.Status == http.StatusServiceUnavailable && ee.Message != "" {
		t.Logf("the engine accepts API %s but is not a swarm manager; it says: %v", swarmAPI, err)
		return
	}
	if err != nil {
		t.Fatalf("list services: %v", err)
	}
	t.Logf("the engine is a swarm manager running %d services", len(services))
	// Read-only on purpose: Acquire on a real engine would grow a service.
	err = p.do(ctx, "GET", swarmAPI+"/services/"+cfg.Service, nil, nil, nil)
	if !errors.As(err, &ee) || ee.Status != http.StatusNotFound || ee.Message == "" {
		t.Errorf("inspect an absent service: %v; want a 404 with the engine's message", err)
	}
}

// TestConfigSwarmProvider: kind swarm needs a service; socket and port
// have defaults; bad values are rejected with their path.
func TestConfigSwarmProvider(t *testing.T) {
	cases := []struct {
		yaml string
		want string // substring of the error; "" for valid
	}{
		{"provider: {kind: swarm, service: redis-spare}", ""},
		{`provider: {kind: swarm, service: redis-spare, socket: /run/docker.sock, port: 7000, network: backend}`, ""},
		{"provider: {kind: swarm}", "provider.service: required with kind swarm"},
		{"provider: {kind: swarm, service: ' '}", "provider.service: required with kind swarm"},
		{`provider: {kind: swarm, service: x, socket: ""}`, `provider.socket: must be the path of the Docker Engine API's unix socket, got ""`},
		{"provider: {kind: swarm, service: x, socket: 'tcp://10.0.0.1:2375'}", "provider.socket: must be the path"},
		{"provider: {kind: swarm, service: x, port: 0}", "provider.port: must be 1..65535, got 0"},
		{"provider: {kind: swarm, service: x, port: 70000}", "provider.port: must be 1..65535, got 70000"},
		{"provider: {kind: docker}", `provider.kind: must be pool, exec or swarm, got "docker"`},
	}
	for _, tc := range cases {
		var c Config
		if err := yaml.Unmarshal([]byte(tc.yaml), &c); err != nil {
			t.Fatalf("%s: %v", tc.yaml, err)
		}
		err := c.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.yaml, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want %q", tc.yaml, err, tc.want)
		}
	}
	var c Config
	if err := yaml.Unmarshal([]byte("provider: {kind: swarm, service: redis-spare}"), &c); err != nil {
		t.Fatal(err)
	}
	if p := c.Provider; p.Socket != "/var/run/docker.sock" || p.Port != 6379 || p.Network != "" || p.Timeout != 2*time.Minute {
		t.Errorf("defaults lost: %+v", p)
	}
}
