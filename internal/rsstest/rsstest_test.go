package rsstest

import "testing"

func TestParse(t *testing.T) {
	tests := []struct {
		out           string
		before, after int
		ok            bool
	}{
		{"=== RUN x\n  VmHWM before 41000 kB after 44100 kB\nPASS\n", 41000, 44100, true},
		{"session error: x\nVmHWM before 1 kB after 2 kB", 1, 2, true},
		{"PASS\n", 0, 0, false},
	}
	for _, tt := range tests {
		b, a, ok := Parse(tt.out)
		if b != tt.before || a != tt.after || ok != tt.ok {
			t.Errorf("Parse(%q) = %d, %d, %v", tt.out, b, a, ok)
		}
	}
	if PeakKB(t) <= 0 {
		t.Fatal("PeakKB: not positive")
	}
}
