package payload

import (
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/weir-edge/weir/model"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	tsNs   = int64(1732567000123_456789) // ms part 1732567000123
	edgeNs = int64(1732567000125_000000)
)

func good(path string, v model.Value, seq uint64) model.Sample {
	return model.Sample{Path: path, Value: v, SourceTime: tsNs, EdgeTime: edgeNs, Seq: seq}
}

func TestAppendSample(t *testing.T) {
	tests := []struct {
		name string
		s    model.Sample
		want string
	}{
		{"float", good("a/t", model.Float(21.5), 42),
			`{"value":21.5,"quality":"good","ts":1732567000123,"edge_ts":1732567000125,"seq":42}`},
		{"integral float keeps fraction", good("a/t", model.Float(21), 1),
			`{"value":21.0,"quality":"good","ts":1732567000123,"edge_ts":1732567000125,"seq":1}`},
		{"float exponent", good("a/t", model.Float(1e21), 1),
			`{"value":1e+21,"quality":"good","ts":1732567000123,"edge_ts":1732567000125,"seq":1}`},
		{"int", good("a/t", model.Int(-7), 1),
			`{"value":-7,"quality":"good","ts":1732567000123,"edge_ts":1732567000125,"seq":1}`},
		{"uint max", good("a/t", model.Uint(math.MaxUint64), math.MaxUint64),
			`{"value":18446744073709551615,"quality":"good","ts":1732567000123,"edge_ts":1732567000125,"seq":18446744073709551615}`},
		{"bool", good("a/t", model.Bool(true), 1),
			`{"value":true,"quality":"good","ts":1732567000123,"edge_ts":1732567000125,"seq":1}`},
		{"string", good("a/t", model.String(`say "hi"`), 1),
			`{"value":"say \"hi\"","quality":"good","ts":1732567000123,"edge_ts":1732567000125,"seq":1}`},
		{"array", good("a/t", model.Array([]model.Value{model.Float(1), model.Float(math.NaN()), model.Float(2.5)}), 1),
			`{"value":[1.0,null,2.5],"quality":"good","ts":1732567000123,"edge_ts":1732567000125,"seq":1}`},
		{"NaN is null", good("a/t", model.Float(math.NaN()), 1),
			`{"value":null,"quality":"good","ts":1732567000123,"edge_ts":1732567000125,"seq":1}`},
		{"Inf is null", good("a/t", model.Float(math.Inf(-1)), 1),
			`{"value":null,"quality":"good","ts":1732567000123,"edge_ts":1732567000125,"seq":1}`},
		{"bad with reason", model.Sample{Quality: model.Quality{Code: model.Bad, Reason: model.ReasonUnreachable}, SourceTime: tsNs, EdgeTime: edgeNs, Seq: 9},
			`{"value":null,"quality":"bad","reason":"device unreachable","ts":1732567000123,"edge_ts":1732567000125,"seq":9}`},
		{"uncertain without reason", model.Sample{Value: model.Int(1), Quality: model.Quality{Code: model.Uncertain}, Seq: 2},
			`{"value":1,"quality":"uncertain","reason":"","ts":0,"edge_ts":0,"seq":2}`},
		{"good drops reason", model.Sample{Value: model.Int(1), Quality: model.Quality{Reason: "ignored"}},
			`{"value":1,"quality":"good","ts":0,"edge_ts":0,"seq":0}`},
		{"unknown quality is bad", model.Sample{Value: model.Int(1), Quality: model.Quality{Code: 9}},
			`{"value":1,"quality":"bad","reason":"","ts":0,"edge_ts":0,"seq":0}`},
		{"historical", model.Sample{Value: model.Int(1), Historical: true, Seq: 3},
			`{"value":1,"quality":"good","ts":0,"edge_ts":0,"seq":3,"historical":true}`},
		{"before 1970 floors", model.Sample{Value: model.Int(1), SourceTime: -1, EdgeTime: -1_000_000},
			`{"value":1,"quality":"good","ts":-1,"edge_ts":-1,"seq":0}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendSample([]byte("prefix:"), tt.s)
			if want := "prefix:" + tt.want; string(got) != want {
				t.Errorf("AppendSample\n got %s\nwant %s", got, want)
			}
			if !json.Valid(got[len("prefix:"):]) {
				t.Errorf("not valid JSON: %s", got)
			}
		})
	}
}

func TestAsset(t *testing.T) {
	tests := []struct{ path, asset, tag string }{
		{"ent/site/line1/temperature", "ent/site/line1", "temperature"},
		{"line1/speed", "line1", "speed"},
		{"temperature", "", "temperature"},
		{"", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			asset, tag := Asset(tt.path)
			if asset != tt.asset || tag != tt.tag {
				t.Errorf("Asset(%q) = %q, %q; want %q, %q", tt.path, asset, tag, tt.asset, tt.tag)
			}
		})
	}
}

func batchSamples() []model.Sample {
	return []model.Sample{
		good("ent/site/line1/temperature", model.Float(21.5), 42),
		good("ent/site/line1/running", model.Bool(true), 43),
		{Path: "ent/site/line1/speed", Quality: model.Quality{Code: model.Bad, Reason: model.ReasonTimeout}, SourceTime: tsNs, EdgeTime: edgeNs, Seq: 44},
		{Path: "ent/site/line1/recipe", Value: model.String("ä\"\n\x01"), SourceTime: tsNs, EdgeTime: edgeNs, Seq: 45, Historical: true},
	}
}

func TestAppendBatchGolden(t *testing.T) {
	got := AppendBatch(nil, batchSamples())
	if !json.Valid(got) {
		t.Fatalf("not valid JSON: %s", got)
	}
	golden := filepath.Join("testdata", "batch.golden.json")
	if *update {
		if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if !bytes.Equal(got, bytes.TrimSuffix(want, []byte("\n"))) {
		t.Errorf("AppendBatch\n got %s\nwant %s", got, want)
	}
}

func TestAppendBatchEmpty(t *testing.T) {
	if got := string(AppendBatch(nil, nil)); got != `{"samples":[]}` {
		t.Errorf("got %s", got)
	}
}

// TestTrickyStringsAreValidJSON feeds quotes, control characters, invalid
// UTF-8 and surrogate-range bytes through every string slot.
func TestTrickyStringsAreValidJSON(t *testing.T) {
	tricky := []string{
		``, `"`, `\`, `\"`, "\x00", "\x1f\x7f", "\n\r\t\b\f", "\xff", "a\xc3", "\xed\xa0\x80",
		"\u2028\u2029", "</script>", "😀", strings.Repeat("\"\\", 100), "\xf4\x90\x80\x80",
	}
	for _, s := range tricky {
		t.Run(strings.ToValidUTF8(s, "?"), func(t *testing.T) {
			smp := model.Sample{
				Path:    "a/t" + strings.ReplaceAll(s, "/", "_"),
				Value:   model.Array([]model.Value{model.String(s), model.String(s)}),
				Quality: model.Quality{Code: model.Uncertain, Reason: s},
			}
			one := AppendSample(nil, smp)
			batch := AppendBatch(nil, []model.Sample{smp, smp})
			for _, out := range [][]byte{one, batch} {
				if !json.Valid(out) {
					t.Fatalf("not valid JSON: %q", out)
				}
			}
			got, err := DecodeSample(one)
			if err != nil {
				t.Fatal(err)
			}
			want := string([]rune(s)) // each invalid byte becomes one U+FFFD
			if got.Quality.Reason != want || got.Value.Elems()[0].AsString() != want {
				t.Errorf("round trip: reason %q value %q, want %q", got.Quality.Reason, got.Value.Elems()[0].AsString(), want)
			}
			bs, err := DecodeBatch(batch, "a")
			if err != nil {
				t.Fatal(err)
			}
			if wantPath := "a/t" + strings.ReplaceAll(want, "/", "_"); bs[0].Path != wantPath {
				t.Errorf("batch path %q, want %q", bs[0].Path, wantPath)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   model.Sample
		want *model.Sample // nil: same as in, with ms timestamps
	}{
		{"float", good("", model.Float(21.5), 42), nil},
		{"integral float stays float", good("", model.Float(-3), 1), nil},
		{"negative zero", good("", model.Float(math.Copysign(0, -1)), 1), nil},
		{"tiny float", good("", model.Float(5e-324), 1), nil},
		{"max float", good("", model.Float(math.MaxFloat64), 1), nil},
		{"int min", good("", model.Int(math.MinInt64), 1), nil},
		{"uint max", good("", model.Uint(math.MaxUint64), 1), nil},
		{"bool false", good("", model.Bool(false), 1), nil},
		{"string", good("", model.String("x"), 1), nil},
		{"int array", good("", model.Array([]model.Value{model.Int(1), model.Int(-2)}), 1), nil},
		{"empty array", good("", model.Array([]model.Value{}), 1), nil},
		{"bad", model.Sample{Quality: model.Quality{Code: model.Bad, Reason: "r"}, SourceTime: tsNs, EdgeTime: edgeNs, Seq: 5}, nil},
		{"historical", model.Sample{Value: model.Int(1), Historical: true, Seq: 5}, nil},
		{"NaN becomes invalid", good("", model.Float(math.NaN()), 1), &model.Sample{SourceTime: 1732567000123_000000, EdgeTime: edgeNs, Seq: 1}},
		{"uint that fits int decodes as int", good("", model.Uint(5), 1), &model.Sample{Value: model.Int(5), SourceTime: 1732567000123_000000, EdgeTime: edgeNs, Seq: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want model.Sample
			if tt.want != nil {
				want = *tt.want
			} else {
				want = tt.in
				want.SourceTime = unixMilli(tt.in.SourceTime) * 1e6
				want.EdgeTime = unixMilli(tt.in.EdgeTime) * 1e6
			}
			got, err := DecodeSample(AppendSample(nil, tt.in))
			if err != nil {
				t.Fatal(err)
			}
			assertSample(t, got, want)

			tt.in.Path = "asset/tag"
			want.Path = tt.in.Path
			bs, err := DecodeBatch(AppendBatch(nil, []model.Sample{tt.in}), "asset")
			if err != nil {
				t.Fatal(err)
			}
			if len(bs) != 1 {
				t.Fatalf("batch decoded %d samples", len(bs))
			}
			assertSample(t, bs[0], want)
		})
	}
}

func assertSample(t *testing.T, got, want model.Sample) {
	t.Helper()
	if got.Path != want.Path || !got.Value.Equal(want.Value) || got.Quality != want.Quality ||
		got.SourceTime != want.SourceTime || got.EdgeTime != want.EdgeTime || got.Seq != want.Seq ||
		got.Historical != want.Historical {
		t.Errorf("got  %#v\nwant %#v", got, want)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"not json", `{`, "unexpected end"},
		{"trailing data", `{"value":1,"quality":"good"} x`, "invalid character"},
		{"missing value", `{"quality":"good"}`, `missing "value"`},
		{"missing quality", `{"value":1}`, `missing "quality"`},
		{"unknown quality", `{"value":1,"quality":"meh"}`, "not good, uncertain or bad"},
		{"object value", `{"value":{},"quality":"good"}`, "objects are not supported"},
		{"mixed array", `{"value":[1,"a"],"quality":"good"}`, "array mixes"},
		{"float overflow", `{"value":1e400,"quality":"good"}`, "out of range"},
		{"ts overflow", `{"value":1,"quality":"good","ts":9223372036854775}`, "ts:"},
		{"ts not integer", `{"value":1,"quality":"good","ts":1.5}`, "ts"},
		{"not an object", `[1]`, "cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeSample([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("DecodeSample(%s) error = %v, want it to contain %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestDecodeBatchErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"missing samples", `{}`, `missing "samples"`},
		{"missing tag", `{"samples":[{"value":1,"quality":"good"}]}`, `samples[0]: missing "tag"`},
		{"bad element", `{"samples":[{"tag":"a","value":1,"quality":"good"},{"tag":"b","quality":"good"}]}`, `samples[1]: missing "value"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeBatch([]byte(tt.in), "x")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("DecodeBatch(%s) error = %v, want it to contain %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestEncodeDoesNotAllocate(t *testing.T) {
	batch := batchSamples()
	buf := make([]byte, 0, 4096)
	tests := []struct {
		name string
		fn   func()
	}{
		{"sample", func() { buf = AppendSample(buf[:0], batch[0]) }},
		{"bad sample", func() { buf = AppendSample(buf[:0], batch[2]) }},
		{"batch", func() { buf = AppendBatch(buf[:0], batch) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, tt.fn); n != 0 {
				t.Errorf("%v allocations per run, want 0", n)
			}
		})
	}
}

// FuzzDecodeSample checks that any input either fails to decode or decodes
// to a sample that survives encode → decode unchanged, and that re-encoding
// is always valid JSON.
func FuzzDecodeSample(f *testing.F) {
	f.Add([]byte(`{"value":21.5,"quality":"good","ts":1732567000123,"edge_ts":1732567000125,"seq":42}`))
	f.Add([]byte(`{"value":null,"quality":"bad","reason":"x","ts":-1,"historical":true}`))
	f.Add([]byte(`{"value":[1,null,2],"quality":"uncertain","reason":"\u0000\ud800"}`))
	f.Add([]byte(`{"value":"\xff","quality":"good","seq":18446744073709551615}`))
	f.Add([]byte(`{"value":123456789012345678901234567890,"quality":"good"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := DecodeSample(data)
		if err != nil {
			return
		}
		enc := AppendSample(nil, s)
		if !json.Valid(enc) {
			t.Fatalf("re-encoding %q gave invalid JSON %q", data, enc)
		}
		again, err := DecodeSample(enc)
		if err != nil {
			t.Fatalf("re-decoding %q: %v", enc, err)
		}
		assertSample(t, again, s)
	})
}

// FuzzDecodeBatch is FuzzDecodeSample for batch payloads.
func FuzzDecodeBatch(f *testing.F) {
	f.Add([]byte(`{"samples":[{"tag":"t","value":1.5,"quality":"good","ts":1,"edge_ts":2,"seq":3}]}`), "a/b")
	f.Add([]byte(`{"samples":[{"tag":"\u0000","value":[true,null],"quality":"bad","reason":"x"}]}`), "")
	f.Add([]byte(`{"samples":null}`), "x")
	f.Fuzz(func(t *testing.T, data []byte, asset string) {
		samples, err := DecodeBatch(data, asset)
		if err != nil {
			return
		}
		enc := AppendBatch(nil, samples)
		if !json.Valid(enc) {
			t.Fatalf("re-encoding %q gave invalid JSON %q", data, enc)
		}
		for _, s := range samples {
			if !json.Valid(AppendSample(nil, s)) {
				t.Fatalf("invalid sample JSON for %#v", s)
			}
		}
	})
}

// FuzzRoundTrip encodes samples built from arbitrary strings and numbers.
func FuzzRoundTrip(f *testing.F) {
	f.Add("a/b", "reason", "value", 1.5, int64(1), uint64(2), false)
	f.Add("\xff/\x00", "\"", "\\\n", math.Inf(1), int64(-1), uint64(0), true)
	f.Fuzz(func(t *testing.T, path, reason, str string, fl float64, ts int64, seq uint64, hist bool) {
		for _, v := range []model.Value{model.String(str), model.Float(fl), model.Int(ts), model.Uint(seq)} {
			s := model.Sample{Path: path, Value: v, Quality: model.Quality{Code: model.Uncertain, Reason: reason},
				SourceTime: ts, EdgeTime: ts / 3, Seq: seq, Historical: hist}
			for _, enc := range [][]byte{AppendSample(nil, s), AppendBatch(nil, []model.Sample{s})} {
				if !json.Valid(enc) {
					t.Fatalf("invalid JSON %q", enc)
				}
			}
			got, err := DecodeSample(AppendSample(nil, s))
			if err != nil {
				t.Fatal(err)
			}
			if got.Quality.Reason != string([]rune(reason)) || got.Seq != seq || got.Historical != hist ||
				got.SourceTime != unixMilli(ts)*1e6 {
				t.Fatalf("round trip of %#v gave %#v", s, got)
			}
		}
	})
}

func BenchmarkAppendSample(b *testing.B) {
	s := good("ent/site/line1/temperature", model.Float(21.5), 42)
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendSample(buf[:0], s)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "samples/s")
}

func BenchmarkAppendBatch(b *testing.B) {
	batch := make([]model.Sample, 100)
	for i := range batch {
		batch[i] = good("ent/site/line1/temperature", model.Float(float64(i)+0.25), uint64(i))
	}
	buf := make([]byte, 0, 16<<10)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendBatch(buf[:0], batch)
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "samples/s")
}

func BenchmarkDecodeSample(b *testing.B) {
	data := AppendSample(nil, good("", model.Float(21.5), 42))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeSample(data); err != nil {
			b.Fatal(err)
		}
	}
}
