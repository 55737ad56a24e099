package scaler

// Property tests of the planner over random inputs.

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/slotway/slotway/internal/hashslot"
)

// randomInput draws a cluster: 1-40 masters with equal, small integer or
// continuous weights (zeros included); slots laid out near target, in
// skewed blocks, painted in random ranges or owned at random, with holes;
// costs absent, tied, continuous or all zero; thresholds 0-10%.
func randomInput(r *rand.Rand) PlanInput {
	n := 1 + r.IntN(40)
	in := PlanInput{Masters: map[string]float64{}}
	var ids []string
	for len(ids) < n {
		id := fmt.Sprintf("%08x", r.Uint32()) // ID order unlike creation order
		if _, dup := in.Masters[id]; dup {
			continue
		}
		ids = append(ids, id)
		switch mode := r.IntN(4); {
		case r.IntN(5) == 0:
			in.Masters[id] = 0
		case mode == 0:
			in.Masters[id] = 1
		case mode == 1:
			in.Masters[id] = float64(r.IntN(4))
		default:
			in.Masters[id] = r.Float64() * 10
		}
	}
	in.Masters[ids[r.IntN(n)]] = 1 + float64(r.IntN(3))

	pick := func() string {
		if r.IntN(10) == 0 {
			return ""
		}
		return ids[r.IntN(n)]
	}
	switch r.IntN(5) {
	case 0, 1: // near target: what the planner usually sees
		target := targetsByID(in.Masters)
		sizes := make([]int, n)
		for i, id := range ids {
			sizes[i] = target[id]
		}
		for range r.IntN(2 * n) {
			a, b := r.IntN(n), r.IntN(n)
			d := r.IntN(1 + sizes[a]/8)
			sizes[a] -= d
			sizes[b] += d
		}
		in.Owner = layout(ids, sizes)
	case 2: // skewed blocks on a few masters
		cuts := []int{0, hashslot.Count}
		for range r.IntN(n + 1) {
			cuts = append(cuts, r.IntN(hashslot.Count))
		}
		slices.Sort(cuts)
		for i := 1; i < len(cuts); i++ {
			id := ids[r.IntN(1+r.IntN(n))]
			for s := cuts[i-1]; s < cuts[i]; s++ {
				in.Owner[s] = id
			}
		}
	case 3: // random ranges painted over one owner
		for s := range in.Owner {
			in.Owner[s] = ids[0]
		}
		for range r.IntN(100) {
			first := r.IntN(hashslot.Count)
			last := min(hashslot.Count, first+r.IntN(2000))
			id := pick()
			for s := first; s < last; s++ {
				in.Owner[s] = id
			}
		}
	default: // every slot on its own
		for s := range in.Owner {
			in.Owner[s] = pick()
		}
	}
	if r.IntN(5) == 0 { // a hole
		first := r.IntN(hashslot.Count)
		for s := first; s < min(hashslot.Count, first+r.IntN(3000)); s++ {
			in.Owner[s] = ""
		}
	}

	switch r.IntN(4) {
	case 1:
		in.Cost = make([]float64, hashslot.Count)
		for s := range in.Cost {
			in.Cost[s] = float64(r.IntN(4))
		}
	case 2:
		in.Cost = make([]float64, hashslot.Count)
		for s := range in.Cost {
			in.Cost[s] = r.ExpFloat64() * 1000
		}
	case 3:
		in.Cost = make([]float64, hashslot.Count)
	}
	if r.IntN(3) > 0 {
		in.Threshold = r.Float64() * 0.10
	}
	if r.IntN(2) == 0 {
		last := r.IntN(hashslot.Count)
		in.LastSlot = &last
	}
	return in
}

func TestPlanProperties(t *testing.T) {
	const cases = 300
	var planned time.Duration
	moved, quiet := 0, 0
	seen := map[string]int{} // how often the cases hit each situation
	for c := range cases {
		r := rand.New(rand.NewPCG(2024, uint64(c)))
		in := randomInput(r)
		for _, s := range situations(in) {
			seen[s]++
		}
		start := time.Now()
		moves, err := Plan(in)
		planned += time.Since(start)
		if err != nil {
			t.Fatalf("case %d: Plan: %v", c, err)
		}
		moved += len(moves)
		if len(moves) == 0 {
			quiet++
		}
		ok := t.Run(fmt.Sprint(c), func(t *testing.T) {
			checkPlan(t, in, moves)
			if again, _ := Plan(in); !slices.Equal(again, moves) {
				t.Error("second run gives another plan")
			}
			copied := in
			copied.Masters = maps.Clone(in.Masters)
			if again, _ := Plan(copied); !slices.Equal(again, moves) {
				t.Error("a copy of the masters map gives another plan")
			}
		})
		if !ok {
			t.Fatalf("case %d failed: rand.NewPCG(2024, %d), %d masters, threshold %v, cost %v",
				c, c, len(in.Masters), in.Threshold, in.Cost != nil)
		}
	}
	t.Logf("%d cases, %d moves (%d plans empty), Plan took %v in all, %v each; cases with %v",
		cases, moved, quiet, planned, planned/cases, seen)
	for _, s := range []string{"drain", "unassigned", "cost", "threshold", "in band top-up", "in band give"} {
		if seen[s] < 10 {
			t.Errorf("only %d cases with %s", seen[s], s)
		}
	}
}

// situations names what makes a case interesting, to show the random
// cases cover them all.
func situations(in PlanInput) []string {
	var s []string
	have, target := counts(in.Owner), targetsByID(in.Masters)
	supply, demand, drain := have[""], 0, false
	for id, w := range in.Masters {
		drain = drain || w == 0 && have[id] > 0
		if outOfBand(have[id], target[id], in.Threshold) {
			supply += max(0, have[id]-target[id])
			demand += max(0, target[id]-have[id])
		}
	}
	if drain {
		s = append(s, "drain")
	}
	if have[""] > 0 {
		s = append(s, "unassigned")
	}
	if in.Cost != nil {
		s = append(s, "cost")
	}
	if in.Threshold > 0 {
		s = append(s, "threshold")
		if supply > demand {
			s = append(s, "in band top-up")
		} else if demand > supply {
			s = append(s, "in band give")
		}
	}
	return s
}

func TestPlanManyMasters(t *testing.T) {
	// 5000 masters, every slot on one of them: most end with 3 or 4 slots.
	masters := map[string]float64{}
	for i := range 5000 {
		masters[fmt.Sprintf("m%04d", i)] = 1
	}
	in := PlanInput{Masters: masters, Owner: layout([]string{"m0042"}, []int{hashslot.Count}), Threshold: 0.02}
	start := time.Now()
	moves, _ := mustPlan(t, in)
	t.Logf("%d moves in %v (two plans)", len(moves), time.Since(start))
}

func BenchmarkPlan(b *testing.B) {
	in := randomInput(rand.New(rand.NewPCG(1, 1)))
	in.Cost = make([]float64, hashslot.Count)
	for s := range in.Owner {
		in.Owner[s] = fmt.Sprint(s % 40)
		in.Cost[s] = float64(s % 7)
	}
	in.Masters = map[string]float64{}
	for i := range 41 {
		in.Masters[fmt.Sprint(i)] = 1
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Plan(in); err != nil {
			b.Fatal(err)
		}
	}
}
