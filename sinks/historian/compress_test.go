package historian

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/weir-edge/weir/model"
)

// signal makes n samples of one tag at irregular times (0.1 to 2 s apart)
// from day0: a random walk, a sine, steps, or a noisy sine.
func signal(rng *rand.Rand, shape, path string, n int) []model.Sample {
	out := make([]model.Sample, n)
	ts, v := day0, 0.0
	for i := range out {
		ts += int64(100*time.Millisecond) + rng.Int64N(int64(1900*time.Millisecond))
		x := float64(ts-day0) / 1e9
		switch shape {
		case "walk":
			v += rng.NormFloat64()
		case "sine":
			v = 10 * math.Sin(x/30)
		case "steps":
			if rng.IntN(40) == 0 {
				v = float64(rng.IntN(20)) - 10
			}
		case "noisy":
			v = 10*math.Sin(x/60) + rng.NormFloat64()*0.3
		}
		out[i] = model.Sample{Path: path, Value: model.Float(v), SourceTime: ts, Seq: uint64(i)}
	}
	return out
}

// disk is the rows a compressor's output leaves, by tag and time.
type disk map[string]map[int64]model.Sample

func (d disk) apply(out compOut) {
	for _, sm := range out.store {
		if d[sm.Path] == nil {
			d[sm.Path] = map[int64]model.Sample{}
		}
		d[sm.Path][sampleTime(sm)] = sm
	}
	for _, sm := range out.remove {
		delete(d[sm.Path], sampleTime(sm))
	}
}

func (d disk) rows(path string) []model.Sample {
	var out []model.Sample
	for _, sm := range d[path] {
		out = append(out, sm)
	}
	slices.SortFunc(out, func(a, b model.Sample) int { return int(sampleTime(a) - sampleTime(b)) })
	return out
}

// feed runs samples through c in random batches; some writes "fail"
// (rolled back, then offered again, as the engine does).
func feed(rng *rand.Rand, c *compressor, d disk, samples []model.Sample) {
	for len(samples) > 0 {
		n := min(len(samples), 1+rng.IntN(300))
		if rng.IntN(10) == 0 {
			c.process(samples[:n])
			c.rollback()
		}
		d.apply(c.process(samples[:n]))
		c.commit()
		samples = samples[n:]
	}
}

func f64(sm model.Sample) float64 { f, _ := sm.Value.Float64(); return f }

// checkLinear asserts that linear interpolation between the stored rows is
// within dev of every original sample, and that the last one is stored.
func checkLinear(t *testing.T, orig, rows []model.Sample, dev float64) {
	t.Helper()
	if len(rows) == 0 || sampleTime(rows[len(rows)-1]) != sampleTime(orig[len(orig)-1]) {
		t.Fatalf("the newest sample is not stored: %d rows", len(rows))
	}
	j := 0
	for _, o := range orig {
		to := sampleTime(o)
		for j+1 < len(rows) && sampleTime(rows[j+1]) <= to {
			j++
		}
		a := rows[j]
		if sampleTime(a) > to {
			t.Fatalf("no stored row at or before %d (first sample not stored)", to)
		}
		rec := f64(a)
		if sampleTime(a) != to {
			b := rows[j+1]
			ta, tb := float64(sampleTime(a)), float64(sampleTime(b))
			rec = f64(a) + (f64(b)-f64(a))*(float64(to)-ta)/(tb-ta)
		}
		if e := math.Abs(rec - f64(o)); e > dev*(1+1e-9)+1e-9 {
			t.Fatalf("sample at %d = %v, reconstructed %v: error %v over the deviation %v", to, f64(o), rec, e, dev)
		}
	}
}

// checkHold asserts that each sample is within band of the stored value
// before it (deadband, read as "holds until the next").
func checkHold(t *testing.T, orig, rows []model.Sample, band float64) {
	t.Helper()
	j := 0
	for _, o := range orig {
		for j+1 < len(rows) && sampleTime(rows[j+1]) <= sampleTime(o) {
			j++
		}
		if sampleTime(rows[j]) > sampleTime(o) {
			t.Fatal("first sample not stored")
		}
		if e := math.Abs(f64(rows[j]) - f64(o)); e > band {
			t.Fatalf("sample at %d = %v, stored value before it %v: %v over the band %v", sampleTime(o), f64(o), f64(rows[j]), e, band)
		}
	}
}

// checkHeartbeat asserts stored rows are at most maxIv apart (plus one
// sample spacing, 2 s at most).
func checkHeartbeat(t *testing.T, rows []model.Sample, maxIv time.Duration) {
	t.Helper()
	for i := 1; i < len(rows); i++ {
		if gap := time.Duration(sampleTime(rows[i]) - sampleTime(rows[i-1])); gap > maxIv+2*time.Second {
			t.Fatalf("stored rows %v apart, max_interval %v", gap, maxIv)
		}
	}
}

// TestCompressionErrorBound is the property: over many seeds and shapes,
// in random batches with failed writes, what is stored reconstructs every
// sample within the deviation (swinging door: linear interpolation;
// deadband: the value holds), with a heartbeat, and keeps fewer rows.
func TestCompressionErrorBound(t *testing.T) {
	seeds := 40
	if testing.Short() {
		seeds = 8
	}
	for _, method := range []string{MethodSwingingDoor, MethodDeadband} {
		for _, shape := range []string{"walk", "sine", "steps", "noisy"} {
			t.Run(method+"/"+shape, func(t *testing.T) {
				var kept, total int
				for seed := range seeds {
					rng := rand.New(rand.NewPCG(uint64(seed), 7))
					dev := 0.1 + rng.Float64()*2
					c, err := newCompressor(Compression{CompressionSettings: CompressionSettings{Method: method, Deviation: dev, MaxInterval: "5m"}})
					if err != nil {
						t.Fatal(err)
					}
					orig := signal(rng, shape, "a/x", 2000)
					d := disk{}
					feed(rng, c, d, orig)
					rows := d.rows("a/x")
					if method == MethodSwingingDoor {
						checkLinear(t, orig, rows, dev)
					} else {
						checkHold(t, orig, rows, dev)
					}
					checkHeartbeat(t, rows, 5*time.Minute)
					kept += len(rows)
					total += len(orig)
				}
				if kept >= total/2 {
					t.Errorf("kept %d of %d samples: compression does little", kept, total)
				}
				t.Logf("kept %d of %d (%.1f%%)", kept, total, 100*float64(kept)/float64(total))
			})
		}
	}
}

// TestCompressionKeeps: exact counts on simple signals, and what is
// always stored.
func TestCompressionKeeps(t *testing.T) {
	sec := int64(time.Second)
	mk := func(n int, f func(i int) (model.Value, model.Quality)) []model.Sample {
		out := make([]model.Sample, n)
		for i := range out {
			v, q := f(i)
			out[i] = model.Sample{Path: "a/x", Value: v, Quality: q, SourceTime: day0 + int64(i)*sec}
		}
		return out
	}
	good := model.Quality{}
	bad := model.Quality{Code: model.Bad, Reason: "device unreachable"}
	for _, tc := range []struct {
		name   string
		set    CompressionSettings
		in     []model.Sample
		wantAt []int // indexes of the samples stored
	}{
		{"ramp is two points", CompressionSettings{Method: MethodSwingingDoor, Deviation: 0.01, MaxInterval: "1h"},
			mk(1000, func(i int) (model.Value, model.Quality) { return model.Float(float64(i) * 0.5), good }), []int{0, 999}},
		{"flat line gets a heartbeat", CompressionSettings{Method: MethodSwingingDoor, Deviation: 1, MaxInterval: "1m"},
			mk(181, func(int) (model.Value, model.Quality) { return model.Float(3), good }), []int{0, 60, 120, 180}},
		{"deadband heartbeat", CompressionSettings{Method: MethodDeadband, Deviation: 1, MaxInterval: "1m"},
			mk(150, func(int) (model.Value, model.Quality) { return model.Int(3), good }), []int{0, 60, 120}},
		{"deadband from the stored value, not the last", CompressionSettings{Method: MethodDeadband, Deviation: 1},
			mk(10, func(i int) (model.Value, model.Quality) { return model.Float(float64(i) * 0.4), good }), []int{0, 3, 6, 9}},
		{"percent of span", CompressionSettings{Method: MethodDeadband, Percent: 10, Span: 10},
			mk(10, func(i int) (model.Value, model.Quality) { return model.Float(float64(i) * 0.4), good }), []int{0, 3, 6, 9}},
		{"quality change always kept", CompressionSettings{Method: MethodSwingingDoor, Deviation: 100, MaxInterval: "1h"},
			mk(10, func(i int) (model.Value, model.Quality) {
				if i >= 4 && i < 7 {
					return model.Float(1), bad
				}
				return model.Float(1), good
			}), []int{0, 3, 4, 6, 7, 9}},
		{"deadband quality change", CompressionSettings{Method: MethodDeadband, Deviation: 100},
			mk(6, func(i int) (model.Value, model.Quality) {
				if i == 3 {
					return model.Float(1), bad
				}
				return model.Float(1), good
			}), []int{0, 3, 4}},
		{"strings on change", CompressionSettings{Method: MethodSwingingDoor, Deviation: 1, MaxInterval: "1h"},
			mk(6, func(i int) (model.Value, model.Quality) {
				return model.String([]string{"a", "a", "b", "b", "b", "a"}[i]), good
			}), []int{0, 2, 5}},
		{"bools on change", CompressionSettings{Method: MethodDeadband, Deviation: 5},
			mk(5, func(i int) (model.Value, model.Quality) { return model.Bool(i >= 2), good }), []int{0, 2}},
		{"kind change", CompressionSettings{Method: MethodDeadband, Deviation: 5},
			mk(4, func(i int) (model.Value, model.Quality) {
				if i >= 2 {
					return model.Float(1), good
				}
				return model.Int(1), good
			}), []int{0, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := newCompressor(Compression{CompressionSettings: tc.set})
			if err != nil {
				t.Fatal(err)
			}
			d := disk{}
			for _, sm := range tc.in { // one sample per batch: the held point moves every time
				d.apply(c.process([]model.Sample{sm}))
				c.commit()
			}
			var got []int
			for _, r := range d.rows("a/x") {
				got = append(got, int((sampleTime(r)-day0)/sec))
			}
			if !slices.Equal(got, tc.wantAt) {
				t.Fatalf("stored %v, want %v", got, tc.wantAt)
			}
		})
	}
}

// TestCompressionOverrides: the first matching rule's settings apply;
// other tags take the block's.
func TestCompressionOverrides(t *testing.T) {
	c, err := newCompressor(Compression{
		CompressionSettings: CompressionSettings{Method: MethodDeadband, Deviation: 1000},
		Tags: []CompressionRule{
			{Match: []string{"raw/#"}, CompressionSettings: CompressionSettings{Method: MethodNone}},
			{Match: []string{"+/fine"}, CompressionSettings: CompressionSettings{Method: MethodDeadband, Deviation: 0.5}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var batch []model.Sample
	for i := range 10 {
		for _, p := range []string{"raw/a", "x/fine", "x/coarse"} {
			batch = append(batch, model.Sample{Path: p, Value: model.Float(float64(i)), SourceTime: day0 + int64(i)})
		}
	}
	d := disk{}
	d.apply(c.process(batch))
	c.commit()
	for p, want := range map[string]int{"raw/a": 10, "x/fine": 10, "x/coarse": 1} {
		if got := len(d[p]); got != want {
			t.Errorf("%s: %d rows, want %d", p, got, want)
		}
	}
}

// TestCompressedSinkRestart runs swinging door through the sink and its
// files, kills it (no Close) in the middle and goes on with a new sink on
// the same directory: what is on disk reconstructs every sample within
// the deviation, across the restart, and the counters add up.
func TestCompressedSinkRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	const dev = 0.5
	cfg := Config{Dir: dir, Compression: Compression{CompressionSettings: CompressionSettings{Method: MethodSwingingDoor, Deviation: dev}}}
	rng := rand.New(rand.NewPCG(3, 4))
	orig := append(signal(rng, "walk", "a/walk", 3000), signal(rng, "sine", "a/sine", 3000)...)
	slices.SortStableFunc(orig, func(a, b model.Sample) int { return int(sampleTime(a) - sampleTime(b)) })
	now := time.Unix(0, day0+dayNs/2)
	s1 := newSink(t, cfg, now)
	half := len(orig) / 2
	for b := range slices.Chunk(orig[:half], 250) {
		if err := s1.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	// s1 is not closed: a kill. Its held points are on disk already.
	s2 := newSink(t, cfg, now)
	for b := range slices.Chunk(orig[half:], 250) {
		if err := s2.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	var kept int
	for _, p := range []string{"a/walk", "a/sine"} {
		rows, err := s2.Store().Raw(ctx, p, day0, day0+dayNs, MaxRawLimit)
		if err != nil {
			t.Fatal(err)
		}
		checkLinear(t, modelOf(orig, p), rows, dev)
		kept += len(rows)
	}
	if kept >= len(orig)/3 {
		t.Errorf("kept %d of %d", kept, len(orig))
	}
	st1, st2 := s1.Status().Counters, s2.Status().Counters
	done := st1["historian_samples_stored"] + st1["historian_samples_compressed"] + st2["historian_samples_stored"] + st2["historian_samples_compressed"]
	// Each sink still holds one point per tag (stored provisionally).
	if done+4 != uint64(len(orig)) {
		t.Errorf("stored+compressed %d (+4 held), want %d: %v %v", done, len(orig), st1, st2)
	}
	t.Logf("kept %d of %d", kept, len(orig))
}

func TestCompressionConfig(t *testing.T) {
	for _, tc := range []struct {
		c   Compression
		key string // "" when valid
	}{
		{Compression{}, ""},
		{Compression{CompressionSettings: CompressionSettings{Method: MethodDeadband}}, ""},
		{Compression{CompressionSettings: CompressionSettings{Method: MethodSwingingDoor, Deviation: 0.1, MaxInterval: "1m"}}, ""},
		{Compression{CompressionSettings: CompressionSettings{Method: "sdt"}}, "compression.method"},
		{Compression{CompressionSettings: CompressionSettings{Method: MethodSwingingDoor}}, "compression.deviation"},
		{Compression{CompressionSettings: CompressionSettings{Method: MethodDeadband, Deviation: -1}}, "compression.deviation"},
		{Compression{CompressionSettings: CompressionSettings{Method: MethodDeadband, Deviation: math.NaN()}}, "compression.deviation"},
		{Compression{CompressionSettings: CompressionSettings{Method: MethodDeadband, Percent: 5}}, "compression.span"},
		{Compression{CompressionSettings: CompressionSettings{Method: MethodDeadband, Percent: 500, Span: 1}}, "compression.percent"},
		{Compression{CompressionSettings: CompressionSettings{Method: MethodDeadband, MaxInterval: "soon"}}, "compression.max_interval"},
		{Compression{Tags: []CompressionRule{{CompressionSettings: CompressionSettings{Method: MethodDeadband}}}}, "compression.tags[0].match"},
		{Compression{Tags: []CompressionRule{{Match: []string{"a/#/b"}}}}, "compression.tags[0].match[0]"},
		{Compression{Tags: []CompressionRule{{Match: []string{"a/#"}, CompressionSettings: CompressionSettings{Method: MethodSwingingDoor}}}}, "compression.tags[0].deviation"},
	} {
		err := Config{Compression: tc.c}.Validate()
		switch {
		case tc.key == "" && err != nil:
			t.Errorf("%+v: %v", tc.c, err)
		case tc.key != "" && (err == nil || !strings.Contains(err.Error(), tc.key+":")):
			t.Errorf("%+v: error %v, want one at %s", tc.c, err, tc.key)
		}
	}
}

// The sample decodes strictly (as the configuration loader does) and is
// valid, compression block included.
func TestSampleConfig(t *testing.T) {
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(SampleConfig))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Compression.Method != MethodSwingingDoor || c.Compression.Deviation != 0.05 || len(c.Compression.Tags) != 2 || c.Compression.Tags[1].Deviation != 0.2 {
		t.Fatalf("decoded %+v", c.Compression)
	}
	var bad Config
	dec = yaml.NewDecoder(strings.NewReader("compression: {method: deadband, devation: 1}"))
	dec.KnownFields(true)
	if err := dec.Decode(&bad); err == nil {
		t.Fatal("a misspelt key decoded")
	}
}
