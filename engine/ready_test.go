package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/internal/backoff"
	"github.com/weir-edge/weir/pipeline"
)

// reportingSource is a fakeSource that reports a status of its own.
type reportingSource struct {
	*fakeSource
	status pipeline.Status
}

func (s reportingSource) Status() pipeline.Status { return s.status }

// Behaviours a component can be given in the readiness table.
const (
	up        = "up"
	retrying  = "retrying"   // source: Run fails, restart waits an hour
	failed    = "failed"     // ErrPermanent
	connect   = "connecting" // sink: Connect blocks
	ownDown   = "own-down"   // the engine runs it, it reports itself connecting
	someChild = "some-child" // source reports itself retrying, one device running
	noChild   = "no-child"   // source reports itself retrying, every part down
)

// Readiness: not ready while every source or every sink is down; a kind
// with no components does not count; the reasons name what is down.
func TestReadiness(t *testing.T) {
	tests := []struct {
		name    string
		sources []string
		sinks   []string
		ready   bool
		reasons []string // substrings of the joined reasons
	}{
		{"no components", nil, nil, true, nil},
		{"all up", []string{up, up}, []string{up, up}, true, nil},
		{"some sources down", []string{up, failed, retrying}, []string{up}, true, nil},
		{"every source down", []string{failed, retrying}, []string{up},
			false, []string{"every source is down", "source s0 is failed (permanent failure)", "source s1 is retrying (device gone)"}},
		{"some sinks down", []string{up}, []string{connect, up, failed}, true, nil},
		{"every sink down", []string{up}, []string{connect, failed, ownDown},
			false, []string{"every sink is down", "sink k0 is connecting", "sink k1 is failed (permanent failure)", "sink k2 is connecting"}},
		{"both down", []string{failed}, []string{failed}, false, []string{"every source is down", "every sink is down"}},
		{"sinks only, up", nil, []string{up}, true, nil},
		{"sources only, down", []string{ownDown}, nil, false, []string{"source s0 is connecting"}},
		{"a source with one device up is up", []string{someChild}, []string{up}, true, nil},
		{"a source with every part down is down", []string{noChild}, []string{up}, false, []string{"source s0 is retrying"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := newLogRecorder()
			opts := Options{Logger: slog.New(logs), DrainTimeout: time.Hour,
				Backoff: backoff.Policy{Initial: time.Hour, Max: time.Hour}}
			var upSources []*fakeSource
			for i, b := range tt.sources {
				src := newSource(fmt.Sprintf("s%d", i))
				var impl pipeline.Source = src
				switch b {
				case up:
					upSources = append(upSources, src)
				case retrying:
					src.before = func(int) error { return errors.New("device gone") }
				case failed:
					src.before = func(int) error { return pipeline.ErrPermanent }
				case ownDown:
					upSources = append(upSources, src)
					impl = reportingSource{src, pipeline.Status{State: pipeline.StateConnecting}}
				case someChild:
					upSources = append(upSources, src)
					impl = reportingSource{src, pipeline.Status{State: pipeline.StateRetrying, Children: []pipeline.Status{
						{Name: "plc1", State: pipeline.StateRetrying}, {Name: "plc2", State: pipeline.StateRunning}}}}
				case noChild:
					upSources = append(upSources, src)
					impl = reportingSource{src, pipeline.Status{State: pipeline.StateRetrying, Children: []pipeline.Status{
						{Name: "plc1", State: pipeline.StateRetrying}, {Name: "node", State: pipeline.StateOffline}, {Name: "quiet"}}}}
				}
				opts.Sources = append(opts.Sources, SourceSpec{Name: src.name, Source: impl})
			}
			var connecting []*fakeSink
			connected := 0
			for i, b := range tt.sinks {
				k := newSink(fmt.Sprintf("k%d", i))
				switch b {
				case up:
					connected++
				case connect:
					connecting = append(connecting, k)
					never := make(gate)
					k.connect = func(ctx context.Context, _ int) error { return never.wait(ctx) }
				case failed:
					k.connect = func(context.Context, int) error { return pipeline.ErrPermanent }
				case ownDown:
					connected++
					k.status = func() pipeline.Status { return pipeline.Status{State: pipeline.StateConnecting} }
				}
				opts.Sinks = append(opts.Sinks, memSink(k.name, k, 10, buffer.DropOldest))
			}
			r := start(t, opts)
			// Wait until every component has reached its state.
			logs.waitFor(t, "INFO engine started")
			for _, src := range upSources {
				<-src.emitted
			}
			for _, k := range connecting {
				k.waitFor(t, "a connect attempt", func() bool { c, _, _ := k.calls(); return c >= 1 })
			}
			logs.waitN(t, "INFO sink connected", connected)
			logs.waitN(t, "ERROR source failed; restarting", count(tt.sources, retrying))
			logs.waitN(t, "ERROR source failed permanently", count(tt.sources, failed))
			logs.waitN(t, "ERROR sink failed permanently", count(tt.sinks, failed))

			st := r.Status()
			why := strings.Join(st.NotReady, "\n")
			if st.Ready != tt.ready || r.Ready() != tt.ready {
				t.Fatalf("ready = %v (%q), want %v", st.Ready, why, tt.ready)
			}
			for _, want := range tt.reasons {
				if !strings.Contains(why, want) {
					t.Errorf("reasons %q lack %q", why, want)
				}
			}
			for i, c := range st.Components {
				var b string
				if c.Kind == "source" {
					b = tt.sources[i]
				} else {
					b = tt.sinks[i-len(tt.sources)]
				}
				if c.Up != (b == up || b == someChild) {
					t.Errorf("%s %s (%s): up = %v", c.Kind, c.Name, b, c.Up)
				}
			}
			if err, _ := r.stop(t); err != nil {
				t.Fatalf("Run = %v", err)
			}
			if st := r.Status(); st.Ready || !slices.Equal(st.NotReady, []string{"engine is not running"}) {
				t.Fatalf("after Run: ready %v, reasons %q", st.Ready, st.NotReady)
			}
		})
	}
}

func count(behaviours []string, b string) int {
	n := 0
	for _, x := range behaviours {
		if x == b {
			n++
		}
	}
	return n
}
