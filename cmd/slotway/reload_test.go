package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slotway/slotway/ha"
	"github.com/slotway/slotway/proxy"
	"github.com/slotway/slotway/scaler"
)

func TestDiffConfig(t *testing.T) {
	const base = "proxy:\n  listen: 127.0.0.1:7100\n  cluster:\n    seeds: [\"127.0.0.1:7000\"]\n"
	const haSection = "ha:\n  name: p1\n  bind: 127.0.0.1:7946\n  vip:\n    mode: status\n"
	tests := []struct {
		name, from, to       string
		applied, ignored     []string
		wantListen           string // in the merged config
		wantUsers, wantPrio  int
		wantMaxArgs          int
		wantMemoryPct        float64
		wantLevel, wantNotif string
	}{
		{name: "unchanged", from: base, to: base},
		{name: "empty list equals none", from: base, to: base + "  users: []\n  cross_slot: {}\n"},
		{name: "users and limits", from: base, to: base + "  users:\n    - name: default\n      password: x\n  limits:\n    max_args: 5\n",
			applied: []string{"proxy.limits.max_args", "proxy.users"}, wantUsers: 1, wantMaxArgs: 5},
		{name: "listen needs a restart, the rest applies",
			from: base, to: strings.Replace(base, "7100", "7101", 1) + "  read_from: replica\n  retry_timeout: 9s\n",
			applied: []string{"proxy.retry_timeout", "proxy.read_from"}, ignored: []string{"proxy.listen"}, wantListen: "127.0.0.1:7100"},
		{name: "seeds and backend timeout need a restart",
			from: base, to: strings.Replace(base, "7000", "7001", 1) + "  backend_timeout: 5s\n",
			ignored: []string{"proxy.cluster.seeds", "proxy.backend_timeout"}},
		{name: "ha section appears", from: base, to: base + haSection, ignored: []string{"ha"}},
		{name: "ha priority and hooks apply, bind and vip do not",
			from:    base + haSection,
			to:      base + "ha:\n  name: p1\n  bind: 127.0.0.1:7947\n  priority: 200\n  vip:\n    mode: hook\n    address: 10.0.0.1/24\n  hooks:\n    on_holder: /bin/true\n",
			applied: []string{"ha.priority", "ha.hooks.on_holder"}, ignored: []string{"ha.bind", "ha.vip.mode", "ha.vip.address"}, wantPrio: 200},
		{name: "scaler policy and notify apply, interval does not",
			from:    base + "scaler:\n  enabled: true\n",
			to:      base + "scaler:\n  enabled: true\n  interval: 1m\n  up_cycles: 7\n  thresholds:\n    memory_pct: 50\n  notify:\n    webhook: http://127.0.0.1:1/hook\n",
			applied: []string{"scaler.up_cycles", "scaler.thresholds.memory_pct", "scaler.notify.webhook"}, ignored: []string{"scaler.interval"},
			wantMemoryPct: 50, wantNotif: "http://127.0.0.1:1/hook"},
		{name: "log level", from: base, to: base + "log:\n  level: debug\n", applied: []string{"log.level"}, wantLevel: "debug"},
		{name: "stats listen", from: base, to: base + "stats:\n  listen: 127.0.0.1:9999\n", ignored: []string{"stats.listen"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			from, to := parseTestConfig(t, tc.from), parseTestConfig(t, tc.to)
			r := &reloader{inst: &instance{proxy: &proxy.Server{}, scaler: &scaler.Scaler{}, group: &ha.Group{}}}
			applied, ignored := diffConfig(&from, &to, r.reloadable)
			if !slices.Equal(applied, tc.applied) || !slices.Equal(ignored, tc.ignored) {
				t.Fatalf("applied %q ignored %q, want applied %q ignored %q", applied, ignored, tc.applied, tc.ignored)
			}
			if tc.wantListen != "" && from.Proxy.Listen != tc.wantListen {
				t.Errorf("merged proxy.listen = %q, want the running %q", from.Proxy.Listen, tc.wantListen)
			}
			if tc.wantUsers != 0 && len(from.Proxy.Users) != tc.wantUsers {
				t.Errorf("merged users %v", from.Proxy.Users)
			}
			if tc.wantMaxArgs != 0 && from.Proxy.Limits.MaxArgs != tc.wantMaxArgs {
				t.Errorf("merged max_args %d", from.Proxy.Limits.MaxArgs)
			}
			if tc.wantPrio != 0 && (from.HA.Priority != tc.wantPrio || from.HA.Bind != "127.0.0.1:7946" || from.HA.VIP.Mode != "status") {
				t.Errorf("merged ha %+v", *from.HA)
			}
			if tc.wantMemoryPct != 0 && (from.Scaler.Thresholds.MemoryPct != tc.wantMemoryPct || from.Scaler.Interval != 10*time.Second ||
				from.Scaler.Notify.Webhook != tc.wantNotif) {
				t.Errorf("merged scaler %+v", *from.Scaler)
			}
			if from.Log.Level != tc.wantLevel {
				t.Errorf("merged log.level %q, want %q", from.Log.Level, tc.wantLevel)
			}
			// Merging again finds only what needs a restart.
			again, ignoredAgain := diffConfig(&from, &to, r.reloadable)
			if len(again) != 0 || !slices.Equal(ignoredAgain, tc.ignored) {
				t.Errorf("second diff: applied %q ignored %q", again, ignoredAgain)
			}
		})
	}
}

// TestDiffConfigSharesNothing: merging into the running config never
// writes through a pointer a component may hold.
func TestDiffConfigSharesNothing(t *testing.T) {
	const base = "proxy:\n  cluster:\n    seeds: [\"127.0.0.1:7000\"]\nha:\n  name: p1\n  bind: 127.0.0.1:7946\n  vip:\n    mode: status\n"
	from, to := parseTestConfig(t, base), parseTestConfig(t, strings.Replace(base, "name: p1", "name: p1\n  priority: 7", 1))
	held := from.HA
	r := &reloader{inst: &instance{proxy: &proxy.Server{}, group: &ha.Group{}}}
	if applied, _ := diffConfig(&from, &to, r.reloadable); !slices.Equal(applied, []string{"ha.priority"}) || from.HA.Priority != 7 {
		t.Fatalf("applied %q, merged priority %d", applied, from.HA.Priority)
	}
	if held.Priority != 100 {
		t.Errorf("the running section was changed in place: priority %d", held.Priority)
	}
}

func parseTestConfig(t *testing.T, yaml string) fileConfig {
	t.Helper()
	path := filepath.Join(t.TempDir(), "slotway.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
