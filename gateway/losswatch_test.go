package gateway

import (
	"context"
	"testing"
	"time"

	"github.com/weir-edge/weir/alarms"
	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/model"
)

type nopSink struct{}

func (nopSink) Connect(context.Context) error               { return nil }
func (nopSink) Write(context.Context, []model.Sample) error { return nil }
func (nopSink) Close(context.Context) error                 { return nil }

// A sink buffer that drops samples raises the sink's data-loss alarm (an
// event for every sink), which clears once the drops stop for a while.
func TestDataLossRaisesAnAlarm(t *testing.T) {
	buf := buffer.NewMemory(2, buffer.DropOldest)
	eng, err := engine.New(engine.Options{Sinks: []engine.SinkSpec{{Name: "uns", Sink: nopSink{}, Buffer: buf}}, FirstSeq: 1})
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := alarms.New(alarms.Config{}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	w := newLossWatch(eng, mgr, testLogger(t))
	if err := w.define([]string{"uns"}); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	w.check(now)
	if a, _ := mgr.Get(lossAlarm("uns")); a.State != alarms.Normal {
		t.Fatalf("alarm %s before any loss", a.State)
	}
	// The engine is not running: nothing drains the 2-sample buffer.
	if err := eng.Emit(context.Background(), make([]model.Sample, 5)); err != nil {
		t.Fatal(err)
	}
	w.check(now.Add(time.Second))
	if a, _ := mgr.Get(lossAlarm("uns")); a.State != alarms.Unack {
		t.Fatalf("alarm %s after 3 dropped samples, want unack", a.State)
	}
	w.check(now.Add(2 * time.Minute))
	if a, _ := mgr.Get(lossAlarm("uns")); a.State != alarms.RTNUnack {
		t.Fatalf("alarm %s after a quiet minute, want cleared-unacknowledged", a.State)
	}
}
