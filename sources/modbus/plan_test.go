package modbus

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// tg builds a planner input: table, address, type (width from the type).
func tg(tbl table, addr int, typ dataType) tagDef {
	return tagDef{table: tbl, addr: uint16(addr), typ: typ, width: uint16(typ.width(0))}
}

func str(addr, length int) tagDef {
	return tagDef{table: tableHolding, addr: uint16(addr), typ: typeString, width: uint16(length)}
}

func run(tbl table, from, n int, typ dataType) []tagDef {
	var out []tagDef
	for i := 0; i < n; i++ {
		out = append(out, tg(tbl, from+i*typ.width(0), typ))
	}
	return out
}

func cat(parts ...[]tagDef) []tagDef {
	var out []tagDef
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// span is a request's table, start and count, for comparing plans.
type span struct {
	tbl          table
	start, count int
}

func TestPlanRequests(t *testing.T) {
	def := limits{maxRegs: 125, maxBits: 2000, maxGap: 8}
	H, I, C, D := tableHolding, tableInput, tableCoil, tableDiscrete
	tests := []struct {
		name string
		tags []tagDef
		lim  limits
		want []span
	}{
		{"empty", nil, def, nil},
		{"one tag", []tagDef{tg(H, 7, typeUint16)}, def, []span{{H, 7, 1}}},
		{"contiguous", run(H, 0, 10, typeInt16), def, []span{{H, 0, 10}}},
		{"125 registers fill one request", run(H, 0, 125, typeUint16), def, []span{{H, 0, 125}}},
		{"126 registers need two", run(H, 0, 126, typeUint16), def, []span{{H, 0, 125}, {H, 125, 1}}},
		{"float32s never straddle the odd cap", run(H, 0, 125, typeFloat32), def, []span{{H, 0, 124}, {H, 124, 124}, {H, 248, 2}}},
		{"float32 across the 125 boundary is not split",
			[]tagDef{tg(H, 0, typeUint16), tg(H, 124, typeFloat32)}, def, []span{{H, 0, 1}, {H, 124, 2}}},
		{"float32 ending exactly at 125",
			[]tagDef{tg(H, 0, typeUint16), tg(H, 123, typeFloat32)}, limits{125, 2000, 200}, []span{{H, 0, 125}}},
		{"float32 crossing 125 with big gap allowed",
			[]tagDef{tg(H, 0, typeUint16), tg(H, 124, typeFloat32)}, limits{125, 2000, 200}, []span{{H, 0, 1}, {H, 124, 2}}},
		{"float64 across a small cap",
			[]tagDef{tg(H, 0, typeUint16), tg(H, 8, typeFloat64)}, limits{maxRegs: 10, maxBits: 2000, maxGap: 8}, []span{{H, 0, 1}, {H, 8, 4}}},
		{"gap of max_gap merges", []tagDef{tg(H, 0, typeUint16), tg(H, 9, typeUint16)}, def, []span{{H, 0, 10}}},
		{"gap over max_gap splits", []tagDef{tg(H, 0, typeUint16), tg(H, 10, typeUint16)}, def, []span{{H, 0, 1}, {H, 10, 1}}},
		{"max_gap 0 touching merges", []tagDef{tg(H, 0, typeFloat32), tg(H, 2, typeUint16)}, limits{125, 2000, 0}, []span{{H, 0, 3}}},
		{"max_gap 0 hole splits", []tagDef{tg(H, 0, typeUint16), tg(H, 2, typeUint16)}, limits{125, 2000, 0}, []span{{H, 0, 1}, {H, 2, 1}}},
		{"gap measured from end of wide tag", []tagDef{tg(H, 0, typeFloat64), tg(H, 12, typeUint16)}, def, []span{{H, 0, 13}}},
		{"unsorted input", []tagDef{tg(H, 50, typeUint16), tg(H, 0, typeUint16), tg(H, 45, typeFloat32)}, def,
			[]span{{H, 0, 1}, {H, 45, 6}}},
		{"overlapping bits of one register", []tagDef{
			{table: H, addr: 5, typ: typeBool, width: 1, bit: 0},
			{table: H, addr: 5, typ: typeBool, width: 1, bit: 3},
			tg(H, 5, typeUint16)}, def, []span{{H, 5, 1}}},
		{"string inside a float64", []tagDef{tg(H, 0, typeFloat64), str(1, 2)}, def, []span{{H, 0, 4}}},
		{"long string then tag", []tagDef{str(0, 120), tg(H, 120, typeFloat64)}, def, []span{{H, 0, 124}}},
		{"longer string then tag", []tagDef{str(0, 122), tg(H, 122, typeFloat64)}, def, []span{{H, 0, 122}, {H, 122, 4}}},
		{"tables never mix", []tagDef{tg(H, 0, typeUint16), tg(I, 0, typeUint16), tg(I, 1, typeUint16),
			tg(C, 0, typeBool), tg(D, 0, typeBool)}, def, []span{{C, 0, 1}, {D, 0, 1}, {H, 0, 1}, {I, 0, 2}}},
		{"2000 coils in one", run(C, 0, 2000, typeBool), def, []span{{C, 0, 2000}}},
		{"2001 coils in two", run(C, 0, 2001, typeBool), def, []span{{C, 0, 2000}, {C, 2000, 1}}},
		{"bits with gap", []tagDef{tg(D, 0, typeBool), tg(D, 9, typeBool), tg(D, 100, typeBool)}, def,
			[]span{{D, 0, 10}, {D, 100, 1}}},
		{"small bit cap", run(C, 0, 10, typeBool), limits{125, 4, 8}, []span{{C, 0, 4}, {C, 4, 4}, {C, 8, 2}}},
		{"top of the address space", []tagDef{tg(H, 65532, typeFloat64), tg(H, 65530, typeUint16)}, def,
			[]span{{H, 65530, 6}}},
		{"many sparse tags", []tagDef{tg(H, 0, typeUint16), tg(H, 100, typeUint16), tg(H, 200, typeUint16),
			tg(H, 205, typeUint16)}, def, []span{{H, 0, 1}, {H, 100, 1}, {H, 200, 6}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := planRequests(tt.tags, tt.lim)
			var got []span
			for _, r := range plan {
				got = append(got, span{r.table, int(r.start), int(r.count)})
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("plan\n got %v\nwant %v", got, tt.want)
			}
			checkPlan(t, tt.tags, tt.lim, plan)
		})
	}
}

// checkPlan asserts the invariants every plan must hold: each tag covered
// exactly once, entirely inside its request, and every request within caps.
func checkPlan(t *testing.T, tags []tagDef, lim limits, plan []request) {
	t.Helper()
	seen := make([]int, len(tags))
	for _, r := range plan {
		limit := lim.maxRegs
		if r.table.isBits() {
			limit = lim.maxBits
		}
		if r.count == 0 || int(r.count) > limit || int(r.start)+int(r.count) > 65536 {
			t.Errorf("request %v+%d breaks the caps", r.start, r.count)
		}
		for _, it := range r.items {
			tag := tags[it.tag]
			seen[it.tag]++
			if tag.table != r.table || int(r.start)+int(it.off) != int(tag.addr) || int(it.off)+int(tag.width) > int(r.count) {
				t.Errorf("tag %+v misplaced in request %d+%d at offset %d", tag, r.start, r.count, it.off)
			}
		}
	}
	for i, n := range seen {
		if n != 1 {
			t.Errorf("tag %d covered %d times", i, n)
		}
	}
}

// TestPlanMinimal compares the planner with an exhaustive search for the
// fewest requests over random small layouts of non-nested tags.
func TestPlanMinimal(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	types := []dataType{typeUint16, typeFloat32, typeFloat64}
	for n := range 300 {
		lim := limits{maxRegs: 2 + rng.IntN(12), maxBits: 2000, maxGap: rng.IntN(4)}
		var tags []tagDef
		addr := 0
		for range 1 + rng.IntN(7) {
			typ := types[rng.IntN(len(types))]
			if typ.width(0) > lim.maxRegs {
				typ = typeUint16
			}
			addr += rng.IntN(6)
			tags = append(tags, tg(tableHolding, addr, typ))
			addr += typ.width(0)
		}
		plan := planRequests(tags, lim)
		checkPlan(t, tags, lim, plan)
		if best := minRequests(tags, lim); len(plan) != best {
			t.Fatalf("case %d: %d requests, optimum %d (lim %+v, tags %v)", n, len(plan), best, lim, tags)
		}
	}
}

// minRequests finds the fewest contiguous requests covering tags (sorted,
// non-overlapping) by dynamic programming over every split point.
func minRequests(tags []tagDef, lim limits) int {
	n := len(tags)
	best := make([]int, n+1)
	for i := 1; i <= n; i++ {
		best[i] = 1 << 30
		for j := i - 1; j >= 0; j-- { // request covers tags[j:i]
			ok := int(tags[i-1].addr)+int(tags[i-1].width)-int(tags[j].addr) <= lim.maxRegs
			for k := j + 1; k < i && ok; k++ {
				ok = int(tags[k].addr)-(int(tags[k-1].addr)+int(tags[k-1].width)) <= lim.maxGap
			}
			if ok && best[j]+1 < best[i] {
				best[i] = best[j] + 1
			}
		}
	}
	return best[n]
}
