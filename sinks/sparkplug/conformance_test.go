package sparkplug

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/internal/mqttclient/mqtttest"
	"github.com/weir-edge/weir/internal/sparkplugb"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/sinks/sinktest"
)

// TestConformance runs the suite every sink runs against an embedded
// broker that the outage case stops and restarts on the same address.
// data_qos is 1: with the spec's QoS 0 a message written to a socket the
// broker has just closed is lost, which the outage case (rightly) reports.
func TestConformance(t *testing.T) {
	for _, version := range []string{Version311, Version5} {
		t.Run(version, func(t *testing.T) {
			var mu sync.Mutex
			current := mqtttest.Start(t, mqtttest.Options{})
			addr := current.Addr()
			var earlier []mqtttest.Message
			n := 0
			group := ""
			dir := t.TempDir()
			sinktest.Run(t, sinktest.Harness{
				New: func(t *testing.T) pipeline.Sink {
					mu.Lock()
					n++
					group = fmt.Sprintf("conf%d", n)
					g := group
					mu.Unlock()
					s, err := New(Config{
						Broker:  mqttclient.Broker{URL: "tcp://" + addr, ProtocolVersion: version, KeepAlive: 5 * time.Second},
						GroupID: g, EdgeNodeID: "E1", BdSeqFile: filepath.Join(dir, g+".bdseq"), DataQoS: 1,
					}, nil)
					if err != nil {
						t.Fatal(err)
					}
					return s
				},
				Received: func(t *testing.T) []model.Sample {
					mu.Lock()
					b, g := current, group
					msgs := append([]mqtttest.Message(nil), earlier...)
					mu.Unlock()
					msgs = append(msgs, b.Messages()...)
					return decodeSamples(t, sparkplugMsgs(t, msgs, g, "E1"))
				},
				// A lower bound, not the encoding: each sample becomes a
				// metric whose timestamp alone is a field tag and a 6-byte
				// varint (milliseconds in 2026); births and topics add more.
				MinWireBytes: func(b []model.Sample) uint64 { return 7 * uint64(len(b)) },
				Outage: func(t *testing.T) func() {
					mu.Lock()
					old := current
					mu.Unlock()
					kept := old.Messages()
					old.Stop()
					return func() {
						nb := mqtttest.Start(t, mqtttest.Options{Addr: addr})
						mu.Lock()
						earlier = append(earlier, kept...)
						current = nb
						mu.Unlock()
					}
				},
			})
		})
	}
}

// decodeSamples is a minimal Sparkplug host: it learns aliases and
// datatypes from NBIRTH/DBIRTH and turns NDATA/DDATA metrics back into
// samples. The tag path is the device id with ':' → '/' plus the metric
// name (the default device mapping); Seq comes from the weir_seq property,
// quality from Quality and weir_reason.
func decodeSamples(t testing.TB, msgs []spMsg) []model.Sample {
	t.Helper()
	type def struct {
		path string
		dt   sparkplugb.DataType
	}
	defs := map[uint64]def{}
	var out []model.Sample
	for _, m := range msgs {
		prefix := ""
		if m.topic.Device != "" {
			prefix = strings.ReplaceAll(m.topic.Device, ":", "/") + "/"
		}
		switch m.topic.Type {
		case sparkplugb.NBIRTH, sparkplugb.DBIRTH:
			for _, bm := range m.payload.Metrics {
				if bm.Alias != nil {
					defs[bm.GetAlias()] = def{prefix + bm.GetName(), sparkplugb.DataType(bm.GetDatatype())}
				}
			}
		case sparkplugb.NDATA, sparkplugb.DDATA:
			for _, dm := range m.payload.Metrics {
				d, ok := defs[dm.GetAlias()]
				if !ok {
					t.Fatalf("%s: unknown alias %d", m.raw, dm.GetAlias())
				}
				v, err := sparkplugb.ValueAs(dm, d.dt)
				if err != nil {
					t.Fatalf("%s: %v", m.raw, err)
				}
				s := model.Sample{Path: d.path, Value: v, SourceTime: int64(dm.GetTimestamp()) * 1e6, Historical: dm.GetIsHistorical()}
				if q, ok := sparkplugb.PropertyInt(sparkplugb.Property(dm, sparkplugb.QualityProperty)); ok {
					s.Quality.Code = sparkplugb.QualityFromCode(q)
					s.Quality.Reason = sparkplugb.Property(dm, PropReason).GetStringValue()
				}
				seq, _ := sparkplugb.PropertyInt(sparkplugb.Property(dm, PropSeq))
				s.Seq = uint64(seq)
				out = append(out, s)
			}
		}
	}
	return out
}
