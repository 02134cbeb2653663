package rename

import (
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
	p, err := New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := p.Process([]model.Sample{{Path: "plant/line1/temp"}})
	if out[0].Path != "acme/site1/line1/temp" {
		t.Fatalf("sample config renamed to %q", out[0].Path)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct{ name, doc, wantErr string }{
		{"ok", "from: plant/\nto: acme/site1/", ""},
		{"ok without slashes", "from: plant\nto: acme/site1", ""},
		{"strip", "from: plant/", ""},
		{"no from", "to: acme/", "from: is required"},
		{"from with wildcard", "from: plant/+/", `from: "plant/+/" is not a path prefix`},
		{"from leading slash", "from: /plant", "from: \"/plant\" starts with '/'"},
		{"from empty level", "from: plant//a", "from:"},
		{"to with wildcard", "from: plant\nto: acme/#", `to: "acme/#" is not a path prefix`},
		{"to only a slash", "from: plant\nto: /", "to: \"/\" starts with '/'"},
		{"to dollar", "from: plant\nto: $SYS", "to:"},
		{"same", "from: plant/\nto: plant", "to: is the same as from"},
		{"negative max_tags", "from: plant\nmax_tags: -1", "max_tags: must not be negative"},
		{"bad match", "from: plant\nmatch: ['a/#/b']", "match[0]:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := decodeStrict(t, tt.doc)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := New(c, nil); err != nil {
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

func TestRename(t *testing.T) {
	deep := strings.Repeat("x/", 29) + "x" // 30 levels
	tests := []struct {
		name    string
		cfg     Config
		path    string
		want    string
		renamed bool
		invalid bool
	}{
		{"re-root", Config{From: "plant/", To: "acme/site1/"}, "plant/line1/temp", "acme/site1/line1/temp", true, false},
		{"written without slashes", Config{From: "plant", To: "acme/site1"}, "plant/line1/temp", "acme/site1/line1/temp", true, false},
		{"whole levels only", Config{From: "plant/", To: "acme/"}, "plantX/line1/temp", "plantX/line1/temp", false, false},
		{"prefix of a level", Config{From: "plant/li", To: "acme/"}, "plant/line1/temp", "plant/line1/temp", false, false},
		{"not at the start", Config{From: "line1", To: "l1"}, "plant/line1/temp", "plant/line1/temp", false, false},
		{"multi-level prefix", Config{From: "plant/line1/", To: "l1"}, "plant/line1/temp", "l1/temp", true, false},
		{"strip", Config{From: "plant/"}, "plant/line1/temp", "line1/temp", true, false},
		{"path is the prefix", Config{From: "plant/line1", To: "acme"}, "plant/line1", "acme", true, false},
		{"strip the whole path", Config{From: "plant/line1"}, "plant/line1", "plant/line1", false, true},
		{"too many levels", Config{From: "plant", To: deep}, "plant/a/b/c", "plant/a/b/c", false, true},
		{"just enough levels", Config{From: "plant", To: deep}, "plant/a/b", deep + "/a/b", true, false},
		{"too long", Config{From: "p", To: strings.Repeat("y", model.MaxPathLen-2)}, "p/ab", "p/ab", false, true},
		{"match selects", Config{Match: []string{"plant/line2/#"}, From: "plant", To: "acme"}, "plant/line1/temp", "plant/line1/temp", false, false},
		{"match and prefix", Config{Match: []string{"plant/line2/#"}, From: "plant", To: "acme"}, "plant/line2/temp", "acme/line2/temp", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New(tt.cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			for round := range 2 { // the second round comes from the cache
				batch := []model.Sample{{Path: "other/x", Value: model.Int(1)}, {Path: tt.path, Value: model.Int(2), Seq: 7}}
				out := p.Process(batch)
				if len(out) != 2 || out[0].Path != "other/x" {
					t.Fatalf("round %d: batch changed shape: %+v", round, out)
				}
				if out[1].Path != tt.want || out[1].Value.AsInt() != 2 || out[1].Seq != 7 {
					t.Fatalf("round %d: %q -> %+v, want path %q, value and seq kept", round, tt.path, out[1], tt.want)
				}
			}
			st := p.Status().Counters
			if want := b2u(tt.renamed) * 2; st["renamed"] != want {
				t.Errorf("renamed = %d, want %d", st["renamed"], want)
			}
			if want := b2u(tt.invalid) * 2; st["rename_invalid"] != want {
				t.Errorf("rename_invalid = %d, want %d", st["rename_invalid"], want)
			}
		})
	}
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// Beyond max_tags paths are still renamed, but not remembered.
func TestCacheIsBounded(t *testing.T) {
	p, err := New(Config{From: "a", To: "b", MaxTags: 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		batch := make([]model.Sample, 10)
		for i := range batch {
			batch[i].Path = "a/t" + strconv.Itoa(i)
		}
		for i, s := range p.Process(batch) {
			if want := "b/t" + strconv.Itoa(i); s.Path != want {
				t.Fatalf("round %d: %q, want %q", round, s.Path, want)
			}
		}
	}
	if len(p.cache) != 3 {
		t.Fatalf("cache grew to %d paths, max_tags 3", len(p.cache))
	}
	st := p.Status()
	if st.Counters["rename_uncached"] != 14 || st.Counters["renamed"] != 20 || st.Gauges["tracked_tags"] != 3 {
		t.Fatalf("status %+v", st)
	}
}

// A repeated path costs no allocation.
func TestNoAllocsForRepeatedPaths(t *testing.T) {
	p, err := New(Config{Match: []string{"plant/#"}, From: "plant/", To: "acme/site1/"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	src := make([]model.Sample, 64)
	for i := range src {
		src[i] = model.Sample{Path: "plant/line1/t" + strconv.Itoa(i%16), Value: model.Float(1)}
	}
	batch := make([]model.Sample, len(src))
	copy(batch, src)
	p.Process(batch) // fill the cache
	allocs := testing.AllocsPerRun(100, func() {
		copy(batch, src)
		p.Process(batch)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per batch of repeated paths, want 0", allocs)
	}
}

func BenchmarkProcess(b *testing.B) {
	p, err := New(Config{Match: []string{"plant/#"}, From: "plant/", To: "acme/site1/"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	src := make([]model.Sample, 1000)
	for i := range src {
		src[i] = model.Sample{Path: "plant/line1/cell1/t" + strconv.Itoa(i%500), Value: model.Float(float64(i))}
	}
	batch := make([]model.Sample, len(src))
	b.ReportAllocs()
	for b.Loop() {
		copy(batch, src)
		p.Process(batch)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(src)), "ns/sample")
}
