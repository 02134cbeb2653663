package alarms

import (
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/model"
)

// The stage is where events enter the flow: Process appends what is
// queued after the batch, Flush expires shelves and appends what is
// queued, with no input.
func TestStage(t *testing.T) {
	m, now := newManager(t, "")
	st := NewStage(m)
	in := []model.Sample{{Path: "acme/plant1/t", Value: model.Float(95)}}
	if out := st.Process(in); len(out) != 1 {
		t.Fatalf("nothing queued: %v", out)
	}
	if _, err := m.Raise("hot", t0); err != nil {
		t.Fatal(err)
	}
	out := st.Process(in)
	if len(out) != 2 || out[0].Path != "acme/plant1/t" || out[1].Path != "acme/plant1/_alarms/hot" ||
		!strings.Contains(out[1].Value.AsString(), `"transition":"raise"`) {
		t.Fatalf("process %v", out)
	}
	if out := st.Process(nil); len(out) != 0 {
		t.Fatalf("drained twice: %v", out)
	}
	// An operator shelves between batches; the flush emits it, and later
	// ends the shelve on the engine's clock.
	if _, err := m.ShelveFor("hot", "api:alice", "noisy", time.Hour); err != nil {
		t.Fatal(err)
	}
	out = st.Flush(t0, nil)
	if len(out) != 1 || !strings.Contains(out[0].Value.AsString(), `"transition":"shelve"`) {
		t.Fatalf("flush %v", out)
	}
	if out := st.Flush(t0.Add(59*time.Minute), nil); len(out) != 0 {
		t.Fatalf("early flush %v", out)
	}
	*now = t0.Add(time.Hour)
	out = st.Flush(*now, nil)
	if len(out) != 1 || !strings.Contains(out[0].Value.AsString(), `"transition":"unshelve"`) {
		t.Fatalf("expiry flush %v", out)
	}
	if a, _ := m.Get("hot"); a.Shelved {
		t.Fatalf("still shelved: %+v", a)
	}
}
