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
