package deadband

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
	p, err := New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.rules[1].band != 0.1 {
		t.Fatalf("1%% of 0..10 = %v, want 0.1", p.rules[1].band)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct{ name, doc, wantErr string }{
		{"no rules", "rules: []", "rules: at least one rule"},
		{"percent without range", "rules: [{percent: 1}]", "rules[0].range: percent needs the tag's range"},
		{"range without percent", "rules: [{range: {min: 0, max: 1}}]", "rules[0].range: range is only used with percent"},
		{"empty range", "rules: [{percent: 1, range: {min: 5, max: 5}}]", "rules[0].range: max (5) must be greater than min (5)"},
		{"both", "rules: [{absolute: 1, percent: 1, range: {min: 0, max: 1}}]", "rules[0]: set absolute or percent, not both"},
		{"negative absolute", "rules: [{absolute: -1}]", "rules[0].absolute:"},
		{"percent > 100", "rules: [{percent: 101, range: {min: 0, max: 1}}]", "rules[0].percent:"},
		{"negative silence", "rules: [{max_silence: -1s}]", "rules[0].max_silence:"},
		{"negative max_tags", "max_tags: -1\nrules: [{}]", "max_tags:"},
		{"bad filter", "rules: [{match: ['a+']}]", "rules[0].match[0]:"},
		{"plain rbe", "rules: [{}]", ""},
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

type in struct {
	v model.Value
	q model.QualityCode
}

func TestFilter(t *testing.T) {
	nan := math.NaN()
	good := model.Good
	tests := []struct {
		name string
		rule Rule
		seq  []in
		want []bool // passed?
	}{
		{"first passes, repeat suppressed", Rule{}, []in{{model.Float(1), good}, {model.Float(1), good}, {model.Float(1.0001), good}}, []bool{true, false, true}},
		{"absolute strict", Rule{Absolute: 0.5}, []in{{model.Float(10), good}, {model.Float(10.5), good}, {model.Float(10.51), good}}, []bool{true, false, true}},
		{"compares with last passed, not last seen", Rule{Absolute: 1}, []in{{model.Float(0), good}, {model.Float(0.6), good}, {model.Float(1.2), good}, {model.Float(1.5), good}}, []bool{true, false, true, false}},
		{"percent of range", Rule{Percent: 10, Range: &Range{Min: -50, Max: 150}}, []in{{model.Float(0), good}, {model.Float(19), good}, {model.Float(-21), good}}, []bool{true, false, true}},
		{"quality change always passes", Rule{Absolute: 100}, []in{{model.Float(1), good}, {model.Float(1), model.Uncertain}, {model.Float(1), model.Uncertain}, {model.Float(1), good}}, []bool{true, true, false, true}},
		{"kind change passes", Rule{Absolute: 100}, []in{{model.Int(1), good}, {model.Float(1), good}}, []bool{true, true}},
		{"int deadband", Rule{Absolute: 2}, []in{{model.Int(10), good}, {model.Int(12), good}, {model.Int(13), good}}, []bool{true, false, true}},
		{"big ints exact", Rule{}, []in{{model.Int(1 << 60), good}, {model.Int(1<<60 + 1), good}}, []bool{true, true}},
		{"into NaN passes", Rule{Absolute: 1}, []in{{model.Float(1), good}, {model.Float(nan), good}}, []bool{true, true}},
		{"stuck NaN suppressed", Rule{Absolute: 1}, []in{{model.Float(nan), good}, {model.Float(nan), good}}, []bool{true, false}},
		{"out of NaN passes", Rule{Absolute: 1}, []in{{model.Float(nan), good}, {model.Float(1), good}}, []bool{true, true}},
		{"to +Inf passes", Rule{Absolute: 1}, []in{{model.Float(1), good}, {model.Float(math.Inf(1)), good}, {model.Float(math.Inf(1)), good}}, []bool{true, true, false}},
		{"strings on change", Rule{Absolute: 5}, []in{{model.String("a"), good}, {model.String("a"), good}, {model.String("b"), good}}, []bool{true, false, true}},
		{"bool on change", Rule{}, []in{{model.Bool(true), good}, {model.Bool(true), good}, {model.Bool(false), good}}, []bool{true, false, true}},
		{"bad without value", Rule{}, []in{{model.Float(1), good}, {model.Value{}, model.Bad}, {model.Value{}, model.Bad}, {model.Float(1), good}}, []bool{true, true, false, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.rule
			r.Match = []string{"a/+"}
			p, err := New(Config{Rules: []Rule{r}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i, x := range tt.seq {
				s := model.Sample{Path: "a/x", Value: x.v, Quality: model.Quality{Code: x.q}, SourceTime: int64(i), EdgeTime: int64(i)}
				other := model.Sample{Path: "b/x", Value: model.Float(1)}
				out := p.Process([]model.Sample{other, s})
				got := len(out) == 2
				if out[0].Path != "b/x" {
					t.Fatal("non-matching sample filtered")
				}
				if got != tt.want[i] {
					t.Fatalf("sample %d (%v): passed %v, want %v", i, x.v, got, tt.want[i])
				}
			}
		})
	}
}

func TestHeartbeatWithFakeClock(t *testing.T) {
	p, err := New(Config{Rules: []Rule{
		{Match: []string{"hb/#"}, Absolute: 10, MaxSilence: time.Minute},
		{Match: []string{"quiet/#"}},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) int64 { return t0.Add(d).UnixNano() }
	emit := func(path string, v float64, d time.Duration) int {
		return len(p.Process([]model.Sample{{Path: path, Value: model.Float(v), SourceTime: at(d) - 1000, EdgeTime: at(d)}}))
	}
	if emit("hb/a", 1, 0) != 1 || emit("quiet/a", 1, 0) != 1 {
		t.Fatal("first samples must pass")
	}
	if emit("hb/a", 2, 10*time.Second) != 0 {
		t.Fatal("change inside the deadband passed")
	}
	if out := p.Flush(t0.Add(59*time.Second), nil); len(out) != 0 {
		t.Fatalf("heartbeat before max_silence: %+v", out)
	}
	out := p.Flush(t0.Add(60*time.Second), nil)
	if len(out) != 1 {
		t.Fatalf("heartbeat: got %d samples, want 1 (quiet/ has no max_silence)", len(out))
	}
	hb := out[0]
	if hb.Path != "hb/a" || hb.Value.AsFloat() != 2 || hb.SourceTime != at(10*time.Second)-1000 || hb.EdgeTime != at(60*time.Second) {
		t.Fatalf("heartbeat %+v: want newest value 2 with its source time and edge time = now", hb)
	}
	if out := p.Flush(t0.Add(119*time.Second), nil); len(out) != 0 {
		t.Fatal("heartbeat repeated before another max_silence")
	}
	if emit("hb/a", 20, 100*time.Second) != 1 {
		t.Fatal("change beyond the deadband suppressed (reference is the heartbeat's 2)")
	}
	if out := p.Flush(t0.Add(159*time.Second), nil); len(out) != 0 {
		t.Fatal("a passed sample must restart the silence timer")
	}
	out = p.Flush(t0.Add(160*time.Second), out[:0])
	if len(out) != 1 || out[0].Value.AsFloat() != 20 {
		t.Fatalf("second heartbeat %+v", out)
	}
	st := p.Status()
	if st.Counters["heartbeats"] != 2 || st.Counters["suppressed"] != 1 {
		t.Fatalf("status %+v", st)
	}
}

func TestMaxTagsFailsOpen(t *testing.T) {
	p, err := New(Config{MaxTags: 2, Rules: []Rule{{}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		batch := make([]model.Sample, 4)
		for i := range batch {
			batch[i] = model.Sample{Path: "t/" + strconv.Itoa(i), Value: model.Int(1)}
		}
		out := p.Process(batch)
		var paths []string
		for _, s := range out {
			paths = append(paths, s.Path)
		}
		sort.Strings(paths)
		want := "t/0 t/1 t/2 t/3"
		if round > 0 {
			want = "t/2 t/3" // t/0, t/1 tracked and unchanged
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
}

func BenchmarkProcess(b *testing.B) {
	p, err := New(Config{Rules: []Rule{{Match: []string{"acme/#"}, Absolute: 0.5, MaxSilence: time.Minute}}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	src := make([]model.Sample, 1000)
	for i := range src {
		src[i] = model.Sample{Path: "acme/plant1/line1/t" + strconv.Itoa(i%500), Value: model.Float(float64(i % 7)), EdgeTime: int64(i)}
	}
	batch := make([]model.Sample, len(src))
	b.ReportAllocs()
	for b.Loop() {
		copy(batch, src)
		p.Process(batch)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(src)), "ns/sample")
}

func BenchmarkFlushIdle(b *testing.B) {
	p, _ := New(Config{Rules: []Rule{{MaxSilence: time.Hour}}}, nil)
	for i := range 10000 {
		p.Process([]model.Sample{{Path: "t/" + strconv.Itoa(i), Value: model.Int(1), EdgeTime: 1}})
	}
	now := time.Unix(0, 2)
	b.ReportAllocs()
	for b.Loop() {
		p.Flush(now, nil)
	}
}
