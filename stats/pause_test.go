package stats

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakePauser records what the API asked of it.
type fakePauser struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakePauser) Pause(d time.Duration, writeOnly bool) PauseStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	mode := "all"
	if writeOnly {
		mode = "write"
	}
	f.calls = append(f.calls, "pause "+mode+" "+d.String())
	return PauseStatus{Paused: true, Mode: mode}
}

func (f *fakePauser) Unpause() PauseStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "unpause")
	return PauseStatus{}
}

func (f *fakePauser) got() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.calls, "; ")
}

// groupSource is a member of a group whose other members are given (a
// Source and a Holder).
type groupSource struct {
	readySource
	mu      sync.Mutex
	members []GroupMember
}

func (g *groupSource) IsHolder() bool                           { return true }
func (g *groupSource) Handover(context.Context) (string, error) { return "", errors.New("alone") }
func (g *groupSource) GroupStatus() *GroupStatus {
	g.mu.Lock()
	defer g.mu.Unlock()
	return &GroupStatus{Self: "p1", Members: slices.Clone(g.members)}
}

// TestPauseEndpoints: POST /api/v1/proxy/pause and /unpause drive the
// instance's pause; with "group": true every other live member with a
// proxy is asked too, with the caller's token, and a member that fails
// makes the answer 502 with its error.
func TestPauseEndpoints(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const right = "Bearer s3cret-token-0123456789"
	start := func(src Source, p *fakePauser) string {
		t.Helper()
		parts := Parts{}
		if p != nil {
			parts.Pauser = p
		}
		if h, ok := src.(Holder); ok {
			parts.Holder = h
		}
		return runServer(t, tokenFile, src, parts).Addr().String()
	}
	post := func(addr, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+addr+path, strings.NewReader(body))
		req.Header.Set("Authorization", right)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	p2 := &fakePauser{}
	addr2 := start(&readySource{}, p2)
	witness := start(&readySource{}, nil)
	p1 := &fakePauser{}
	src := &groupSource{members: []GroupMember{
		{Name: "p1", Alive: true, StatsAddr: "127.0.0.1:1", ProxyAddr: "x"}, // itself
		{Name: "p2", Alive: true, StatsAddr: addr2, ProxyAddr: "x"},
		{Name: "w1", Alive: true, StatsAddr: witness}, // runs no proxy
		{Name: "p3", Alive: false, StatsAddr: "127.0.0.1:1", ProxyAddr: "x"},
	}}
	addr1 := start(src, p1)

	if code, body := post(addr1, "/api/v1/proxy/pause", ""); code != 200 || !strings.Contains(body, `"paused":true`) {
		t.Errorf("pause with no body: %d %s", code, body)
	}
	if got := p1.got(); got != "pause all 1m0s" {
		t.Errorf("calls after the default pause: %q", got)
	}
	if p2.got() != "" {
		t.Errorf("a pause without group reached p2: %q", p2.got())
	}
	code, body := post(addr1, "/api/v1/proxy/pause", `{"mode": "write", "timeout": "30s", "group": true}`)
	var res struct {
		Instance map[string]any            `json:"instance"`
		Members  map[string]map[string]any `json:"members"`
	}
	if err := json.Unmarshal([]byte(body), &res); code != 200 || err != nil || res.Members["p2"]["mode"] != "write" || len(res.Members) != 1 {
		t.Errorf("group pause: %d %s (%v)", code, body, err)
	}
	if got := p2.got(); got != "pause write 30s" {
		t.Errorf("p2 after the group pause: %q", got)
	}
	code, body = post(addr1, "/api/v1/proxy/unpause", `{"group": true}`)
	res.Members = nil
	if err := json.Unmarshal([]byte(body), &res); code != 200 || err != nil || res.Members["p2"]["paused"] != false || res.Members["p2"]["held_clients"] != 0.0 || res.Members["p2"]["error"] != nil {
		t.Errorf("group unpause: %d %s (%v)", code, body, err)
	}
	if got := p2.got(); got != "pause write 30s; unpause" {
		t.Errorf("p2 after the group unpause: %q", got)
	}
	for _, bad := range []string{`{"mode": "reads"}`, `{"timeout": "forever"}`, `{"timeout": "48h"}`, `{`} {
		if code, _ := post(addr1, "/api/v1/proxy/pause", bad); code != 400 {
			t.Errorf("pause %s: %d, want 400", bad, code)
		}
	}
	// A member that refuses (here: it runs no proxy) fails the group call.
	src.mu.Lock()
	src.members = append(src.members, GroupMember{Name: "p4", Alive: true, StatsAddr: witness, ProxyAddr: "x"})
	src.mu.Unlock()
	if code, body := post(addr1, "/api/v1/proxy/pause", `{"group": true}`); code != 502 || !strings.Contains(body, `"p4":{"error":"404 Not Found: this instance runs no proxy"}`) {
		t.Errorf("group pause with a failing member: %d %s", code, body)
	}
}
