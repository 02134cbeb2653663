package rate

import (
	"math"
	"os"
	"path/filepath"
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

func TestSampleConfigs(t *testing.T) {
	docs := map[string]string{"sample.yaml": SampleConfig}
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, f := range files {
		if strings.HasSuffix(f, ".bad.yaml") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs[f] = string(b)
	}
	for name, doc := range docs {
		t.Run(name, func(t *testing.T) {
			c := decodeStrict(t, doc)
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			if _, err := New(c, nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct{ name, doc, wantErr string }{
		{"no function", "replace: true", "function: is required"},
		{"unknown function", "function: derivative\nreplace: true", "function:"},
		{"no output", "function: rate", "output.path_suffix: set output.path_suffix"},
		{"both outputs", "function: rate\nreplace: true\noutput: {path_suffix: _r}", "replace: set replace or output.path_suffix, not both"},
		{"bad suffix", "function: rate\noutput: {path_suffix: /+/x}", "output.path_suffix:"},
		{"ma without samples", "function: moving_average\nreplace: true", "samples: must be between 1"},
		{"ewma alpha 0", "function: ewma\nreplace: true", "alpha: must be in (0, 1]"},
		{"ewma alpha > 1", "function: ewma\nalpha: 1.5\nreplace: true", "alpha: must be in (0, 1]"},
		{"rollover on ma", "function: moving_average\nsamples: 3\nrollover: 10\nreplace: true", "rollover: only used with function: rate"},
		{"alpha on rate", "function: rate\nalpha: 0.5\nreplace: true", "alpha: only used with function: ewma"},
		{"per on ewma", "function: ewma\nalpha: 0.5\nper: 1m\nreplace: true", "per: only used with function: rate"},
		{"bad match", "function: rate\nreplace: true\nmatch: ['#/a']", "match[0]:"},
		{"ok", "function: rate\nreplace: true", ""},
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
	t time.Duration // SourceTime offset
	q model.QualityCode
}

const none = "-" // no result for this input

func TestFunctions(t *testing.T) {
	u, i, f := model.Uint, model.Int, model.Float
	s := time.Second
	tests := []struct {
		name string
		cfg  Config
		in   []in
		want []string // result per input, none when there is none
	}{
		{"rate per second", Config{Function: FuncRate}, []in{{f(10), 0, 0}, {f(20), 2 * s, 0}, {f(15), 7 * s, 0}}, []string{none, "5", "-1"}},
		{"rate per minute", Config{Function: FuncRate, Per: time.Minute}, []in{{u(0), 0, 0}, {u(30), 10 * s, 0}}, []string{none, "180"}},
		{"16-bit rollover", Config{Function: FuncRate, Rollover: 65535}, []in{{u(65530), 0, 0}, {u(4), 1 * s, 0}}, []string{none, "10"}},
		{"32-bit rollover int kind", Config{Function: FuncRate, Rollover: math.MaxUint32}, []in{{i(math.MaxUint32 - 1), 0, 0}, {i(1), 1 * s, 0}}, []string{none, "3"}},
		{"64-bit counter exact", Config{Function: FuncRate}, []in{{u(1 << 62), 0, 0}, {u(1<<62 + 3), 1 * s, 0}}, []string{none, "3"}},
		{"float rollover", Config{Function: FuncRate, Rollover: 999}, []in{{f(998), 0, 0}, {f(1), 1 * s, 0}}, []string{none, "3"}},
		{"decrease without rollover is negative", Config{Function: FuncRate}, []in{{u(10), 0, 0}, {u(4), 2 * s, 0}}, []string{none, "-3"}},
		{"out of order skipped", Config{Function: FuncRate}, []in{{f(0), 10 * s, 0}, {f(5), 5 * s, 0}, {f(5), 10 * s, 0}, {f(10), 15 * s, 0}}, []string{none, none, none, "2"}},
		{"bad and NaN skipped", Config{Function: FuncRate}, []in{{f(0), 0, 0}, {model.Value{}, 1 * s, model.Bad}, {f(math.NaN()), 2 * s, 0}, {f(8), 4 * s, 0}}, []string{none, none, none, "2"}},
		{"moving average", Config{Function: FuncMovingAverage, Samples: 3}, []in{{f(3), 0, 0}, {f(6), 1 * s, 0}, {f(9), 2 * s, 0}, {f(12), 3 * s, 0}, {f(0), 3 * s, 0}, {f(0), 1 * s, 0}}, []string{"3", "4.5", "6", "9", "7", none}},
		{"moving average NaN skipped", Config{Function: FuncMovingAverage, Samples: 2}, []in{{f(2), 0, 0}, {f(math.NaN()), 1 * s, 0}, {f(4), 2 * s, 0}}, []string{"2", none, "3"}},
		{"ewma", Config{Function: FuncEWMA, Alpha: 0.5}, []in{{f(10), 0, 0}, {f(20), 1 * s, 0}, {f(20), 2 * s, 0}}, []string{"10", "15", "17.5"}},
		{"uncertain passes its quality", Config{Function: FuncEWMA, Alpha: 1}, []in{{f(1), 0, model.Uncertain}}, []string{"1?"}},
	}
	for _, tt := range tests {
		for _, replace := range []bool{false, true} {
			name := tt.name + "/suffix"
			if replace {
				name = tt.name + "/replace"
			}
			t.Run(name, func(t *testing.T) {
				cfg := tt.cfg
				cfg.Match = []string{"a/+"}
				if replace {
					cfg.Replace = true
				} else {
					cfg.Output.PathSuffix = "_out"
				}
				p, err := New(cfg, nil)
				if err != nil {
					t.Fatal(err)
				}
				for k, x := range tt.in {
					smp := model.Sample{Path: "a/x", Value: x.v, Quality: model.Quality{Code: x.q}, SourceTime: int64(x.t), EdgeTime: 7, Seq: 42}
					other := model.Sample{Path: "b/x", Value: model.Float(1)}
					out := p.Process([]model.Sample{other, smp})
					if out[0].Path != "b/x" {
						t.Fatal("non-matching sample changed")
					}
					var result []model.Sample
					if replace {
						result = out[1:]
						if len(result) == 0 && usable(&smp) && tt.want[k] != none {
							t.Fatalf("input %d: no output", k)
						}
						if len(result) == 1 && !usable(&smp) {
							if !result[0].Value.Equal(smp.Value) {
								t.Fatalf("input %d: unusable sample changed", k)
							}
							result = nil
						}
					} else {
						if len(out) < 2 || !out[1].Value.Equal(smp.Value) {
							t.Fatalf("input %d: input not passed unchanged: %+v", k, out)
						}
						result = out[2:]
						for _, r := range result {
							if r.Path != "a/x_out" || r.Seq != 0 {
								t.Fatalf("derived sample %+v", r)
							}
						}
					}
					got := none
					if len(result) == 1 {
						got = strconv.FormatFloat(result[0].Value.AsFloat(), 'g', 6, 64)
						if result[0].Quality.Code == model.Uncertain {
							got += "?"
						}
						if result[0].SourceTime != int64(x.t) || result[0].EdgeTime != 7 {
							t.Fatalf("input %d: timestamps %+v", k, result[0])
						}
					} else if len(result) > 1 {
						t.Fatalf("input %d: %d results", k, len(result))
					}
					if got != tt.want[k] {
						t.Fatalf("input %d (%v at %s): got %s, want %s", k, x.v, x.t, got, tt.want[k])
					}
				}
			})
		}
	}
}

func TestCountersAndMaxTags(t *testing.T) {
	p, _ := New(Config{Function: FuncRate, Rollover: 100, Replace: true, MaxTags: 1}, nil)
	p.Process([]model.Sample{{Path: "a", Value: model.Uint(90), SourceTime: 1e9}, {Path: "b", Value: model.Uint(1), SourceTime: 1e9}})
	p.Process([]model.Sample{{Path: "a", Value: model.Uint(5), SourceTime: 2e9}, {Path: "a", Value: model.Uint(5), SourceTime: 2e9}})
	st := p.Status().Counters
	if st["rollovers"] != 1 || st["out_of_order"] != 1 || st["untracked"] != 1 || st["computed"] != 1 {
		t.Fatalf("counters %v", st)
	}
}

func BenchmarkProcess(b *testing.B) {
	for _, fn := range []string{FuncRate, FuncMovingAverage, FuncEWMA} {
		b.Run(fn, func(b *testing.B) {
			cfg := Config{Function: fn, Replace: true, Rollover: 0}
			switch fn {
			case FuncMovingAverage:
				cfg.Samples = 10
			case FuncEWMA:
				cfg.Alpha = 0.1
			}
			p, err := New(cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			batch := make([]model.Sample, 1000)
			paths := make([]string, 200)
			for i := range paths {
				paths[i] = "acme/plant1/line1/c" + strconv.Itoa(i)
			}
			b.ReportAllocs()
			var ts int64
			for b.Loop() {
				for i := range batch {
					ts += 1e6
					batch[i] = model.Sample{Path: paths[i%len(paths)], Value: model.Uint(uint64(ts / 1e5)), SourceTime: ts}
				}
				p.Process(batch)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/sample")
		})
	}
}
