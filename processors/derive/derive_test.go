package derive

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/weir-edge/weir/internal/conf"
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
		{"ok", `tags: [{path: a/p, expr: "v * i / 1000", vars: {v: a/v, i: a/i}}]`, ""},
		{"no tags", `tags: []`, "tags: at least one"},
		{"unknown name with position", "tags: [{path: a/p, expr: \"v *\\n  volts\", vars: {v: a/v}}]",
			`tags[0].expr: derived tag "a/p": expression error at 2:3: unknown name volts`},
		{"type error with position", `tags: [{path: a/p, expr: "v + s", vars: {v: a/v, s: a/s}, var_types: {s: string}}]`,
			`tags[0].expr: derived tag "a/p": expression error at 1:3: invalid operation: + (mismatched types float64 and string)`},
		{"syntax error", `tags: [{path: a/p, expr: "v * (1 +", vars: {v: a/v}}]`, `tags[0].expr: derived tag "a/p": expression error at 1:`},
		{"bool result for float tag", `tags: [{path: a/p, expr: "v > 1", vars: {v: a/v}}]`, `the expression yields bool but the tag's type is float`},
		{"float result for int tag", `tags: [{path: a/p, expr: "v * 2", vars: {v: a/v}, type: int}]`, `yields float64 but the tag's type is int (wrap it in round()`},
		{"int tag ok", `tags: [{path: a/p, expr: "n * 2", vars: {n: a/v}, var_types: {n: int}, type: int}]`, ""},
		{"bad path", `tags: [{path: "a/+", expr: "v", vars: {v: a/v}}]`, "tags[0].path: "},
		{"duplicate path", `tags: [{path: a/p, expr: "v", vars: {v: a/v}}, {path: a/p, expr: "v", vars: {v: a/v}}]`, `tags[1].path: "a/p" is already derived by tags[0]`},
		{"no vars", `tags: [{path: a/p, expr: "1"}]`, "tags[0].vars: at least one input"},
		{"bad var name", `tags: [{path: a/p, expr: "1", vars: {"1x": a/v}}]`, `tags[0].vars.1x: "1x" is not a valid name`},
		{"bad var path", `tags: [{path: a/p, expr: "v", vars: {v: "a//b"}}]`, "tags[0].vars.v: "},
		{"self input", `tags: [{path: a/p, expr: "v", vars: {v: a/p}}]`, "tags[0].vars.v: a derived tag cannot be its own input"},
		{"var_types unknown var", `tags: [{path: a/p, expr: "v", vars: {v: a/v}, var_types: {w: int}}]`, `tags[0].var_types.w: no var "w"`},
		{"var_types bad type", `tags: [{path: a/p, expr: "v", vars: {v: a/v}, var_types: {v: double}}]`, `tags[0].var_types.v: "double" is not one of`},
		{"bad on", `tags: [{path: a/p, expr: "v", vars: {v: a/v}, on: some}]`, "tags[0].on:"},
		{"bad type", `tags: [{path: a/p, expr: "v", vars: {v: a/v}, type: decimal}]`, "tags[0].type:"},
		{"missing expr", `tags: [{path: a/p, vars: {v: a/v}}]`, "tags[0].expr: is required"},
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
				t.Fatalf("err = %v\nwant %q", err, tt.wantErr)
			}
			if _, err := New(c, nil); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
}

func TestExprErrorIsAFieldError(t *testing.T) {
	c := Config{Tags: []Tag{{Path: "a/p", Expr: "x +", Vars: map[string]string{"x": "a/x"}}, {Path: "a/q", Expr: "y", Vars: map[string]string{"y": "a/y"}}}}
	err := c.Validate()
	var fe *conf.FieldError
	var ee *ExprError
	if !errors.As(err, &fe) || fe.Path != "tags[0].expr" || !errors.As(err, &ee) || ee.Tag != "a/p" || ee.Line != 1 {
		t.Fatalf("err = %#v", err)
	}
}

type step struct {
	in       []model.Sample
	want     string // "" = no derived output; else value string or "bad: reason" / "uncertain:value"
	wantTime int64
}

func smp(path string, v model.Value, t int64) model.Sample {
	return model.Sample{Path: path, Value: v, SourceTime: t, EdgeTime: t + 1}
}

func TestCompute(t *testing.T) {
	f := model.Float
	bad := func(path string, t int64) model.Sample {
		return model.Sample{Path: path, Quality: model.Quality{Code: model.Bad, Reason: "timeout"}, SourceTime: t, EdgeTime: t + 1}
	}
	unc := func(s model.Sample) model.Sample { s.Quality = model.Quality{Code: model.Uncertain}; return s }
	power := Tag{Path: "d/p", Expr: "v * i / 1000", Vars: map[string]string{"v": "a/v", "i": "a/i"}}
	tests := []struct {
		name  string
		tag   Tag
		steps []step
	}{
		{"waits for every input, then any", power, []step{
			{in: []model.Sample{smp("a/v", f(230), 10)}},
			{in: []model.Sample{smp("a/i", f(10), 20)}, want: "2.3", wantTime: 20},
			{in: []model.Sample{smp("a/v", f(200), 30)}, want: "2", wantTime: 30},
		}},
		{"one result per batch", power, []step{
			{in: []model.Sample{smp("a/v", f(1000), 10), smp("a/i", f(1), 12), smp("a/v", f(2000), 11)}, want: "2", wantTime: 12},
		}},
		{"on all", Tag{Path: "d/p", Expr: "v + i", Vars: map[string]string{"v": "a/v", "i": "a/i"}, On: "all"}, []step{
			{in: []model.Sample{smp("a/v", f(1), 1), smp("a/i", f(2), 2)}, want: "3", wantTime: 2},
			{in: []model.Sample{smp("a/v", f(5), 3)}},
			{in: []model.Sample{smp("a/v", f(6), 4)}},
			{in: []model.Sample{smp("a/i", f(1), 5)}, want: "7", wantTime: 5},
		}},
		{"bad input makes it bad", power, []step{
			{in: []model.Sample{smp("a/v", f(230), 10), smp("a/i", f(10), 10)}, want: "2.3", wantTime: 10},
			{in: []model.Sample{bad("a/i", 20)}, want: "bad: input i bad", wantTime: 20},
			{in: []model.Sample{smp("a/i", f(20), 30)}, want: "4.6", wantTime: 30},
		}},
		{"uncertain input", power, []step{
			{in: []model.Sample{smp("a/v", f(1000), 10), unc(smp("a/i", f(1), 10))}, want: "uncertain: 1", wantTime: 10},
		}},
		{"type mismatch is a bad input", power, []step{
			{in: []model.Sample{smp("a/v", model.String("x"), 1), smp("a/i", f(1), 1)}, want: "bad: input v does not fit type float"},
		}},
		{"int input to float var", power, []step{
			{in: []model.Sample{smp("a/v", model.Int(1000), 1), smp("a/i", model.Uint(3), 1)}, want: "3", wantTime: 1},
		}},
		{"float division by zero is bad", Tag{Path: "d/p", Expr: "a / b", Vars: map[string]string{"a": "a/a", "b": "a/b"}}, []step{
			{in: []model.Sample{smp("a/a", f(1), 1), smp("a/b", f(0), 1)}, want: "bad: " + ReasonNonFinite, wantTime: 1},
			{in: []model.Sample{smp("a/b", f(4), 2)}, want: "0.25", wantTime: 2},
		}},
		{"NaN input gives a bad result", Tag{Path: "d/p", Expr: "a * 2", Vars: map[string]string{"a": "a/a"}}, []step{
			{in: []model.Sample{smp("a/a", f(math.NaN()), 1)}, want: "bad: " + ReasonNonFinite, wantTime: 1},
		}},
		{"NaN handled in the expression", Tag{Path: "d/p", Expr: "a == a ? a : 0.0", Vars: map[string]string{"a": "a/a"}}, []step{
			{in: []model.Sample{smp("a/a", f(math.NaN()), 1)}, want: "0", wantTime: 1},
		}},
		{"integer modulo by zero is a runtime error", Tag{Path: "d/p", Expr: "a % b", Type: "int", Vars: map[string]string{"a": "a/a", "b": "a/b"}, VarTypes: map[string]string{"a": "int", "b": "int"}}, []step{
			{in: []model.Sample{smp("a/a", model.Int(7), 1), smp("a/b", model.Int(0), 1)}, want: "bad: expression: runtime error: integer divide by zero", wantTime: 1},
			{in: []model.Sample{smp("a/b", model.Int(4), 2)}, want: "3", wantTime: 2},
		}},
		{"int var refuses a fraction", Tag{Path: "d/p", Expr: "a * 2", Type: "int", Vars: map[string]string{"a": "a/a"}, VarTypes: map[string]string{"a": "int"}}, []step{
			{in: []model.Sample{smp("a/a", f(1.5), 1)}, want: "bad: input a does not fit type int", wantTime: 1},
			{in: []model.Sample{smp("a/a", f(2), 2)}, want: "4", wantTime: 2},
		}},
		{"uint result negative is bad", Tag{Path: "d/p", Expr: "a - 5", Type: "uint", Vars: map[string]string{"a": "a/a"}, VarTypes: map[string]string{"a": "uint"}}, []step{
			{in: []model.Sample{smp("a/a", model.Uint(3), 1)}, want: "bad: " + ReasonNotInteger, wantTime: 1},
			{in: []model.Sample{smp("a/a", model.Uint(7), 2)}, want: "2", wantTime: 2},
		}},
		{"bool result", Tag{Path: "d/p", Expr: "t > limit && on", Type: "bool", Vars: map[string]string{"t": "a/t", "limit": "a/l", "on": "a/on"}, VarTypes: map[string]string{"on": "bool"}}, []step{
			{in: []model.Sample{smp("a/t", f(90), 1), smp("a/l", f(80), 1), smp("a/on", model.Bool(true), 1)}, want: "true", wantTime: 1},
		}},
		{"string result", Tag{Path: "d/p", Expr: `lot + "-" + string(n)`, Type: "string", Vars: map[string]string{"lot": "a/lot", "n": "a/n"}, VarTypes: map[string]string{"lot": "string", "n": "int"}}, []step{
			{in: []model.Sample{smp("a/lot", model.String("L7"), 1), smp("a/n", model.Int(3), 1)}, want: `"L7-3"`, wantTime: 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New(Config{Tags: []Tag{tt.tag}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i, st := range tt.steps {
				in := append([]model.Sample(nil), st.in...)
				out := p.Process(in)
				if len(out) < len(st.in) {
					t.Fatalf("step %d: inputs were removed", i)
				}
				derived := out[len(st.in):]
				if st.want == "" {
					if len(derived) != 0 {
						t.Fatalf("step %d: unexpected output %+v", i, derived)
					}
					continue
				}
				if len(derived) != 1 {
					t.Fatalf("step %d: %d outputs, want 1", i, len(derived))
				}
				d := derived[0]
				if got := describe(d); got != st.want {
					t.Fatalf("step %d: got %s, want %s", i, got, st.want)
				}
				if d.Path != "d/p" || (st.wantTime != 0 && (d.SourceTime != st.wantTime || d.EdgeTime != st.wantTime+1)) {
					t.Fatalf("step %d: path/time %s %d %d, want time %d", i, d.Path, d.SourceTime, d.EdgeTime, st.wantTime)
				}
			}
		})
	}
}

func describe(s model.Sample) string {
	switch s.Quality.Code {
	case model.Bad:
		if s.Value.IsValid() {
			return "bad with a value"
		}
		return "bad: " + s.Quality.Reason
	case model.Uncertain:
		return "uncertain: " + s.Value.String()
	}
	return s.Value.String()
}

func TestChainedDerivedTags(t *testing.T) {
	p, err := New(Config{Tags: []Tag{
		{Path: "d/kw", Expr: "v * i / 1000", Vars: map[string]string{"v": "a/v", "i": "a/i"}},
		{Path: "d/hp", Expr: "kw * 1.341", Vars: map[string]string{"kw": "d/kw"}},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := p.Process([]model.Sample{smp("a/v", model.Float(1000), 5), smp("a/i", model.Float(10), 5)})
	if len(out) != 4 || out[2].Path != "d/kw" || out[3].Path != "d/hp" || math.Abs(out[3].Value.AsFloat()-13.41) > 1e-9 {
		t.Fatalf("got %+v", out)
	}
	if p.Status().Counters["computed"] != 2 {
		t.Fatalf("status %+v", p.Status())
	}
}

func BenchmarkProcess(b *testing.B) {
	p, err := New(Config{Tags: []Tag{{Path: "d/p", Expr: "v * i / 1000", Vars: map[string]string{"v": "a/v", "i": "a/i"}}}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	src := make([]model.Sample, 100)
	for i := range src {
		src[i] = smp("other/"+strconv.Itoa(i), model.Float(1), 1)
	}
	src[0] = smp("a/v", model.Float(230), 1)
	src[1] = smp("a/i", model.Float(10), 1)
	batch := make([]model.Sample, len(src), len(src)+1)
	b.ReportAllocs()
	for b.Loop() {
		copy(batch, src)
		p.Process(batch[:len(src)])
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(src)), "ns/sample")
}
