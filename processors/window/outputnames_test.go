package window

import (
	"slices"
	"testing"
	"time"

	"github.com/weir-edge/weir/model"
)

// OutputNames are the levels Process really adds below a tag.
func TestOutputNames(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want []string
	}{
		{Config{Size: time.Minute, Aggregates: []string{"mean", "p99.9"}}, []string{"mean_1m", "p99.9_1m"}},
		{Config{Size: 5 * time.Second, Aggregates: []string{"max"}}, []string{"max_5s"}},
		{Config{Size: time.Hour, Label: "hourly", Aggregates: []string{"sum"}}, []string{"sum_hourly"}},
	} {
		got := tc.cfg.OutputNames()
		if !slices.Equal(got, tc.want) {
			t.Errorf("%+v: OutputNames = %q, want %q", tc.cfg, got, tc.want)
		}
		p, err := New(tc.cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		p.Process([]model.Sample{{Path: "a/x", Value: model.Float(1), SourceTime: at(time.Second)}})
		var paths []string
		for _, s := range p.Flush(time.Unix(0, at(3*time.Hour)), nil) {
			if !slices.Contains(paths, s.Path) {
				paths = append(paths, s.Path)
			}
		}
		for _, n := range tc.want {
			if !slices.Contains(paths, "a/x/"+n) {
				t.Errorf("%+v: flushed %q, no a/x/%s", tc.cfg, paths, n)
			}
		}
	}
}
