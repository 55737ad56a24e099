package ha

import "testing"

// TestAdvertised: a listener on every interface is published with the
// gossip bind's host, so members do not dial themselves.
func TestAdvertised(t *testing.T) {
	for _, tc := range []struct{ listen, bind, want string }{
		{"0.0.0.0:8100", "10.1.2.3:7946", "10.1.2.3:8100"},
		{"[::]:8100", "10.1.2.3:7946", "10.1.2.3:8100"},
		{":8100", "[fd00::5]:7946", "[fd00::5]:8100"},
		{"127.0.0.1:8100", "10.1.2.3:7946", "127.0.0.1:8100"},
		{"0.0.0.0:8100", "0.0.0.0:7946", "0.0.0.0:8100"},
		{"node-a:8100", "10.1.2.3:7946", "node-a:8100"},
	} {
		if got := advertised(tc.listen, tc.bind); got != tc.want {
			t.Errorf("advertised(%q, %q) = %q, want %q", tc.listen, tc.bind, got, tc.want)
		}
	}
}
