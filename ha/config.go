package ha

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/slotway/slotway/internal/config"
)

// Config is the `ha:` section. Without it an instance runs alone and is
// its own leader.
type Config struct {
	// Name is unique in the group. Required.
	Name string `yaml:"name"`
	// Bind is the memberlist address (host:port). Required.
	Bind string `yaml:"bind"`
	// Peers are the other configured members (host:port of their bind).
	// Quorum counts them: a majority of peers+1 must be alive to hold.
	Peers []string `yaml:"peers"`
	// Priority ranks members for the VIP, 1..255, higher wins. Default 100.
	Priority int `yaml:"priority"`
	// Preempt lets a higher-ranked member take the VIP from a serving
	// holder. Off by default: a move resets client connections.
	Preempt bool `yaml:"preempt"`
	// PreemptDelay is how long the better member must be continuously
	// eligible and higher-ranked before it preempts. Default 10s.
	PreemptDelay time.Duration `yaml:"preempt_delay"`
	// SecretKeyFile holds a 32-byte key encrypting gossip. Optional.
	SecretKeyFile string `yaml:"secret_key_file"`
	// Label keeps two groups on one segment apart. Default "slotway".
	Label string `yaml:"label"`
	// Witness instances vote for quorum and never hold the VIP or lead:
	// the third vote of a two-proxy group.
	Witness bool `yaml:"witness"`
	// FenceAfter: a holder that has not heard from a quorum this long
	// drops the VIP on its own timer. Default 1s.
	FenceAfter time.Duration `yaml:"fence_after"`
	// LeaderApart puts the leader (autoscaler) on a non-holder in groups
	// of three or more. Default false: the holder leads.
	LeaderApart bool        `yaml:"leader_apart"`
	VIP         VIPConfig   `yaml:"vip"`
	Hooks       HooksConfig `yaml:"hooks"`
}

// VIPConfig says how the floating address is held.
type VIPConfig struct {
	// Mode: netlink (the address on an interface, with gratuitous ARP),
	// hook (only the hooks run, e.g. for cloud APIs) or status (no
	// address; GET /ha/vip answers 200 on the holder). Default netlink.
	Mode string `yaml:"mode"`
	// Address is the VIP with its prefix, e.g. 10.77.0.100/24.
	Address string `yaml:"address"`
	// Interface carries the VIP in netlink mode.
	Interface string `yaml:"interface"`
}

// HooksConfig are keepalived-style notify commands, run serially with the
// arguments role, vip, term, reason.
type HooksConfig struct {
	OnHolder string `yaml:"on_holder"`
	OnBackup string `yaml:"on_backup"`
	OnLeader string `yaml:"on_leader"`
	OnFault  string `yaml:"on_fault"`
}

// UnmarshalYAML fills in the defaults for keys the section leaves out.
func (c *Config) UnmarshalYAML(n *yaml.Node) error {
	*c = DefaultConfig()
	type plain Config
	return n.Decode((*plain)(c))
}

// DefaultConfig returns the defaults documented on each field.
func DefaultConfig() Config {
	return Config{
		Priority:     100,
		PreemptDelay: 10 * time.Second,
		Label:        "slotway",
		FenceAfter:   time.Second,
		VIP:          VIPConfig{Mode: "netlink"},
	}
}

// Validate reports every bad field, relative to `ha`.
func (c Config) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, config.Errorf("name", "required (unique in the group)"))
	}
	if _, _, err := net.SplitHostPort(c.Bind); err != nil {
		errs = append(errs, config.Errorf("bind", "want host:port, got %q", c.Bind))
	}
	for i, p := range c.Peers {
		if _, _, err := net.SplitHostPort(p); err != nil {
			errs = append(errs, config.Errorf("peers["+strconv.Itoa(i)+"]", "want host:port, got %q", p))
		}
	}
	if c.Priority < 1 || c.Priority > 255 {
		errs = append(errs, config.Errorf("priority", "must be 1..255, got %d", c.Priority))
	}
	if c.PreemptDelay < 0 {
		errs = append(errs, config.Errorf("preempt_delay", "must not be negative, got %v", c.PreemptDelay))
	}
	if c.FenceAfter <= 0 {
		errs = append(errs, config.Errorf("fence_after", "must be a positive duration, got %v", c.FenceAfter))
	}
	if c.Label == "" {
		errs = append(errs, config.Errorf("label", "must not be empty"))
	}
	switch c.VIP.Mode {
	case "netlink", "hook", "status":
	default:
		errs = append(errs, config.Errorf("vip.mode", "must be netlink, hook or status, got %q", c.VIP.Mode))
	}
	if c.VIP.Mode != "status" && !c.Witness {
		if _, err := netip.ParsePrefix(c.VIP.Address); err != nil {
			errs = append(errs, config.Errorf("vip.address", "want an address with prefix like 10.77.0.100/24, got %q", c.VIP.Address))
		}
	}
	if c.VIP.Mode == "netlink" && !c.Witness && c.VIP.Interface == "" {
		errs = append(errs, config.Errorf("vip.interface", "required in netlink mode"))
	}
	return errors.Join(errs...)
}
