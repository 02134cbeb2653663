package rules

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/weir-edge/weir/alarms"
	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/conf/conftest"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/writegate"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)

func decodeStrict(t testing.TB, doc string) Config {
	t.Helper()
	return conftest.Decode[Config](t, doc)
}

// queue is an Enqueuer that keeps the jobs.
type queue struct {
	mu   sync.Mutex
	jobs []Job
	full bool
}

func (q *queue) Enqueue(j Job) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.full {
		return false
	}
	q.jobs = append(q.jobs, j)
	return true
}

func (q *queue) take() []Job {
	q.mu.Lock()
	defer q.mu.Unlock()
	j := q.jobs
	q.jobs = nil
	return j
}

func newManager(t testing.TB) *alarms.Manager {
	t.Helper()
	m, err := alarms.New(alarms.Config{Prefix: "acme"}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	m.SetClock(func() time.Time { return t0 })
	return m
}

func newProcessor(t testing.TB, doc string) (*Processor, *queue, *alarms.Manager) {
	t.Helper()
	q := &queue{}
	m := newManager(t)
	p, err := New(decodeStrict(t, doc), Deps{Alarms: m, Actions: q, Now: func() time.Time { return t0 }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p, q, m
}

func TestSampleConfig(t *testing.T) {
	c := decodeStrict(t, SampleConfig)
	if err := c.Validate(); err != nil {
		t.Fatalf("sample.yaml does not validate: %v", err)
	}
	if _, err := New(c, Deps{Alarms: newManager(t), Actions: &queue{}}, nil); err != nil {
		t.Fatal(err)
	}
	r, err := NewRunner(c.Actions, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
}

func TestValidate(t *testing.T) {
	const act = `actions: [{set: {path: a/x, value: 1}}]`
	tests := []struct{ name, doc, wantErr string }{
		{"ok", `rules: [{name: r, when: "t > 90", vars: {t: a/t}, ` + act + `}]`, ""},
		{"unknown name with position", "rules: [{name: hot, when: \"t >\\n  tmp\", vars: {t: a/t}, " + act + "}]",
			`rules[0].when: rule "hot": expression error at 2:3: unknown name tmp`},
		{"type error with position", `rules: [{name: hot, when: "t > s", vars: {t: a/t, s: a/s}, var_types: {s: string}, ` + act + `}]`,
			`rules[0].when: rule "hot": expression error at 1:3: invalid operation: > (mismatched types float64 and string)`},
		{"not a bool", `rules: [{name: hot, when: "t * 2", vars: {t: a/t}, ` + act + `}]`,
			`rules[0].when: rule "hot": expression error at 1:1: a condition must yield bool, this one yields float64`},
		{"clear_when error", `rules: [{name: hot, when: "t > 1", vars: {t: a/t}, hysteresis: {clear_when: "t < x"}, ` + act + `}]`,
			`rules[0].hysteresis.clear_when: rule "hot": expression error at 1:5: unknown name x`},
		{"write expr error", `rules: [{name: hot, when: "t > 1", vars: {t: a/t}, actions: [{write: {path: a/w, expr: "t +"}}]}]`,
			`rules[0].actions[0].write.expr: rule "hot": expression error at 1:`},
		{"deadband needs comparison", `rules: [{name: hot, when: "t > 1 && t < 5", vars: {t: a/t}, hysteresis: {deadband: 1}, ` + act + `}]`,
			`rules[0].hysteresis.deadband: rule "hot": a deadband needs a condition of the form`},
		{"deadband on bools", `rules: [{name: hot, when: "b == c", vars: {b: a/b, c: a/c}, var_types: {b: bool, c: bool}, hysteresis: {deadband: 1}, ` + act + `}]`,
			`rules[0].hysteresis.deadband: rule "hot": a deadband needs a condition of the form a > b, a >= b, a < b or a <= b, not ==`},
		{"both hysteresis", `rules: [{name: hot, when: "t > 1", vars: {t: a/t}, hysteresis: {deadband: 1, clear_when: "t < 0"}, ` + act + `}]`,
			`rules[0].hysteresis: set clear_when or deadband, not both`},
		{"negative deadband", `rules: [{name: hot, when: "t > 1", vars: {t: a/t}, hysteresis: {deadband: -1}, ` + act + `}]`,
			`rules[0].hysteresis.deadband: must be a positive number`},
		{"bad rule name", `rules: [{name: "a b", when: "t > 1", vars: {t: a/t}, ` + act + `}]`, `rules[0].name: "a b": a rule name is 1..128 letters`},
		{"duplicate rule", `rules: [{name: r, when: "t > 1", vars: {t: a/t}, ` + act + `}, {name: r, when: "t > 1", vars: {t: a/t}, ` + act + `}]`,
			`rules[1].name: "r" is already the name of rules[0]`},
		{"no vars", `rules: [{name: r, when: "true", ` + act + `}]`, `rules[0].vars: at least one input`},
		{"no actions", `rules: [{name: r, when: "t > 1", vars: {t: a/t}}]`, `rules[0].actions: at least one action`},
		{"two keys in an action", `rules: [{name: r, when: "t > 1", vars: {t: a/t}, actions: [{set: {path: a/x, value: 1}, event: {path: a/e, payload: x}}]}]`,
			`rules[0].actions[0]: exactly one of set, alarm, event, write, http is required, found 2`},
		{"value and expr", `rules: [{name: r, when: "t > 1", vars: {t: a/t}, actions: [{write: {path: a/x, value: 1, expr: "t"}}]}]`,
			`rules[0].actions[0].write: set value or expr, not both`},
		{"bad priority", `rules: [{name: r, when: "t > 1", vars: {t: a/t}, actions: [{alarm: {name: x, priority: urgent}}]}]`,
			`rules[0].actions[0].alarm.priority: "urgent" is not one of`},
		{"alarm on clear", `rules: [{name: r, when: "t > 1", vars: {t: a/t}, on_clear: [{alarm: {name: x}}]}]`,
			`rules[0].on_clear[0].alarm: an alarm clears with its rule`},
		{"alarm raised twice", `rules: [{name: r, when: "t > 1", vars: {t: a/t}, actions: [{alarm: {name: x}}]}, {name: s, when: "t > 1", vars: {t: a/t}, actions: [{alarm: {name: x}}]}]`,
			`rules[1].actions[0].alarm.name: alarm "x" is already raised by rule "r"`},
		{"bad url", `rules: [{name: r, when: "t > 1", vars: {t: a/t}, actions: [{http: {url: "ftp://x/y"}}]}]`,
			`rules[0].actions[0].http.url: scheme "ftp" is not supported (http, https)`},
		{"bad path", `rules: [{name: r, when: "t > 1", vars: {t: "a/+"}, ` + act + `}]`, `rules[0].vars.t: `},
		{"negative for", `rules: [{name: r, when: "t > 1", vars: {t: a/t}, for: -1s, ` + act + `}]`, `rules[0].for: must not be negative`},
		{"runner settings", `rule_actions: {workers: 1000, queue_size: -1}`, `rule_actions.workers: must be 0..64`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := decodeStrict(t, tt.doc)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v\nwant %q", err, tt.wantErr)
			}
		})
	}
}

func TestExprErrorIsTyped(t *testing.T) {
	c := decodeStrict(t, `rules: [{name: hot, when: "t > nope", vars: {t: a/t}, actions: [{set: {path: a/x, value: 1}}]}]`)
	err := c.Validate()
	var fe *conf.FieldError
	var ee *ExprError
	if !errors.As(err, &fe) || !errors.As(err, &ee) || ee.Rule != "hot" || ee.Key != "when" || ee.Line != 1 || ee.Column != 5 {
		t.Fatalf("err = %#v", err)
	}
}

// TestBadConfigs checks every testdata/*.bad.yaml against the error its
// first line announces ("# want: ...").
func TestBadConfigs(t *testing.T) {
	files, err := filepath.Glob("testdata/*.bad.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad configs: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(b), "\n")
			want, ok := strings.CutPrefix(first, "# want: ")
			if !ok {
				t.Fatal("first line must be '# want: <error>'")
			}
			c := decodeStrict(t, string(b))
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v\nwant %q", err, want)
			}
		})
	}
}

// in is an input sample at t0+at.
func in(path string, v model.Value, at time.Duration) model.Sample {
	ns := t0.Add(at).UnixNano()
	return model.Sample{Path: path, Value: v, SourceTime: ns, EdgeTime: ns}
}

func bad(path string, at time.Duration) model.Sample {
	s := in(path, model.Value{}, at)
	s.Quality = model.Quality{Code: model.Bad, Reason: model.ReasonUnreachable}
	return s
}

// step feeds a batch (or, with flush set, flushes at t0+flush) and
// expects the samples appended, as "path=value" joined by spaces.
type step struct {
	batch []model.Sample
	flush time.Duration
	want  string
}

func run(t *testing.T, p *Processor, steps []step) {
	t.Helper()
	for i, st := range steps {
		var out []model.Sample
		if st.batch != nil {
			n := len(st.batch)
			out = p.Process(append([]model.Sample(nil), st.batch...))[n:]
		} else {
			out = p.Flush(t0.Add(st.flush), nil)
		}
		var got []string
		for _, s := range out {
			got = append(got, s.Path+"="+s.Value.String())
		}
		if g := strings.Join(got, " "); g != st.want {
			t.Fatalf("step %d: appended %q, want %q", i, g, st.want)
		}
	}
}

func TestRuleTable(t *testing.T) {
	const hot = `actions: [{set: {path: a/hot, value: true}}], on_clear: [{set: {path: a/hot, value: false}}]`
	f := model.Float
	tests := []struct {
		name  string
		doc   string
		steps []step
	}{
		{"no for: fires at once, clears when false", `rules: [{name: r, when: "t > 90", vars: {t: a/t}, ` + hot + `}]`, []step{
			{batch: []model.Sample{in("a/t", f(80), 0)}},
			{batch: []model.Sample{in("a/t", f(91), time.Second)}, want: "a/hot=true"},
			{batch: []model.Sample{in("a/t", f(95), 2*time.Second)}},
			{batch: []model.Sample{in("a/t", f(90), 3*time.Second)}, want: "a/hot=false"},
			{batch: []model.Sample{in("a/t", f(89), 4*time.Second)}},
		}},
		{"for: fires once held, by sample time", `rules: [{name: r, when: "t > 90", vars: {t: a/t}, for: 5s, ` + hot + `}]`, []step{
			{batch: []model.Sample{in("a/t", f(91), 0)}},
			{batch: []model.Sample{in("a/t", f(92), 3*time.Second)}},
			{batch: []model.Sample{in("a/t", f(93), 5*time.Second)}, want: "a/hot=true"},
			{flush: 20 * time.Second},
			{batch: []model.Sample{in("a/t", f(80), 21*time.Second)}, want: "a/hot=false"},
		}},
		{"for: fires on the engine clock when no sample comes", `rules: [{name: r, when: "t > 90", vars: {t: a/t}, for: 5s, ` + hot + `}]`, []step{
			{batch: []model.Sample{in("a/t", f(91), 0)}},
			{flush: 4900 * time.Millisecond},
			{flush: 5 * time.Second, want: "a/hot=true"},
			{flush: 10 * time.Second},
		}},
		{"for: a dip restarts the wait", `rules: [{name: r, when: "t > 90", vars: {t: a/t}, for: 5s, ` + hot + `}]`, []step{
			{batch: []model.Sample{in("a/t", f(91), 0)}},
			{batch: []model.Sample{in("a/t", f(80), 2*time.Second)}},
			{batch: []model.Sample{in("a/t", f(91), 3*time.Second)}},
			{flush: 7 * time.Second},
			{flush: 8 * time.Second, want: "a/hot=true"},
		}},
		{"deadband: clears below limit minus deadband", `rules: [{name: r, when: "t > limit", vars: {t: a/t, limit: a/l}, hysteresis: {deadband: 2}, ` + hot + `}]`, []step{
			{batch: []model.Sample{in("a/l", f(90), 0), in("a/t", f(91), 0)}, want: "a/hot=true"},
			{batch: []model.Sample{in("a/t", f(89.5), time.Second)}},
			{batch: []model.Sample{in("a/t", f(88.1), 2*time.Second)}},
			{batch: []model.Sample{in("a/t", f(88), 3*time.Second)}, want: "a/hot=false"},
			{batch: []model.Sample{in("a/t", f(90), 4*time.Second)}},
			{batch: []model.Sample{in("a/t", f(90.5), 5*time.Second)}, want: "a/hot=true"},
		}},
		{"deadband on a low limit", `rules: [{name: r, when: "level < 10", vars: {level: a/t}, hysteresis: {deadband: 5}, ` + hot + `}]`, []step{
			{batch: []model.Sample{in("a/t", f(9), 0)}, want: "a/hot=true"},
			{batch: []model.Sample{in("a/t", f(14), time.Second)}},
			{batch: []model.Sample{in("a/t", f(15), 2*time.Second)}, want: "a/hot=false"},
		}},
		{"clear_when", `rules: [{name: r, when: "t > 90", vars: {t: a/t}, hysteresis: {clear_when: "t < 50"}, ` + hot + `}]`, []step{
			{batch: []model.Sample{in("a/t", f(91), 0)}, want: "a/hot=true"},
			{batch: []model.Sample{in("a/t", f(80), time.Second)}},
			{batch: []model.Sample{in("a/t", f(49), 2*time.Second)}, want: "a/hot=false"},
		}},
		{"bad quality cancels a wait", `rules: [{name: r, when: "t > 90", vars: {t: a/t}, for: 5s, ` + hot + `}]`, []step{
			{batch: []model.Sample{in("a/t", f(91), 0)}},
			{batch: []model.Sample{bad("a/t", 2*time.Second)}},
			{flush: 6 * time.Second},
			{batch: []model.Sample{in("a/t", f(91), 7*time.Second)}},
			{flush: 11 * time.Second},
			{flush: 12 * time.Second, want: "a/hot=true"},
		}},
		{"NaN and bad inputs hold an active rule", `rules: [{name: r, when: "t > 90", vars: {t: a/t}, ` + hot + `}]`, []step{
			{batch: []model.Sample{in("a/t", f(91), 0)}, want: "a/hot=true"},
			{batch: []model.Sample{in("a/t", f(math.NaN()), time.Second)}},
			{batch: []model.Sample{bad("a/t", 2*time.Second)}},
			{batch: []model.Sample{in("a/t", f(math.Inf(1)), 3*time.Second)}},
			{batch: []model.Sample{in("a/t", f(80), 4*time.Second)}, want: "a/hot=false"},
		}},
		{"NaN never fires", `rules: [{name: r, when: "!(t < 90)", vars: {t: a/t}, ` + hot + `}]`, []step{
			{batch: []model.Sample{in("a/t", f(math.NaN()), 0)}},
			{batch: []model.Sample{in("a/t", f(95), time.Second)}, want: "a/hot=true"},
		}},
		{"a value the type cannot hold is bad", `rules: [{name: r, when: "t > 90", vars: {t: a/t}, ` + hot + `}]`, []step{
			{batch: []model.Sample{in("a/t", model.String("hot"), 0)}},
			{batch: []model.Sample{in("a/t", f(95), time.Second)}, want: "a/hot=true"},
		}},
		{"uncertain quality is evaluated", `rules: [{name: r, when: "t > 90", vars: {t: a/t}, ` + hot + `}]`, []step{
			{batch: []model.Sample{func() model.Sample {
				s := in("a/t", f(95), 0)
				s.Quality = model.Quality{Code: model.Uncertain, Reason: "last usable"}
				return s
			}()}, want: "a/hot=true"},
		}},
		{"waits for every var", `rules: [{name: r, when: "t > limit", vars: {t: a/t, limit: a/l}, ` + hot + `}]`, []step{
			{batch: []model.Sample{in("a/t", f(95), 0)}},
			{batch: []model.Sample{in("a/l", f(90), time.Second)}, want: "a/hot=true"},
		}},
		{"historical samples are ignored", `rules: [{name: r, when: "t > 90", vars: {t: a/t}, ` + hot + `}]`, []step{
			{batch: []model.Sample{func() model.Sample { s := in("a/t", f(95), 0); s.Historical = true; return s }()}},
		}},
		{"one evaluation per batch, on the latest value", `rules: [{name: r, when: "t > 90", vars: {t: a/t}, ` + hot + `}]`, []step{
			{batch: []model.Sample{in("a/t", f(95), 0), in("a/t", f(80), time.Millisecond)}},
		}},
		{"bool and int vars, set from an expression", `rules: [{name: r, when: "running && count >= 3", vars: {running: a/run, count: a/n}, var_types: {running: bool, count: int}, actions: [{set: {path: a/x, expr: "count * 2"}}, {event: {path: a/ev, payload: {k: v}}}]}]`, []step{
			{batch: []model.Sample{in("a/run", model.Bool(true), 0), in("a/n", model.Int(2), 0)}},
			{batch: []model.Sample{in("a/n", model.Int(3), time.Second)}, want: `a/x=6 a/ev="{\"k\":\"v\"}"`},
		}},
		{"set feeds another rule in the same batch", `rules: [{name: r, when: "t > 90", vars: {t: a/t}, ` + hot + `}, {name: s, when: "h", vars: {h: a/hot}, var_types: {h: bool}, actions: [{set: {path: a/chain, value: 1}}]}]`, []step{
			{batch: []model.Sample{in("a/t", f(95), 0)}, want: "a/hot=true a/chain=1"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _, _ := newProcessor(t, tt.doc)
			run(t, p, tt.steps)
		})
	}
}

func TestWriteAndHTTPActionsAreQueued(t *testing.T) {
	p, q, _ := newProcessor(t, `rules: [{name: overheat, when: "t > 90", vars: {t: a/t},
  actions: [{write: {path: a/sp, expr: "t - 20"}}, {http: {url: "http://127.0.0.1:1/x"}}],
  on_clear: [{write: {path: a/heater, value: true}}]}]`)
	p.Process([]model.Sample{in("a/t", model.Float(95), 0)})
	jobs := q.take()
	if len(jobs) != 2 || jobs[0].Write == nil || jobs[1].HTTP == nil {
		t.Fatalf("jobs %+v", jobs)
	}
	w := jobs[0].Write
	want := writegate.Request{Path: "a/sp", Value: model.Float(75), Caller: "rule:overheat", IssuedAt: t0, Reason: "rule overheat rise"}
	if w.Path != want.Path || !w.Value.Equal(want.Value) || w.Caller != want.Caller || !w.IssuedAt.Equal(want.IssuedAt) || w.Reason != want.Reason {
		t.Fatalf("write %+v, want %+v", *w, want)
	}
	if h := jobs[1].HTTP; h.Action.Method != "POST" || h.Edge != "rise" || !h.Time.Equal(t0) {
		t.Fatalf("http %+v", h)
	}
	p.Process([]model.Sample{in("a/t", model.Float(20), time.Second)})
	jobs = q.take()
	if len(jobs) != 1 || jobs[0].Write.Path != "a/heater" || !jobs[0].Write.Value.Equal(model.Bool(true)) || jobs[0].Write.Reason != "rule overheat clear" {
		t.Fatalf("clear jobs %+v", jobs)
	}
	q.full = true
	p.Process([]model.Sample{in("a/t", model.Float(95), 2*time.Second)})
	if st := p.Status(); st.Counters["actions_dropped"] != 2 {
		t.Fatalf("status %+v", st)
	}
}

func TestAlarmAction(t *testing.T) {
	p, _, m := newProcessor(t, `rules: [{name: overheat, when: "t > 90", vars: {t: a/t}, for: 2s,
  actions: [{alarm: {name: filler_overheat, priority: high, message: too hot}}]}]`)
	// The chain of the gateway: the rules, then the alarms' stage, which
	// emits the events (the engine runs what a Flush returns through the
	// processors after it, then flushes those).
	st := alarms.NewStage(m)
	process := func(b []model.Sample) []model.Sample { return st.Process(p.Process(b)) }
	flush := func(now time.Time) []model.Sample { return st.Flush(now, st.Process(p.Flush(now, nil))) }
	out := process([]model.Sample{in("a/t", model.Float(95), 0)})
	if len(out) != 1 {
		t.Fatalf("out %v", out)
	}
	if out := p.Flush(t0.Add(2*time.Second), nil); len(out) != 0 {
		t.Fatalf("the rules emitted %v; alarm events leave through alarms.Stage", out)
	}
	if a, _ := m.Get("filler_overheat"); a.State != alarms.Unack {
		t.Fatalf("alarm %+v after the rules' flush", a)
	}
	out = flush(t0.Add(2 * time.Second))
	if len(out) != 1 || out[0].Path != "acme/_alarms/filler_overheat" || !strings.Contains(out[0].Value.AsString(), `"transition":"raise"`) ||
		out[0].SourceTime != t0.Add(2*time.Second).UnixNano() {
		t.Fatalf("raise event %+v", out)
	}
	if a, _ := m.Get("filler_overheat"); a.State != alarms.Unack || a.Priority != alarms.High || a.Rule != "overheat" {
		t.Fatalf("alarm %+v", a)
	}
	// An operator acknowledges between batches: the event leaves with
	// the next batch or flush.
	if _, err := m.Acknowledge("filler_overheat", "api:alice", "on it"); err != nil {
		t.Fatal(err)
	}
	out = process([]model.Sample{in("a/t", model.Float(80), 3*time.Second)})
	if len(out) != 3 || !strings.Contains(out[1].Value.AsString(), `"transition":"ack"`) || !strings.Contains(out[2].Value.AsString(), `"transition":"clear"`) {
		t.Fatalf("ack+clear events %v", out)
	}
	if a, _ := m.Get("filler_overheat"); a.State != alarms.Normal {
		t.Fatalf("alarm %+v", a)
	}
}

func TestRestoredAlarmClearsWhenConditionFalse(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "alarms.json")
	doc := `rules: [{name: overheat, when: "t > 90", vars: {t: a/t}, actions: [{alarm: {name: hot}}]}]`
	m, err := alarms.New(alarms.Config{}, file, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(decodeStrict(t, doc), Deps{Alarms: m}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.Process([]model.Sample{in("a/t", model.Float(95), 0)})
	if err := m.Save(); err != nil {
		t.Fatal(err)
	}
	// Restart: the alarm comes back active; the first good reading below
	// the limit clears it.
	m2, err := alarms.New(alarms.Config{}, file, nil)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := New(decodeStrict(t, doc), Deps{Alarms: m2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := m2.Get("hot"); a.State != alarms.Unack {
		t.Fatalf("restored %+v", a)
	}
	p2.Process([]model.Sample{in("a/t", model.Float(20), time.Second)})
	if a, _ := m2.Get("hot"); a.State != alarms.RTNUnack {
		t.Fatalf("after a good reading %+v", a)
	}
}

func TestNewNeedsDeps(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"write without runner", `rules: [{name: r, when: "t > 1", vars: {t: a/t}, actions: [{write: {path: a/x, value: 1}}]}]`, "needs the action runner"},
		{"alarm without manager", `rules: [{name: r, when: "t > 1", vars: {t: a/t}, actions: [{alarm: {name: x}}]}]`, "needs the alarm manager"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(decodeStrict(t, tt.doc), Deps{}, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

// TestProcessNeverBlocks fills the real runner's queue (no workers) and
// checks that Process still returns, counting the drops.
func TestProcessNeverBlocks(t *testing.T) {
	r, err := NewRunner(ActionsConfig{QueueSize: 2}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p, err := New(decodeStrict(t, `rules: [{name: r, when: "t > 1", vars: {t: a/t}, actions: [{write: {path: a/x, value: 1}}]}]`),
		Deps{Actions: r, Now: func() time.Time { return t0 }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 10 {
			p.Process([]model.Sample{in("a/t", model.Float(5), time.Duration(2*i)*time.Second)})
			p.Process([]model.Sample{in("a/t", model.Float(0), time.Duration(2*i+1)*time.Second)})
		}
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("Process blocked on a full queue")
	}
	if st := r.Status(); st.Counters["queued"] != 2 || st.Counters["dropped"] != 8 {
		t.Fatalf("runner %+v", st)
	}
	if st := p.Status(); st.Counters["actions_dropped"] != 8 || st.Counters["rises"] != 10 {
		t.Fatalf("processor %+v", st)
	}
}
