package ha

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Role is what a member says it is doing, gossiped in its metadata.
type Role uint8

const (
	RoleCandidate Role = iota // may be elected, holds nothing
	RoleHolder                // holds the VIP
	RoleDraining              // shutting down or handing over: never elected
)

func (r Role) String() string {
	switch r {
	case RoleHolder:
		return "holder"
	case RoleDraining:
		return "draining"
	}
	return "candidate"
}

// Member is one alive group member as the local node sees it.
type Member struct {
	Name string
	// Priority is the effective priority (configured priority, lowered to
	// 0 by failed health checks). 0 is never elected.
	Priority int
	Witness  bool // votes for quorum, never holds or leads
	Role     Role
	Term     uint64 // the term of its last claim
	// Reports is who this member sees holding the VIP ("" for nobody).
	Reports string
	// RankedSince is when the local node first saw this member with its
	// current priority and eligibility, continuously: the preemption delay
	// counts from it.
	RankedSince time.Time
}

func (m Member) eligible() bool {
	return !m.Witness && m.Priority > 0 && m.Role != RoleDraining
}

// better ranks by priority, then name (smaller wins), so every member
// computes the same order.
func better(a, b Member) bool {
	if a.Priority != b.Priority {
		return a.Priority > b.Priority
	}
	return a.Name < b.Name
}

// Input is everything the election depends on. It is a pure function of
// this value: every member that sees the same members decides the same.
type Input struct {
	Self    string
	Members []Member // alive members, self included
	// Configured is the number of configured group members, self and any
	// witness included: quorum is a majority of it.
	Configured int
	// TieBreakOK is the two-node tie-breaker: with Configured == 2 a lone
	// node may hold only while it reaches the cluster.
	TieBreakOK   bool
	Now          time.Time
	Started      time.Time     // when the local node joined
	Settle       time.Duration // no first claim before Started+Settle
	Preempt      bool
	PreemptDelay time.Duration
	// LeaderApart puts the leader on the best non-holder when the group
	// has at least three members.
	LeaderApart bool
}

// Result is the election's outcome and why.
type Result struct {
	Holder string // "" when nobody may hold the VIP
	Leader string
	Quorum bool
	Reason string
}

// Elect decides who holds the VIP and who leads.
func Elect(in Input) Result {
	var r Result
	r.Quorum = quorum(in)
	if !r.Quorum {
		r.Reason = fmt.Sprintf("no quorum: %d of %d configured members alive", len(in.Members), in.Configured)
		return r
	}
	var cands, holders []Member
	for _, m := range in.Members {
		if m.eligible() {
			cands = append(cands, m)
			if m.Role == RoleHolder {
				holders = append(holders, m)
			}
		}
	}
	if len(cands) == 0 {
		r.Reason = "no eligible member"
		return r
	}
	slices.SortFunc(cands, func(a, b Member) int {
		if better(a, b) {
			return -1
		}
		return 1
	})
	best := cands[0]

	switch {
	case len(holders) > 0:
		// Sticky: a serving holder keeps the VIP (a move resets client
		// connections). After a partition heals two may claim: the higher
		// (term, rank) keeps it and the other releases.
		cur := slices.MaxFunc(holders, func(a, b Member) int {
			if c := cmp.Compare(a.Term, b.Term); c != 0 {
				return c
			}
			if better(a, b) {
				return 1
			}
			return -1
		})
		r.Holder, r.Reason = cur.Name, "sticky: current holder stays"
		if len(holders) > 1 {
			r.Reason = fmt.Sprintf("%d holders after a heal: highest (term, rank) keeps the VIP", len(holders))
		}
		if in.Preempt && best.Name != cur.Name && better(best, cur) &&
			!best.RankedSince.IsZero() && in.Now.Sub(best.RankedSince) >= in.PreemptDelay {
			r.Holder = best.Name
			r.Reason = fmt.Sprintf("preempt: %s outranks %s for %v", best.Name, cur.Name, in.PreemptDelay)
		}
	case in.Now.Sub(in.Started) < in.Settle:
		r.Reason = "settling: waiting to hear from the group before the first claim"
	case reportedHolder(in) != "":
		// Someone we hear still sees a holder we do not: we may be the one
		// out of date (rejoining after a partition). Its view expires as
		// soon as it stops hearing that holder too.
		r.Reason = "waiting: a member still sees " + reportedHolder(in) + " holding the VIP"
	default:
		r.Holder, r.Reason = best.Name, "no holder: best ranked claims"
	}
	r.Leader = r.Holder
	if in.LeaderApart && len(in.Members) >= 3 && r.Holder != "" {
		for _, c := range cands {
			if c.Name != r.Holder {
				r.Leader = c.Name
				break
			}
		}
	}
	return r
}

// reportedHolder is a holder some alive member (self included, as of its
// last tick) reports that is not among the alive members of our view.
func reportedHolder(in Input) string {
	alive := map[string]bool{}
	for _, m := range in.Members {
		alive[m.Name] = true
	}
	for _, m := range in.Members {
		if m.Reports != "" && m.Reports != in.Self && !alive[m.Reports] {
			return m.Reports
		}
	}
	return ""
}

func quorum(in Input) bool {
	alive := len(in.Members)
	if in.Configured <= 1 {
		return true
	}
	if in.Configured == 2 {
		return alive == 2 || in.TieBreakOK
	}
	return alive > in.Configured/2
}
