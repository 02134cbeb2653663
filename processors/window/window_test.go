package window

import (
	"math"
	"sort"
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
		{"ok", "size: 1m\naggregates: [mean]", ""},
		{"no size", "aggregates: [mean]", "size: must be positive"},
		{"slide > size", "size: 1m\nslide: 2m\naggregates: [mean]", "slide: must not exceed size"},
		{"slide not divisor", "size: 1m\nslide: 25s\naggregates: [mean]", "slide: size (1m0s) must be a multiple of slide (25s)"},
		{"too many panes", "size: 1h\nslide: 1s\naggregates: [mean]", "slide: size/slide is 3600"},
		{"no aggregates", "size: 1m", "aggregates: at least one"},
		{"unknown aggregate", "size: 1m\naggregates: [mean, median]", `aggregates[1]: unknown aggregate "median"`},
		{"bad percentile", "size: 1m\naggregates: [p0]", "aggregates[0]: unknown aggregate"},
		{"p101", "size: 1m\naggregates: [p101]", "aggregates[0]: unknown aggregate"},
		{"duplicate", "size: 1m\naggregates: [max, max]", `aggregates[1]: "max" is listed twice`},
		{"late policy", "size: 1m\naggregates: [max]\nlate: keep", "late:"},
		{"horizon without update", "size: 1m\naggregates: [max]\nupdate_horizon: 1m", "update_horizon: only used with late: update"},
		{"negative lateness", "size: 1m\naggregates: [max]\nallowed_lateness: -1s", "allowed_lateness:"},
		{"label with slash", "size: 1m\naggregates: [max]\nlabel: a/b", "label:"},
		{"bad match", "size: 1m\naggregates: [max]\nmatch: ['a/#/b']", "match[0]:"},
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
		})
	}
}

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func at(d time.Duration) int64 { return t0.Add(d).UnixNano() }

// op is one step of a scenario: samples in, or a flush at t0+flush.
type op struct {
	in    []model.Sample
	flush time.Duration
	want  []string // "path=value@sourcetime-offset" (+" hist" when Historical), sorted
}

func smp(path string, v float64, d time.Duration) model.Sample {
	return model.Sample{Path: path, Value: model.Float(v), SourceTime: at(d), EdgeTime: at(d)}
}

func describe(s model.Sample) string {
	var v string
	switch {
	case s.Quality.Code == model.Bad:
		v = "bad(" + s.Quality.Reason + ")"
	case s.Value.Kind() == model.KindFloat:
		v = strconv.FormatFloat(s.Value.AsFloat(), 'g', 6, 64)
	default:
		v = s.Value.String()
	}
	if s.Quality.Code == model.Uncertain {
		v += "?"
	}
	r := s.Path + "=" + v + "@" + time.Duration(s.SourceTime-t0.UnixNano()).String()
	if s.Historical {
		r += " hist"
	}
	return r
}

func TestWindows(t *testing.T) {
	tumbling := Config{Size: time.Minute, Aggregates: []string{"count", "mean"}}
	tests := []struct {
		name string
		cfg  Config
		ops  []op
	}{
		{"tumbling all aggregates", Config{Size: time.Minute, Aggregates: []string{"min", "max", "mean", "sum", "count", "stddev", "first", "last", "p50"}}, []op{
			{in: []model.Sample{smp("a/x", 3, 20*time.Second), smp("a/x", 1, 10*time.Second), smp("a/x", 5, 70*time.Second)}},
			{flush: 59 * time.Second},
			{flush: 60 * time.Second, want: []string{
				"a/x/count_1m=2@1m0s", "a/x/first_1m=1@1m0s", "a/x/last_1m=3@1m0s", "a/x/max_1m=3@1m0s", "a/x/mean_1m=2@1m0s",
				"a/x/min_1m=1@1m0s", "a/x/p50_1m=2@1m0s", "a/x/stddev_1m=1.41421@1m0s", "a/x/sum_1m=4@1m0s"}},
			{flush: 61 * time.Second},
			{flush: 120 * time.Second, want: []string{
				"a/x/count_1m=1@2m0s", "a/x/first_1m=5@2m0s", "a/x/last_1m=5@2m0s", "a/x/max_1m=5@2m0s", "a/x/mean_1m=5@2m0s",
				"a/x/min_1m=5@2m0s", "a/x/p50_1m=5@2m0s", "a/x/stddev_1m=0@2m0s", "a/x/sum_1m=5@2m0s"}},
		}},
		{"allowed lateness delays the close", Config{Size: time.Minute, AllowedLateness: 10 * time.Second, Aggregates: []string{"count"}}, []op{
			{in: []model.Sample{smp("a/x", 1, 50*time.Second)}},
			{flush: 65 * time.Second},
			{in: []model.Sample{smp("a/x", 1, 55*time.Second)}}, // late but within allowed lateness
			{flush: 70 * time.Second, want: []string{"a/x/count_1m=2@1m0s"}},
		}},
		{"empty windows emit nothing", tumbling, []op{
			{in: []model.Sample{smp("a/x", 1, 10*time.Second)}},
			{flush: 60 * time.Second, want: []string{"a/x/count_1m=1@1m0s", "a/x/mean_1m=1@1m0s"}},
			{flush: 5 * time.Minute},
		}},
		{"emit_empty", Config{Size: time.Minute, EmitEmpty: true, Aggregates: []string{"count", "mean"}}, []op{
			{in: []model.Sample{smp("a/x", 1, 10*time.Second)}},
			{flush: 60 * time.Second, want: []string{"a/x/count_1m=1@1m0s", "a/x/mean_1m=1@1m0s"}},
			{flush: 3 * time.Minute, want: []string{"a/x/count_1m=0@2m0s", "a/x/count_1m=0@3m0s", "a/x/mean_1m=bad(empty window)@2m0s", "a/x/mean_1m=bad(empty window)@3m0s"}},
		}},
		{"late sample dropped", tumbling, []op{
			{in: []model.Sample{smp("a/x", 1, 10*time.Second)}},
			{flush: 60 * time.Second, want: []string{"a/x/count_1m=1@1m0s", "a/x/mean_1m=1@1m0s"}},
			{in: []model.Sample{smp("a/x", 9, 30*time.Second)}},
			{flush: 10 * time.Minute},
		}},
		{"late sample updates", Config{Size: time.Minute, Late: "update", Aggregates: []string{"count", "mean"}}, []op{
			{in: []model.Sample{smp("a/x", 1, 10*time.Second)}},
			{flush: 60 * time.Second, want: []string{"a/x/count_1m=1@1m0s", "a/x/mean_1m=1@1m0s"}},
			{in: []model.Sample{smp("a/x", 3, 30*time.Second), smp("a/x", 5, 80*time.Second)}},
			{flush: 61 * time.Second, want: []string{"a/x/count_1m=2@1m0s hist", "a/x/mean_1m=2@1m0s hist"}},
			{flush: 120 * time.Second, want: []string{"a/x/count_1m=1@2m0s", "a/x/mean_1m=5@2m0s"}},
			{in: []model.Sample{smp("a/x", 7, 5*time.Second)}}, // window 0..1m closed 1m ago: past the horizon
			{flush: 121 * time.Second},
		}},
		{"sliding windows overlap", Config{Size: time.Minute, Slide: 30 * time.Second, Aggregates: []string{"count", "sum"}}, []op{
			{in: []model.Sample{smp("a/x", 1, 10*time.Second), smp("a/x", 2, 40*time.Second), smp("a/x", 4, 70*time.Second)}},
			{flush: 2 * time.Minute, want: []string{
				"a/x/count_1m=2@1m30s", "a/x/count_1m=1@30s", "a/x/count_1m=1@2m0s", "a/x/count_1m=2@1m0s",
				"a/x/sum_1m=1@30s", "a/x/sum_1m=3@1m0s", "a/x/sum_1m=4@2m0s", "a/x/sum_1m=6@1m30s"}},
			{flush: 3 * time.Minute},
		}},
		{"sliding late sample counts in open windows only", Config{Size: time.Minute, Slide: 30 * time.Second, Aggregates: []string{"sum"}}, []op{
			{in: []model.Sample{smp("a/x", 1, 40*time.Second)}},
			{flush: 60 * time.Second, want: []string{"a/x/sum_1m=1@1m0s"}},
			{in: []model.Sample{smp("a/x", 10, 45*time.Second)}},
			{flush: 90 * time.Second, want: []string{"a/x/sum_1m=11@1m30s"}},
		}},
		{"out of order in an open window", Config{Size: time.Minute, Aggregates: []string{"first", "last"}}, []op{
			{in: []model.Sample{smp("a/x", 2, 20*time.Second), smp("a/x", 1, 10*time.Second), smp("a/x", 3, 30*time.Second), smp("a/x", 0, 25*time.Second)}},
			{flush: time.Minute, want: []string{"a/x/first_1m=1@1m0s", "a/x/last_1m=3@1m0s"}},
		}},
		{"NaN bad and strings skipped, uncertain marks", Config{Size: time.Minute, Aggregates: []string{"count", "max"}}, []op{
			{in: []model.Sample{
				smp("a/x", math.NaN(), 1*time.Second),
				{Path: "a/x", Quality: model.Quality{Code: model.Bad}, SourceTime: at(2 * time.Second)},
				{Path: "a/x", Value: model.String("x"), SourceTime: at(3 * time.Second)},
				{Path: "a/x", Value: model.Int(4), SourceTime: at(4 * time.Second), Quality: model.Quality{Code: model.Uncertain}},
				smp("a/x", 2, 5*time.Second),
			}},
			{flush: time.Minute, want: []string{"a/x/count_1m=2?@1m0s", "a/x/max_1m=4?@1m0s"}},
		}},
		{"percentiles exact", Config{Size: time.Minute, Aggregates: []string{"p50", "p90", "p99", "p100"}}, []op{
			{in: seq("a/x", 100)},
			{flush: time.Minute, want: []string{"a/x/p100_1m=100@1m0s", "a/x/p50_1m=50.5@1m0s", "a/x/p90_1m=90.1@1m0s", "a/x/p99_1m=99.01@1m0s"}},
		}},
		{"label", Config{Size: 90 * time.Second, Label: "win", Aggregates: []string{"count"}}, []op{
			{in: []model.Sample{smp("a/x", 1, 0)}},
			{flush: 90 * time.Second, want: []string{"a/x/count_win=1@1m30s"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New(tt.cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i, o := range tt.ops {
				if o.in != nil {
					if out := p.Process(append([]model.Sample(nil), o.in...)); len(out) != 0 {
						t.Fatalf("op %d: raw samples passed: %+v", i, out)
					}
					continue
				}
				var got []string
				for _, s := range p.Flush(t0.Add(o.flush), nil) {
					if s.EdgeTime != at(o.flush) {
						t.Fatalf("op %d: edge time %d, want the flush time", i, s.EdgeTime)
					}
					got = append(got, describe(s))
				}
				sort.Strings(got)
				want := append([]string(nil), o.want...)
				sort.Strings(want)
				if strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Fatalf("op %d (flush at %s):\ngot  %q\nwant %q", i, o.flush, got, want)
				}
			}
		})
	}
}

func seq(path string, n int) []model.Sample {
	out := make([]model.Sample, n)
	for i := range out {
		out[i] = smp(path, float64(n-i), time.Duration(i)*time.Millisecond) // descending: sorting matters
	}
	return out
}

func TestLateCounters(t *testing.T) {
	p, _ := New(Config{Size: time.Minute, Aggregates: []string{"count"}}, nil)
	p.Process([]model.Sample{smp("a/x", 1, time.Second)})
	p.Flush(t0.Add(time.Minute), nil)
	p.Process([]model.Sample{smp("a/x", 1, 2*time.Second)})
	if got := p.Status().Counters["late_dropped"]; got != 1 {
		t.Fatalf("late_dropped = %d", got)
	}
}

func TestPassThroughAndNonMatching(t *testing.T) {
	p, _ := New(Config{Match: []string{"a/+"}, Size: time.Minute, PassThrough: true, Aggregates: []string{"count"}}, nil)
	out := p.Process([]model.Sample{smp("a/x", 1, 0), smp("b/y", 2, 0)})
	if len(out) != 2 {
		t.Fatalf("pass_through: %d samples", len(out))
	}
	q, _ := New(Config{Match: []string{"a/+"}, Size: time.Minute, Aggregates: []string{"count"}}, nil)
	out = q.Process([]model.Sample{smp("a/x", 1, 0), smp("b/y", 2, 0)})
	if len(out) != 1 || out[0].Path != "b/y" {
		t.Fatalf("swallow: %+v", out)
	}
}

func TestMaxTagsPassesRaw(t *testing.T) {
	p, _ := New(Config{Size: time.Minute, MaxTags: 1, Aggregates: []string{"count"}}, nil)
	out := p.Process([]model.Sample{smp("a/x", 1, 0), smp("a/y", 1, 0)})
	if len(out) != 1 || out[0].Path != "a/y" || p.Status().Counters["untracked"] != 1 {
		t.Fatalf("got %+v", out)
	}
}

func TestReservoirBoundsMemory(t *testing.T) {
	p, _ := New(Config{Size: time.Minute, MaxSamples: 100, Aggregates: []string{"count", "p50", "max"}}, nil)
	const n = 20000
	batch := make([]model.Sample, n)
	for i := range batch {
		batch[i] = smp("a/x", float64(i), time.Duration(i)*time.Microsecond)
	}
	p.Process(batch)
	if got := len(p.series["a/x"].panes[0].acc.vals); got != 100 {
		t.Fatalf("kept %d values, want 100", got)
	}
	res := map[string]float64{}
	for _, s := range p.Flush(t0.Add(time.Minute), nil) {
		f, _ := s.Value.Float64()
		res[s.Path] = f
	}
	if res["a/x/count_1m"] != n || res["a/x/max_1m"] != n-1 {
		t.Fatalf("count/max must stay exact: %v", res)
	}
	if med := res["a/x/p50_1m"]; math.Abs(med-n/2) > n/5 {
		t.Fatalf("reservoir median %v far from %v", med, n/2)
	}
}

func TestFutureClockBounded(t *testing.T) {
	p, _ := New(Config{Size: time.Second, Aggregates: []string{"count"}}, nil)
	for i := range 1000 {
		p.Process([]model.Sample{smp("a/x", 1, time.Duration(i)*time.Hour)})
	}
	if got := len(p.series["a/x"].panes); got > p.maxPanes {
		t.Fatalf("%d panes, bound %d", got, p.maxPanes)
	}
	if p.Status().Counters["no_room"] == 0 {
		t.Fatal("no_room not counted")
	}
}

func TestDurationLabel(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Minute: "1m", 90 * time.Second: "90s", 2 * time.Hour: "2h", 500 * time.Millisecond: "500ms", 1500 * time.Microsecond: "1.5ms"} {
		if got := durationLabel(d); got != want {
			t.Errorf("durationLabel(%s) = %s, want %s", d, got, want)
		}
	}
}

func BenchmarkProcess(b *testing.B) {
	for _, aggs := range [][]string{{"mean", "max"}, {"mean", "p99"}} {
		b.Run(strings.Join(aggs, "_"), func(b *testing.B) {
			p, _ := New(Config{Size: time.Minute, Aggregates: aggs}, nil)
			src := make([]model.Sample, 1000)
			for i := range src {
				src[i] = smp("acme/plant1/line1/t"+strconv.Itoa(i%100), float64(i), time.Duration(i)*time.Millisecond)
			}
			batch := make([]model.Sample, len(src))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				copy(batch, src)
				p.Process(batch)
				i++
				if i%50 == 0 { // close windows now and then so state stays bounded
					p.Flush(t0.Add(time.Duration(i)*time.Hour), nil)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(src)), "ns/sample")
		})
	}
}
