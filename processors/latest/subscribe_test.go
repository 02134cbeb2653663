package latest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/processors/match"
)

func smp(path string, v int64, t int64) model.Sample {
	return model.Sample{Path: path, Value: model.Int(v), SourceTime: t}
}

func pathsVals(s []model.Sample) []string {
	var out []string
	for _, x := range s {
		out = append(out, x.Path+"="+x.Value.String())
	}
	return out
}

func TestSubscribeSnapshotThenUpdates(t *testing.T) {
	l := New(0)
	l.Process([]model.Sample{smp("a/x", 1, 1), smp("b/x", 2, 1), smp("a/y", 3, 1)})
	sub, snap, err := l.Subscribe(match.MustCompile("a/#"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if got := pathsVals(snap); !slices.Equal(got, []string{"a/x=1", "a/y=3"}) {
		t.Fatalf("snapshot %v", got)
	}
	select {
	case <-sub.Ready():
		t.Fatal("ready before any change")
	default:
	}
	// a/y changes twice (coalesced, one skipped), b/x does not match, a
	// replayed older a/x is not stored so not delivered, a/z is new.
	l.Process([]model.Sample{smp("a/y", 4, 2), smp("b/x", 5, 2), smp("a/x", 0, 0)})
	l.Process([]model.Sample{smp("a/y", 6, 3), smp("a/z", 7, 3)})
	<-sub.Ready()
	got, resync := sub.Take()
	if resync || !slices.Equal(pathsVals(got), []string{"a/y=6", "a/z=7"}) {
		t.Fatalf("take %v resync %v", pathsVals(got), resync)
	}
	if sub.Skipped() != 1 {
		t.Fatalf("skipped %d, want 1", sub.Skipped())
	}
	if st := l.Status(); st.Counters["subscriber_skipped_samples"] != 1 || st.Gauges["subscribers"] != 1 {
		t.Fatalf("status %+v", st)
	}
	if got, _ := sub.Take(); len(got) != 0 {
		t.Fatalf("second take %v", pathsVals(got))
	}
	// A later subscriber gets changes of tags already routed to others,
	// and a leaving one stops nobody else's.
	sub2, _, err := l.Subscribe(match.MustCompile("+/y"), 0)
	if err != nil {
		t.Fatal(err)
	}
	l.Process([]model.Sample{smp("a/y", 8, 4)})
	if got, _ := sub2.Take(); !slices.Equal(pathsVals(got), []string{"a/y=8"}) {
		t.Fatalf("new subscriber took %v", pathsVals(got))
	}
	sub.Close()
	l.Process([]model.Sample{smp("a/y", 9, 5)})
	if got, _ := sub2.Take(); !slices.Equal(pathsVals(got), []string{"a/y=9"}) {
		t.Fatalf("after the other left %v", pathsVals(got))
	}
	sub2.Close()
	if l.routes != nil {
		t.Fatal("routes kept with no subscriber")
	}
}

func TestSubscribeOverflowAsksForResync(t *testing.T) {
	l := New(0)
	sub, _, err := l.Subscribe(match.MustCompile("#"), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	l.Process([]model.Sample{smp("a", 1, 1), smp("b", 1, 1)})
	l.Process([]model.Sample{smp("c", 1, 1)}) // one tag too many
	l.Process([]model.Sample{smp("a", 2, 2)}) // while a resync is due: in the store, not pending
	if got, resync := sub.Take(); !resync || len(got) != 0 {
		t.Fatalf("take %v resync %v, want a resync", pathsVals(got), resync)
	}
	// Three tags now match a bound of two: the resync says so.
	if _, err := sub.Resync(); !errors.Is(err, ErrTooManyTags) {
		t.Fatalf("resync err %v, want ErrTooManyTags", err)
	}
	sub2, _, err := l.Subscribe(match.MustCompile("a", "b"), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer sub2.Close()
	l.Process([]model.Sample{smp("a", 3, 3), smp("b", 3, 3)})
	sub2.Take()
	// Force an overflow by shrinking the bound, then resync.
	sub2.mu.Lock()
	sub2.maxPending = 1
	sub2.mu.Unlock()
	l.Process([]model.Sample{smp("a", 4, 4), smp("b", 4, 4)})
	if _, resync := sub2.Take(); !resync {
		t.Fatal("no resync")
	}
	sub2.maxPending = 2
	snap, err := sub2.Resync()
	if err != nil || !slices.Equal(pathsVals(snap), []string{"a=4", "b=4"}) {
		t.Fatalf("resync %v %v", pathsVals(snap), err)
	}
	l.Process([]model.Sample{smp("b", 5, 5)})
	if got, resync := sub2.Take(); resync || !slices.Equal(pathsVals(got), []string{"b=5"}) {
		t.Fatalf("after resync %v %v", pathsVals(got), resync)
	}
}

func TestSubscribeBounds(t *testing.T) {
	l := New(0)
	l.SetSubscriberLimit(2)
	l.Process([]model.Sample{smp("a", 1, 1), smp("b", 1, 1), smp("c", 1, 1)})
	if _, _, err := l.Subscribe(match.MustCompile("#"), 2); !errors.Is(err, ErrTooManyTags) {
		t.Fatalf("err %v, want ErrTooManyTags", err)
	}
	s1, _, err := l.Subscribe(match.MustCompile("a"), 0)
	if err != nil {
		t.Fatal(err)
	}
	s2, _, err := l.Subscribe(match.MustCompile("b"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Subscribe(match.MustCompile("c"), 0); !errors.Is(err, ErrTooManySubscribers) {
		t.Fatalf("err %v, want ErrTooManySubscribers", err)
	}
	s1.Close()
	s1.Close()
	if n := l.Subscribers(); n != 1 {
		t.Fatalf("%d subscribers after close", n)
	}
	if _, err := s1.Resync(); !errors.Is(err, ErrClosed) {
		t.Fatalf("resync after close: %v", err)
	}
	s3, _, err := l.Subscribe(match.MustCompile("c"), 0)
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
	s3.Close()
}

// TestSubscribeMissesNothing: a consumer racing a producer ends up with
// the producer's last value of every tag (snapshot + updates, or resync).
func TestSubscribeMissesNothing(t *testing.T) {
	l := New(0)
	const tags, rounds = 50, 200
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		for r := 1; r <= rounds; r++ {
			batch := make([]model.Sample, 0, tags)
			for i := range tags {
				batch = append(batch, smp(fmt.Sprintf("t/%02d", i), int64(r), int64(r)))
			}
			l.Process(batch)
		}
	}()
	sub, snap, err := l.Subscribe(match.MustCompile("t/+"), 10) // small bound: resyncs happen
	if err != nil && !errors.Is(err, ErrTooManyTags) {
		t.Fatal(err)
	}
	for err != nil { // more than 10 tags already: wait for the end, then use a large bound
		<-done
		sub, snap, err = l.Subscribe(match.MustCompile("t/+"), 0)
	}
	defer sub.Close()
	seen := map[string]int64{}
	apply := func(s []model.Sample) {
		for _, x := range s {
			seen[x.Path] = x.Value.AsInt()
		}
	}
	apply(snap)
	finished := false
	for {
		select {
		case <-sub.Ready():
		case <-done:
			finished = true
		}
		got, resync := sub.Take()
		if resync {
			snap, err := sub.Resync()
			if errors.Is(err, ErrTooManyTags) {
				sub.Close()
				<-done
				sub, snap, err = l.Subscribe(match.MustCompile("t/+"), 0)
			}
			if err != nil {
				t.Fatal(err)
			}
			apply(snap)
		}
		apply(got)
		if finished {
			got, _ := sub.Take()
			apply(got)
			break
		}
	}
	wg.Wait()
	for i := range tags {
		if v := seen[fmt.Sprintf("t/%02d", i)]; v != rounds {
			t.Fatalf("t/%02d ended at %d, want %d", i, v, rounds)
		}
	}
}

func BenchmarkProcessSubscribers(b *testing.B) {
	for _, n := range []int{0, 10, 100} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			l := New(0)
			l.SetSubscriberLimit(n + 1)
			batch := make([]model.Sample, 100)
			for i := range batch {
				batch[i] = model.Sample{Path: fmt.Sprintf("acme/plant1/line%d/tag%03d", i%10, i), Value: model.Float(float64(i))}
			}
			// Each subscriber watches one line: a tag tree page.
			for i := range n {
				sub, _, err := l.Subscribe(match.MustCompile(fmt.Sprintf("acme/plant1/line%d/#", i%10)), 0)
				if err != nil {
					b.Fatal(err)
				}
				defer sub.Close()
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				for j := range batch {
					batch[j].SourceTime = int64(i)
				}
				l.Process(batch)
			}
		})
	}
}

func TestChildren(t *testing.T) {
	l := New(0)
	l.Process([]model.Sample{
		smp("p/a", 1, 1), smp("p/a/x", 2, 1), smp("p/a/y/z", 3, 1), smp("p/a-b", 4, 1),
		smp("p/b", 5, 1), smp("q", 6, 1), smp("pp/c", 7, 1),
	})
	show := func(nodes []Node) []string {
		var out []string
		for _, n := range nodes {
			s := n.Path + fmt.Sprintf(":%d", n.Tags)
			if n.HasValue {
				s += "=" + n.Sample.Value.String()
			}
			out = append(out, s)
		}
		return out
	}
	tests := []struct {
		prefix, after string
		limit         int
		want          []string
		total         int
	}{
		{"", "", 0, []string{"p:5", "pp:1", "q:0=6"}, 3},
		{"p", "", 0, []string{"p/a:2=1", "p/a-b:0=4", "p/b:0=5"}, 3},
		{"/p/", "", 2, []string{"p/a:2=1", "p/a-b:0=4"}, 3},
		{"p", "a-b", 2, []string{"p/b:0=5"}, 3},
		{"p/a", "", 0, []string{"p/a/x:0=2", "p/a/y:1"}, 2},
		{"p/a/x", "", 0, nil, 0},
		{"nope", "", 0, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.prefix+"|"+tt.after, func(t *testing.T) {
			nodes, total := l.Children(tt.prefix, tt.after, tt.limit)
			if got := show(nodes); !slices.Equal(got, tt.want) || total != tt.total {
				t.Fatalf("Children(%q, %q, %d) = %v %d, want %v %d", tt.prefix, tt.after, tt.limit, got, total, tt.want, tt.total)
			}
		})
	}
}

// BenchmarkChildren browses the root and one folder of 100,000 tags.
func BenchmarkChildren(b *testing.B) {
	l := New(0)
	batch := make([]model.Sample, 0, 1000)
	for i := range DefaultMaxTags {
		batch = append(batch, model.Sample{Path: fmt.Sprintf("acme/plant%d/line%02d/cell%02d/tag%03d", i%4, i/4%25, i/100%10, i/1000), Value: model.Int(int64(i))})
		if len(batch) == cap(batch) {
			l.Process(batch)
			batch = batch[:0]
		}
	}
	for _, prefix := range []string{"", "acme/plant1/line07"} {
		b.Run("prefix="+prefix, func(b *testing.B) {
			for b.Loop() {
				l.Children(prefix, "", 200)
			}
		})
	}
}
