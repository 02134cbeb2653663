package historian

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newSink(t *testing.T, cfg Config, now time.Time) *Sink {
	t.Helper()
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return now }
	if err := s.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// daySamples makes n samples of two tags at the given day (from day0).
func daySamples(day, n int) []model.Sample {
	out := make([]model.Sample, n)
	for i := range out {
		ts := day0 + int64(day)*dayNs + int64(i)*int64(time.Second)
		out[i] = model.Sample{Path: fmt.Sprintf("a/tag%d", i%2), Value: model.Float(float64(i)), SourceTime: ts, Seq: uint64(day*n + i)}
	}
	return out
}

func days(t *testing.T, s *Sink) []int64 {
	t.Helper()
	d, err := s.Store().Days()
	if err != nil {
		t.Fatal(err)
	}
	for i := range d {
		d[i] -= dayOf(day0)
	}
	return d
}

func TestRetentionDropsWholeDays(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(0, day0+5*dayNs+12*int64(time.Hour)) // midday of day 5
	s := newSink(t, Config{Dir: t.TempDir(), Retention: "2d"}, now)
	s.retention = 0 // six days first, then the policy
	for d := 0; d <= 5; d++ {
		if err := s.Write(ctx, daySamples(d, 100)); err != nil {
			t.Fatal(err)
		}
	}
	if got := days(t, s); len(got) != 6 {
		t.Fatalf("days %v before the clock moved", got)
	}
	s.retention = 48 * time.Hour
	if err := s.Write(ctx, daySamples(5, 10)); err != nil {
		t.Fatal(err)
	}
	// now-2d is midday of day 3: days 0-2 are wholly older, day 3 is kept.
	if got := days(t, s); !slices.Equal(got, []int64{3, 4, 5}) {
		t.Fatalf("days after retention %v, want [3 4 5]", got)
	}
	// A late sample of a deleted day is dropped, not stored in a new file.
	if err := s.Write(ctx, daySamples(1, 5)); err != nil {
		t.Fatal(err)
	}
	if got := days(t, s); !slices.Equal(got, []int64{3, 4, 5}) {
		t.Fatalf("days after a late write %v, want [3 4 5]", got)
	}
	got, err := s.Store().Raw(ctx, "a/tag0", day0+3*dayNs, day0+4*dayNs, 1000)
	if err != nil || len(got) != 50 {
		t.Fatalf("day 3 kept whole: %d samples, %v", len(got), err)
	}
}

func TestMaxBytesDropsOldestDays(t *testing.T) {
	ctx := context.Background()
	s := newSink(t, Config{Dir: t.TempDir()}, time.Unix(0, day0+4*dayNs))
	for d := 0; d < 5; d++ {
		if err := s.Write(ctx, daySamples(d, 2000)); err != nil {
			t.Fatal(err)
		}
	}
	st := s.Store()
	st.checkpoint(ctx) // sizes of the data, as Enforce measures them over the bound
	all, _ := st.Days()
	var lastTwo int64
	for _, d := range all[3:] {
		lastTwo += st.daySize(d)
	}
	// The bound of the sink (validated ≥ 1 MiB) is set below the data here
	// so the test stays small.
	// Half a day of slack: the replay below grows day 4's WAL by a frame.
	s.cfg.MaxBytes = lastTwo + st.daySize(all[2])/2
	if err := s.Write(ctx, daySamples(4, 1)); err != nil { // a replay
		t.Fatal(err)
	}
	if got := days(t, s); !slices.Equal(got, []int64{3, 4}) {
		t.Fatalf("days under max_bytes %v, want [3 4]", got)
	}
	// Never the newest day, even when it alone is over the bound.
	s.cfg.MaxBytes = 1
	if err := s.Write(ctx, daySamples(4, 1)); err != nil {
		t.Fatal(err)
	}
	if got := days(t, s); !slices.Equal(got, []int64{4}) {
		t.Fatalf("days under a tiny max_bytes %v, want [4]", got)
	}
	if n, _ := st.Size(); n == 0 {
		t.Fatal("newest day deleted")
	}
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ts := day0 + 5*int64(time.Second)
	batch := []model.Sample{
		{Path: "a/state", Value: model.String("running \"fast\" ✓"), SourceTime: ts, Seq: 1},
		{Path: "a/temp", Value: model.Float(21.5), Quality: model.Quality{Code: model.Uncertain, Reason: "sensor drift"}, SourceTime: ts, Seq: 2},
		{Path: "a/fault", Quality: model.Quality{Code: model.Bad, Reason: "device unreachable"}, EdgeTime: ts, Seq: 3},
		{Path: "a/count", Value: model.Uint(1 << 63), SourceTime: ts, Seq: 4},
		{Path: "a/on", Value: model.Bool(true), SourceTime: ts, Seq: 5},
		{Path: "a/neg", Value: model.Int(-1 << 62), SourceTime: ts, Seq: 6},
	}
	s := newSink(t, Config{Dir: dir}, time.Unix(0, day0))
	if err := s.Write(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, batch); !errors.Is(err, pipeline.ErrClosed) {
		t.Fatalf("Write after Close = %v, want ErrClosed", err)
	}
	s2 := newSink(t, Config{Dir: dir}, time.Unix(0, day0))
	got, err := s2.Store().Latest(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range batch {
		g, ok := got[w.Path]
		if !ok {
			t.Fatalf("%s lost across reopen", w.Path)
		}
		if !g.Value.Equal(w.Value) || g.Quality != w.Quality || g.SourceTime != ts || g.Seq != w.Seq {
			t.Errorf("%s = %#v %v @%d, want %#v %v", w.Path, g.Value, g.Quality, g.SourceTime, w.Value, w.Quality)
		}
	}
}

// Queries run beside the writer (WAL): under -race, readers and the
// writer share no unguarded state, and every committed batch is visible.
func TestQueriesBesideWrites(t *testing.T) {
	ctx := context.Background()
	s := newSink(t, Config{Dir: t.TempDir()}, time.Unix(0, day0+2*dayNs))
	st := s.Store()
	done := make(chan error, 1)
	const batches = 30
	go func() {
		for d := 0; d < batches; d++ {
			if err := s.Write(ctx, daySamples(d%3, 200)[d*5:d*5+5]); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for writing := true; writing; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			writing = false
		default:
		}
		if _, err := st.Latest(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Aggregate(ctx, "a/tag0", day0, day0+3*dayNs, int64(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.Raw(ctx, "a/tag1", day0, day0+3*dayNs, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != batches*5/2 {
		t.Fatalf("%d samples of a/tag1 after the writes, want %d", len(got), batches*5/2)
	}
}

// A sample from a clock far ahead is refused, not filed in a day that
// max_bytes would never delete; the rest of its batch is stored.
func TestFutureSampleRefused(t *testing.T) {
	ctx := context.Background()
	s := newSink(t, Config{Dir: t.TempDir()}, time.Unix(0, day0))
	batch := daySamples(0, 3)
	batch[1].SourceTime = day0 + 3*dayNs
	var rej *pipeline.RejectedError
	if err := s.Write(ctx, batch); !errors.As(err, &rej) || len(rej.Rejected) != 1 || rej.Rejected[0].Index != 1 || rej.Rejected[0].Cause != pipeline.CauseRefused {
		t.Fatalf("Write = %v, want index 1 refused", err)
	}
	if got := days(t, s); !slices.Equal(got, []int64{0}) {
		t.Fatalf("days %v, want [0]", got)
	}
	if got, _ := s.Store().Raw(ctx, "a/tag0", day0, day0+dayNs, 10); len(got) != 2 {
		t.Fatalf("the rest of the batch: %d samples, want 2", len(got))
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg Config
		ok  bool
	}{
		{Config{}, true},
		{Config{Dir: "/data/h", Retention: "30d", MaxBytes: 1 << 30}, true},
		{Config{Retention: "36h"}, true},
		{Config{Retention: "12h"}, false},
		{Config{Retention: "0d"}, false},
		{Config{Retention: "x"}, false},
		{Config{Dir: "rel"}, false},
		{Config{MaxBytes: -1}, false},
		{Config{MaxBytes: 1000}, false},
	} {
		if err := tc.cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: Validate = %v", tc.cfg, err)
		}
	}
	var c Config
	c.DataDir = "/srv/weir"
	c.setDefaults()
	if c.Dir != "/srv/weir/historian" || c.MaxBytes != DefaultMaxBytes {
		t.Errorf("defaults %+v", c)
	}
}

// BenchmarkIngest writes batches of 1000 samples over 100 tags, as the
// engine does with batch_size 1000; it reports samples/s.
func BenchmarkIngest(b *testing.B) {
	ctx := context.Background()
	s, err := New(Config{Dir: b.TempDir()}, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Connect(ctx); err != nil {
		b.Fatal(err)
	}
	defer s.Close(ctx)
	batch := make([]model.Sample, 1000)
	ts := time.Now().UnixNano()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range batch {
			ts += int64(time.Millisecond)
			batch[j] = model.Sample{Path: fmt.Sprintf("plant/area%d/tag%d", j%10, j%100), Value: model.Float(float64(j)), SourceTime: ts, Seq: uint64(i*1000 + j)}
		}
		if err := s.Write(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkAggregateDay: one tag, one day at 1 s (86,400 points),
// downsampled to 1,000 buckets of 86.4 s (every sample read) and to the
// 90 s a chart's points=1000 asks for (through the rollups).
func BenchmarkAggregateDay(b *testing.B) {
	ctx := context.Background()
	s, err := New(Config{Dir: b.TempDir()}, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Connect(ctx); err != nil {
		b.Fatal(err)
	}
	defer s.Close(ctx)
	batch := make([]model.Sample, 0, 1000)
	for i := 0; i < 86400; i++ {
		batch = append(batch, model.Sample{Path: "plant/temp", Value: model.Float(float64(i % 977)), SourceTime: day0 + int64(i)*int64(time.Second), Seq: uint64(i)})
		if len(batch) == cap(batch) || i == 86399 {
			if err := s.Write(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	for _, q := range []struct {
		name     string
		interval int64
		buckets  int
	}{
		{"raw_1000", dayNs / 1000, 1000},                     // 86.4 s: not a multiple of the rollup block
		{"rollups_points1000", 90 * int64(time.Second), 960}, // what the API picks for points=1000
	} {
		b.Run(q.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				got, err := s.Store().Aggregate(ctx, "plant/temp", day0, day0+dayNs, q.interval)
				if err != nil || len(got) != q.buckets {
					b.Fatalf("%d buckets, %v", len(got), err)
				}
			}
		})
	}
}
