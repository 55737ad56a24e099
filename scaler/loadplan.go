package scaler

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/slotway/slotway/internal/hashslot"
)

// LoadPlanInput is what PlanByLoad decides from.
type LoadPlanInput struct {
	// Masters are the IDs of the masters taking part: all live masters.
	Masters []string
	// Owner[slot] is the master serving the slot. Unassigned slots ("")
	// are ignored: their ops count for nobody and they never move.
	Owner [hashslot.Count]string
	// Ops[slot] is the slot's measured commands per second.
	Ops []float64
	// Tolerance, a fraction in [0, 1) (e.g. 0.10): how far a master's
	// load may stray from the average before slots move.
	Tolerance float64
	// LastSlot, when not nil, is moved last of all if it moves: Slotway
	// keeps its own keys there (the slot of "slotway:events").
	LastSlot *int
	// MaxMoves bounds the plan; 0 means no bound. Moving a slot costs a
	// migration, and traffic shifts while a long plan runs.
	MaxMoves int
}

// LoadPlan is the result of PlanByLoad.
type LoadPlan struct {
	Moves         []Move
	Before, After map[string]float64 // load per master, in ops per second
	// Reachable is false when the planner finds no way to meet Tolerance
	// (certain when one slot alone is hotter than the average plus
	// tolerance); the moves then only improve the spread as far as
	// possible. It judges the whole plan, before MaxMoves cuts it: true
	// with After still out of tolerance means "plan again after these",
	// not "give up".
	Reachable bool
}

// PlanByLoad returns the slot moves that bring the load (ops) of every
// master within Tolerance of the average. It is pure and deterministic.
//
// Greedily, the most loaded master gives one slot to the least loaded
// one: the slot whose ops come closest to what the nearer of the two
// lacks to reach the average, and below their gap, so that the pair's
// maximum always drops and the spread never widens. Aiming at the average
// rather than the tolerance edge means the next run does not find the
// same masters on the edge again. A master that has nothing left to give
// below its gap (a slot hotter than the gap alone) keeps its load, and the
// others balance around their own average: that is as far as the spread
// can go. Slots without ops never move (balancing slot counts is Plan's
// job), and no slot moves twice.
//
// Moves come grouped by (From, To) pair in ID order, ascending slots
// within a pair, so a migrator can run pairs; LastSlot, if it moves,
// comes last.
func PlanByLoad(in LoadPlanInput) (LoadPlan, error) {
	if err := in.validate(); err != nil {
		return LoadPlan{}, fmt.Errorf("load plan: %w", err)
	}
	p := newLoadPlanner(&in)
	p.balance()

	kept := p.steps
	if in.MaxMoves > 0 && len(kept) > in.MaxMoves {
		// Every greedy step narrows the spread on its own, so a prefix
		// is a sound smaller plan, and the next run carries on from it.
		kept = kept[:in.MaxMoves]
	}
	plan := LoadPlan{Moves: p.order(kept), Before: p.loads(nil), After: p.loads(kept), Reachable: true}
	full, mean := p.loads(p.steps), 0.0
	for _, id := range p.ids {
		mean += full[id] / float64(len(p.ids))
	}
	for _, id := range p.ids {
		plan.Reachable = plan.Reachable && inTolerance(full[id], mean, in.Tolerance)
	}
	return plan, nil
}

// validate rejects what the planner cannot decide from. Errors name the
// first offending master or slot, so they are deterministic.
func (in *LoadPlanInput) validate() error {
	if len(in.Masters) == 0 {
		return errors.New("no masters")
	}
	seen := make(map[string]bool, len(in.Masters))
	for _, id := range in.Masters {
		switch {
		case id == "":
			return errors.New(`master ID "" is reserved for unassigned slots`)
		case seen[id]:
			return fmt.Errorf("master %q is listed twice", id)
		}
		seen[id] = true
	}
	if len(in.Ops) != hashslot.Count {
		return fmt.Errorf("%d ops, want one per slot (%d)", len(in.Ops), hashslot.Count)
	}
	total := 0.0
	for slot, ops := range in.Ops {
		if math.IsNaN(ops) || math.IsInf(ops, 0) || ops < 0 {
			return fmt.Errorf("slot %d has %v ops, want a finite rate >= 0", slot, ops)
		}
		total += ops
	}
	if math.IsInf(total, 0) {
		return errors.New("ops add up to more than a float64 holds")
	}
	last := "" // owners come in runs: look each run up once
	for slot, id := range in.Owner {
		if id != "" && id != last && !seen[id] {
			// Its load would be unaccounted for, and moving its slots
			// could empty a master we were not told about.
			return fmt.Errorf("slot %d is owned by %q, which is not in Masters", slot, id)
		}
		last = id
	}
	if math.IsNaN(in.Tolerance) || in.Tolerance < 0 || in.Tolerance >= 1 {
		return fmt.Errorf("tolerance %v, want a fraction in [0, 1)", in.Tolerance)
	}
	if in.MaxMoves < 0 {
		return fmt.Errorf("max moves %d, want >= 0 (0: no limit)", in.MaxMoves)
	}
	if in.LastSlot != nil && (*in.LastSlot < 0 || *in.LastSlot >= hashslot.Count) {
		return fmt.Errorf("last slot %d is not a slot (0-%d)", *in.LastSlot, hashslot.Count-1)
	}
	return nil
}

// inTolerance reports whether load is within tol of mean. The extra 1e-9
// absorbs float rounding, which would otherwise turn an exactly balanced
// cluster (tol 0, or a load on the edge) into a plan of dust-sized moves.
func inTolerance(load, mean, tol float64) bool {
	return math.Abs(load-mean) <= mean*(tol+1e-9)
}

// loads sums ops per master with steps applied, in slot order, so that
// callers summing the same way get bit-for-bit the same loads.
func (p *loadPlanner) loads(steps []loadStep) map[string]float64 {
	owner := p.owner
	for _, s := range steps {
		owner[s.slot] = s.to
	}
	load := make([]float64, len(p.ids))
	for slot, i := range owner {
		if i >= 0 {
			load[i] += p.in.Ops[slot]
		}
	}
	m := make(map[string]float64, len(p.ids))
	for i, id := range p.ids {
		m[id] = load[i]
	}
	return m
}

// loadStep is one move by master index, in the order the greedy made it.
type loadStep struct{ slot, from, to int }

// loadPlanner holds the masters by index in ID order, so every loop over
// them is deterministic and ties go to the lowest ID.
type loadPlanner struct {
	in    *LoadPlanInput
	ids   []string
	owner [hashslot.Count]int // index into ids, -1 for unassigned
	load  []float64
	// slots lists each master's slots with ops, hottest first, equal ops
	// by ascending slot: master i's are slots[start[i]:start[i+1]].
	slots []int
	start []int
	// next and prev skip the positions in slots already moved (prev is
	// shifted by one so that position -1 has a sentinel).
	next, prev skipList
	steps      []loadStep
}

func newLoadPlanner(in *LoadPlanInput) *loadPlanner {
	p := &loadPlanner{in: in, ids: slices.Sorted(slices.Values(in.Masters))}
	index := make(map[string]int, len(p.ids))
	for i, id := range p.ids {
		index[id] = i
	}
	p.load = make([]float64, len(p.ids))
	per := make([][]int, len(p.ids))
	last, i := "", -1
	for slot, id := range in.Owner {
		if id != last { // owners come in runs: look each run up once
			last, i = id, -1
			if id != "" {
				i = index[id]
			}
		}
		p.owner[slot] = i
		if i >= 0 && in.Ops[slot] > 0 {
			p.load[i] += in.Ops[slot]
			per[i] = append(per[i], slot)
		}
	}
	for _, slots := range per {
		slices.SortFunc(slots, func(a, b int) int {
			return cmp.Or(cmp.Compare(in.Ops[b], in.Ops[a]), cmp.Compare(a, b))
		})
		p.start = append(p.start, len(p.slots))
		p.slots = append(p.slots, slots...)
	}
	p.start = append(p.start, len(p.slots))
	p.next = newSkipList(len(p.slots) + 1)
	p.prev = newSkipList(len(p.slots) + 1)
	return p
}

// balance runs the greedy, recording every move in steps.
func (p *loadPlanner) balance() {
	stuck := make([]bool, len(p.ids))
	for {
		d, r, n, mean := -1, -1, 0, 0.0
		for i, l := range p.load {
			if stuck[i] {
				continue
			}
			n++
			mean += l
			if d < 0 || l > p.load[d] {
				d = i
			}
			if r < 0 || l < p.load[r] {
				r = i
			}
		}
		if n < 2 {
			return
		}
		mean /= float64(n)
		tol := p.in.Tolerance
		if inTolerance(p.load[d], mean, tol) && inTolerance(p.load[r], mean, tol) {
			return // the rest lie between them
		}
		want := min(p.load[d]-mean, mean-p.load[r])
		if want <= 0 {
			return // only rounding keeps them apart
		}
		k, ok := p.pick(d, want, p.load[d]-p.load[r])
		if !ok {
			// It stays the most loaded: others only get what keeps them
			// below their donor, and nothing it holds can ever fit.
			stuck[d] = true
			continue
		}
		slot := p.slots[k]
		p.next[k] = k + 1
		p.prev[k+1] = k
		p.load[d] -= p.in.Ops[slot]
		p.load[r] += p.in.Ops[slot]
		p.steps = append(p.steps, loadStep{slot, d, r})
	}
}

// pick returns the position in slots of master d's unmoved slot with ops
// below gap and closest to want, the lower slot among equals; false if
// every slot left is at least gap.
func (p *loadPlanner) pick(d int, want, gap float64) (int, bool) {
	lo, hi := p.start[d], p.start[d+1]
	ops := func(k int) float64 { return p.in.Ops[p.slots[k]] }
	// Everything from here on is at most want, so below gap: want is at
	// most half the gap.
	at := p.firstAtMost(lo, hi, want)
	below := p.next.find(at)
	above := p.prev.find(at) - 1
	if above >= lo && ops(above) < gap {
		// The lowest unmoved slot among those with the same ops.
		above = p.next.find(p.firstAtMost(lo, above, ops(above)))
	} else {
		above = -1
	}
	if above < 0 {
		return below, below < hi
	}
	if below >= hi {
		return above, true
	}
	over, under := ops(above)-want, want-ops(below)
	if over < under || over == under && p.slots[above] < p.slots[below] {
		return above, true
	}
	return below, true
}

// firstAtMost returns the first position in [lo, hi) whose slot has at
// most v ops, or hi.
func (p *loadPlanner) firstAtMost(lo, hi int, v float64) int {
	return lo + sort.Search(hi-lo, func(j int) bool { return p.in.Ops[p.slots[lo+j]] <= v })
}

// order lists steps as moves grouped by (From, To), LastSlot last.
func (p *loadPlanner) order(steps []loadStep) []Move {
	steps = slices.Clone(steps)
	// Indexes follow ID order, so comparing them orders pairs by ID.
	slices.SortFunc(steps, func(a, b loadStep) int {
		return cmp.Or(cmp.Compare(a.from, b.from), cmp.Compare(a.to, b.to), cmp.Compare(a.slot, b.slot))
	})
	if last := p.in.LastSlot; last != nil {
		if k := slices.IndexFunc(steps, func(s loadStep) bool { return s.slot == *last }); k >= 0 {
			s := steps[k]
			steps = append(slices.Delete(steps, k, k+1), s)
		}
	}
	moves := make([]Move, len(steps))
	for i, s := range steps {
		moves[i] = Move{Slot: s.slot, From: p.ids[s.from], To: p.ids[s.to]}
	}
	return moves
}

// skipList finds the nearest position not yet moved in one direction: a
// moved position points one step on, and find halves the paths it walks,
// so skipping thousands of moved slots (uniform traffic moves equal slots
// one by one) costs next to nothing.
type skipList []int

func newSkipList(n int) skipList {
	s := make(skipList, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func (s skipList) find(k int) int {
	for s[k] != k {
		s[k] = s[s[k]]
		k = s[k]
	}
	return k
}
