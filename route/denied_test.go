package route

import (
	"testing"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/security"
	"github.com/weir-edge/weir/security/sectest"
)

// A route rebuilt for the same sink (a reload) and handed the sink's
// DeniedSet reports no tag again; one given a fresh set does.
func TestDeniedSetSurvivesRebuild(t *testing.T) {
	cl := mustClassifier(t, ClassificationConfig{Rules: []ClassRule{{Match: []string{"p/secret/#"}, Class: "confidential"}}})
	batch := []model.Sample{sample("p/secret/a", model.Good), sample("p/secret/b", model.Good), sample("p/open", model.Good)}
	set := NewDeniedSet(DefaultClass)
	tests := []struct {
		name string
		set  *DeniedSet
		want int // events from this route
	}{
		{"first route", set, 2},
		{"rebuilt with the sink's set", set, 0},
		{"rebuilt again, same set", set, 0},
		{"fresh set (sink removed and added back)", nil, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &sectest.Recorder{}
			r, err := New(Options{Sink: "plant", Classifier: cl, Events: rec, Denied: tc.set})
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				if out, _ := r.Process(batch, nil); len(out) != 1 {
					t.Fatalf("%d samples through, want 1", len(out))
				}
			}
			if n := rec.Count(security.EgressDenied); n != tc.want {
				t.Errorf("%d events, want %d", n, tc.want)
			}
			if c := r.Counters(); c.Denied != 6 {
				t.Errorf("denied %d, want 6 (counted whether reported or not)", c.Denied)
			}
		})
	}
	if set.Len() != 2 {
		t.Errorf("set holds %d tags, want 2", set.Len())
	}
}
