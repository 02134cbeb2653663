package scale

import (
	"math"
	"strconv"
	"strings"
	"testing"

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
	tests := []struct {
		name, doc, wantErr string
	}{
		{"no rules", "rules: []", "rules: at least one rule"},
		{"empty rule", "rules: [{match: [a]}]", "rules[0]: rule does nothing"},
		{"bad match", "rules: [{match: ['a/#/b'], scale: 2}]", "rules[0].match[0]: "},
		{"unknown unit", "rules: [{convert: {from: degC, to: furlong}}]", "rules[0].convert.to: unknown unit"},
		{"dimension mismatch", "rules: [{convert: {from: bar, to: degC}}]", "rules[0].convert: cannot convert bar (pressure) to degC (temperature)"},
		{"clamp without bounds", "rules: [{clamp: {}}]", "rules[0].clamp: set min, max"},
		{"clamp min>max", "rules: [{clamp: {min: 2, max: 1}}]", "min (2) must not exceed max (1)"},
		{"clamp action", "rules: [{clamp: {min: 0, action: wrap}}]", "rules[0].clamp.action:"},
		{"cast target", "rules: [{cast: {to: int32}}]", "rules[0].cast.to:"},
		{"cast rounding", "rules: [{cast: {to: int, rounding: up}}]", "rules[0].cast.rounding:"},
		{"cast overflow", "rules: [{cast: {to: int, overflow: wrap}}]", "rules[0].cast.overflow:"},
		{"nan policy", "rules: [{nan: zero}]", "rules[0].nan:"},
		{"infinite scale", "rules: [{scale: .inf}]", "rules[0].scale: must be a finite number"},
		{"second rule", "rules: [{scale: 1}, {cast: {to: x}}]", "rules[1].cast.to"},
		{"ok minimal", "rules: [{scale: 2}]", ""},
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
				t.Fatal("New accepted an invalid config")
			}
		})
	}
}

func f(v float64) *float64 { return &v }

func sample(path string, v model.Value) model.Sample {
	return model.Sample{Path: path, Value: v, SourceTime: 1, EdgeTime: 2}
}

func TestProcess(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name    string
		rule    Rule
		in      model.Value
		inQ     model.Quality
		want    model.Value // ignored when dropped
		wantQ   model.Quality
		dropped bool
	}{
		{"scale offset int", Rule{Scale: f(0.1), Offset: f(-40)}, model.Int(650), model.Quality{}, model.Float(650*0.1 - 40), model.Quality{}, false},
		{"offset only uint", Rule{Offset: f(1)}, model.Uint(1), model.Quality{}, model.Float(2), model.Quality{}, false},
		{"scale leaves string", Rule{Scale: f(2)}, model.String("x"), model.Quality{}, model.String("x"), model.Quality{}, false},
		{"scale leaves bool", Rule{Scale: f(2)}, model.Bool(true), model.Quality{}, model.Bool(true), model.Quality{}, false},
		{"bad sample untouched", Rule{Scale: f(2), Cast: &Cast{To: "int"}}, model.Value{}, model.Quality{Code: model.Bad, Reason: "timeout"}, model.Value{}, model.Quality{Code: model.Bad, Reason: "timeout"}, false},
		{"degC to degF", Rule{Convert: &Convert{"degC", "degF"}}, model.Float(100), model.Quality{}, model.Float(212), model.Quality{}, false},
		{"degF to K", Rule{Convert: &Convert{"°F", "K"}}, model.Float(32), model.Quality{}, model.Float(273.15), model.Quality{}, false},
		{"bar to psi", Rule{Convert: &Convert{"bar", "psi"}}, model.Float(1), model.Quality{}, model.Float(14.503773773020923), model.Quality{}, false},
		{"m3/h to l/min", Rule{Convert: &Convert{"m³/h", "l/min"}}, model.Float(6), model.Quality{}, model.Float(100), model.Quality{}, false},
		{"scale then convert", Rule{Scale: f(0.1), Convert: &Convert{"kPa", "bar"}}, model.Int(1000), model.Quality{}, model.Float(1), model.Quality{}, false},
		{"NaN keep", Rule{Scale: f(2)}, model.Float(nan), model.Quality{}, model.Float(nan), model.Quality{}, false},
		{"NaN bad", Rule{Scale: f(2), NaN: "bad"}, model.Float(nan), model.Quality{}, model.Float(nan), model.Quality{Code: model.Bad, Reason: ReasonNaN}, false},
		{"NaN drop", Rule{NaN: "drop"}, model.Float(nan), model.Quality{}, model.Value{}, model.Quality{}, true},
		{"NaN not clamped", Rule{Clamp: &Clamp{Min: f(0), Max: f(1)}}, model.Float(nan), model.Quality{}, model.Float(nan), model.Quality{}, false},
		{"clamp above", Rule{Clamp: &Clamp{Max: f(100)}}, model.Float(120), model.Quality{}, model.Float(100), model.Quality{}, false},
		{"clamp below int rounds inward", Rule{Clamp: &Clamp{Min: f(-1.5)}}, model.Int(-7), model.Quality{}, model.Int(-1), model.Quality{}, false},
		{"clamp uint max", Rule{Clamp: &Clamp{Max: f(10.7)}}, model.Uint(99), model.Quality{}, model.Uint(10), model.Quality{}, false},
		{"clamp +Inf", Rule{Clamp: &Clamp{Max: f(1)}}, model.Float(math.Inf(1)), model.Quality{}, model.Float(1), model.Quality{}, false},
		{"in range untouched", Rule{Clamp: &Clamp{Min: f(0), Max: f(1)}}, model.Float(0.5), model.Quality{}, model.Float(0.5), model.Quality{}, false},
		{"out of range uncertain", Rule{Clamp: &Clamp{Max: f(1), Action: "uncertain"}}, model.Float(2), model.Quality{}, model.Float(2), model.Quality{Code: model.Uncertain, Reason: ReasonAboveMax}, false},
		{"out of range bad", Rule{Clamp: &Clamp{Min: f(0), Action: "bad"}}, model.Int(-1), model.Quality{}, model.Int(-1), model.Quality{Code: model.Bad, Reason: ReasonBelowMin}, false},
		{"uncertain never raises bad", Rule{Clamp: &Clamp{Max: f(1), Action: "uncertain"}}, model.Float(2), model.Quality{Code: model.Bad, Reason: "x"}, model.Float(2), model.Quality{Code: model.Bad, Reason: "x"}, false},
		{"out of range drop", Rule{Clamp: &Clamp{Max: f(1), Action: "drop"}}, model.Float(2), model.Quality{}, model.Value{}, model.Quality{}, true},
		{"cast float to int nearest", Rule{Cast: &Cast{To: "int"}}, model.Float(-2.5), model.Quality{}, model.Int(-3), model.Quality{}, false},
		{"cast half_even", Rule{Cast: &Cast{To: "int", Rounding: "half_even"}}, model.Float(2.5), model.Quality{}, model.Int(2), model.Quality{}, false},
		{"cast floor", Rule{Cast: &Cast{To: "int", Rounding: "floor"}}, model.Float(-0.1), model.Quality{}, model.Int(-1), model.Quality{}, false},
		{"cast ceil", Rule{Cast: &Cast{To: "uint", Rounding: "ceil"}}, model.Float(0.1), model.Quality{}, model.Uint(1), model.Quality{}, false},
		{"cast trunc", Rule{Cast: &Cast{To: "int", Rounding: "trunc"}}, model.Float(-1.9), model.Quality{}, model.Int(-1), model.Quality{}, false},
		{"cast overflow saturates", Rule{Cast: &Cast{To: "int"}}, model.Float(1e300), model.Quality{}, model.Int(math.MaxInt64), model.Quality{}, false},
		{"cast 2^63 saturates", Rule{Cast: &Cast{To: "int"}}, model.Float(9223372036854775808), model.Quality{}, model.Int(math.MaxInt64), model.Quality{}, false},
		{"cast -2^63 fits", Rule{Cast: &Cast{To: "int"}}, model.Float(-9223372036854775808), model.Quality{}, model.Int(math.MinInt64), model.Quality{}, false},
		{"cast overflow bad", Rule{Cast: &Cast{To: "int", Overflow: "bad"}}, model.Float(math.Inf(-1)), model.Quality{}, model.Value{}, model.Quality{Code: model.Bad, Reason: ReasonOverflow}, false},
		{"cast negative to uint saturates", Rule{Cast: &Cast{To: "uint"}}, model.Int(-5), model.Quality{}, model.Uint(0), model.Quality{}, false},
		{"cast big uint to int", Rule{Cast: &Cast{To: "int", Overflow: "bad"}}, model.Uint(math.MaxUint64), model.Quality{}, model.Value{}, model.Quality{Code: model.Bad, Reason: ReasonOverflow}, false},
		{"cast NaN to int is bad", Rule{Cast: &Cast{To: "int"}}, model.Float(nan), model.Quality{}, model.Value{}, model.Quality{Code: model.Bad, Reason: ReasonCastNaN}, false},
		{"cast string to int", Rule{Cast: &Cast{To: "int"}}, model.String(" 42 "), model.Quality{}, model.Int(42), model.Quality{}, false},
		{"cast decimal string to int", Rule{Cast: &Cast{To: "int"}}, model.String("41.6"), model.Quality{}, model.Int(42), model.Quality{}, false},
		{"cast junk string", Rule{Cast: &Cast{To: "float"}}, model.String("n/a"), model.Quality{}, model.Value{}, model.Quality{Code: model.Bad, Reason: ReasonNotNumber}, false},
		{"cast int to float", Rule{Cast: &Cast{To: "float"}}, model.Int(-3), model.Quality{}, model.Float(-3), model.Quality{}, false},
		{"cast bool to uint", Rule{Cast: &Cast{To: "uint"}}, model.Bool(true), model.Quality{}, model.Uint(1), model.Quality{}, false},
		{"cast float to bool", Rule{Cast: &Cast{To: "bool"}}, model.Float(0.001), model.Quality{}, model.Bool(true), model.Quality{}, false},
		{"cast string to bool", Rule{Cast: &Cast{To: "bool"}}, model.String("FALSE"), model.Quality{}, model.Bool(false), model.Quality{}, false},
		{"cast NaN to bool", Rule{Cast: &Cast{To: "bool"}}, model.Float(nan), model.Quality{}, model.Value{}, model.Quality{Code: model.Bad, Reason: ReasonNotBool}, false},
		{"cast float to string", Rule{Cast: &Cast{To: "string"}}, model.Float(0.1), model.Quality{}, model.String("0.1"), model.Quality{}, false},
		{"cast array to int", Rule{Cast: &Cast{To: "int"}}, model.Array([]model.Value{model.Int(1)}), model.Quality{}, model.Value{}, model.Quality{Code: model.Bad, Reason: ReasonCastArray}, false},
		{"scale clamp cast", Rule{Scale: f(10), Clamp: &Clamp{Max: f(100)}, Cast: &Cast{To: "uint"}}, model.Float(12.34), model.Quality{}, model.Uint(100), model.Quality{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.rule
			r.Match = []string{"a/+"}
			p, err := New(Config{Rules: []Rule{r}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			in := sample("a/x", tt.in)
			in.Quality = tt.inQ
			other := sample("b/y", model.Float(7))
			out := p.Process([]model.Sample{other, in, other})
			if tt.dropped {
				if len(out) != 2 {
					t.Fatalf("got %d samples, want the matching one dropped", len(out))
				}
				return
			}
			if len(out) != 3 || !out[0].Value.Equal(other.Value) || !out[2].Value.Equal(other.Value) {
				t.Fatalf("non-matching samples changed: %+v", out)
			}
			got := out[1]
			if !sameValue(got.Value, tt.want) || got.Quality != tt.wantQ {
				t.Fatalf("got %#v %v, want %#v %v", got.Value, got.Quality, tt.want, tt.wantQ)
			}
			if got.SourceTime != 1 || got.EdgeTime != 2 || got.Path != "a/x" {
				t.Fatalf("metadata changed: %+v", got)
			}
		})
	}
}

// sameValue is Equal with a tolerance for floats produced by arithmetic.
func sameValue(a, b model.Value) bool {
	if a.Kind() == model.KindFloat && b.Kind() == model.KindFloat {
		x, y := a.AsFloat(), b.AsFloat()
		if math.IsNaN(x) || math.IsNaN(y) {
			return math.IsNaN(x) && math.IsNaN(y)
		}
		return math.Abs(x-y) <= 1e-9*math.Max(1, math.Abs(y))
	}
	return a.Equal(b)
}

func TestFirstMatchingRuleWins(t *testing.T) {
	p, err := New(Config{Rules: []Rule{
		{Match: []string{"a/special"}, Scale: f(100)},
		{Match: []string{"a/+"}, Scale: f(2)},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := p.Process([]model.Sample{sample("a/special", model.Float(1)), sample("a/other", model.Float(1))})
	if out[0].Value.AsFloat() != 100 || out[1].Value.AsFloat() != 2 {
		t.Fatalf("got %v %v", out[0].Value, out[1].Value)
	}
	if st := p.Status(); st.Counters["dropped"] != 0 {
		t.Fatalf("status %+v", st)
	}
}

func TestUnitTableRoundTrips(t *testing.T) {
	for name, u := range units {
		for name2, u2 := range units {
			if u.dim != u2.dim {
				continue
			}
			a, b := conversion(u, u2)
			c, d := conversion(u2, u)
			x := 37.5
			if back := c*(a*x+b) + d; math.Abs(back-x) > 1e-9 {
				t.Errorf("%s -> %s -> %s: %v became %v", name, name2, name, x, back)
			}
		}
	}
}

func BenchmarkProcess(b *testing.B) {
	p, err := New(Config{Rules: []Rule{{
		Match:   []string{"acme/plant1/+/line1/#"},
		Scale:   f(0.1),
		Convert: &Convert{"degC", "degF"},
		Clamp:   &Clamp{Min: f(-40), Max: f(300)},
	}}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	src := make([]model.Sample, 1000)
	for i := range src {
		src[i] = sample("acme/plant1/filling/line1/filler/t"+strconv.Itoa(i%200), model.Int(int64(i)))
	}
	batch := make([]model.Sample, len(src))
	b.ReportAllocs()
	for b.Loop() {
		copy(batch, src)
		p.Process(batch)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(src)), "ns/sample")
}

// TestDecimalResults: values configured as decimals come out as those
// decimals in the JSON every sink writes, not as float64 rounding noise
// (-0.8200000000000001); what is not a short decimal keeps its precision.
func TestDecimalResults(t *testing.T) {
	tests := []struct {
		name string
		rule Rule
		in   model.Value
		want string // payload JSON of the value
	}{
		{"-82 × 0.01", Rule{Scale: f(0.01)}, model.Int(-82), "-0.82"},
		{"0.1 + 0.2 via offset", Rule{Offset: f(0.2)}, model.Float(0.1), "0.3"},
		{"float32 0.82 register × 100", Rule{Scale: f(100)}, model.Float32(0.82), "82"},
		{"float32 0.57 × 100", Rule{Scale: f(100)}, model.Float32(0.57), "57"},
		{"degC to degF", Rule{Convert: &Convert{From: "degC", To: "degF"}}, model.Float(21.5), "70.7"},
		{"large uint × 0.001", Rule{Scale: f(0.001)}, model.Uint(18_000_000_000_123), "18000000000.123"},
		{"huge value untouched", Rule{Scale: f(0.01)}, model.Float(1e300), strconv.FormatFloat(ident(1e300)*ident(0.01), 'g', -1, 64)},
		{"full precision kept", Rule{Scale: f(2)}, model.Float(0.1234567890123456), strconv.FormatFloat(2*ident(0.1234567890123456), 'g', -1, 64)},
		{"NaN stays NaN (encoded null)", Rule{Scale: f(0.01)}, model.Float(math.NaN()), "null"},
		{"Inf stays Inf (encoded null)", Rule{Scale: f(0.01)}, model.Float(math.Inf(1)), "null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.rule.Match = []string{"#"}
			p, err := New(Config{Rules: []Rule{tt.rule}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			out := p.Process([]model.Sample{sample("a/b", tt.in)})
			if got := string(out[0].Value.AppendJSON(nil)); got != tt.want {
				t.Errorf("%v → %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

// ident keeps Go's exact constant arithmetic out of an expected value.
func ident(x float64) float64 { return x }
