package scaler

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/big"
	"slices"
	"strings"

	"github.com/slotway/slotway/internal/hashslot"
)

// PlanInput is what the planner decides from.
type PlanInput struct {
	// Masters by node ID (any stable string but "") with their weight;
	// weight 0 drains the master.
	Masters map[string]float64
	// Owner[slot] is the ID of the master serving the slot ("" if none:
	// such slots are assigned too). Every other ID must be in Masters.
	Owner [hashslot.Count]string
	// Cost[slot], optional (nil: every slot costs the same): keys, bytes
	// or ops in the slot. Cost does not change the targets (slot counts);
	// it makes the planner prefer moving cheap slots, contiguity only
	// breaking ties between equal costs.
	Cost []float64
	// Threshold: a master whose slot count is within Threshold (a
	// fraction, e.g. 0.02) of its weighted target is left alone, unless
	// the others cannot balance without it (drains, unassigned slots).
	Threshold float64
	// LastSlot, when not nil, is moved last of all if it moves: Slotway
	// keeps its own keys there (the slot of "slotway:events"), so its
	// bookkeeping stays put while the other slots move.
	LastSlot *int
}

// Move is one slot migration.
type Move struct {
	Slot     int
	From, To string // From is "" for an unassigned slot
}

// Plan returns the slot moves that bring every master within Threshold of
// its weighted target, empty every weight-0 master and assign every
// unassigned slot. It is pure: the same input gives the same moves.
//
// Masters outside the threshold (and drains) end exactly at their target,
// so the next run does not find them on the edge again; masters inside it
// move only when the others cannot balance among themselves, and then only
// towards their target. No master both gives and gets, and no slot moves
// twice, so the number of moves is the least those rules allow.
//
// Moves come grouped by (From, To) pair, ascending slots within a pair, so
// a migrator can run disjoint pairs in parallel: first the unassigned
// slots (nothing to migrate, and they are down until assigned), then the
// drains, then the rest; LastSlot, if it moves, comes after everything.
func Plan(in PlanInput) ([]Move, error) {
	if err := in.validate(); err != nil {
		return nil, fmt.Errorf("rebalance plan: %w", err)
	}
	p := newPlanner(&in)
	p.amounts()
	p.pickSlots()
	p.assign()
	return p.moves()
}

// validate rejects what the planner cannot decide from. Errors name the
// first offending master (in ID order) or slot, so they are deterministic.
func (in *PlanInput) validate() error {
	anyWeight := false
	for _, id := range slices.Sorted(maps.Keys(in.Masters)) {
		w := in.Masters[id]
		switch {
		case id == "":
			return errors.New(`master ID "" is reserved for unassigned slots`)
		case math.IsNaN(w) || math.IsInf(w, 0) || w < 0:
			return fmt.Errorf("master %q has weight %v, want a finite weight >= 0", id, w)
		case w > 0:
			anyWeight = true
		}
	}
	if !anyWeight {
		return errors.New("no master has a weight above 0")
	}
	if math.IsNaN(in.Threshold) || math.IsInf(in.Threshold, 0) || in.Threshold < 0 {
		return fmt.Errorf("threshold %v, want a finite fraction >= 0", in.Threshold)
	}
	for slot, id := range in.Owner {
		if _, ok := in.Masters[id]; id != "" && !ok {
			// Guessing what to do with a node we were not told about
			// (drain it? leave it?) could move slots off a healthy master.
			return fmt.Errorf("slot %d is owned by %q, which is not in Masters", slot, id)
		}
	}
	if in.Cost != nil {
		if len(in.Cost) != hashslot.Count {
			return fmt.Errorf("%d costs, want one per slot (%d) or none", len(in.Cost), hashslot.Count)
		}
		for slot, c := range in.Cost {
			if math.IsNaN(c) || math.IsInf(c, 0) || c < 0 {
				return fmt.Errorf("slot %d has cost %v, want a finite cost >= 0", slot, c)
			}
		}
	}
	if in.LastSlot != nil && (*in.LastSlot < 0 || *in.LastSlot >= hashslot.Count) {
		return fmt.Errorf("last slot %d is not a slot (0-%d)", *in.LastSlot, hashslot.Count-1)
	}
	return nil
}

// planner holds the masters by index in ID order, so that every loop over
// them is deterministic and no map is ranged over after newPlanner.
type planner struct {
	in     *PlanInput
	ids    []string
	weight []float64
	owner  [hashslot.Count]int // index into ids, -1 for unassigned
	have   []int
	target []int
	give   []int // slots each master gives away
	get    []int // slots each master receives
	free   int   // unassigned slots

	moving [hashslot.Count]bool
	dest   [hashslot.Count]int // index into ids of a moving slot's receiver, -1 until known
}

func newPlanner(in *PlanInput) *planner {
	p := &planner{in: in, ids: slices.Sorted(maps.Keys(in.Masters))}
	index := make(map[string]int, len(p.ids))
	for i, id := range p.ids {
		index[id] = i
		p.weight = append(p.weight, in.Masters[id])
	}
	p.have = make([]int, len(p.ids))
	for slot, id := range in.Owner {
		if id == "" {
			p.owner[slot] = -1
			p.free++
			continue
		}
		p.owner[slot] = index[id]
		p.have[index[id]]++
	}
	p.target = targets(p.weight, p.ids)
	p.give = make([]int, len(p.ids))
	p.get = make([]int, len(p.ids))
	return p
}

// targets splits hashslot.Count between the masters by weight with the largest
// remainder method, so the targets add up to hashslot.Count exactly. It uses
// exact rationals: with floats, two equal remainders could be told apart by
// rounding noise instead of by ID.
func targets(weight []float64, ids []string) []int {
	total := new(big.Rat)
	for _, w := range weight {
		total.Add(total, new(big.Rat).SetFloat64(w))
	}
	type share struct {
		i   int
		rem *big.Rat
	}
	var shares []share
	target := make([]int, len(weight))
	left := hashslot.Count
	for i, w := range weight {
		if w == 0 {
			continue // a drain, not a share of zero that could round up
		}
		q := new(big.Rat).SetFloat64(w)
		q.Mul(q, big.NewRat(hashslot.Count, 1)).Quo(q, total)
		whole := new(big.Int).Quo(q.Num(), q.Denom())
		target[i] = int(whole.Int64())
		left -= target[i]
		shares = append(shares, share{i, q.Sub(q, new(big.Rat).SetInt(whole))})
	}
	slices.SortFunc(shares, func(a, b share) int {
		if c := b.rem.Cmp(a.rem); c != 0 {
			return c
		}
		return strings.Compare(ids[a.i], ids[b.i])
	})
	// Floors leave fewer than len(shares) slots over, one per largest
	// remainder.
	for _, s := range shares[:left] {
		target[s.i]++
	}
	return target
}

// amounts decides how many slots each master gives and gets.
func (p *planner) amounts() {
	supply, demand := p.free, 0
	for i := range p.ids {
		diff := p.have[i] - p.target[i]
		// A weight-0 master has target 0, hence no tolerance: drains finish.
		if math.Abs(float64(diff)) <= p.in.Threshold*float64(p.target[i]) {
			continue
		}
		if diff > 0 {
			p.give[i] = diff
			supply += diff
		} else {
			p.get[i] = -diff
			demand -= diff
		}
	}
	// The masters inside the threshold make up the difference, the
	// furthest from target first so that few of them are touched. They
	// always can: the deficits of all masters below target add up to at
	// least the supply, and the surpluses above to at least the demand.
	if supply > demand {
		p.topUp(supply-demand, p.get, func(i int) int { return p.target[i] - p.have[i] })
	} else if demand > supply {
		p.topUp(demand-supply, p.give, func(i int) int { return p.have[i] - p.target[i] })
	}
}

// topUp adds n to amount, spread over the untouched masters with room > 0,
// most room first, ties by ID.
func (p *planner) topUp(n int, amount []int, room func(int) int) {
	var cand []int
	for i := range p.ids {
		if p.give[i] == 0 && p.get[i] == 0 && room(i) > 0 {
			cand = append(cand, i)
		}
	}
	slices.SortStableFunc(cand, func(a, b int) int { return cmp.Compare(room(b), room(a)) })
	for _, i := range cand {
		if n == 0 {
			return
		}
		amount[i] = min(n, room(i))
		n -= amount[i]
	}
}

// run is a maximal range of slots with one owner; high says whether a
// donor that gives part of its slots peels it from the high end.
type run struct {
	first, last, owner int
	high               bool
}

func (r run) len() int { return r.last - r.first + 1 }

// pickSlots marks the slots that move: all unassigned ones, all of a master
// that gives everything, and for the other donors the cheapest slots,
// equal costs going by peel order.
func (p *planner) pickSlots() {
	var runs []run
	for first := 0; first < hashslot.Count; {
		last := first
		for last+1 < hashslot.Count && p.owner[last+1] == p.owner[first] {
			last++
		}
		runs = append(runs, run{first: first, last: last, owner: p.owner[first]})
		first = last + 1
	}
	byOwner := make([][]run, len(p.ids))
	for k, r := range runs {
		if r.owner >= 0 {
			// In slot order, so that each run sees its left neighbour's end.
			runs[k].high = p.peelHigh(runs, k)
			byOwner[r.owner] = append(byOwner[r.owner], runs[k])
		}
	}
	for slot, o := range p.owner {
		p.moving[slot] = o < 0 || p.givesAll(o)
	}
	for i, runs := range byOwner {
		if p.give[i] == 0 || p.givesAll(i) {
			continue
		}
		slots := peelOrder(runs)
		if p.in.Cost != nil {
			slices.SortStableFunc(slots, func(a, b int) int { return cmp.Compare(p.in.Cost[a], p.in.Cost[b]) })
		}
		for _, slot := range slots[:p.give[i]] {
			p.moving[slot] = true
		}
	}
}

func (p *planner) givesAll(i int) bool { return p.give[i] > 0 && p.give[i] == p.have[i] }

// peelHigh decides which end of runs[k] to peel first. Next to a receiver,
// the peeled slots can extend the receiver's range (the boundary just
// shifts); next to slots that move too, they can join them into one block
// for a receiver. Deciding in slot order, a run faces a left neighbour
// that peels towards it, else leaves its right neighbour to face it:
// donors side by side then pair up their ends.
func (p *planner) peelHigh(runs []run, k int) bool {
	left, right := 0, 0
	if k > 0 {
		facing := 0
		if runs[k-1].high {
			facing = 3
		}
		left = p.neighbourScore(runs[k-1].owner, facing)
	}
	if k+1 < len(runs) {
		right = p.neighbourScore(runs[k+1].owner, 2)
	}
	return right >= left
}

// neighbourScore rates the run of master o next to a run to peel: a
// receiver best, then slots sure to move, then a donor's peeled end as
// rated by the caller.
func (p *planner) neighbourScore(o, donor int) int {
	switch {
	case o >= 0 && p.get[o] > 0:
		return 4
	case o < 0 || p.givesAll(o):
		return 3
	case p.give[o] > 0:
		return donor
	}
	return 0
}

// peelOrder lists a donor's slots in the order it would best give them
// away with costs equal, so that any prefix leaves it few ranges and forms
// few blocks: whole runs, shortest first (each one taken is a range the
// donor no longer has), highest first among equals; each run is peeled
// from one end, so what is left of it stays one range.
func peelOrder(runs []run) []int {
	runs = slices.Clone(runs)
	slices.SortFunc(runs, func(a, b run) int {
		return cmp.Or(cmp.Compare(a.len(), b.len()), cmp.Compare(b.first, a.first))
	})
	var slots []int
	for _, r := range runs {
		if r.high {
			for s := r.last; s >= r.first; s-- {
				slots = append(slots, s)
			}
		} else {
			for s := r.first; s <= r.last; s++ {
				slots = append(slots, s)
			}
		}
	}
	return slots
}

// block is a range of moving slots not yet given to a receiver.
type block struct{ first, last int }

func (b block) len() int { return b.last - b.first + 1 }

// assign picks the receiver of every moving slot. Blocks of moving slots
// first extend the receivers next to them, which costs them no new range;
// then each receiver, most needy first, takes the block that fits it best,
// or the largest ones whole while none does.
func (p *planner) assign() {
	need := slices.Clone(p.get)
	for slot := range p.dest {
		p.dest[slot] = -1
	}
	var rest []block
	for first := 0; first < hashslot.Count; first++ {
		if !p.moving[first] {
			continue
		}
		last := first
		for last+1 < hashslot.Count && p.moving[last+1] {
			last++
		}
		b := block{first, last}
		first = last
		// Slots next to a block stay where they are, so their owner is
		// the final one.
		if b.first > 0 {
			r := p.owner[b.first-1]
			for ; need[r] > 0 && b.first <= b.last; b.first++ {
				p.dest[b.first] = r
				need[r]--
			}
		}
		if b.last < hashslot.Count-1 {
			r := p.owner[b.last+1]
			for ; need[r] > 0 && b.first <= b.last; b.last-- {
				p.dest[b.last] = r
				need[r]--
			}
		}
		if b.first <= b.last {
			rest = append(rest, b)
		}
	}
	order := make([]int, len(p.ids))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(need[b], need[a]) })
	for _, r := range order {
		for need[r] > 0 && len(rest) > 0 {
			k := bestBlock(rest, need[r])
			b := &rest[k]
			for ; need[r] > 0 && b.first <= b.last; b.first++ {
				p.dest[b.first] = r
				need[r]--
			}
			if b.first > b.last {
				rest = slices.Delete(rest, k, k+1)
			}
		}
	}
}

// bestBlock returns the index of the smallest block holding n slots, or of
// the largest block if none does; the lowest among equals.
func bestBlock(blocks []block, n int) int {
	best := -1
	for k, b := range blocks {
		switch {
		case best < 0:
			best = k
		case b.len() >= n && (blocks[best].len() < n || b.len() < blocks[best].len()):
			best = k
		case b.len() < n && blocks[best].len() < n && b.len() > blocks[best].len():
			best = k
		}
	}
	return best
}

// moves lists the moves in migration order.
func (p *planner) moves() ([]Move, error) {
	type key struct{ stage, from, to, slot int }
	keys := make([]key, 0, p.count())
	last := -1
	for slot, ok := range p.moving {
		if !ok {
			continue
		}
		from, to := p.owner[slot], p.dest[slot]
		if to < 0 || to == from {
			// The moving slots meet the receivers' needs exactly; anything
			// else is a bug here, not a plan to hand out.
			return nil, fmt.Errorf("rebalance plan: internal error: slot %d has no receiver", slot)
		}
		if p.in.LastSlot != nil && slot == *p.in.LastSlot {
			last = slot
			continue
		}
		stage := 2
		switch {
		case from < 0:
			stage = 0
		case p.weight[from] == 0:
			stage = 1
		}
		keys = append(keys, key{stage, from, to, slot})
	}
	// Indexes follow ID order, so comparing them orders the pairs by ID
	// (and unassigned, index -1, first) without comparing strings.
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(cmp.Compare(a.stage, b.stage), cmp.Compare(a.from, b.from),
			cmp.Compare(a.to, b.to), cmp.Compare(a.slot, b.slot))
	})
	moves := make([]Move, 0, len(keys)+1)
	for _, k := range keys {
		moves = append(moves, p.move(k.slot))
	}
	if last >= 0 {
		moves = append(moves, p.move(last))
	}
	return moves, nil
}

func (p *planner) count() int {
	n := 0
	for _, ok := range p.moving {
		if ok {
			n++
		}
	}
	return n
}

func (p *planner) move(slot int) Move {
	m := Move{Slot: slot, To: p.ids[p.dest[slot]]}
	if o := p.owner[slot]; o >= 0 {
		m.From = p.ids[o]
	}
	return m
}
