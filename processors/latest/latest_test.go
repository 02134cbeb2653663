package latest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/weir-edge/weir/model"
)

func TestLatest(t *testing.T) {
	l := New(3)
	batch := []model.Sample{
		{Path: "a/b", Value: model.Int(1), SourceTime: 10},
		{Path: "a/b/c", Value: model.Int(2), SourceTime: 10},
		{Path: "a/bc", Value: model.Int(3), SourceTime: 10},
	}
	if out := l.Process(batch); len(out) != 3 || &out[0] != &batch[0] {
		t.Fatal("Process must pass the batch on unchanged")
	}
	// Newer replaces, older (a replay) does not, a fourth tag is not kept.
	l.Process([]model.Sample{
		{Path: "a/b", Value: model.Int(4), SourceTime: 11},
		{Path: "a/b/c", Value: model.Int(5), SourceTime: 9, Historical: true},
		{Path: "z", Value: model.Int(6), SourceTime: 12},
	})
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", []string{"a/b=4", "a/b/c=2", "a/bc=3"}},
		{"a/b", []string{"a/b=4", "a/b/c=2"}},
		{"a/b/", []string{"a/b=4", "a/b/c=2"}},
		{"a/bc", []string{"a/bc=3"}},
		{"z", nil},
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			var got []string
			for _, s := range l.Snapshot(tt.prefix) {
				got = append(got, s.Path+"="+s.Value.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Snapshot(%q) = %v, want %v", tt.prefix, got, tt.want)
			}
		})
	}
	if s, ok := l.Get("a/b"); !ok || !s.Value.Equal(model.Int(4)) {
		t.Fatalf("Get = %v %v", s, ok)
	}
	st := l.Status()
	if st.Counters["untracked_samples"] != 1 || st.Gauges["tags"] != 3 {
		t.Fatalf("status %+v", st)
	}
}

func TestLatestCopiesArrays(t *testing.T) {
	l := New(0)
	elems := []model.Value{model.Int(1), model.Int(2)}
	l.Process([]model.Sample{{Path: "a", Value: model.Array(elems)}})
	elems[0] = model.Int(9)
	if s, _ := l.Get("a"); s.Value.String() != "[1,2]" {
		t.Fatalf("kept %s, the caller's slice leaked in", s.Value)
	}
}

func BenchmarkLatestProcess(b *testing.B) {
	l := New(0)
	batch := make([]model.Sample, 100)
	for i := range batch {
		batch[i] = model.Sample{Path: fmt.Sprintf("acme/plant1/line1/tag%03d", i), Value: model.Float(float64(i))}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		for j := range batch {
			batch[j].SourceTime = int64(i)
		}
		l.Process(batch)
	}
}
