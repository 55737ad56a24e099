package ownkeys

import "testing"

func TestIs(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want bool
	}{
		{Events, true}, {Lease, true}, {Intent, true}, {Autoscaler, true},
		{"{slotway:events}", true}, {"{slotway:events}:other", true},
		{"slotway:eventz", false}, {"slotway:events:x", false}, {"{slotway:events", false},
		{"", false}, {"user:1", false}, {"{slotway:event}:lease", false},
	} {
		if got := Is([]byte(tc.key)); got != tc.want {
			t.Errorf("Is(%q) = %v, want %v", tc.key, got, tc.want)
		}
		if got := IsString(tc.key); got != tc.want {
			t.Errorf("IsString(%q) = %v, want %v", tc.key, got, tc.want)
		}
	}
	for _, k := range All {
		if !IsString(k) {
			t.Errorf("All holds %q, which Is does not reserve", k)
		}
	}
}

func TestIsAllocs(t *testing.T) {
	key := []byte("{slotway:events}:lease")
	if n := testing.AllocsPerRun(100, func() { _ = Is(key) }); n != 0 {
		t.Errorf("Is allocates %v times", n)
	}
}
