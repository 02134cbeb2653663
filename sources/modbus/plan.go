package modbus

import (
	"cmp"
	"slices"
)

// request is one planned read: count registers (or bits) of table from
// start, and where each covered tag's data sits in the response.
type request struct {
	table table
	start uint16
	count uint16
	items []item
}

// item places one tag in a request's response.
type item struct {
	tag int    // index into the group's tags
	off uint16 // offset of the tag's first register/bit in the response
}

// limits bound what one request may cover.
type limits struct {
	maxRegs int // registers per FC03/04 request, 1..125
	maxBits int // bits per FC01/02 request, 1..2000
	maxGap  int // unused registers/bits allowed between two tags in one request
}

// planRequests coalesces tags into the fewest read requests: per table, tags
// sorted by address are taken greedily into a request for as long as the
// request stays within the table's cap and the hole before the next tag is
// at most maxGap. A tag is never split across requests, so a value spanning
// a cap boundary starts the next request. Overlapping tags (two bits of one
// register, say) share registers.
//
// For tags that do not nest inside one another, the greedy choice is
// optimal: every request starts at the first tag not yet covered and
// reaches as far as any request starting there could. It is a pure function
// of its input, computed once per group at construction.
func planRequests(tags []tagDef, lim limits) []request {
	idx := make([]int, len(tags))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		ta, tb := &tags[a], &tags[b]
		return cmp.Or(
			cmp.Compare(ta.table, tb.table),
			cmp.Compare(ta.addr, tb.addr),
			cmp.Compare(ta.width, tb.width),
		)
	})
	var out []request
	cur := -1   // index of the request being extended
	curEnd := 0 // one past the last register/bit covered by cur
	for _, i := range idx {
		t := &tags[i]
		start, end := int(t.addr), int(t.addr)+int(t.width)
		limit := lim.maxRegs
		if t.table.isBits() {
			limit = lim.maxBits
		}
		if cur >= 0 {
			r := &out[cur]
			if r.table == t.table && start-curEnd <= lim.maxGap && max(end, curEnd)-int(r.start) <= limit {
				curEnd = max(end, curEnd)
				r.count = uint16(curEnd - int(r.start))
				r.items = append(r.items, item{tag: i, off: uint16(start - int(r.start))})
				continue
			}
		}
		out = append(out, request{table: t.table, start: t.addr, count: t.width, items: []item{{tag: i}}})
		cur = len(out) - 1
		curEnd = end
	}
	return out
}
