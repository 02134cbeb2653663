package gateway

import (
	"fmt"
	"strings"
	"testing"
)

func TestUnifiedDiff(t *testing.T) {
	tests := []struct {
		name, a, b, want string
	}{
		{"equal", "a\nb\n", "a\nb\n", ""},
		{"one line changed", "a\nb\nc\n", "a\nB\nc\n", "--- old\n+++ new\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"},
		{"added at end", "a\n", "a\nb\n", "--- old\n+++ new\n@@ -1,1 +1,2 @@\n a\n+b\n"},
		{"from empty", "", "a\n", "--- old\n+++ new\n@@ -0,0 +1,1 @@\n+a\n"},
		{"to empty", "a\n", "", "--- old\n+++ new\n@@ -1,1 +0,0 @@\n-a\n"},
		{"no final newline", "a", "b", "--- old\n+++ new\n@@ -1,1 +1,1 @@\n-a\n\\ No newline at end of file\n+b\n\\ No newline at end of file\n"},
		{"two hunks", "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n", "x\n2\n3\n4\n5\n6\n7\n8\n9\ny\n",
			"--- old\n+++ new\n@@ -1,4 +1,4 @@\n-1\n+x\n 2\n 3\n 4\n@@ -7,4 +7,4 @@\n 7\n 8\n 9\n-10\n+y\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := UnifiedDiff("old", "new", []byte(tt.a), []byte(tt.b)); got != tt.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// Applying the diff's edit script to a gives b, for changes the LCS table
// handles and for ones beyond its bound (shown as a block replacement).
func TestDiffLinesRebuildsB(t *testing.T) {
	var a, b []string
	for i := range 3000 {
		a = append(a, fmt.Sprintf("line %d\n", i))
		if i%7 != 0 {
			b = append(b, fmt.Sprintf("line %d\n", i))
		}
		if i%11 == 0 {
			b = append(b, fmt.Sprintf("new %d\n", i))
		}
	}
	for _, tt := range []struct {
		name string
		a, b []string
	}{{"lcs", a[:500], b[:500]}, {"beyond the table bound", a, b}} {
		t.Run(tt.name, func(t *testing.T) {
			var gotA, gotB []string
			for _, o := range diffLines(tt.a, tt.b) {
				if o.kind != '+' {
					gotA = append(gotA, o.text)
				}
				if o.kind != '-' {
					gotB = append(gotB, o.text)
				}
			}
			if strings.Join(gotA, "") != strings.Join(tt.a, "") || strings.Join(gotB, "") != strings.Join(tt.b, "") {
				t.Fatal("the edit script does not rebuild both texts")
			}
		})
	}
	if d := UnifiedDiff("a", "b", []byte(strings.Join(a, "")), []byte(strings.Join(b, ""))); len(d) > maxDiffBytes+64*1024 {
		t.Fatalf("diff of %d bytes, bound %d", len(d), maxDiffBytes)
	}
}
