package mqtt

import (
	"context"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/internal/mqttclient/mqtttest"
	"github.com/weir-edge/weir/model"
	mqttsink "github.com/weir-edge/weir/sinks/mqtt"
	spsink "github.com/weir-edge/weir/sinks/sparkplug"
)

// roundTripBatch has one sample of every value kind, plus bad, uncertain
// and historical ones. Timestamps are whole milliseconds: both wire formats
// carry ms.
func roundTripBatch(paths func(name string) string) []model.Sample {
	ts := time.Date(2026, 3, 4, 5, 6, 7, 123_000_000, time.UTC).UnixNano()
	mk := func(name string, v model.Value) model.Sample {
		return model.Sample{Path: paths(name), Value: v, SourceTime: ts, EdgeTime: ts}
	}
	bad := mk("alarm", model.Value{})
	bad.Quality = model.Quality{Code: model.Bad, Reason: model.ReasonUnreachable}
	unc := mk("drift", model.Float(9.5))
	unc.Quality = model.Quality{Code: model.Uncertain, Reason: "sensor drift"}
	hist := mk("replayed", model.Int(12))
	hist.Historical = true
	return []model.Sample{
		mk("float", model.Float(21.0)),
		mk("float_frac", model.Float(-0.1)),
		mk("int", model.Int(math.MinInt64)),
		mk("uint", model.Uint(math.MaxUint64)),
		mk("bool", model.Bool(true)),
		mk("string", model.String("LOT-42 ✓ \"q\"")),
		mk("ints", model.Array([]model.Value{model.Int(-1), model.Int(2)})),
		mk("uints", model.Array([]model.Value{model.Uint(0), model.Uint(math.MaxUint64)})),
		mk("floats", model.Array([]model.Value{model.Float(1.5), model.Float(1e300)})),
		mk("bools", model.Array([]model.Value{model.Bool(false), model.Bool(true)})),
		mk("strings", model.Array([]model.Value{model.String("a"), model.String("b")})),
		bad, unc, hist,
	}
}

// checkRoundTrip compares the last sample per path with what was sent,
// under the path the source gives it.
func checkRoundTrip(t *testing.T, sent []model.Sample, got []model.Sample, pathOf func(model.Sample) string) {
	t.Helper()
	last := byPath(got)
	for _, w := range sent {
		p := pathOf(w)
		g, ok := last[p]
		if !ok {
			t.Errorf("%s: not received (have %d paths)\n%s", p, len(last), dumpSamples(got))
			continue
		}
		if !g.Value.Equal(w.Value) || g.Quality != w.Quality || g.SourceTime != w.SourceTime || g.Historical != w.Historical {
			t.Errorf("%s: got %#v %s ts=%d hist=%v; sent %#v %s ts=%d hist=%v", p, g.Value, g.Quality, g.SourceTime,
				g.Historical, w.Value, w.Quality, w.SourceTime, w.Historical)
		}
	}
}

// TestWeirSparkplugSinkToSource: Weir's Sparkplug sink publishes every
// value kind through a broker and this source, as host application,
// ingests them exactly; the sink's NDEATH on Close then marks them stale.
func TestWeirSparkplugSinkToSource(t *testing.T) {
	for _, version := range []string{spsink.Version311, spsink.Version5} {
		t.Run("v"+version, func(t *testing.T) {
			b := mqtttest.Start(t, mqtttest.Options{})
			out := newCollector()
			runSource(t, Config{Broker: mqttclient.Broker{URL: b.URL("tcp"), ClientID: "host"}, Sparkplug: &SparkplugConfig{
				GroupIDs: []string{"G1"}, HostID: "host", PublishState: true}}, out)
			b.WaitSubscribed(t, waitTimeout, 1)

			sink, err := spsink.New(spsink.Config{Broker: mqttclient.Broker{URL: b.URL("tcp"), ProtocolVersion: version}, GroupID: "G1", EdgeNodeID: "weir-gw",
				BdSeqFile: filepath.Join(t.TempDir(), "bdseq"), DataQoS: 1}, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			if err := sink.Connect(ctx); err != nil {
				t.Fatalf("sink Connect: %v", err)
			}
			batch := roundTripBatch(func(name string) string { return "plant/line1/" + name })
			node := mk(model.Sample{Path: "status", Value: model.String("RUN"), SourceTime: batch[0].SourceTime})
			batch = append(batch, node)
			if err := sink.Write(ctx, batch); err != nil {
				t.Fatalf("sink Write: %v", err)
			}
			pathOf := func(s model.Sample) string {
				if s.Path == "status" {
					return "spBv1.0/G1/weir-gw/status" // a node metric
				}
				return "spBv1.0/G1/weir-gw/plant:line1/" + s.Path[len("plant/line1/"):]
			}
			got := out.waitFor(t, "every sample", func(ss []model.Sample) bool {
				last := byPath(ss)
				for _, w := range batch {
					if g, ok := last[pathOf(w)]; !ok || g.SourceTime != w.SourceTime {
						return false
					}
				}
				return true
			})
			checkRoundTrip(t, batch, got, pathOf)

			n := len(out.snapshot())
			if err := sink.Close(ctx); err != nil {
				t.Fatalf("sink Close: %v", err)
			}
			got = out.waitN(t, n+len(batch))
			for _, s := range got[n:] {
				if s.Quality.Code != model.Bad || s.Quality.Reason != model.ReasonStale {
					t.Fatalf("after NDEATH: %s", dumpSamples(got[n:]))
				}
			}
		})
	}
}

func mk(s model.Sample) model.Sample { s.EdgeTime = s.SourceTime; return s }

// TestWeirMQTTSinkToSource: Weir's MQTT sink (sample and batch mode) →
// broker → this source with format weir: every sample round-trips.
func TestWeirMQTTSinkToSource(t *testing.T) {
	for _, mode := range []string{mqttsink.ModeSample, mqttsink.ModeBatch} {
		t.Run(mode, func(t *testing.T) {
			b := mqtttest.Start(t, mqtttest.Options{})
			out := newCollector()
			s := runSource(t, Config{Broker: mqttclient.Broker{URL: b.URL("tcp"), ClientID: "ingest-" + mode}, Subscriptions: []SubscriptionConfig{
				{Topic: "weir/v1/#", StripPrefix: "weir/v1/", Path: "copy/{topic}", Format: FormatWeir}}}, out)
			b.WaitSubscribed(t, waitTimeout, 1)
			sink, err := mqttsink.New(mqttsink.Config{Broker: mqttclient.Broker{URL: b.URL("tcp"), ClientID: "weir-" + mode}, TopicPrefix: "weir/v1", Mode: mode}, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			if err := sink.Connect(ctx); err != nil {
				t.Fatalf("sink Connect: %v", err)
			}
			defer func() { _ = sink.Close(context.Background()) }()
			// Weir's JSON payload cannot carry a uint array whose elements
			// fit int64: they decode as ints, and internal/payload refuses
			// the mix of int and uint elements. Left out until that decoder
			// learns it (see README, caveats).
			batch := slices.DeleteFunc(roundTripBatch(func(name string) string { return "site/line1/" + name }),
				func(s model.Sample) bool { return strings.HasSuffix(s.Path, "/uints") })
			if err := sink.Write(ctx, batch); err != nil {
				t.Fatalf("sink Write: %v", err)
			}
			got := out.waitN(t, len(batch))
			checkRoundTrip(t, batch, got, func(s model.Sample) string { return "copy/" + s.Path })
			if n := s.Status().Counters["decode_errors"]; n != 0 {
				t.Fatalf("decode_errors = %d (status messages must be skipped)", n)
			}
		})
	}
}
