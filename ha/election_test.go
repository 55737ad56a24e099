package ha

import (
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func m(name string, prio int, role Role, term uint64) Member {
	return Member{Name: name, Priority: prio, Role: role, Term: term, RankedSince: t0}
}

func TestElect(t *testing.T) {
	settled := t0.Add(10 * time.Second)
	tests := []struct {
		name         string
		in           Input
		holder, lead string
		reason       string
	}{
		{
			name:   "cold start, simultaneous: best priority claims",
			in:     Input{Members: []Member{m("p1", 100, RoleCandidate, 0), m("p2", 150, RoleCandidate, 0), m("p3", 100, RoleCandidate, 0)}, Configured: 3, Now: settled, Started: t0, Settle: time.Second},
			holder: "p2", lead: "p2", reason: "best ranked claims",
		},
		{
			name:   "cold start, still settling: nobody claims",
			in:     Input{Members: []Member{m("p1", 100, RoleCandidate, 0), m("p2", 150, RoleCandidate, 0)}, Configured: 2, Now: t0.Add(500 * time.Millisecond), Started: t0, Settle: time.Second},
			holder: "", reason: "settling",
		},
		{
			name:   "staggered start: late better node does not take over (sticky)",
			in:     Input{Members: []Member{m("p1", 100, RoleHolder, 1), m("p2", 200, RoleCandidate, 0)}, Configured: 2, Now: settled, Started: t0, Settle: time.Second},
			holder: "p1", lead: "p1", reason: "sticky",
		},
		{
			name:   "equal priorities: name breaks the tie",
			in:     Input{Members: []Member{m("b", 100, RoleCandidate, 0), m("a", 100, RoleCandidate, 0), m("c", 100, RoleCandidate, 0)}, Configured: 3, Now: settled, Started: t0, Settle: time.Second},
			holder: "a", lead: "a",
		},
		{
			name: "preempt after the delay",
			in: Input{Members: []Member{m("p1", 100, RoleHolder, 3), {Name: "p2", Priority: 200, RankedSince: settled.Add(-6 * time.Second)}},
				Configured: 2, Now: settled, Started: t0, Preempt: true, PreemptDelay: 5 * time.Second},
			holder: "p2", lead: "p2", reason: "preempt",
		},
		{
			name: "preempt not before the delay",
			in: Input{Members: []Member{m("p1", 100, RoleHolder, 3), {Name: "p2", Priority: 200, RankedSince: settled.Add(-4 * time.Second)}},
				Configured: 2, Now: settled, Started: t0, Preempt: true, PreemptDelay: 5 * time.Second},
			holder: "p1", lead: "p1", reason: "sticky",
		},
		{
			name:   "partition heal with two holders: higher term keeps",
			in:     Input{Members: []Member{m("p1", 200, RoleHolder, 4), m("p2", 100, RoleHolder, 5), m("p3", 100, RoleCandidate, 0)}, Configured: 3, Now: settled, Started: t0},
			holder: "p2", lead: "p2", reason: "2 holders",
		},
		{
			name:   "partition heal, equal terms: rank breaks the tie",
			in:     Input{Members: []Member{m("p1", 100, RoleHolder, 5), m("p2", 200, RoleHolder, 5), m("p3", 100, RoleCandidate, 0)}, Configured: 3, Now: settled, Started: t0},
			holder: "p2", lead: "p2",
		},
		{
			name:   "quorum lost: minority side holds nothing",
			in:     Input{Members: []Member{m("p1", 100, RoleHolder, 2)}, Configured: 3, Now: settled, Started: t0},
			holder: "", reason: "no quorum",
		},
		{
			name:   "majority side elects after the holder is cut off",
			in:     Input{Members: []Member{m("p2", 100, RoleCandidate, 0), m("p3", 90, RoleCandidate, 0)}, Configured: 3, Now: settled, Started: t0},
			holder: "p2", lead: "p2",
		},
		{
			name:   "two nodes plus witness: witness votes, never holds",
			in:     Input{Members: []Member{{Name: "w", Priority: 255, Witness: true}, m("p2", 100, RoleCandidate, 0)}, Configured: 3, Now: settled, Started: t0},
			holder: "p2", lead: "p2",
		},
		{
			name:   "two nodes, alone, tie-breaker fails: no claim",
			in:     Input{Members: []Member{m("p2", 100, RoleCandidate, 0)}, Configured: 2, Now: settled, Started: t0},
			holder: "", reason: "no quorum",
		},
		{
			name:   "two nodes, alone, cluster reachable: claim",
			in:     Input{Members: []Member{m("p2", 100, RoleCandidate, 0)}, Configured: 2, TieBreakOK: true, Now: settled, Started: t0},
			holder: "p2", lead: "p2",
		},
		{
			name:   "draining holder: successor at once",
			in:     Input{Members: []Member{m("p1", 0, RoleDraining, 7), m("p2", 100, RoleCandidate, 0)}, Configured: 2, Now: settled, Started: t0},
			holder: "p2", lead: "p2", reason: "best ranked",
		},
		{
			name:   "unhealthy holder (priority 0) loses the VIP",
			in:     Input{Members: []Member{m("p1", 0, RoleHolder, 7), m("p2", 100, RoleCandidate, 0), m("p3", 50, RoleCandidate, 0)}, Configured: 3, Now: settled, Started: t0},
			holder: "p2", lead: "p2",
		},
		{
			name:   "leader apart from the holder in a group of three",
			in:     Input{Members: []Member{m("p1", 100, RoleHolder, 1), m("p2", 90, RoleCandidate, 0), m("p3", 80, RoleCandidate, 0)}, Configured: 3, Now: settled, Started: t0, LeaderApart: true},
			holder: "p1", lead: "p2",
		},
		{
			name: "rejoining member that has not heard the holder does not claim",
			in: Input{Members: []Member{m("p1", 200, RoleCandidate, 0), {Name: "p3", Priority: 100, Reports: "p2", RankedSince: t0}},
				Configured: 3, Now: settled, Started: t0},
			holder: "", reason: "p2 holding",
		},
		{
			name:   "single instance is its own holder and leader",
			in:     Input{Members: []Member{m("solo", 100, RoleCandidate, 0)}, Configured: 1, Now: settled, Started: t0},
			holder: "solo", lead: "solo",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Every member that sees the same group decides the same.
			for _, self := range tc.in.Members {
				in := tc.in
				in.Self = self.Name
				got := Elect(in)
				if got.Holder != tc.holder || got.Leader != tc.lead {
					t.Errorf("from %s: holder %q leader %q (%s), want holder %q leader %q",
						self.Name, got.Holder, got.Leader, got.Reason, tc.holder, tc.lead)
				}
				if !strings.Contains(got.Reason, tc.reason) {
					t.Errorf("from %s: reason %q, want it to mention %q", self.Name, got.Reason, tc.reason)
				}
			}
		})
	}
}
