package stats

// POST /api/v1/proxy/pause and /api/v1/proxy/unpause: CLIENT PAUSE as a
// maintenance switch (pgbouncer's PAUSE/RESUME). With "group": true the
// instance also asks every other live member of its HA group, through
// their own admin API with the caller's token.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Pauser is what the stats server needs to pause the instance's clients.
type Pauser interface {
	// Pause holds the clients' commands (only writes with writeOnly) for
	// d; the result is the pause's status, sent as JSON.
	Pause(d time.Duration, writeOnly bool) PauseStatus
	// Unpause ends the pause.
	Unpause() PauseStatus
}

// PauseStatus is an instance's CLIENT PAUSE state, as the pause endpoints
// answer it.
type PauseStatus struct {
	Paused bool      `json:"paused"`
	Mode   string    `json:"mode,omitempty"` // "write" or "all"
	Until  time.Time `json:"until,omitzero"`
	// HeldClients are the clients whose next command waits now.
	HeldClients int64 `json:"held_clients"`
}

// pauseRequest is the body of both endpoints; every field is optional.
type pauseRequest struct {
	Mode    string `json:"mode"`    // "all" (default) or "write"
	Timeout string `json:"timeout"` // how long at most, e.g. "30s"; default 60s, up to 24h
	Group   bool   `json:"group"`   // also every other live member of the HA group
}

const (
	defaultPause = time.Minute
	maxPause     = 24 * time.Hour
)

// handlePause answers 200 with this instance's pause status (and each
// member's with group), 400 for a bad body, 502 when a member failed.
func (s *Server) handlePause(w http.ResponseWriter, r *http.Request, op string) {
	p := s.parts.Pauser
	if p == nil {
		http.Error(w, "this instance runs no proxy", http.StatusNotFound)
		return
	}
	var req pauseRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err == nil && len(bytes.TrimSpace(body)) > 0 {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad JSON body: " + err.Error()})
		return
	}
	d := defaultPause
	if req.Timeout != "" {
		d, err = time.ParseDuration(req.Timeout)
		if err != nil || d <= 0 || d > maxPause {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("timeout: want a duration from 1ms to 24h, e.g. \"30s\"; got %q", req.Timeout)})
			return
		}
	}
	switch req.Mode {
	case "", "all", "write":
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("mode: want \"all\" or \"write\", got %q", req.Mode)})
		return
	}
	var status PauseStatus
	if op == "pause" {
		status = p.Pause(d, req.Mode == "write")
	} else {
		status = p.Unpause()
	}
	if !req.Group {
		writeJSON(w, http.StatusOK, status)
		return
	}
	out := groupPause{Instance: status, Members: map[string]memberPause{}}
	failed := 0
	var g *GroupStatus
	if s.parts.Holder != nil {
		g = s.parts.Holder.GroupStatus()
	}
	if g != nil {
		req.Group = false
		fwd, _ := json.Marshal(req)
		for _, m := range g.Members {
			if m.Name == g.Self || !m.Alive || m.StatsAddr == "" || m.ProxyAddr == "" {
				continue
			}
			res, err := forwardPause(r.Context(), m.StatsAddr, op, fwd, r.Header.Get("Authorization"))
			if err != nil {
				out.Members[m.Name] = memberPause{Error: err.Error()}
				failed++
				continue
			}
			out.Members[m.Name] = memberPause{PauseStatus: &res}
		}
	}
	code := http.StatusOK
	if failed > 0 {
		code = http.StatusBadGateway
	}
	writeJSON(w, code, out)
}

// groupPause is the answer with "group": true: this instance's status and
// that of every other live member with a proxy.
type groupPause struct {
	Instance PauseStatus            `json:"instance"`
	Members  map[string]memberPause `json:"members"`
}

// memberPause is a member's answer, or why there is none.
type memberPause struct {
	*PauseStatus
	Error string `json:"error,omitempty"`
}

// forwardPause asks one member to pause or unpause itself.
func forwardPause(ctx context.Context, addr, op string, body []byte, auth string) (PauseStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/api/v1/proxy/"+op, bytes.NewReader(body))
	if err != nil {
		return PauseStatus{}, err
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return PauseStatus{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return PauseStatus{}, errors.New(resp.Status + ": " + string(bytes.TrimSpace(b)))
	}
	var v PauseStatus
	if err := json.Unmarshal(b, &v); err != nil {
		return PauseStatus{}, fmt.Errorf("bad answer: %w", err)
	}
	return v, nil
}
