package gateway

import (
	"fmt"
	"strings"
)

// Bounds of UnifiedDiff: a configuration is at most 1 MiB, but the LCS
// table grows with the product of the changed lines, so beyond
// maxDiffCells the changed middle is shown as removed-then-added; the
// text itself is cut at maxDiffBytes.
const (
	maxDiffCells   = 4_000_000
	maxDiffBytes   = 256 << 10
	diffContext    = 3
	diffTruncation = "... (diff truncated)\n"
)

// UnifiedDiff is a unified line diff (as diff -u prints, with hunks of
// diffContext lines of context) from a to b, named aName and bName; ""
// when they are equal. It finds a longest common subsequence of lines
// after trimming the common head and tail, so a small edit of a large file
// costs little.
func UnifiedDiff(aName, bName string, a, b []byte) string {
	if string(a) == string(b) {
		return ""
	}
	al, bl := splitLines(string(a)), splitLines(string(b))
	ops := diffLines(al, bl)
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", aName, bName)
	for _, h := range hunks(ops) {
		if out.Len() > maxDiffBytes {
			out.WriteString(diffTruncation)
			break
		}
		writeHunk(&out, ops[h[0]:h[1]])
	}
	return out.String()
}

// op is one line of the edit script: ' ' kept, '-' removed, '+' added;
// ai and bi are the 1-based numbers of the line in a and b (of the next
// line, for an op that has none there).
type op struct {
	kind   byte
	text   string
	ai, bi int
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// diffLines is the edit script from a to b.
func diffLines(a, b []string) []op {
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	var ops []op
	for i := 0; i < pre; i++ {
		ops = append(ops, op{' ', a[i], i + 1, i + 1})
	}
	ma, mb := a[pre:len(a)-suf], b[pre:len(b)-suf]
	ops = append(ops, lcsOps(ma, mb, pre, pre)...)
	for i := 0; i < suf; i++ {
		ai, bi := len(a)-suf+i, len(b)-suf+i
		ops = append(ops, op{' ', a[ai], ai + 1, bi + 1})
	}
	return ops
}

// lcsOps diffs the middles a and b (offsets oa and ob in the files) by a
// longest common subsequence table, or as a block replacement when the
// table would exceed maxDiffCells.
func lcsOps(a, b []string, oa, ob int) []op {
	var ops []op
	if len(a)*len(b) > maxDiffCells {
		for i, l := range a {
			ops = append(ops, op{'-', l, oa + i + 1, ob + 1})
		}
		for j, l := range b {
			ops = append(ops, op{'+', l, oa + len(a) + 1, ob + j + 1})
		}
		return ops
	}
	// n[i][j] is the LCS length of a[i:] and b[j:], in one flat slice.
	w := len(b) + 1
	n := make([]int32, (len(a)+1)*w)
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				n[i*w+j] = n[(i+1)*w+j+1] + 1
			} else {
				n[i*w+j] = max(n[(i+1)*w+j], n[i*w+j+1])
			}
		}
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			ops = append(ops, op{' ', a[i], oa + i + 1, ob + j + 1})
			i, j = i+1, j+1
		case i < len(a) && (j == len(b) || n[(i+1)*w+j] >= n[i*w+j+1]):
			// Removals before additions, as diff -u prints a change.
			ops = append(ops, op{'-', a[i], oa + i + 1, ob + j + 1})
			i++
		default:
			ops = append(ops, op{'+', b[j], oa + i + 1, ob + j + 1})
			j++
		}
	}
	return ops
}

// hunks are the [start, end) ranges of ops to print: every change with
// diffContext kept lines around it, overlapping ranges merged.
func hunks(ops []op) [][2]int {
	var out [][2]int
	for i, o := range ops {
		if o.kind == ' ' {
			continue
		}
		lo, hi := max(0, i-diffContext), min(len(ops), i+1+diffContext)
		if n := len(out); n > 0 && lo <= out[n-1][1] {
			out[n-1][1] = max(out[n-1][1], hi)
			continue
		}
		out = append(out, [2]int{lo, hi})
	}
	return out
}

func writeHunk(out *strings.Builder, ops []op) {
	var na, nb int
	for _, o := range ops {
		if o.kind != '+' {
			na++
		}
		if o.kind != '-' {
			nb++
		}
	}
	sa, sb := ops[0].ai, ops[0].bi
	if na == 0 {
		sa--
	}
	if nb == 0 {
		sb--
	}
	fmt.Fprintf(out, "@@ -%d,%d +%d,%d @@\n", sa, na, sb, nb)
	for _, o := range ops {
		out.WriteByte(o.kind)
		out.WriteString(o.text)
		if !strings.HasSuffix(o.text, "\n") {
			out.WriteString("\n\\ No newline at end of file\n")
		}
	}
}
