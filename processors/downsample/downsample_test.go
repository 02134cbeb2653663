package downsample

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/weir-edge/weir/internal/conf/conftest"
	"github.com/weir-edge/weir/model"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func decodeStrict(t *testing.T, doc string) Config {
	t.Helper()
	return conftest.Decode[Config](t, doc)
}

// t0 is aligned to every interval the tests use.
var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func TestSampleConfig(t *testing.T) {
	c := decodeStrict(t, SampleConfig)
	if err := c.Validate(); err != nil {
		t.Fatalf("sample.yaml does not validate: %v", err)
	}
	if _, err := New(c, nil); err != nil {
		t.Fatal(err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct{ name, doc, wantErr string }{
		{"ok", "interval: 10s", ""},
		{"ok last", "interval: 1m\nmode: last\ndrop_bad: true\nmax_tags: 10", ""},
		{"no interval", "mode: first", "interval: is required"},
		{"negative interval", "interval: -1s", "interval: must be positive"},
		{"tiny interval", "interval: 1us", "interval: 1µs is shorter than 1ms"},
		{"unknown mode", "interval: 1s\nmode: mean", `mode: "mean" is not one of first, last`},
		{"negative max_tags", "interval: 1s\nmax_tags: -1", "max_tags: must not be negative"},
		{"bad match", "interval: 1s\nmatch: ['a/#/b']", "match[0]:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := decodeStrict(t, tt.doc)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if _, err := New(c, nil); err == nil {
				t.Fatal("New accepted what Validate refuses")
			}
		})
	}
}

// step is one sample in (at = its SourceTime after t0) or, with flush, a
// Flush at t0+at; want are the values of a/x that come out.
type step struct {
	at    time.Duration
	v     int64
	bad   bool
	flush bool
	want  []int64
}

func in(at time.Duration, v int64, want ...int64) step { return step{at: at, v: v, want: want} }
func bad(at time.Duration, v int64, want ...int64) step {
	return step{at: at, v: v, bad: true, want: want}
}
func flush(at time.Duration, want ...int64) step { return step{at: at, flush: true, want: want} }

const ms = time.Millisecond

func TestDownsample(t *testing.T) {
	s := time.Second
	tests := []struct {
		name    string
		cfg     Config
		steps   []step
		counter map[string]uint64
	}{
		{"first: first of each interval", Config{Interval: 10 * s},
			[]step{in(0, 1, 1), in(3*s, 2), in(10*s-ms, 3), in(10*s, 4, 4), in(25*s, 5, 5), in(26*s, 6), flush(40 * s)},
			map[string]uint64{"downsample_passed": 3, "downsample_dropped": 3}},
		{"first: an interval the tag left is late", Config{Interval: 10 * s},
			[]step{in(12*s, 1, 1), in(5*s, 2), in(13*s, 3)},
			map[string]uint64{"downsample_passed": 1, "downsample_late": 1, "downsample_dropped": 1}},
		{"first: bad passes and reopens the interval", Config{Interval: 10 * s},
			[]step{in(0, 1, 1), bad(2*s, 2, 2), bad(3*s, 3, 3), in(4*s, 4, 4), in(5*s, 5)},
			map[string]uint64{"downsample_passed": 2, "downsample_bad_passed": 2, "downsample_dropped": 1}},
		{"first: drop_bad", Config{Interval: 10 * s, DropBad: true},
			[]step{in(0, 1, 1), bad(2*s, 2), in(3*s, 3)},
			map[string]uint64{"downsample_passed": 1, "downsample_bad_dropped": 1, "downsample_dropped": 1}},
		{"first: uncertain is downsampled like good", Config{Interval: 10 * s},
			[]step{in(0, 1, 1), {at: s, v: 2}},
			map[string]uint64{"downsample_passed": 1, "downsample_dropped": 1}},
		{"first: negative times align too", Config{Interval: 10 * s},
			[]step{in(-15*s, 1, 1), in(-11*s, 2), in(-10*s, 3, 3)}, nil},
		{"last: newest held until a later interval", Config{Interval: 10 * s, Mode: ModeLast},
			[]step{in(0, 1), in(5*s, 2), in(12*s, 3, 2), flush(20*s - ms), flush(20*s, 3), in(21*s, 4), flush(30*s, 4), flush(90 * s)},
			map[string]uint64{"downsample_passed": 3, "downsample_dropped": 1}},
		{"last: the clock ends the interval", Config{Interval: 10 * s, Mode: ModeLast},
			[]step{in(0, 1), flush(10*s - ms), flush(10*s, 1), flush(11 * s), in(11*s, 2), flush(20*s, 2)},
			map[string]uint64{"downsample_passed": 2}},
		{"last: a sample for an emitted interval is late", Config{Interval: 10 * s, Mode: ModeLast},
			[]step{in(0, 1), flush(10*s, 1), in(9*s, 2), in(-1*s, 3), flush(30 * s)},
			map[string]uint64{"downsample_passed": 1, "downsample_late": 2}},
		{"last: an older sample does not replace the held one", Config{Interval: 10 * s, Mode: ModeLast},
			[]step{in(5*s, 1), in(3*s, 2), in(5*s, 3), flush(10*s, 3)},
			map[string]uint64{"downsample_passed": 1, "downsample_dropped": 2}},
		{"last: bad goes out after the held sample, then the interval reopens", Config{Interval: 10 * s, Mode: ModeLast},
			[]step{in(2*s, 1), bad(4*s, 2, 1, 2), in(6*s, 3), flush(10*s, 3)},
			map[string]uint64{"downsample_passed": 2, "downsample_bad_passed": 1}},
		{"last: bad without a held sample", Config{Interval: 10 * s, Mode: ModeLast},
			[]step{bad(0, 1, 1), in(s, 2), bad(2*s, 3, 2, 3), flush(10 * s)},
			map[string]uint64{"downsample_passed": 1, "downsample_bad_passed": 2}},
		{"last: drop_bad", Config{Interval: 10 * s, Mode: ModeLast, DropBad: true},
			[]step{in(2*s, 1), bad(4*s, 2), flush(10*s, 1)},
			map[string]uint64{"downsample_passed": 1, "downsample_bad_dropped": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Match = []string{"a/#"}
			p, err := New(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			sent := map[int64]int64{} // value -> its timestamps
			for i, st := range tt.steps {
				var out []model.Sample
				if st.flush {
					out = p.Flush(t0.Add(st.at), nil)
				} else {
					q := model.Quality{}
					if st.bad {
						q.Code = model.Bad
					} else if st.v == 2 && st.at == time.Second {
						q.Code = model.Uncertain
					}
					sent[st.v] = t0.Add(st.at).UnixNano()
					smp := model.Sample{Path: "a/x", Value: model.Int(st.v), Quality: q,
						SourceTime: t0.Add(st.at).UnixNano(), EdgeTime: t0.Add(st.at).UnixNano(), Seq: uint64(100 + i)}
					out = p.Process([]model.Sample{{Path: "b/x", Value: model.Int(-1), Seq: 1}, smp})
					if len(out) == 0 || out[0].Path != "b/x" || out[0].Seq != 1 {
						t.Fatalf("step %d: a sample no filter matches did not stay first: %+v", i, out)
					}
					out = out[1:]
				}
				var got []int64
				for _, o := range out {
					got = append(got, o.Value.AsInt())
					if o.Path != "a/x" {
						t.Fatalf("step %d: unexpected output %+v", i, o)
					}
					held := cfg.Mode == ModeLast || st.flush
					// A bad sample of a tag not tracked yet keeps its place
					// and its Seq in last mode too.
					inPlace := !st.flush && st.bad && o.Seq == uint64(100+i)
					if held && o.Seq != 0 && !inPlace {
						t.Fatalf("step %d: output %+v: want Seq 0 (numbered by the engine)", i, o)
					}
					if !held && o.Seq != uint64(100+i) {
						t.Fatalf("step %d: output %+v: want its Seq %d kept", i, o, 100+i)
					}
					if ts := sent[o.Value.AsInt()]; o.SourceTime != ts || o.EdgeTime != ts {
						t.Fatalf("step %d: output %+v: want its own timestamps (%d)", i, o, ts)
					}
				}
				if !slices.Equal(got, st.want) {
					t.Fatalf("step %d (%+v): got values %v, want %v", i, st, got, st.want)
				}
			}
			c := p.Status().Counters
			for k, want := range tt.counter {
				if c[k] != want {
					t.Errorf("%s = %d, want %d (all %v)", k, c[k], want, c)
				}
			}
		})
	}
}

// A held sample keeps its own timestamps, whenever it is emitted.
func TestHeldSampleKeepsItsTimestamps(t *testing.T) {
	p, err := New(Config{Interval: time.Minute, Mode: ModeLast}, nil)
	if err != nil {
		t.Fatal(err)
	}
	src, edge := t0.Add(17*time.Second).UnixNano(), t0.Add(18*time.Second).UnixNano()
	p.Process([]model.Sample{{Path: "a", Value: model.Float(1.5), SourceTime: src, EdgeTime: edge, Quality: model.Quality{Code: model.Uncertain, Reason: "r"}}})
	out := p.Flush(t0.Add(5*time.Minute), nil)
	if len(out) != 1 || out[0].SourceTime != src || out[0].EdgeTime != edge || out[0].Quality.Reason != "r" || out[0].Value.AsFloat() != 1.5 {
		t.Fatalf("flushed %+v", out)
	}
}

// In last mode the samples of several tags in one batch come out in each
// tag's order: the held sample before the bad one that released it.
func TestLastKeepsOrderPerTag(t *testing.T) {
	p, err := New(Config{Interval: 10 * time.Second, Mode: ModeLast}, nil)
	if err != nil {
		t.Fatal(err)
	}
	at := func(d time.Duration) int64 { return t0.Add(d).UnixNano() }
	smp := func(path string, v int64, d time.Duration, q model.QualityCode) model.Sample {
		return model.Sample{Path: path, Value: model.Int(v), SourceTime: at(d), Quality: model.Quality{Code: q}, Seq: uint64(v)}
	}
	out := p.Process([]model.Sample{
		smp("a", 1, 0, model.Good), smp("b", 2, 0, model.Good),
		smp("a", 3, 12*time.Second, model.Good), smp("b", 4, 12*time.Second, model.Good),
		smp("a", 5, 13*time.Second, model.Bad),
	})
	var got []string
	for _, s := range out {
		got = append(got, s.Path+strconv.FormatInt(s.Value.AsInt(), 10))
	}
	if want := []string{"a1", "b2", "a3", "a5"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if st := p.Status(); st.Gauges["downsample_held"] != 1 || st.Gauges["tracked_tags"] != 2 {
		t.Fatalf("status %+v: want b4 held, 2 tags", st)
	}
}

func TestMaxTagsFailsOpen(t *testing.T) {
	for _, mode := range []string{ModeFirst, ModeLast} {
		t.Run(mode, func(t *testing.T) {
			p, err := New(Config{Interval: time.Minute, Mode: mode, MaxTags: 2}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for round := range 3 {
				batch := make([]model.Sample, 4)
				for i := range batch {
					batch[i] = model.Sample{Path: "t/" + strconv.Itoa(i), Value: model.Int(1), SourceTime: t0.Add(time.Duration(round) * time.Second).UnixNano()}
				}
				var paths []string
				for _, s := range p.Process(batch) {
					paths = append(paths, s.Path)
				}
				want := "t/2 t/3" // t/0, t/1 tracked: held or dropped
				if round == 0 && mode == ModeFirst {
					want = "t/0 t/1 t/2 t/3"
				}
				if strings.Join(paths, " ") != want {
					t.Fatalf("round %d passed %v, want %s", round, paths, want)
				}
			}
			if got := p.Status().Counters["untracked"]; got != 6 {
				t.Fatalf("untracked = %d, want 6", got)
			}
			if len(p.tags) != 2 {
				t.Fatalf("state grew to %d tags", len(p.tags))
			}
		})
	}
}

// Every good sample of a tracked tag is passed, dropped, late or still
// held: the counters add up.
func TestCountersAddUp(t *testing.T) {
	for _, mode := range []string{ModeFirst, ModeLast} {
		t.Run(mode, func(t *testing.T) {
			p, err := New(Config{Interval: 10 * time.Second, Mode: mode}, nil)
			if err != nil {
				t.Fatal(err)
			}
			var good, bad, out uint64
			for i := range 1000 {
				q := model.Good
				if i%97 == 0 {
					q = model.Bad
					bad++
				} else {
					good++
				}
				// Mostly forward in time, with a step back every 13th sample.
				at := time.Duration(i)*700*time.Millisecond - time.Duration(i%13/12)*15*time.Second
				batch := []model.Sample{{Path: "t/" + strconv.Itoa(i%7), Value: model.Int(int64(i)), SourceTime: t0.Add(at).UnixNano(), Quality: model.Quality{Code: q}}}
				out += uint64(len(p.Process(batch)))
				if i%50 == 0 {
					out += uint64(len(p.Flush(t0.Add(at), nil)))
				}
			}
			st := p.Status()
			c := st.Counters
			held := uint64(st.Gauges["downsample_held"])
			if got := c["downsample_passed"] + c["downsample_dropped"] + c["downsample_late"] + held; got != good {
				t.Errorf("passed %d + dropped %d + late %d + held %d = %d, want the %d good samples", c["downsample_passed"], c["downsample_dropped"], c["downsample_late"], held, got, good)
			}
			if c["downsample_bad_passed"] != bad {
				t.Errorf("bad_passed = %d, want %d", c["downsample_bad_passed"], bad)
			}
			if out != c["downsample_passed"]+bad {
				t.Errorf("%d samples came out, want passed %d + bad %d", out, c["downsample_passed"], bad)
			}
		})
	}
}

func TestFlushIdleIsCheap(t *testing.T) {
	p, err := New(Config{Interval: time.Minute, Mode: ModeLast}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		p.Process([]model.Sample{{Path: "t/" + strconv.Itoa(i), Value: model.Int(1), SourceTime: t0.UnixNano()}})
	}
	if p.nextDue != t0.Add(time.Minute).UnixNano() {
		t.Fatalf("nextDue = %d, want the end of the interval", p.nextDue)
	}
	if out := p.Flush(t0.Add(59*time.Second), nil); len(out) != 0 {
		t.Fatalf("flushed %d before the interval ended", len(out))
	}
	if out := p.Flush(t0.Add(time.Minute), nil); len(out) != 100 {
		t.Fatalf("flushed %d, want 100", len(out))
	}
	if p.nextDue != none {
		t.Fatalf("nextDue = %d with nothing held", p.nextDue)
	}
}

func TestNoAllocsForRepeatedTags(t *testing.T) {
	for _, mode := range []string{ModeFirst, ModeLast} {
		t.Run(mode, func(t *testing.T) {
			p, err := New(Config{Interval: time.Second, Mode: mode}, nil)
			if err != nil {
				t.Fatal(err)
			}
			src := make([]model.Sample, 64)
			batch := make([]model.Sample, len(src), 2*len(src))
			for i := range src {
				src[i] = model.Sample{Path: "a/t" + strconv.Itoa(i%16), Value: model.Float(1)}
			}
			round := 0
			run := func() {
				for i := range src {
					src[i].SourceTime = int64(round)*int64(100*time.Millisecond) + int64(i)
				}
				round++
				copy(batch, src)
				p.Process(batch[:len(src)])
			}
			run() // the tags' state
			run()
			if allocs := testing.AllocsPerRun(100, run); allocs != 0 {
				t.Fatalf("%v allocations per batch of known tags, want 0", allocs)
			}
		})
	}
}

func BenchmarkProcess(b *testing.B) {
	for _, mode := range []string{ModeFirst, ModeLast} {
		b.Run(mode, func(b *testing.B) {
			p, err := New(Config{Match: []string{"acme/#"}, Interval: 10 * time.Second, Mode: mode}, nil)
			if err != nil {
				b.Fatal(err)
			}
			src := make([]model.Sample, 1000)
			for i := range src {
				src[i] = model.Sample{Path: "acme/plant1/line1/t" + strconv.Itoa(i%500), Value: model.Float(float64(i % 7))}
			}
			batch := make([]model.Sample, len(src), 2*len(src))
			var ts int64
			b.ReportAllocs()
			for b.Loop() {
				ts += int64(time.Second)
				for i := range src {
					src[i].SourceTime = ts
				}
				copy(batch, src)
				p.Process(batch[:len(src)])
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(src)), "ns/sample")
		})
	}
}
