package scaler

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/slotway/slotway/internal/hashslot"
)

// layout gives the masters consecutive blocks of the given sizes from slot
// 0; slots past the last block stay unassigned.
func layout(ids []string, sizes []int) (owner [hashslot.Count]string) {
	slot := 0
	for i, id := range ids {
		for range sizes[i] {
			owner[slot] = id
			slot++
		}
	}
	return owner
}

func counts(owner [hashslot.Count]string) map[string]int {
	n := map[string]int{}
	for _, id := range owner {
		n[id]++
	}
	return n
}

// ranges is how many maximal ranges of slots id owns.
func ranges(owner [hashslot.Count]string, id string) int {
	n := 0
	for slot, o := range owner {
		if o == id && (slot == 0 || owner[slot-1] != id) {
			n++
		}
	}
	return n
}

func targetsByID(masters map[string]float64) map[string]int {
	ids := slices.Sorted(maps.Keys(masters))
	weight := make([]float64, len(ids))
	for i, id := range ids {
		weight[i] = masters[id]
	}
	t := map[string]int{}
	for i, n := range targets(weight, ids) {
		t[ids[i]] = n
	}
	return t
}

func outOfBand(have, target int, threshold float64) bool {
	return math.Abs(float64(have-target)) > threshold*float64(target)
}

// mustPlan plans, checks every property of the plan and returns the slot
// owners after it.
func mustPlan(t *testing.T, in PlanInput) ([]Move, [hashslot.Count]string) {
	t.Helper()
	moves, err := Plan(in)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	again, err := Plan(in)
	if err != nil || !slices.Equal(moves, again) {
		t.Fatalf("Plan is not deterministic: second run differs (err %v)", err)
	}
	return moves, checkPlan(t, in, moves)
}

func checkPlan(t *testing.T, in PlanInput, moves []Move) [hashslot.Count]string {
	t.Helper()
	target := targetsByID(in.Masters)
	have := counts(in.Owner)
	after := in.Owner
	seen := map[int]bool{}
	for _, m := range moves {
		switch {
		case m.Slot < 0 || m.Slot >= hashslot.Count:
			t.Fatalf("move %+v: not a slot", m)
		case seen[m.Slot]:
			t.Fatalf("slot %d moves twice", m.Slot)
		case m.From != in.Owner[m.Slot]:
			t.Fatalf("move %+v: slot is owned by %q", m, in.Owner[m.Slot])
		case in.Masters[m.To] <= 0:
			t.Fatalf("move %+v: receiver has no weight", m)
		case m.From != "" && have[m.From] <= target[m.From]:
			t.Fatalf("move %+v: giver has %d slots, not above its target %d", m, have[m.From], target[m.From])
		case have[m.To] >= target[m.To]:
			t.Fatalf("move %+v: receiver has %d slots, not below its target %d", m, have[m.To], target[m.To])
		}
		seen[m.Slot] = true
		after[m.Slot] = m.To
	}
	for slot, id := range after {
		if in.Masters[id] <= 0 {
			t.Fatalf("after the plan slot %d is owned by %q (weight %v)", slot, id, in.Masters[id])
		}
	}

	final := counts(after)
	supply, demand, surplus := have[""], 0, have[""]
	for _, id := range slices.Sorted(maps.Keys(in.Masters)) {
		h, f, tg := have[id], final[id], target[id]
		surplus += max(0, h-tg)
		if in.Masters[id] == 0 && f != 0 {
			t.Errorf("drained master %s still owns %d slots", id, f)
		}
		if outOfBand(f, tg, in.Threshold) {
			t.Errorf("master %s ends with %d slots, target %d, threshold %v", id, f, tg, in.Threshold)
		}
		// Nobody overshoots: masters only move towards their target.
		if h > tg && f < tg || h < tg && f > tg {
			t.Errorf("master %s went from %d past its target %d to %d", id, h, tg, f)
		}
		if outOfBand(h, tg, in.Threshold) {
			if f != tg {
				t.Errorf("master %s was out of band (%d, target %d) and ends at %d, not on target", id, h, tg, f)
			}
			if h > tg {
				supply += h - tg
			} else {
				demand += tg - h
			}
		}
	}
	// The masters out of band settle among themselves when they can; the
	// masters in band make up only the difference.
	if want := max(supply, demand); len(moves) != want {
		t.Errorf("%d moves, want %d (supply %d, demand %d)", len(moves), want, supply, demand)
	}
	if in.Threshold == 0 && len(moves) != surplus {
		t.Errorf("threshold 0: %d moves, want the lower bound %d", len(moves), surplus)
	}
	if supply == demand {
		for id := range in.Masters {
			if !outOfBand(have[id], target[id], in.Threshold) && final[id] != have[id] {
				t.Errorf("master %s within threshold was touched (%d -> %d slots)", id, have[id], final[id])
			}
		}
	}
	if in.Cost != nil {
		checkCheapest(t, in, moves)
	}
	checkOrder(t, in, moves)
	return after
}

// checkCheapest checks that each donor gives its cheapest slots.
func checkCheapest(t *testing.T, in PlanInput, moves []Move) {
	t.Helper()
	moved := map[string][]float64{}
	for _, m := range moves {
		if m.From != "" {
			moved[m.From] = append(moved[m.From], in.Cost[m.Slot])
		}
	}
	all := map[string][]float64{}
	for slot, id := range in.Owner {
		all[id] = append(all[id], in.Cost[slot])
	}
	for id, costs := range moved {
		slices.Sort(costs)
		cheapest := slices.Sorted(slices.Values(all[id]))[:len(costs)]
		if !slices.Equal(costs, cheapest) {
			t.Errorf("master %s does not give its %d cheapest slots", id, len(costs))
		}
	}
}

// checkOrder checks the migration order: unassigned slots, then drains,
// then the rest, grouped by (From, To) with ascending slots, LastSlot last.
func checkOrder(t *testing.T, in PlanInput, moves []Move) {
	t.Helper()
	if in.LastSlot != nil {
		for i, m := range moves {
			if m.Slot == *in.LastSlot && i != len(moves)-1 {
				t.Fatalf("last slot %d is move %d of %d", m.Slot, i, len(moves))
			}
		}
		if len(moves) > 0 && moves[len(moves)-1].Slot == *in.LastSlot {
			moves = moves[:len(moves)-1]
		}
	}
	stage := func(m Move) int {
		switch {
		case m.From == "":
			return 0
		case in.Masters[m.From] == 0:
			return 1
		}
		return 2
	}
	for i := 1; i < len(moves); i++ {
		a, b := moves[i-1], moves[i]
		if cmp.Or(
			cmp.Compare(stage(a), stage(b)),
			strings.Compare(a.From, b.From),
			strings.Compare(a.To, b.To),
			cmp.Compare(a.Slot, b.Slot),
		) >= 0 {
			t.Fatalf("moves %d and %d out of order: %+v then %+v", i-1, i, a, b)
		}
	}
}

func TestPlanBalancedNoMoves(t *testing.T) {
	ids := []string{"a", "b", "c"}
	masters := map[string]float64{"a": 1, "b": 1, "c": 1}
	for _, tc := range []struct {
		name      string
		sizes     []int
		threshold float64
	}{
		{"on target", []int{5462, 5461, 5461}, 0},
		{"on target with threshold", []int{5462, 5461, 5461}, 0.02},
		{"within 2%", []int{5560, 5400, 5424}, 0.02},
	} {
		t.Run(tc.name, func(t *testing.T) {
			moves, _ := mustPlan(t, PlanInput{Masters: masters, Owner: layout(ids, tc.sizes), Threshold: tc.threshold})
			if len(moves) != 0 {
				t.Errorf("%d moves, want none: %v", len(moves), moves[:min(len(moves), 5)])
			}
		})
	}
}

func TestPlanAddMaster(t *testing.T) {
	in := PlanInput{
		Masters:   map[string]float64{"a": 1, "b": 1, "c": 1, "d": 1},
		Owner:     layout([]string{"a", "b", "c"}, []int{5462, 5461, 5461}),
		Threshold: 0.02,
	}
	moves, after := mustPlan(t, in)
	if len(moves) != 4096 {
		t.Errorf("%d moves, want 4096", len(moves))
	}
	from := map[string]int{}
	for _, m := range moves {
		from[m.From]++
	}
	for _, id := range []string{"a", "b", "c"} {
		if n := from[id]; n < 1365 || n > 1366 {
			t.Errorf("%s gives %d slots, want about a third of 4096", id, n)
		}
		if n := ranges(after, id); n != 1 {
			t.Errorf("%s ends with %d ranges, want 1", id, n)
		}
	}
	// The best with 4096 moves: a's top joins b's bottom or similar, and
	// the third share comes on its own.
	if n := ranges(after, "d"); n > 2 {
		t.Errorf("new master d gets %d ranges, want at most 2", n)
	}
}

func TestPlanAddToSix(t *testing.T) {
	// Six donors side by side pair up their peeled ends: the new master
	// gets three ranges, not six.
	ids := []string{"a", "b", "c", "d", "e", "f"}
	in := PlanInput{
		Masters: map[string]float64{"a": 1, "b": 1, "c": 1, "d": 1, "e": 1, "f": 1, "g": 1},
		Owner:   layout(ids, []int{2731, 2731, 2731, 2731, 2730, 2730}),
	}
	_, after := mustPlan(t, in)
	if n := ranges(after, "g"); n > 3 {
		t.Errorf("new master g gets %d ranges, want at most 3", n)
	}
	for _, id := range ids {
		if n := ranges(after, id); n != 1 {
			t.Errorf("%s ends with %d ranges, want 1", id, n)
		}
	}
}

func TestPlanDrain(t *testing.T) {
	in := PlanInput{
		Masters:   map[string]float64{"a": 1, "b": 1, "c": 1, "d": 0},
		Owner:     layout([]string{"a", "b", "c", "d"}, []int{4096, 4096, 4096, 4096}),
		Threshold: 0.05,
	}
	moves, after := mustPlan(t, in)
	n := counts(after)
	if n["d"] != 0 || n["a"] != 5462 || n["b"] != 5461 || n["c"] != 5461 {
		t.Errorf("after the drain: %v, want d empty and a 5462, b 5461, c 5461", n)
	}
	if len(moves) != 4096 {
		t.Errorf("%d moves, want 4096", len(moves))
	}
	// c, next to d, extends its range; a and b each get one more.
	if ra, rb, rc := ranges(after, "a"), ranges(after, "b"), ranges(after, "c"); ra+rb+rc != 5 || rc != 1 {
		t.Errorf("ranges a %d, b %d, c %d; want 2, 2, 1", ra, rb, rc)
	}
}

func TestPlanDrainFirst(t *testing.T) {
	// b is out of band as well, but d is going away: its moves come first.
	in := PlanInput{
		Masters: map[string]float64{"a": 1, "b": 1, "c": 1, "d": 0},
		Owner:   layout([]string{"a", "b", "c", "d"}, []int{3000, 8000, 4384, 1000}),
	}
	moves, _ := mustPlan(t, in)
	for i, m := range moves[:1000] {
		if m.From != "d" {
			t.Fatalf("move %d is %+v, want the 1000 drain moves first", i, m)
		}
	}
}

func TestPlanWeights211(t *testing.T) {
	in := PlanInput{
		Masters: map[string]float64{"a": 2, "b": 1, "c": 1},
		Owner:   layout([]string{"a", "b", "c"}, []int{5462, 5461, 5461}),
	}
	moves, after := mustPlan(t, in)
	n := counts(after)
	if n["a"] != 8192 || n["b"] != 4096 || n["c"] != 4096 {
		t.Errorf("after the plan: %v, want a 8192, b 4096, c 4096", n)
	}
	if len(moves) != 8192-5462 {
		t.Errorf("%d moves, want %d", len(moves), 8192-5462)
	}
	// b peels the end next to a, so a grows its range rather than adding one.
	if ranges(after, "a") > 2 || ranges(after, "b") != 1 || ranges(after, "c") != 1 {
		t.Errorf("ranges a %d, b %d, c %d; want at most 2, 1, 1",
			ranges(after, "a"), ranges(after, "b"), ranges(after, "c"))
	}
}

func TestPlanBoundaryShift(t *testing.T) {
	in := PlanInput{
		Masters: map[string]float64{"a": 1, "b": 1},
		Owner:   layout([]string{"a", "b"}, []int{9001, 7383}),
	}
	moves, after := mustPlan(t, in)
	if len(moves) != 809 || moves[0].Slot != 8192 || moves[len(moves)-1].Slot != 9000 {
		t.Errorf("moves %d from slot %d to %d, want a's top 809 slots 8192-9000", len(moves), moves[0].Slot, moves[len(moves)-1].Slot)
	}
	if ranges(after, "a") != 1 || ranges(after, "b") != 1 {
		t.Errorf("ranges a %d, b %d; want 1 each", ranges(after, "a"), ranges(after, "b"))
	}
}

func TestPlanFragmentedDonor(t *testing.T) {
	// a owns 100 slots scattered in 10 ranges and one large range; giving
	// away the small ranges whole leaves it one range.
	var owner [hashslot.Count]string
	for slot := range owner {
		owner[slot] = "b"
	}
	for i := range 10 {
		for s := i * 500; s < i*500+10; s++ {
			owner[s] = "a"
		}
	}
	for s := 8000; s < 8000+8192; s++ {
		owner[s] = "a"
	}
	in := PlanInput{Masters: map[string]float64{"a": 1, "b": 1}, Owner: owner}
	_, after := mustPlan(t, in)
	if r := ranges(after, "a"); r != 1 {
		t.Errorf("a ends with %d ranges, want 1", r)
	}
}

func TestPlanCost(t *testing.T) {
	base := PlanInput{
		Masters: map[string]float64{"a": 1, "b": 1},
		Owner:   layout([]string{"a"}, []int{hashslot.Count}),
	}
	plain, err := Plan(base)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("equal costs change nothing", func(t *testing.T) {
		in := base
		in.Cost = make([]float64, hashslot.Count)
		for i := range in.Cost {
			in.Cost[i] = 7
		}
		if moves, _ := mustPlan(t, in); !slices.Equal(moves, plain) {
			t.Error("equal costs give another plan than no costs")
		}
	})
	t.Run("cheap window moves", func(t *testing.T) {
		in := base
		in.Cost = make([]float64, hashslot.Count)
		for i := range in.Cost {
			if i < 3000 || i >= 3000+8192 {
				in.Cost[i] = 1
			}
		}
		moves, after := mustPlan(t, in)
		if moves[0].Slot != 3000 || moves[len(moves)-1].Slot != 3000+8191 || ranges(after, "b") != 1 {
			t.Errorf("b gets slots %d-%d in %d ranges, want the free window 3000-11191", moves[0].Slot, moves[len(moves)-1].Slot, ranges(after, "b"))
		}
	})
	t.Run("cost beats contiguity", func(t *testing.T) {
		in := base
		in.Cost = make([]float64, hashslot.Count)
		for i := range in.Cost {
			in.Cost[i] = float64(i % 2) // the even slots are empty
		}
		moves, _ := mustPlan(t, in)
		for _, m := range moves {
			if m.Slot%2 != 0 {
				t.Fatalf("slot %d moves, want only the empty even slots", m.Slot)
			}
		}
	})
}

func TestPlanUnassigned(t *testing.T) {
	masters := map[string]float64{"a": 1, "b": 1, "c": 1}
	t.Run("none assigned", func(t *testing.T) {
		_, after := mustPlan(t, PlanInput{Masters: masters, Threshold: 0.1})
		for _, id := range []string{"a", "b", "c"} {
			if r := ranges(after, id); r != 1 {
				t.Errorf("%s gets %d ranges, want 1", id, r)
			}
		}
	})
	t.Run("a hole within threshold", func(t *testing.T) {
		// Everyone is within 10%, but the 300 free slots must go somewhere:
		// to whoever is furthest below target.
		in := PlanInput{Masters: masters, Owner: layout([]string{"a", "b", "c"}, []int{5462, 5461, 5161}), Threshold: 0.1}
		moves, _ := mustPlan(t, in)
		if len(moves) != 300 || moves[0].To != "c" {
			t.Errorf("%d moves to %s, want 300 to c", len(moves), moves[0].To)
		}
	})
	t.Run("most room first", func(t *testing.T) {
		// All within 10%: the 300 free slots go to c, furthest below
		// target, and b keeps what it has.
		in := PlanInput{Masters: masters, Owner: layout([]string{"a", "b", "c"}, []int{5562, 5361, 5161}), Threshold: 0.1}
		_, after := mustPlan(t, in)
		if n := counts(after); n["b"] != 5361 || n["c"] != 5461 {
			t.Errorf("after the plan: %v, want b 5361 and c 5461", n)
		}
	})
	t.Run("best fit", func(t *testing.T) {
		// Free blocks of 1000, 4096 and 3096 slots: r1 takes the one that
		// fits it whole, r2 the other two.
		var owner [hashslot.Count]string
		for s := 1000; s < 5000; s++ {
			owner[s] = "p"
		}
		for s := 9096; s < 13288; s++ {
			owner[s] = "p"
		}
		in := PlanInput{Masters: map[string]float64{"p": 2, "r1": 1, "r2": 1}, Owner: owner}
		_, after := mustPlan(t, in)
		if r1, r2 := ranges(after, "r1"), ranges(after, "r2"); r1+r2 != 3 {
			t.Errorf("r1 gets %d ranges, r2 %d; want 3 in all", r1, r2)
		}
	})
	t.Run("free slots first", func(t *testing.T) {
		in := PlanInput{
			Masters: map[string]float64{"a": 1, "b": 1, "c": 1, "d": 0},
			Owner:   layout([]string{"d", "a", "b"}, []int{2000, 5000, 8000}),
		}
		moves, _ := mustPlan(t, in)
		for i, m := range moves[:hashslot.Count-15000] {
			if m.From != "" {
				t.Fatalf("move %d is %+v, want the %d unassigned slots first", i, m, hashslot.Count-15000)
			}
		}
	})
}

func TestPlanThresholdLeavesInBandAlone(t *testing.T) {
	// With a 5% threshold a and b are out of band, c and d are not.
	in := PlanInput{
		Masters:   map[string]float64{"a": 1, "b": 1, "c": 1, "d": 1},
		Owner:     layout([]string{"a", "b", "c", "d"}, []int{4596, 3596, 4150, 4042}),
		Threshold: 0.05,
	}
	moves, _ := mustPlan(t, in)
	for _, m := range moves {
		if m.From != "a" || m.To != "b" {
			t.Fatalf("move %+v, want only a -> b", m)
		}
	}
	if len(moves) != 500 {
		t.Errorf("%d moves, want 500", len(moves))
	}
}

func TestPlanThresholdEdge(t *testing.T) {
	// 12.5% of 8192 is exactly 1024 slots: on the edge is within.
	in := PlanInput{
		Masters:   map[string]float64{"a": 1, "b": 1},
		Owner:     layout([]string{"a", "b"}, []int{8192 + 1024, 8192 - 1024}),
		Threshold: 0.125,
	}
	if moves, _ := mustPlan(t, in); len(moves) != 0 {
		t.Errorf("%d moves on the edge, want none", len(moves))
	}
	in.Owner = layout([]string{"a", "b"}, []int{8192 + 1025, 8192 - 1025})
	if moves, _ := mustPlan(t, in); len(moves) != 1025 {
		t.Errorf("%d moves past the edge, want 1025", len(moves))
	}
}

func TestPlanLastSlot(t *testing.T) {
	events := hashslot.Of([]byte("slotway:events"))
	in := PlanInput{
		// a drains, so every slot moves, the events slot among them.
		Masters:  map[string]float64{"a": 0, "b": 1, "c": 1},
		Owner:    layout([]string{"a"}, []int{hashslot.Count}),
		LastSlot: &events,
	}
	moves, _ := mustPlan(t, in)
	if last := moves[len(moves)-1]; last.Slot != events {
		t.Errorf("last move is slot %d, want the events slot %d", last.Slot, events)
	}
}

func TestPlanErrors(t *testing.T) {
	owned := layout([]string{"a"}, []int{hashslot.Count})
	bad := -1
	for _, tc := range []struct {
		name string
		in   PlanInput
		want string
	}{
		{"no masters", PlanInput{}, "no master has a weight"},
		{"all drained", PlanInput{Masters: map[string]float64{"a": 0}, Owner: owned}, "no master has a weight"},
		{"negative weight", PlanInput{Masters: map[string]float64{"a": 1, "b": -1}, Owner: owned}, `"b" has weight -1`},
		{"NaN weight", PlanInput{Masters: map[string]float64{"a": math.NaN()}, Owner: owned}, "weight NaN"},
		{"empty ID", PlanInput{Masters: map[string]float64{"": 1}}, `ID ""`},
		{"unknown owner", PlanInput{Masters: map[string]float64{"b": 1}, Owner: owned}, `slot 0 is owned by "a", which is not in Masters`},
		{"short cost", PlanInput{Masters: map[string]float64{"a": 1}, Owner: owned, Cost: []float64{1}}, "1 costs"},
		{"long cost", PlanInput{Masters: map[string]float64{"a": 1}, Owner: owned, Cost: make([]float64, hashslot.Count+1)}, "16385 costs"},
		{"negative threshold", PlanInput{Masters: map[string]float64{"a": 1}, Owner: owned, Threshold: -0.1}, "threshold -0.1"},
		{"bad last slot", PlanInput{Masters: map[string]float64{"a": 1}, Owner: owned, LastSlot: &bad}, "last slot -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			moves, err := Plan(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Plan = %v, %v; want an error with %q", moves, err, tc.want)
			}
		})
	}
	t.Run("negative cost value", func(t *testing.T) {
		cost := make([]float64, hashslot.Count)
		cost[42] = -1
		_, err := Plan(PlanInput{Masters: map[string]float64{"a": 1}, Owner: owned, Cost: cost})
		if err == nil || !strings.Contains(err.Error(), "slot 42 has cost -1") {
			t.Errorf("err = %v, want slot 42 named", err)
		}
	})
}

func TestPlanTargets(t *testing.T) {
	for _, tc := range []struct {
		masters map[string]float64
		want    map[string]int
	}{
		{map[string]float64{"a": 1, "b": 1, "c": 1}, map[string]int{"a": 5462, "b": 5461, "c": 5461}},
		{map[string]float64{"c": 1, "b": 1, "a": 1}, map[string]int{"a": 5462, "b": 5461, "c": 5461}},
		{map[string]float64{"a": 2, "b": 1, "c": 1}, map[string]int{"a": 8192, "b": 4096, "c": 4096}},
		{map[string]float64{"a": 1, "b": 0, "c": 1}, map[string]int{"a": 8192, "b": 0, "c": 8192}},
		// 16384/7 = 2340 rest 4: the four lowest IDs get one more.
		{map[string]float64{"a": 1, "b": 1, "c": 1, "d": 1, "e": 1, "f": 1, "g": 1},
			map[string]int{"a": 2341, "b": 2341, "c": 2341, "d": 2341, "e": 2340, "f": 2340, "g": 2340}},
		// Huge and tiny weights: no overflow, the tiny one rounds to 0.
		{map[string]float64{"a": math.MaxFloat64, "b": math.MaxFloat64, "c": 1e-300},
			map[string]int{"a": 8192, "b": 8192, "c": 0}},
	} {
		if got := targetsByID(tc.masters); !maps.Equal(got, tc.want) {
			t.Errorf("targets(%v) = %v, want %v", tc.masters, got, tc.want)
		}
	}

	t.Run("more masters than slots", func(t *testing.T) {
		masters := map[string]float64{}
		for i := range 20000 {
			masters[fmt.Sprintf("m%05d", i)] = 1
		}
		// Every quota is below 1, remainders tie: the lowest IDs get a slot.
		for id, n := range targetsByID(masters) {
			want := 0
			if id < fmt.Sprintf("m%05d", hashslot.Count) {
				want = 1
			}
			if n != want {
				t.Fatalf("%s gets %d, want %d", id, n, want)
			}
		}
	})

	t.Run("largest remainder", func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 7))
		for c := range 200 {
			masters := map[string]float64{}
			for i := range 1 + r.IntN(2000) {
				w := float64(r.IntN(5))
				if c%2 == 1 {
					w = r.Float64() * 100
				}
				masters[fmt.Sprintf("m%04d", i)] = w
			}
			masters["m0000"] = 1 // at least one weight
			checkLargestRemainder(t, masters, targetsByID(masters))
		}
	})
}

// checkLargestRemainder checks the targets against exact quotas: they add
// up to hashslot.Count, each is its quota rounded down or up, and rounding up
// went to the largest remainders, ties to the lowest IDs.
func checkLargestRemainder(t *testing.T, masters map[string]float64, got map[string]int) {
	t.Helper()
	total := new(big.Rat)
	for _, w := range masters {
		total.Add(total, new(big.Rat).SetFloat64(w))
	}
	sum, ups := 0, 0
	type rounded struct {
		id  string
		rem *big.Rat
		up  bool
	}
	var all []rounded
	for _, id := range slices.Sorted(maps.Keys(masters)) {
		q := new(big.Rat).SetFloat64(masters[id])
		q.Mul(q, big.NewRat(hashslot.Count, 1)).Quo(q, total)
		floor := new(big.Int).Quo(q.Num(), q.Denom())
		rem := new(big.Rat).Sub(q, new(big.Rat).SetInt(floor))
		sum += got[id]
		up := int64(got[id]) - floor.Int64()
		if up != 0 && up != 1 {
			t.Fatalf("%s: target %d for quota %s", id, got[id], q.FloatString(3))
		}
		ups += int(up)
		all = append(all, rounded{id, rem, up == 1})
	}
	if sum != hashslot.Count {
		t.Fatalf("targets add up to %d", sum)
	}
	// Ranked by remainder, ties by ID, the masters rounded up come first.
	slices.SortFunc(all, func(a, b rounded) int { return cmp.Or(b.rem.Cmp(a.rem), strings.Compare(a.id, b.id)) })
	for i, m := range all {
		if m.up != (i < ups) {
			t.Fatalf("%s ranks %d by remainder (%s) but rounded up is %v", m.id, i, m.rem.FloatString(6), m.up)
		}
	}
}
