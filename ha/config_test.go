package ha

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.Name, ok.Bind, ok.Peers = "p1", "10.77.0.11:7946", []string{"10.77.0.12:7946"}
	ok.VIP.Address, ok.VIP.Interface = "10.77.0.100/24", "eth0"
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"priority too high", func(c *Config) { c.Priority = 300 }, "priority: must be 1..255, got 300"},
		{"no name", func(c *Config) { c.Name = "" }, "name: required"},
		{"bad bind", func(c *Config) { c.Bind = "10.0.0.1" }, "bind: want host:port"},
		{"bad peer", func(c *Config) { c.Peers = []string{"x"} }, "peers[0]: want host:port"},
		{"bad mode", func(c *Config) { c.VIP.Mode = "arp" }, "vip.mode: must be netlink, hook or status"},
		{"vip without prefix", func(c *Config) { c.VIP.Address = "10.77.0.100" }, "vip.address"},
		{"netlink without interface", func(c *Config) { c.VIP.Interface = "" }, "vip.interface: required"},
		{"zero fence", func(c *Config) { c.FenceAfter = 0 }, "fence_after"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	st := ok
	st.VIP = VIPConfig{Mode: "status"}
	if err := st.Validate(); err != nil {
		t.Errorf("status mode needs no address: %v", err)
	}
	w := ok
	w.Witness, w.VIP = true, VIPConfig{Mode: "netlink"}
	if err := w.Validate(); err != nil {
		t.Errorf("a witness needs no VIP: %v", err)
	}
}
