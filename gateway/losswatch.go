package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/weir-edge/weir/alarms"
	"github.com/weir-edge/weir/engine"
)

// lossWatch turns data loss into an alarm: when a sink's buffer drops
// samples (overflow, age, disk full, corruption) the alarm
// sink_<name>_data_loss is raised — an ISA-18.2 event that flows to every
// sink and shows in /api/v1/alarms — and it clears after quietFor without
// new drops. The counters and logs say how many; the alarm makes sure
// someone is told.
type lossWatch struct {
	eng      *engine.Engine
	mgr      *alarms.Manager
	log      *slog.Logger
	every    time.Duration
	quietFor time.Duration

	mu       sync.Mutex           // define (a reload) runs beside run
	last     map[string]uint64    // dropped count per sink at the last look
	lastLoss map[string]time.Time // when each sink last dropped
}

func newLossWatch(eng *engine.Engine, mgr *alarms.Manager, log *slog.Logger) *lossWatch {
	return &lossWatch{eng: eng, mgr: mgr, log: log, every: time.Second, quietFor: time.Minute,
		last: map[string]uint64{}, lastLoss: map[string]time.Time{}}
}

func lossAlarm(sink string) string { return "sink_" + sink + "_data_loss" }

// define declares one alarm per sink: before the engine runs, and for
// the sinks a reload adds or rebuilds (an alarm already defined keeps its
// state; its new buffer counts from zero).
func (w *lossWatch) define(sinks []string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range sinks {
		err := w.mgr.Define(alarms.Def{Name: lossAlarm(s), Priority: alarms.High,
			Message: fmt.Sprintf("sink %s is losing buffered samples (see weir_sink_buffer_dropped_samples_total)", s)})
		if err != nil && !errors.Is(err, alarms.ErrDuplicate) {
			return err
		}
		w.last[s] = 0 // drops from before the first look count too (a corrupt store at open)
	}
	return nil
}

// run checks every w.every until ctx ends.
func (w *lossWatch) run(ctx context.Context) error {
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			w.check(now)
		}
	}
}

func (w *lossWatch) check(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, cs := range w.eng.Status().Components {
		if cs.Kind != "sink" || cs.Buffer == nil {
			continue
		}
		name, dropped := cs.Name, cs.Buffer.Dropped
		if prev, seen := w.last[name]; seen && dropped > prev {
			w.lastLoss[name] = now
			if raised, err := w.mgr.Raise(lossAlarm(name), now); err != nil {
				w.log.Error("raise data-loss alarm", "sink", name, "err", err)
			} else if raised {
				w.log.Error("sink is losing data", "sink", name, "dropped", dropped-prev)
			}
		} else if at, ok := w.lastLoss[name]; ok && now.Sub(at) >= w.quietFor {
			delete(w.lastLoss, name)
			if _, err := w.mgr.Clear(lossAlarm(name), now); err != nil {
				w.log.Error("clear data-loss alarm", "sink", name, "err", err)
			}
		}
		w.last[name] = dropped
	}
}
