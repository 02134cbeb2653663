package writegate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"gopkg.in/yaml.v3"

	"github.com/weir-edge/weir/audit"
	"github.com/weir-edge/weir/model"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

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
	if len(c.Policies) != 4 || c.Policies[1].MaxAge != 5*time.Second || *c.Policies[1].Max != 600 {
		t.Fatalf("sample decoded as %+v", c.Policies)
	}
}

func fp(f float64) *float64 { return &f }

func TestValidate(t *testing.T) {
	ok := Policy{Match: "a/+/c", Allow: true, Callers: []string{"api:*"}}
	with := func(f func(*Policy)) Config {
		p := ok
		f(&p)
		return Config{Policies: []Policy{ok, p}}
	}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"valid", Config{Policies: []Policy{ok, {Match: "#"}}}, ""},
		{"no match", with(func(p *Policy) { p.Match = "" }), "write_policies[1].match: is required"},
		{"partial wildcard", with(func(p *Policy) { p.Match = "a/b+" }), "write_policies[1].match: \"a/b+\": a wildcard must be a whole level"},
		{"hash not last", with(func(p *Policy) { p.Match = "a/#/b" }), "'#' must be the last level"},
		{"empty level", with(func(p *Policy) { p.Match = "a//b" }), "empty level"},
		{"no callers", with(func(p *Policy) { p.Callers = nil }), "write_policies[1].callers: at least one"},
		{"empty caller", with(func(p *Policy) { p.Callers = []string{" "} }), "write_policies[1].callers[0]: must not be empty"},
		{"bad type", with(func(p *Policy) { p.Type = "double" }), "write_policies[1].type: unknown type \"double\""},
		{"limits on bool", with(func(p *Policy) { p.Type, p.Min = "bool", fp(1) }), "bool values cannot have min or max"},
		{"min above max", with(func(p *Policy) { p.Min, p.Max = fp(10), fp(1) }), "write_policies[1].min: 10 is greater than max 1"},
		{"bad rate", with(func(p *Policy) { p.MaxRate = "ten/min" }), "write_policies[1].max_rate: \"ten/min\" is not N/unit"},
		{"bad rate unit", with(func(p *Policy) { p.MaxRate = "10/day" }), "unknown unit \"day\""},
		{"max_age too long", with(func(p *Policy) { p.MaxAge = 2 * time.Hour }), "write_policies[1].max_age: 2h0m0s is out of range"},
		{"deny with extras", Config{Policies: []Policy{{Match: "a", Callers: []string{"x"}}}}, "write_policies[0].allow: a deny policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestMatchPath(t *testing.T) {
	tests := []struct {
		pattern, path string
		want          bool
	}{
		{"a/b/c", "a/b/c", true},
		{"a/b/c", "a/b", false},
		{"a/b", "a/b/c", false},
		{"a/+/c", "a/x/c", true},
		{"a/+/c", "a/x/y/c", false},
		{"a/+", "a", false},
		{"a/#", "a", true},
		{"a/#", "a/b/c", true},
		{"#", "anything/at/all", true},
		{"+/+", "a/b", true},
		{"acme/plant1/filling/+/filler/speed_setpoint", "acme/plant1/filling/line1/filler/speed_setpoint", true},
		{"acme/plant1/filling/+/filler/speed_setpoint", "acme/plant1/filling/line1/filler/temp_setpoint", false},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" "+tt.path, func(t *testing.T) {
			if got := matchPath(tt.pattern, tt.path); got != tt.want {
				t.Fatalf("got %v", got)
			}
		})
	}
}

func TestMatchGlob(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"api:*", "api:alice", true},
		{"api:*", "api:", true},
		{"api:*", "rule:x", false},
		{"rule:overheat", "rule:overheat", true},
		{"rule:overheat", "rule:overheat2", false},
		{"*", "", true},
		{"api:op-*-1", "api:op-x-1", true},
		{"api:op-*-1", "api:op-x-2", false},
		{"*:DCMD", "sparkplug:DCMD", true},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" "+tt.s, func(t *testing.T) {
			if got := matchGlob(tt.pattern, tt.s); got != tt.want {
				t.Fatalf("got %v", got)
			}
		})
	}
}

// fakeWriter records calls; it is what "the wire" is in these tests.
type fakeWriter struct {
	calls atomic.Int64
	mu    sync.Mutex
	last  model.Value
	old   model.Value
	err   error
}

func (f *fakeWriter) WriteTag(_ context.Context, _ string, v model.Value) (model.Value, error) {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last = v
	return f.old, f.err
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const speed = "acme/plant1/filling/line1/filler/speed_setpoint"

var testPolicies = Config{Policies: []Policy{
	{Match: "acme/plant1/filling/line1/filler/run_cmd"},
	{Match: "acme/plant1/filling/+/filler/speed_setpoint", Allow: true, Callers: []string{"api:*", "rule:overheat"},
		Type: "int", Min: fp(60), Max: fp(600), MaxRate: "3/min", MaxAge: 5 * time.Second},
	{Match: "acme/plant1/filling/+/filler/#", Allow: true, Callers: []string{"api:*"}},
}}

type rig struct {
	gate  *Gate
	w     *fakeWriter
	clk   *clock
	trail *audit.Log
	path  string
}

func newRig(t *testing.T, cfg Config) *rig {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	trail, err := audit.Open(audit.Config{File: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { trail.Close() })
	g, err := New(cfg, trail, nil)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)}
	g.SetClock(clk.now)
	w := &fakeWriter{old: model.Uint(120)}
	if err := g.Register("acme/plant1/filling", w); err != nil {
		t.Fatal(err)
	}
	return &rig{gate: g, w: w, clk: clk, trail: trail, path: path}
}

func (r *rig) req(path string, v model.Value, caller string) Request {
	return Request{Path: path, Value: v, Caller: caller, IssuedAt: r.clk.now(), Reason: "test"}
}

func TestDenials(t *testing.T) {
	tests := []struct {
		name   string
		mod    func(r *rig, q *Request)
		reason string
	}{
		{"no policy", func(r *rig, q *Request) { q.Path = "acme/plant2/x" }, "no policy allows writes to acme/plant2/x"},
		{"deny policy", func(r *rig, q *Request) { q.Path = "acme/plant1/filling/line1/filler/run_cmd" },
			"policy write_policies[0] (acme/plant1/filling/line1/filler/run_cmd) denies writes to acme/plant1/filling/line1/filler/run_cmd"},
		{"wrong caller", func(r *rig, q *Request) { q.Caller = "rule:x" }, "caller rule:x not allowed"},
		{"no caller", func(r *rig, q *Request) { q.Caller = "" }, "caller is required"},
		{"stale", func(r *rig, q *Request) { q.IssuedAt = q.IssuedAt.Add(-12 * time.Second) }, "command issued 12s ago, older than max_age 5s"},
		{"future", func(r *rig, q *Request) { q.IssuedAt = q.IssuedAt.Add(time.Minute) }, "command issued 1m0s in the future"},
		{"no issue time", func(r *rig, q *Request) { q.IssuedAt = time.Time{} }, "command has no issue time"},
		{"out of range", func(r *rig, q *Request) { q.Value = model.Int(700) }, "value 700 outside 60..600"},
		{"below range", func(r *rig, q *Request) { q.Value = model.Uint(59) }, "value 59 outside 60..600"},
		{"not an integer", func(r *rig, q *Request) { q.Value = model.Float(100.5) }, "value 100.5 is not an integer"},
		{"wrong type", func(r *rig, q *Request) { q.Value = model.String("100") }, `value "100" is not an integer`},
		{"missing value", func(r *rig, q *Request) { q.Value = model.Value{} }, "value is missing"},
		{"array", func(r *rig, q *Request) { q.Value = model.Array([]model.Value{model.Int(1)}) }, "array values cannot be written"},
		{"invalid path", func(r *rig, q *Request) { q.Path = "a/+/b" }, "invalid path"},
		{"no writer", func(r *rig, q *Request) { r.gate.Unregister("acme/plant1/filling") }, "no source serves " + speed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, testPolicies)
			q := r.req(speed, model.Int(300), "api:alice")
			tt.mod(r, &q)
			res, err := r.gate.Write(context.Background(), q)
			var de *DeniedError
			if !errors.Is(err, ErrDenied) || !errors.As(err, &de) || !strings.HasPrefix(de.Reason, tt.reason) || err.Error() != de.Reason {
				t.Fatalf("err = %v, want denial %q", err, tt.reason)
			}
			if res.Result != audit.Denied || res.Reason != de.Reason || res.Seq != 1 || res.Hash == "" {
				t.Fatalf("result %+v", res)
			}
			if n := r.w.calls.Load(); n != 0 {
				t.Fatalf("%d writes reached the writer", n)
			}
			tail, _ := r.trail.Tail(10)
			// (The trail keeps JSON, so a uint comes back as an int.)
			if len(tail) != 1 || tail[0].Result != audit.Denied || tail[0].Reason != de.Reason || tail[0].Caller != q.Caller ||
				tail[0].Path != q.Path || tail[0].New.String() != q.Value.String() || tail[0].Note != "test" {
				t.Fatalf("audit %+v", tail)
			}
		})
	}
}

func TestAllowedAndRateLimit(t *testing.T) {
	r := newRig(t, testPolicies)
	ctx := context.Background()
	for i, v := range []model.Value{model.Int(300), model.Float(400), model.Uint(600)} {
		res, err := r.gate.Write(ctx, r.req(speed, v, "rule:overheat"))
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if res.Result != audit.Allowed || !res.Old.Equal(model.Uint(120)) || !res.New.Equal(v) || res.Seq != uint64(i+1) {
			t.Fatalf("result %+v", res)
		}
	}
	_, err := r.gate.Write(ctx, r.req(speed, model.Int(300), "api:bob"))
	if err == nil || err.Error() != "rate limit 3/min exceeded" {
		t.Fatalf("4th write: %v", err)
	}
	// The bucket is per tag: another tag under another policy still works.
	if _, err := r.gate.Write(ctx, r.req("acme/plant1/filling/line1/filler/heater_enable", model.Bool(true), "api:bob")); err != nil {
		t.Fatal(err)
	}
	// 20 s refill one token of 3/min.
	r.clk.advance(20 * time.Second)
	if _, err := r.gate.Write(ctx, r.req(speed, model.Int(310), "api:bob")); err != nil {
		t.Fatalf("after refill: %v", err)
	}
	if _, err := r.gate.Write(ctx, r.req(speed, model.Int(320), "api:bob")); err == nil {
		t.Fatal("second write after one refill passed")
	}
	if n := r.w.calls.Load(); n != 5 {
		t.Fatalf("writer called %d times, want 5", n)
	}
	r.trail.Close()
	n, err := audit.Verify(r.path)
	if err != nil || n != 7 {
		t.Fatalf("audit Verify = %d, %v", n, err)
	}
}

func TestDefaultRate(t *testing.T) {
	r := newRig(t, Config{Policies: []Policy{{Match: "#", Allow: true, Callers: []string{"*"}}}, Limits: Limits{PerCaller: "100/min"}})
	// Three callers: one alone gets only its share, half the budget.
	for i := range 61 {
		_, err := r.gate.Write(context.Background(), r.req(speed, model.Int(1), fmt.Sprintf("api:x%d", i%3)))
		if i < 60 && err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if i == 60 && (err == nil || err.Error() != "rate limit 60/min exceeded") {
			t.Fatalf("write 61: %v", err)
		}
	}
}

func TestFailedWrite(t *testing.T) {
	r := newRig(t, testPolicies)
	r.w.err = errors.New("read-back mismatch: wrote 300, device holds 120")
	res, err := r.gate.Write(context.Background(), r.req(speed, model.Int(300), "api:alice"))
	if err == nil || errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "read-back mismatch") {
		t.Fatalf("err = %v", err)
	}
	if res.Result != audit.Failed || res.Reason != r.w.err.Error() || !res.Old.Equal(model.Uint(120)) {
		t.Fatalf("result %+v", res)
	}
}

// brokenTrail fails every append after the first n.
type brokenTrail struct {
	err     error
	appends int
}

func (b *brokenTrail) Append(e audit.Entry) (audit.Entry, error) {
	b.appends++
	return audit.Entry{}, b.err
}
func (b *brokenTrail) Err() error { return b.err }

func TestBrokenTrailRefusesWrites(t *testing.T) {
	bt := &brokenTrail{err: errors.New("disk full")}
	g, err := New(testPolicies, bt, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := &fakeWriter{}
	g.Register("", w)
	_, err = g.Write(context.Background(), Request{Path: speed, Value: model.Int(300), Caller: "api:a", IssuedAt: time.Now()})
	if !errors.Is(err, ErrAudit) || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("err = %v", err)
	}
	if w.calls.Load() != 0 {
		t.Fatal("a write reached the device while the trail was broken")
	}
	// A denial that cannot be recorded still reports both problems.
	_, err = g.Write(context.Background(), Request{Path: "x/y", Value: model.Int(1), Caller: "api:a", IssuedAt: time.Now()})
	if !errors.Is(err, ErrAudit) || !errors.Is(err, ErrDenied) {
		t.Fatalf("err = %v", err)
	}
	if _, err := New(testPolicies, nil, nil); err == nil {
		t.Fatal("New without a trail succeeded")
	}
}

func TestWriterRouting(t *testing.T) {
	r := newRig(t, Config{Policies: []Policy{{Match: "#", Allow: true, Callers: []string{"*"}}}})
	inner := &fakeWriter{}
	if err := r.gate.Register("acme/plant1/filling/line1", inner); err != nil {
		t.Fatal(err)
	}
	if err := r.gate.Register("acme/plant1/filling/line1", inner); err == nil {
		t.Fatal("duplicate prefix registered")
	}
	if err := r.gate.Register("a/+", inner); err == nil {
		t.Fatal("wildcard prefix registered")
	}
	write := func(p string) error {
		_, err := r.gate.Write(context.Background(), r.req(p, model.Int(1), "api:x"))
		return err
	}
	for _, p := range []string{"acme/plant1/filling/line1/x", "acme/plant1/filling/line1"} {
		if err := write(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := write("acme/plant1/filling/line10/x"); err != nil {
		t.Fatal(err)
	}
	if inner.calls.Load() != 2 || r.w.calls.Load() != 1 {
		t.Fatalf("inner %d, outer %d", inner.calls.Load(), r.w.calls.Load())
	}
	if err := write("acme/plant1/fill"); err == nil || err.Error() != "no source serves acme/plant1/fill" {
		t.Fatalf("err = %v", err)
	}
}

func TestConcurrentWrites(t *testing.T) {
	r := newRig(t, Config{Policies: []Policy{{Match: "#", Allow: true, Callers: []string{"*"}, MaxRate: "50/min"}},
		Limits: Limits{PerCaller: "1000/min"}})
	var wg sync.WaitGroup
	var denied atomic.Int64
	for g := range 8 { // callers of their own: each within its share
		wg.Go(func() {
			for range 10 {
				if _, err := r.gate.Write(context.Background(), r.req(speed, model.Int(1), fmt.Sprintf("api:x%d", g))); errors.Is(err, ErrDenied) {
					denied.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if denied.Load() != 30 || r.w.calls.Load() != 50 {
		t.Fatalf("denied %d, written %d; want 30 and 50", denied.Load(), r.w.calls.Load())
	}
	r.trail.Close()
	if n, err := audit.Verify(r.path); err != nil || n != 80 {
		t.Fatalf("Verify = %d, %v", n, err)
	}
}

func BenchmarkDeniedWrite(b *testing.B) {
	trail, err := audit.Open(audit.Config{File: filepath.Join(b.TempDir(), "a.jsonl")}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer trail.Close()
	g, _ := New(testPolicies, trail, nil)
	req := Request{Path: speed, Value: model.Int(700), Caller: "api:a", IssuedAt: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		req.IssuedAt = time.Now()
		g.Write(context.Background(), req)
	}
}

// TestBadConfigs decodes every testdata/*.bad.yaml strictly and expects
// each of its "# want:" lines in the validation error.
func TestBadConfigs(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.bad.yaml")
	if len(files) == 0 {
		t.Fatal("no testdata/*.bad.yaml")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var c Config
			dec := yaml.NewDecoder(strings.NewReader(string(raw)))
			dec.KnownFields(true)
			if err := dec.Decode(&c); err != nil {
				t.Fatal(err)
			}
			verr := c.Validate()
			for _, line := range strings.Split(string(raw), "\n") {
				if want, ok := strings.CutPrefix(line, "# want: "); ok {
					if verr == nil || !strings.Contains(verr.Error(), want) {
						t.Errorf("error %v does not mention %q", verr, want)
					}
				}
			}
		})
	}
}

// SetPolicies (hot reload) judges the next attempt by the new policies;
// invalid ones are refused and the running ones stay.
func TestSetPolicies(t *testing.T) {
	r := newRig(t, testPolicies)
	ctx := context.Background()
	if _, err := r.gate.Write(ctx, r.req(speed, model.Int(300), "api:alice")); err != nil {
		t.Fatal(err)
	}
	if err := r.gate.SetPolicies([]Policy{{Match: "a/b+"}}); err == nil {
		t.Fatal("an invalid policy was taken")
	}
	if _, err := r.gate.Write(ctx, r.req(speed, model.Int(300), "api:alice")); err != nil {
		t.Fatalf("after a refused SetPolicies: %v", err)
	}
	if err := r.gate.SetPolicies([]Policy{{Match: "acme/#"}}); err != nil {
		t.Fatal(err)
	}
	_, err := r.gate.Write(ctx, r.req(speed, model.Int(300), "api:alice"))
	if !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "write_policies[0] (acme/#) denies") {
		t.Fatalf("after SetPolicies: %v", err)
	}
}
