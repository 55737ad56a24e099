package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/slotway/slotway/stats"
)

const clusterUsage = `Usage: slotway cluster -config FILE COMMAND
       slotway cluster create [-replicas R] [flags] HOST:PORT...

Talks to the group leader's admin API (stats.listen and
stats.admin_token_file of FILE) and waits until the operation ends.

Commands:
  status              the current or last operation
  rebalance           even out the slots over the masters
  scale N             add or remove masters until there are N
  drain HOST:PORT     move every slot off a master and remove it
  fix                 finish half-done slot moves
  create HOST:PORT... form a new cluster from empty nodes; talks to the
                      nodes, not the admin API, so -config is optional
                      ('slotway cluster create -h' for its flags)
`

// cmdCluster runs a scaling operation through the admin API.
func cmdCluster(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, clusterUsage) }
	path := fs.String("config", "", "config file")
	fs.StringVar(path, "c", "", "config file (short for -config)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) > 0 && rest[0] == "create" {
		return cmdCreate(ctx, rest[1:], *path, stdout, stderr)
	}
	if *path == "" || len(rest) == 0 {
		fs.Usage()
		return usageError{errors.New("need -config FILE and a command")}
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	token := ""
	if cfg.Stats.AdminTokenFile != "" {
		b, err := os.ReadFile(cfg.Stats.AdminTokenFile)
		if err != nil {
			return fmt.Errorf("stats.admin_token_file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	api := &adminClient{base: "http://" + cfg.Stats.Listen, token: token, http: &http.Client{Timeout: 10 * time.Second}}
	var body any
	op := rest[0]
	switch {
	case op == "status" && len(rest) == 1:
		st, err := api.operation(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, describe(st))
		return nil
	case (op == "rebalance" || op == "fix") && len(rest) == 1:
		body = map[string]any{}
	case op == "scale" && len(rest) == 2:
		n, err := strconv.Atoi(rest[1])
		if err != nil || n < 1 {
			return usageError{fmt.Errorf("scale: want a number of masters >= 1, got %q", rest[1])}
		}
		body = map[string]any{"masters": n}
	case op == "drain" && len(rest) == 2:
		body = map[string]any{"node": rest[1]}
	default:
		fs.Usage()
		return usageError{fmt.Errorf("unknown or incomplete command %q", strings.Join(rest, " "))}
	}
	if err := api.start(ctx, op, body); err != nil {
		return err
	}
	return api.wait(ctx, op, stdout)
}

type adminClient struct {
	base, token string
	http        *http.Client
}

func (a *adminClient) do(ctx context.Context, method, path string, body any) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return nil, nil, err
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.http.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("admin API %s: %w", a.base, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, b, nil
}

// start asks for the operation, following a 409 to the leader once.
func (a *adminClient) start(ctx context.Context, op string, body any) error {
	for attempt := 0; ; attempt++ {
		resp, b, err := a.do(ctx, http.MethodPost, "/api/v1/scaler/"+op, body)
		if err != nil {
			return err
		}
		if resp.StatusCode == http.StatusAccepted {
			return nil
		}
		var e struct {
			Error       string `json:"error"`
			Leader      string `json:"leader"`
			LeaderStats string `json:"leader_stats"`
		}
		_ = json.Unmarshal(b, &e)
		if resp.StatusCode == http.StatusConflict && e.LeaderStats != "" && attempt == 0 && "http://"+e.LeaderStats != a.base {
			a.base = "http://" + e.LeaderStats
			continue
		}
		// Another operation (e.g. the fix a new leader runs) is under
		// way: wait for it rather than fail.
		if resp.StatusCode == http.StatusConflict && strings.Contains(e.Error, "already running") && attempt < 600 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
			continue
		}
		msg := strings.TrimSpace(string(b))
		if e.Error != "" {
			msg = e.Error
			if e.Leader != "" {
				msg += " (leader: " + e.Leader + ")"
			}
		}
		return fmt.Errorf("%s: %s: %s", op, resp.Status, msg)
	}
}

func (a *adminClient) operation(ctx context.Context) (stats.Operation, error) {
	var st stats.Operation
	resp, b, err := a.do(ctx, http.MethodGet, "/api/v1/scaler/operation", nil)
	if err != nil {
		return st, err
	}
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("operation: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("operation: %w", err)
	}
	return st, nil
}

// wait polls until the operation ends: a progress bar on a terminal,
// a line every few seconds otherwise.
func (a *adminClient) wait(ctx context.Context, op string, out io.Writer) error {
	tty := false
	if f, ok := out.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	last := time.Time{}
	for {
		st, err := a.operation(ctx)
		if err != nil {
			return err
		}
		switch {
		case st.Kind == op && st.State == "done":
			if tty {
				fmt.Fprintln(out)
			}
			fmt.Fprintln(out, describe(st))
			return nil
		case st.Kind == op && st.State == "failed":
			if tty {
				fmt.Fprintln(out)
			}
			return fmt.Errorf("%s failed: %s", op, st.Error)
		case tty:
			fmt.Fprintf(out, "\r%s", bar(st))
		case time.Since(last) >= 5*time.Second:
			fmt.Fprintln(out, describe(st))
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped waiting (the operation goes on): %w", ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func describe(st stats.Operation) string {
	if st.Kind == "" {
		return "no operation yet"
	}
	s := fmt.Sprintf("%s %s: slots %d/%d, keys %d, bytes %d", st.Kind, st.State, st.SlotsDone, st.SlotsAll, st.Keys, st.Bytes)
	if st.ETA > 0 {
		s += ", eta " + st.ETA.Round(time.Second).String()
	}
	if !st.Ended.IsZero() && !st.Started.IsZero() {
		s += ", took " + st.Ended.Sub(st.Started).Round(time.Millisecond).String()
	}
	if st.Error != "" {
		s += ": " + st.Error
	}
	return s
}

func bar(st stats.Operation) string {
	const width = 30
	done := 0
	if st.SlotsAll > 0 {
		done = int(float64(width) * float64(st.SlotsDone) / float64(st.SlotsAll))
	}
	return fmt.Sprintf("[%s%s] %d/%d slots, %d keys, eta %s   ", strings.Repeat("#", done), strings.Repeat(".", width-done),
		st.SlotsDone, st.SlotsAll, st.Keys, st.ETA.Round(time.Second))
}
