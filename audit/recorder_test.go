package audit

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-edge/weir/security"
)

func TestEventRecorderAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l := openLog(t, Config{File: path})
	rec := NewEventRecorder(l, 16, nil, nil)
	ctx := context.Background()
	evs := []security.Event{
		{Time: t0, Kind: security.LoginFailed, Actor: "api:mallory", Remote: "192.0.2.1:5000", Component: "api",
			Object: "/api/v1/values", Outcome: "failed", Detail: "unknown token"},
		{Time: t0, Kind: security.WriteDenied, Actor: "api:x"},    // the gate records writes
		{Time: t0, Kind: security.AuditCheckpoint, Detail: "{…}"}, // about the trail itself
		{Time: t0, Kind: security.TokenCreated, Actor: "api:admin", Object: "tok-7", Outcome: "ok"},
		{Time: t0, Kind: security.AlarmCommand, Actor: "mqtt:op", Object: "line1/overheat", Outcome: "ok", Detail: "shelve 1h: " + strings.Repeat("z", 5000)},
		{Time: t0, Kind: security.ConfigApplied, Actor: "cli", Object: "/etc/weir/weir.yaml", Outcome: "ok", Detail: "sha256 ab12"},
	}
	for _, ev := range evs {
		rec.Record(ctx, ev)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := rec.Run(cctx); err != nil { // drains what is queued, then returns
		t.Fatal(err)
	}
	tail, _ := l.Tail(10)
	var kinds []string
	for _, e := range tail {
		kinds = append(kinds, e.Kind)
	}
	if strings.Join(kinds, ",") != "auth.login_failed,auth.token_created,alarm.command,config.applied" {
		t.Fatalf("recorded kinds %v", kinds)
	}
	e := tail[0]
	if e.Caller != "api:mallory" || e.Remote != "192.0.2.1:5000" || e.Component != "api" || e.Path != "/api/v1/values" ||
		e.Outcome != "failed" || e.Detail != "unknown token" || e.Result != "" {
		t.Fatalf("entry %+v", e)
	}
	if len(tail[2].Detail) > MaxText+40 {
		t.Fatalf("detail not capped: %d bytes", len(tail[2].Detail))
	}
	l.Close()
	if n, err := Verify(path); err != nil || n != 4 {
		t.Fatalf("Verify = %d, %v", n, err)
	}
}

// TestEventRecorderNeverBlocks: with nobody draining, Record returns at
// once; what does not fit is counted and reported as one AuditProblem.
func TestEventRecorderNeverBlocks(t *testing.T) {
	l := openLog(t, Config{File: filepath.Join(t.TempDir(), "audit.jsonl")})
	probs := &events{}
	rec := NewEventRecorder(l, 4, probs, nil)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 250 {
				rec.Record(context.Background(), security.Event{Kind: security.LoginFailed, Actor: fmt.Sprintf("api:u%d-%d", g, i)})
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute): // bounds a hang only
		t.Fatal("Record blocked")
	}
	if rec.Dropped() != 996 {
		t.Fatalf("dropped %d, want 996", rec.Dropped())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec.Run(ctx)
	p := probs.of(security.AuditProblem)
	if len(p) != 1 || !strings.Contains(p[0].Detail, "996 security events dropped") {
		t.Fatalf("problems %+v", p)
	}
	if tail, _ := l.Tail(10); len(tail) != 4 {
		t.Fatalf("%d entries, want the 4 queued", len(tail))
	}
}

func TestEventRecorderRunDrains(t *testing.T) {
	l := openLog(t, Config{File: filepath.Join(t.TempDir(), "audit.jsonl")})
	rec := NewEventRecorder(l, 0, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- rec.Run(ctx) }()
	for i := range 50 {
		rec.Record(ctx, security.Event{Kind: security.AccessDenied, Actor: fmt.Sprintf("api:u%d", i)})
	}
	cancel()
	<-done
	if tail, _ := l.Tail(100); len(tail) != 50 || rec.Dropped() != 0 {
		t.Fatalf("%d entries, %d dropped", len(tail), rec.Dropped())
	}
}

// TestEventRecorderSummarisesFloods: a password guesser's 500 failures
// (from changing ports) become EventBurst entries and one summary; other
// sources are recorded as usual.
func TestEventRecorderSummarisesFloods(t *testing.T) {
	l := openLog(t, Config{File: filepath.Join(t.TempDir(), "audit.jsonl")})
	rec := NewEventRecorder(l, 1024, nil, nil)
	clk := t0
	rec.now = func() time.Time { return clk }
	ctx := context.Background()
	for i := range 500 {
		rec.Record(ctx, security.Event{Time: t0, Kind: security.LoginFailed, Actor: "api:admin",
			Remote: fmt.Sprintf("192.0.2.66:%d", 40000+i), Detail: fmt.Sprintf("wrong password %d", i)})
	}
	for i := range 5 {
		rec.Record(ctx, security.Event{Time: t0, Kind: security.LoginFailed, Actor: "api:alice", Remote: "10.0.0.5:1234", Detail: fmt.Sprint(i)})
	}
	// Drain without ending the window: the summary waits for it.
	for len(rec.q) > 0 {
		rec.take(<-rec.q)
	}
	tail, _ := l.Tail(1000)
	if len(tail) != EventBurst+5 {
		t.Fatalf("%d entries before the window passed, want %d", len(tail), EventBurst+5)
	}
	clk = clk.Add(EventWindow)
	rec.flush(false)
	tail, _ = l.Tail(1000)
	if len(tail) != EventBurst+6 {
		t.Fatalf("%d entries, want %d", len(tail), EventBurst+6)
	}
	sum := tail[len(tail)-1]
	if sum.Caller != "api:admin" || sum.Kind != "auth.login_failed" ||
		!strings.HasPrefix(sum.Detail, "480 further auth.login_failed events from this source") || !strings.Contains(sum.Detail, "wrong password 499") {
		t.Fatalf("summary %+v", sum)
	}
	// A new window records again.
	rec.Record(ctx, security.Event{Kind: security.LoginFailed, Actor: "api:admin", Remote: "192.0.2.66:1"})
	rec.take(<-rec.q)
	if tail, _ = l.Tail(1000); len(tail) != EventBurst+7 {
		t.Fatalf("%d entries after the window", len(tail))
	}
}

// Egress denials of two sinks: each sink has its own per-minute burst in
// the trail, and each summary names its sink with its count and no single
// tag (they were several), so nothing is attributed to the wrong sink.
func TestEventRecorderSummaryAttributes(t *testing.T) {
	l := openLog(t, Config{File: filepath.Join(t.TempDir(), "audit.jsonl")})
	rec := NewEventRecorder(l, 1024, nil, nil)
	clk := t0
	rec.now = func() time.Time { return clk }
	sent := map[string]int{"plant": EventBurst + 4, "cloud": EventBurst + 13}
	for _, sink := range []string{"plant", "cloud"} {
		for i := range sent[sink] {
			rec.take(security.Event{Time: t0, Kind: security.EgressDenied, Component: sink,
				Object: fmt.Sprintf("acme/plant1/tag%d", i), Outcome: "denied", Detail: "held back"})
		}
	}
	clk = clk.Add(EventWindow)
	rec.flush(false)
	tail, _ := l.Tail(1000)
	if len(tail) != 2*EventBurst+2 {
		t.Fatalf("%d entries, want %d (a burst and a summary per sink)", len(tail), 2*EventBurst+2)
	}
	summaries := map[string]Entry{}
	perSink := map[string]int{}
	for _, e := range tail {
		if strings.Contains(e.Detail, "further") {
			summaries[e.Component] = e
		} else {
			perSink[e.Component]++
		}
	}
	tests := []struct {
		sink, want string
	}{
		{"plant", "4 further flow.egress_denied events from this source (plant 4)"},
		{"cloud", "13 further flow.egress_denied events from this source (cloud 13)"},
	}
	for _, tc := range tests {
		sum, ok := summaries[tc.sink]
		if !ok {
			t.Errorf("no summary for %s: %+v", tc.sink, summaries)
			continue
		}
		if !strings.HasPrefix(sum.Detail, tc.want) || sum.Path != "" || !strings.Contains(sum.Detail, "SOC stream carries every event") {
			t.Errorf("%s summary %+v, want %q, no single path, and where every event is", tc.sink, sum, tc.want)
		}
		if perSink[tc.sink] != EventBurst {
			t.Errorf("%s: %d entries one by one, want %d", tc.sink, perSink[tc.sink], EventBurst)
		}
	}
}

// Sources past maxEventSources share one window; its summary names every
// component it covers and leaves the entry's component empty.
func TestEventLimiterOverflowNamesComponents(t *testing.T) {
	l := eventLimiter{m: map[string]*eventWindow{}}
	for i := range maxEventSources {
		l.allow(security.Event{Kind: security.LoginFailed, Actor: fmt.Sprint(i)}, t0)
	}
	for i := range EventBurst + 6 {
		c := "plant"
		if i%2 == 1 {
			c = "cloud"
		}
		l.allow(security.Event{Kind: security.EgressDenied, Component: c, Object: fmt.Sprint(i)}, t0)
	}
	var got []summaryDue
	for _, s := range l.due(t0.Add(EventWindow), false) {
		if s.sample.Kind == security.EgressDenied {
			got = append(got, s)
		}
	}
	if len(got) != 1 || got[0].n != 6 || got[0].components != "cloud 3, plant 3" || !got[0].several || !got[0].mixedObject {
		t.Fatalf("summaries %+v, want one of 6 naming cloud 3, plant 3", got)
	}
}
