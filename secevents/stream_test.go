package secevents

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/security"
)

func boolp(b bool) *bool { return &b }

// Each event becomes one sample on <prefix>/_security/<kind> whose value
// is the documented JSON; fields are cleaned and capped on the way.
func TestRecordSamples(t *testing.T) {
	long := strings.Repeat("ä", 2000) // 4000 bytes
	tests := []struct {
		name     string
		cfg      Config
		ev       security.Event
		wantPath string
		want     Event
	}{
		{"full event", Config{}, security.Event{Time: t0, Kind: security.WriteDenied, Severity: security.SeverityWarning,
			Actor: "mqtt:bob", Remote: "10.1.2.3:4000", Component: "writegate", Object: "acme/line2/setpoint",
			Outcome: "denied", Detail: "no policy allows mqtt:bob"},
			"weir/_security/write.denied",
			Event{Time: t0, Kind: "write.denied", Severity: "warning", Actor: "mqtt:bob", Remote: "10.1.2.3:4000",
				Component: "writegate", Object: "acme/line2/setpoint", Outcome: "denied", Detail: "no policy allows mqtt:bob", Node: "line-7"}},
		{"prefix, unset time and severity, hostile kind", Config{Prefix: "acme/plant1"},
			security.Event{Kind: "evil/+#kind", Actor: "a\nFAKE LOG LINE\r\x00", Detail: long, Object: long},
			"acme/plant1/_security/evil___kind",
			Event{Time: t0.Add(time.Hour), Kind: "evil___kind", Severity: "notice", Actor: "a FAKE LOG LINE  ",
				Object: strings.Repeat("ä", MaxField/2), Detail: strings.Repeat("ä", MaxDetail/2), Node: "line-7"}},
		{"empty kind", Config{}, security.Event{Time: t0, Severity: security.SeverityInfo},
			"weir/_security/unknown", Event{Time: t0, Kind: "unknown", Severity: "info", Node: "line-7"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.cfg, "line-7", nil)
			if err != nil {
				t.Fatal(err)
			}
			s.SetClock(func() time.Time { return t0.Add(time.Hour) })
			s.Record(context.Background(), tt.ev)
			out := s.Flush(time.Now(), nil)
			if len(out) != 1 {
				t.Fatalf("%d samples", len(out))
			}
			if out[0].Path != tt.wantPath {
				t.Errorf("path %q, want %q", out[0].Path, tt.wantPath)
			}
			if err := model.ValidatePath(out[0].Path); err != nil {
				t.Error(err)
			}
			var got Event
			raw := out[0].Value.AsString()
			if err := json.Unmarshal([]byte(raw), &got); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			if out[0].SourceTime != tt.want.Time.UnixNano() {
				t.Errorf("source time %d", out[0].SourceTime)
			}
			if len(s.Flush(time.Now(), nil)) != 0 {
				t.Error("flushed twice")
			}
		})
	}
}

func TestFiltersAndBounds(t *testing.T) {
	tests := []struct {
		name          string
		cfg           Config
		record        []security.Event
		wantSamples   int
		wantFiltered  uint64
		wantDropped   uint64
		wantKindCount map[string]uint64
		wantOffered   int // Offer said true: queued for a way out
	}{
		{"min_severity warning keeps warning and worse", Config{MinSeverity: "warning"},
			[]security.Event{{Kind: "a", Severity: security.SeverityInfo}, {Kind: "a", Severity: security.SeverityNotice},
				{Kind: "b", Severity: security.SeverityWarning}, {Kind: "c", Severity: security.SeverityCritical}},
			2, 2, 0, map[string]uint64{"a": 2, "b": 1, "c": 1}, 2},
		{"audit checkpoints pass min_severity (the trail holds history until one is out)", Config{MinSeverity: "error"},
			[]security.Event{{Kind: security.AuditCheckpoint, Severity: security.SeverityInfo}, {Kind: "a", Severity: security.SeverityInfo}},
			1, 1, 0, map[string]uint64{string(security.AuditCheckpoint): 1, "a": 1}, 1},
		{"to_sinks false", Config{ToSinks: boolp(false)},
			[]security.Event{{Kind: "a", Severity: security.SeverityError}}, 0, 0, 0, map[string]uint64{"a": 1}, 0},
		{"max_pending", Config{MaxPending: 3},
			[]security.Event{{Kind: "a"}, {Kind: "a"}, {Kind: "a"}, {Kind: "a"}, {Kind: "a"}}, 3, 0, 2, map[string]uint64{"a": 5}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.cfg, "n", nil)
			if err != nil {
				t.Fatal(err)
			}
			offered := 0
			for _, ev := range tt.record { // Record is Offer without the answer
				if s.Offer(context.Background(), ev) {
					offered++
				}
			}
			if offered != tt.wantOffered {
				t.Errorf("offered %d, want %d", offered, tt.wantOffered)
			}
			if got := len(s.Flush(time.Now(), nil)); got != tt.wantSamples {
				t.Errorf("%d samples, want %d", got, tt.wantSamples)
			}
			st := s.Stats()
			if st.Filtered != tt.wantFiltered || st.DroppedSinks != tt.wantDropped || fmt.Sprint(st.Events) != fmt.Sprint(tt.wantKindCount) {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// The per-kind counters stay bounded whatever kinds arrive.
func TestKindsBounded(t *testing.T) {
	s, err := New(Config{ToSinks: boolp(false)}, "n", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		s.Record(context.Background(), security.Event{Kind: security.Kind(fmt.Sprintf("k%d", i))})
	}
	ev := s.Stats().Events
	if len(ev) != maxKinds+1 || ev["other"] != 1000-maxKinds {
		t.Fatalf("%d kinds, other=%d", len(ev), ev["other"])
	}
}

// Record is safe from many goroutines while the engine flushes.
func TestRecordConcurrent(t *testing.T) {
	s, err := New(Config{}, "n", nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				s.Record(context.Background(), security.Event{Kind: security.LoginOK, Object: fmt.Sprint(g, i)})
			}
		}()
	}
	total := 0
	flushDone := make(chan struct{})
	go func() {
		defer close(flushDone)
		for range 50 {
			total += len(s.Flush(time.Now(), nil))
		}
	}()
	wg.Wait()
	<-flushDone
	total += len(s.Flush(time.Now(), nil))
	if total != 800 {
		t.Fatalf("%d samples, want 800", total)
	}
}

// collectSink keeps what the engine writes and signals each write.
type collectSink struct {
	mu      sync.Mutex
	samples []model.Sample
	wrote   chan struct{}
}

func (c *collectSink) Connect(context.Context) error { return nil }
func (c *collectSink) Write(_ context.Context, b []model.Sample) error {
	c.mu.Lock()
	c.samples = append(c.samples, b...)
	c.mu.Unlock()
	select {
	case c.wrote <- struct{}{}:
	default:
	}
	return nil
}
func (c *collectSink) Close(context.Context) error { return nil }

// idleSource produces nothing: the gateway sees only security events.
type idleSource struct{}

func (idleSource) Run(ctx context.Context, _ pipeline.Emitter) error { <-ctx.Done(); return nil }

// Events recorded anywhere in the gateway reach a sink through the
// engine, as samples behind the sink's buffer.
func TestEventsReachSink(t *testing.T) {
	s, err := New(Config{Prefix: "acme"}, "line-7", nil)
	if err != nil {
		t.Fatal(err)
	}
	sink := &collectSink{wrote: make(chan struct{}, 1)}
	eng, err := engine.New(engine.Options{
		Sources:      []engine.SourceSpec{{Name: "idle", Source: idleSource{}}},
		Processors:   []pipeline.Processor{s},
		Sinks:        []engine.SinkSpec{{Name: "it", Sink: sink, Buffer: buffer.NewMemory(1000, buffer.DropOldest)}},
		TickInterval: 5 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	defer func() {
		cancel()
		if err := wait(t, done, "the engine to stop"); err != nil {
			t.Error(err)
		}
	}()
	s.Record(context.Background(), security.Event{Time: t0, Kind: security.ConfigApplied, Severity: security.SeverityNotice,
		Actor: "api:carol", Outcome: "ok", Detail: "configuration 7 applied"})
	s.Record(context.Background(), security.Event{Time: t0, Kind: security.LoginFailed, Severity: security.SeverityWarning,
		Remote: "10.0.0.1:5"})
	var got []model.Sample
	for len(got) < 2 {
		wait(t, sink.wrote, "a write to the sink")
		sink.mu.Lock()
		got = append([]model.Sample(nil), sink.samples...)
		sink.mu.Unlock()
	}
	if got[0].Path != "acme/_security/config.applied" || got[1].Path != "acme/_security/auth.login_failed" || got[0].Seq == 0 {
		t.Fatalf("samples %+v", got)
	}
	v := got[0].Value.AsString()
	if !strings.Contains(v, `"actor":"api:carol"`) || !strings.Contains(v, `"node":"line-7"`) {
		t.Errorf("value %s", v)
	}
}

// SetConfig changes the sinks' side of a running stream: events queued
// before stay queued with their path, later ones follow the new prefix,
// severity filter and switch; an invalid block is refused.
func TestSetConfigLive(t *testing.T) {
	s, err := New(Config{Prefix: "old"}, "n", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s.Record(ctx, security.Event{Kind: security.LoginFailed, Severity: security.SeverityWarning})
	if err := s.SetConfig(Config{Prefix: "new", MinSeverity: "warning"}); err != nil {
		t.Fatal(err)
	}
	s.Record(ctx, security.Event{Kind: security.LoginFailed, Severity: security.SeverityWarning})
	s.Record(ctx, security.Event{Kind: security.LoginOK, Severity: security.SeverityInfo}) // filtered now
	out := s.Flush(time.Time{}, nil)
	if len(out) != 2 || out[0].Path != "old/_security/auth.login_failed" || out[1].Path != "new/_security/auth.login_failed" {
		t.Fatalf("samples %+v", out)
	}
	if err := s.SetConfig(Config{ToSinks: boolp(false)}); err != nil {
		t.Fatal(err)
	}
	if s.Offer(ctx, security.Event{Kind: security.LoginFailed, Severity: security.SeverityWarning}) || s.Stats().SinksOn {
		t.Fatal("to_sinks: false still queues for the sinks")
	}
	if err := s.SetConfig(Config{MinSeverity: "loud"}); err == nil {
		t.Fatal("an invalid block accepted")
	}
}
