package deploytest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/slotway/slotway/internal/fileconfig"
	"github.com/slotway/slotway/internal/testutil"
)

// The stack's plan, which the files must agree on.
const (
	swarmStackName = "slotway" // README: docker stack deploy ... slotway
	swarmRedis     = 6         // redis-1..redis-6
	swarmSpare     = "redis-spare"
)

var swarmProxies = []string{"slotway-1", "slotway-2"}

// A small typed view of the stack file: only what the checks read.
type stackFile struct {
	Services map[string]stackService `yaml:"services"`
	Volumes  map[string]any          `yaml:"volumes"`
	Configs  map[string]struct {
		File string `yaml:"file"`
	} `yaml:"configs"`
	Secrets map[string]struct {
		External bool `yaml:"external"`
	} `yaml:"secrets"`
	Networks map[string]any `yaml:"networks"`
}

type stackService struct {
	Image       string            `yaml:"image"`
	Entrypoint  []string          `yaml:"entrypoint"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []any             `yaml:"volumes"`
	Networks    any               `yaml:"networks"`
	Configs     []struct {
		Source string `yaml:"source"`
		Target string `yaml:"target"`
	} `yaml:"configs"`
	Secrets []struct {
		Source string `yaml:"source"`
		Target string `yaml:"target"`
	} `yaml:"secrets"`
	Ports []struct {
		Target    int `yaml:"target"`
		Published int `yaml:"published"`
	} `yaml:"ports"`
	Deploy struct {
		Replicas      *int              `yaml:"replicas"`
		EndpointMode  string            `yaml:"endpoint_mode"`
		Labels        map[string]string `yaml:"labels"`
		RestartPolicy struct {
			Condition string `yaml:"condition"`
		} `yaml:"restart_policy"`
	} `yaml:"deploy"`
}

func (s stackService) configTarget(target string) string {
	for _, c := range s.Configs {
		if c.Target == target {
			return c.Source
		}
	}
	return ""
}

func loadStack(t *testing.T) (stackFile, string) {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "deploy", "swarm")
	b, err := os.ReadFile(filepath.Join(dir, "stack.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var st stackFile
	if err := yaml.Unmarshal(b, &st); err != nil {
		t.Fatalf("stack.yml: %v", err)
	}
	return st, dir
}

func portOf(t *testing.T, hostport string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatalf("%q: %v", hostport, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("%q: %v", hostport, err)
	}
	return n
}

// TestSwarmStack checks that the parts of deploy/swarm agree: the Redis
// services and their volumes, the spare service the swarm provider scales,
// the bootstrap job's node list, and each Slotway service against its own
// config (ports, labels, peers, secret, provider). Needs no Docker.
func TestSwarmStack(t *testing.T) {
	st, dir := loadStack(t)
	for name, c := range st.Configs {
		if _, err := os.Stat(filepath.Join(dir, c.File)); err != nil {
			t.Errorf("configs.%s: %v", name, err)
		}
	}

	var nodes []string
	for i := 1; i <= swarmRedis; i++ {
		name := fmt.Sprintf("redis-%d", i)
		nodes = append(nodes, name+":6379")
		s, ok := st.Services[name]
		if !ok {
			t.Errorf("no service %s", name)
			continue
		}
		if s.Deploy.Replicas == nil || *s.Deploy.Replicas != 1 {
			t.Errorf("%s: want deploy.replicas 1 (one node, one identity)", name)
		}
		if s.Environment["REDIS_ANNOUNCE_SERVICE"] != name {
			t.Errorf("%s: REDIS_ANNOUNCE_SERVICE = %q, want its own name (announce the service VIP)", name, s.Environment["REDIS_ANNOUNCE_SERVICE"])
		}
		vol := name + "-data"
		if !slices.Contains(s.Volumes, any(vol+":/data")) {
			t.Errorf("%s: want volume %s:/data, got %v", name, vol, s.Volumes)
		}
		if _, ok := st.Volumes[vol]; !ok {
			t.Errorf("volume %s is not declared", vol)
		}
		if s.configTarget("/etc/redis/redis.conf") == "" {
			t.Errorf("%s: no config at /etc/redis/redis.conf", name)
		}
	}

	spare, ok := st.Services[swarmSpare]
	if !ok {
		t.Fatalf("no service %s (the swarm provider's spares)", swarmSpare)
	}
	if spare.Deploy.Replicas == nil || *spare.Deploy.Replicas != 0 {
		t.Errorf("%s: want deploy.replicas 0 until the provider scales it", swarmSpare)
	}
	if _, ok := spare.Environment["REDIS_ANNOUNCE_SERVICE"]; ok {
		t.Errorf("%s: its tasks share one name and must announce their own addresses", swarmSpare)
	}

	var bootstrap string
	for name, s := range st.Services {
		if len(s.Command) >= 2 && s.Command[0] == "cluster" && s.Command[1] == "create" {
			bootstrap = name
			want := append([]string{"cluster", "create", "-replicas", "1"}, nodes...)
			if !slices.Equal(s.Command, want) {
				t.Errorf("%s: command %q, want %q", name, s.Command, want)
			}
			if s.Deploy.RestartPolicy.Condition != "on-failure" {
				t.Errorf("%s: restart_policy.condition %q, want on-failure (a one-shot that retries)", name, s.Deploy.RestartPolicy.Condition)
			}
		}
	}
	if bootstrap == "" {
		t.Error("no service runs `slotway cluster create`")
	}

	published := map[int]string{}
	for _, name := range swarmProxies {
		s, ok := st.Services[name]
		if !ok {
			t.Errorf("no service %s", name)
			continue
		}
		src := s.configTarget("/etc/slotway/slotway.yaml")
		file := st.Configs[src].File
		if file == "" {
			t.Errorf("%s: no Swarm config at /etc/slotway/slotway.yaml", name)
			continue
		}
		cfg := loadSlotwayConfig(t, filepath.Join(dir, file))
		t.Run(name, func(t *testing.T) { checkSwarmProxy(t, st, name, s, cfg, published) })
	}
}

func checkSwarmProxy(t *testing.T, st stackFile, name string, s stackService, cfg fileconfig.File, published map[int]string) {
	if cfg.HA == nil {
		t.Fatal("no ha section")
	}
	if cfg.HA.Name != name {
		t.Errorf("ha.name %q, want the service name %q", cfg.HA.Name, name)
	}
	if cfg.HA.VIP.Mode != "status" {
		t.Errorf("ha.vip.mode %q, want status (no address moves in an overlay network)", cfg.HA.VIP.Mode)
	}
	if !strings.HasPrefix(cfg.HA.Bind, "${SLOTWAY_TASK_IP}:") {
		t.Errorf("ha.bind %q: want the ${SLOTWAY_TASK_IP} placeholder that slotway-start.sh fills", cfg.HA.Bind)
	}
	if s.Environment["SLOTWAY_TASK_DNS"] != "tasks."+name {
		t.Errorf("SLOTWAY_TASK_DNS %q, want tasks.%s", s.Environment["SLOTWAY_TASK_DNS"], name)
	}
	if len(s.Entrypoint) != 1 || s.configTarget(s.Entrypoint[0]) == "" {
		t.Errorf("entrypoint %q is not the mounted start script", s.Entrypoint)
	}
	var wantPeers []string
	for _, other := range swarmProxies {
		if other != name {
			wantPeers = append(wantPeers, fmt.Sprintf("tasks.%s:%d", other, portOf(t, cfg.HA.Bind)))
		}
	}
	if !slices.Equal(cfg.HA.Peers, wantPeers) {
		t.Errorf("ha.peers %q, want %q", cfg.HA.Peers, wantPeers)
	}
	for _, seed := range cfg.Proxy.Cluster.Seeds {
		host, _, _ := net.SplitHostPort(seed)
		if _, ok := st.Services[host]; !ok || !strings.HasPrefix(host, "redis-") {
			t.Errorf("proxy.cluster.seeds: %s is not a Redis service of the stack", seed)
		}
	}
	// Published ports lead to the config's listeners, and no two services
	// share one (the routing mesh allows a port once).
	proxyPort, statsPort := portOf(t, cfg.Proxy.Listen), portOf(t, cfg.Stats.Listen)
	targets := map[int]bool{}
	for _, p := range s.Ports {
		targets[p.Target] = true
		if other, dup := published[p.Published]; dup {
			t.Errorf("port %d is published by %s too", p.Published, other)
		}
		published[p.Published] = name
	}
	if !targets[proxyPort] || !targets[statsPort] {
		t.Errorf("ports %v: want targets %d (proxy.listen) and %d (stats.listen)", s.Ports, proxyPort, statsPort)
	}
	labels := s.Deploy.Labels
	if labels["prometheus.io/scrape"] != "true" || labels["prometheus.io/port"] != strconv.Itoa(statsPort) || labels["prometheus.io/path"] != "/metrics" {
		t.Errorf("deploy.labels %v: want prometheus.io/scrape true, port %d, path /metrics", labels, statsPort)
	}
	// The admin token is the stack's secret, where Swarm mounts it.
	found := false
	for _, sec := range s.Secrets {
		target := sec.Target
		if target == "" {
			target = sec.Source
		}
		if "/run/secrets/"+target == cfg.Stats.AdminTokenFile {
			found = true
			if _, ok := st.Secrets[sec.Source]; !ok {
				t.Errorf("secret %s is not declared", sec.Source)
			}
		}
	}
	if !found {
		t.Errorf("stats.admin_token_file %q is no secret of the service", cfg.Stats.AdminTokenFile)
	}
	if cfg.Scaler == nil {
		t.Fatal("no scaler section")
	}
	if p := cfg.Scaler.Provider; p.Kind != "swarm" || p.Service != swarmStackName+"_"+swarmSpare {
		t.Errorf("scaler.provider %s/%s, want swarm/%s_%s", p.Kind, p.Service, swarmStackName, swarmSpare)
	}
}

// TestSwarmStackDockerConfig runs the Docker CLI's own loader and schema
// check (`docker stack config`, Docker CLI 23 or later; no engine needed).
func TestSwarmStackDockerConfig(t *testing.T) {
	docker := requireTool(t, "docker", "docker-ce-cli (Docker's apt repository; Debian 12's docker.io 20.10 lacks `docker stack config`)")
	if out, err := exec.Command(docker, "stack", "config", "--help").CombinedOutput(); err != nil || !strings.Contains(string(out), "compose-file") {
		msg := fmt.Sprintf("%s has no `docker stack config` (Docker CLI 23 or later): %v\n%s", docker, err, out)
		testutil.Missing(t, "%s", msg)
	}
	_, dir := loadStack(t)
	out := run(t, dir, []string{"SLOTWAY_IMAGE="}, docker, "stack", "config", "-c", "stack.yml")
	// The output is the interpolated stack: the image default applied.
	if !strings.Contains(out, "image: slotway:latest") {
		t.Errorf("docker stack config output lacks the default image slotway:latest:\n%s", out)
	}
}

// TestSwarmSlotwayStart runs slotway-start.sh with a fake getent and a fake
// slotway: the config it renders must carry the task address in ha.bind
// and be a valid Slotway config.
func TestSwarmSlotwayStart(t *testing.T) {
	_, dir := loadStack(t)
	for _, tc := range []struct {
		name, answer, wantBind, wantErr string
	}{
		{"ipv4", "10.0.9.7       tasks.slotway-1", "10.0.9.7:7946", ""},
		{"ipv6", "fd00:9::7      tasks.slotway-1", "[fd00:9::7]:7946", ""},
		{"not an address", "oops tasks.slotway-1", "", "not an IP address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			writeExec(t, filepath.Join(tmp, "bin", "getent"), "#!/bin/sh\necho '"+tc.answer+"'\n")
			got := filepath.Join(tmp, "args")
			fake := filepath.Join(tmp, "slotway")
			writeExec(t, fake, "#!/bin/sh\necho \"$@\" > '"+got+"'\n")
			out := filepath.Join(tmp, "slotway.yaml")
			cmd := exec.Command("sh", filepath.Join(dir, "slotway-start.sh"))
			cmd.Env = append(os.Environ(),
				"PATH="+filepath.Join(tmp, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"),
				"SLOTWAY_TASK_DNS=tasks.slotway-1",
				"SLOTWAY_RESOLVE="+filepath.Join(dir, "resolve.sh"),
				"SLOTWAY_CONFIG="+filepath.Join(dir, "slotway-1.yaml"),
				"SLOTWAY_RENDERED_CONFIG="+out,
				"SLOTWAY_BIN="+fake)
			b, err := cmd.CombinedOutput()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(string(b), tc.wantErr) {
					t.Fatalf("want failure with %q, got %v: %s", tc.wantErr, err, b)
				}
				return
			}
			if err != nil {
				t.Fatalf("slotway-start.sh: %v\n%s", err, b)
			}
			cfg := loadSlotwayConfig(t, out)
			if cfg.HA.Bind != tc.wantBind {
				t.Errorf("rendered ha.bind %q, want %q", cfg.HA.Bind, tc.wantBind)
			}
			args, err := os.ReadFile(got)
			if want := "run -config " + out; err != nil || strings.TrimSpace(string(args)) != want {
				t.Errorf("slotway ran with %q (%v), want %q", args, err, want)
			}
		})
	}
}

func writeExec(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
}
