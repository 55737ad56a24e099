package ha

import "testing"

// TestGroupKeepsLeaseTerm: the scaling lease's term one member noted
// reaches every member, stays in the group after that member left, and a
// new holder claims a term above it (so its lease is not fenced).
func TestGroupKeepsLeaseTerm(t *testing.T) {
	ms := startGroup(t, 200, 150, 100)
	waitFor(t, "p1 to hold", func() bool { return agreed(ms, "p1") })
	lease := ms[0].g.State().Term + 40
	ms[0].g.NoteLeaseTerm(lease)
	ms[0].g.NoteLeaseTerm(lease - 1) // terms only grow
	waitFor(t, "every member to know the lease term", func() bool {
		for _, m := range ms {
			if m.g.LeaseTerm() != lease {
				return false
			}
		}
		return true
	})
	ms[0].stop(t) // graceful: it leaves the group
	rest := ms[1:]
	defer func() {
		for _, m := range rest {
			m.stop(t)
		}
	}()
	waitFor(t, "p2 to hold after p1 left", func() bool { return agreed(rest, "p2") })
	waitFor(t, "p1 to be gone from the others' view", func() bool {
		for _, m := range rest {
			for _, ms := range m.g.State().Members {
				if ms.Name == "p1" {
					return false
				}
			}
		}
		return true
	})
	for _, m := range rest {
		if got := m.g.LeaseTerm(); got != lease {
			t.Errorf("%s: lease term %d after p1 left, want %d", m.g.cfg.Name, got, lease)
		}
		if got := m.g.selfMeta().LeaseTerm; got != lease {
			t.Errorf("%s gossips lease term %d, want %d (carried on)", m.g.cfg.Name, got, lease)
		}
	}
	if got := rest[0].g.State().Term; got <= lease {
		t.Errorf("new holder's term %d is not above the lease term %d", got, lease)
	}
}
