package match

import (
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMatch(t *testing.T) {
	tests := []struct {
		name    string
		filters []string
		path    string
		want    bool
	}{
		{"empty list matches all", nil, "a/b", true},
		{"exact", []string{"a/b/c"}, "a/b/c", true},
		{"exact shorter path", []string{"a/b/c"}, "a/b", false},
		{"exact longer path", []string{"a/b"}, "a/b/c", false},
		{"plus one level", []string{"a/+/c"}, "a/x/c", true},
		{"plus not two levels", []string{"a/+/c"}, "a/x/y/c", false},
		{"plus at end", []string{"a/+"}, "a/b", true},
		{"plus at end needs a level", []string{"a/+"}, "a", false},
		{"hash rest", []string{"a/#"}, "a/b/c/d", true},
		{"hash matches parent", []string{"a/#"}, "a", true},
		{"hash other prefix", []string{"a/#"}, "b/a", false},
		{"bare hash", []string{"#"}, "anything/at/all", true},
		{"plus then hash", []string{"acme/plant1/+/line1/#"}, "acme/plant1/filling/line1/filler/temperature", true},
		{"plus then hash miss", []string{"acme/plant1/+/line1/#"}, "acme/plant1/filling/line2/filler/temperature", false},
		{"second filter", []string{"x/y", "+/+/temperature"}, "a/b/temperature", true},
		{"case sensitive", []string{"a/B"}, "a/b", false},
		{"prefix of a level is not a match", []string{"a/b"}, "a/bc", false},
		{"empty path level", []string{"a/+/c"}, "a//c", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Compile(tt.filters)
			if err != nil {
				t.Fatal(err)
			}
			for range 2 { // second call is served by the cache
				if got := m.Match(tt.path); got != tt.want {
					t.Fatalf("Match(%q) with %q = %v, want %v", tt.path, tt.filters, got, tt.want)
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		filter, wantErr string
	}{
		{"a/b", ""},
		{"+", ""},
		{"#", ""},
		{"+/+/#", ""},
		{"", "empty"},
		{"a//b", "empty level"},
		{"a/#/b", "last level"},
		{"a/b#", "whole level"},
		{"a+/b", "whole level"},
		{"a/\x01", "control"},
		{strings.Repeat("a/", 40) + "a", "levels"},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			err := Validate("match", []string{"ok", tt.filter})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "match[1]: ") {
				t.Fatalf("err = %v, want match[1]: …%s…", err, tt.wantErr)
			}
		})
	}
	if _, err := Compile([]string{"a/#/b"}); err == nil {
		t.Fatal("Compile accepted an invalid filter")
	}
}

func TestCacheIsBounded(t *testing.T) {
	m := MustCompile("a/+")
	m.maxCache = 10
	for i := range 100 {
		p := "a/" + strconv.Itoa(i)
		if !m.Match(p) {
			t.Fatalf("%s did not match", p)
		}
		if len(m.cache) > 10 {
			t.Fatalf("cache grew to %d", len(m.cache))
		}
	}
}

// reference is the obvious, allocating implementation.
func reference(filter, path string) bool {
	fl, pl := strings.Split(filter, "/"), strings.Split(path, "/")
	for i, f := range fl {
		if f == "#" {
			return true
		}
		if i >= len(pl) || pl[i] == "" || (f != "+" && f != pl[i]) {
			return false
		}
	}
	return len(fl) == len(pl)
}

func FuzzMatch(f *testing.F) {
	f.Add("acme/+/line1/#", "acme/plant1/line1/filler/t")
	f.Add("a/#", "a")
	f.Add("+/+", "a//")
	f.Fuzz(func(t *testing.T, filter, path string) {
		m, err := Compile([]string{filter})
		if err != nil {
			return
		}
		got := m.Match(path)
		if want := reference(filter, path); got != want {
			t.Fatalf("Match(%q, %q) = %v, reference says %v", filter, path, got, want)
		}
		if m.Match(path) != got {
			t.Fatal("cached answer differs")
		}
	})
}

func BenchmarkMatch(b *testing.B) {
	m := MustCompile("acme/plant1/+/line1/#", "acme/+/+/+/+/temperature")
	paths := make([]string, 1000)
	for i := range paths {
		paths[i] = "acme/plant1/filling/line" + strconv.Itoa(i%3) + "/filler/tag" + strconv.Itoa(i)
	}
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			m.Match(paths[i%len(paths)])
		}
	})
	b.Run("walk", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			m.walk(paths[i%len(paths)])
		}
	})
}

func TestIndexFirstMatchWins(t *testing.T) {
	x, err := NewIndex([][]string{{"a/b"}, {"a/+"}, nil})
	if err != nil {
		t.Fatal(err)
	}
	x.maxCache = 2
	tests := map[string]int{"a/b": 0, "a/c": 1, "z": 2, "a/b/c": 2}
	for range 2 {
		for p, want := range tests {
			if got := x.Lookup(p); got != want {
				t.Fatalf("Lookup(%q) = %d, want %d", p, got, want)
			}
		}
	}
	y, _ := NewIndex([][]string{{"a"}})
	if y.Lookup("b") != -1 {
		t.Fatal("no match should be -1")
	}
	if _, err := NewIndex([][]string{{"#/a"}}); err == nil {
		t.Fatal("invalid filter accepted")
	}
}
