package ha

import (
	"bytes"
	"context"
	"log/slog"
	"os/exec"
	"strconv"
	"sync/atomic"
	"time"
)

// hookTimeout bounds one notify hook.
const hookTimeout = 10 * time.Second

type hookEvent struct {
	name, cmd       string
	role, vip, term string
	reason          string
}

// hookRunner runs keepalived-style notify hooks serially from one queue,
// so they see transitions in order; a full queue drops the oldest reason
// rather than blocking the election loop.
type hookRunner struct {
	cfg   atomic.Pointer[HooksConfig] // a reload swaps it (reload.go)
	vip   string
	log   *slog.Logger
	queue chan hookEvent
}

func newHookRunner(cfg HooksConfig, vip string, log *slog.Logger) *hookRunner {
	h := &hookRunner{vip: vip, log: log, queue: make(chan hookEvent, 64)}
	h.cfg.Store(&cfg)
	return h
}

func (h *hookRunner) fire(name string, st *State) {
	hc := h.cfg.Load()
	cmd := map[string]string{"on_holder": hc.OnHolder, "on_backup": hc.OnBackup,
		"on_leader": hc.OnLeader, "on_fault": hc.OnFault}[name]
	h.log.Info("transition", "event", name, "role", st.Role, "term", st.Term, "holder", st.Holder,
		"leader", st.Leader, "reason", st.Reason)
	if cmd == "" {
		return
	}
	ev := hookEvent{name: name, cmd: cmd, role: st.Role, vip: h.vip, term: strconv.FormatUint(st.Term, 10), reason: st.Reason}
	select {
	case h.queue <- ev:
	default:
		h.log.Error("hook queue full; hook dropped", "hook", name)
	}
}

func (h *hookRunner) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-h.queue:
			h.exec(ctx, ev)
		}
	}
}

func (h *hookRunner) exec(ctx context.Context, ev hookEvent) {
	ctx, cancel := context.WithTimeout(ctx, hookTimeout)
	defer cancel()
	// Arguments as keepalived passes them, by position: role vip term reason.
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", ev.cmd+` "$@"`, "slotway-hook", ev.role, ev.vip, ev.term, ev.reason)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	l := h.log.With("hook", ev.name, "took", time.Since(start).Round(time.Millisecond), "output", out.String())
	if err != nil {
		l.Error("hook failed", "err", err)
		return
	}
	l.Info("hook ran")
}
