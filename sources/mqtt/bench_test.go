package mqtt

import (
	"log/slog"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/weir-edge/weir/internal/sparkplugb"
	"github.com/weir-edge/weir/model"
)

// BenchmarkDecode measures turning one message into samples, per format:
// the per-message cost on the handler goroutine.
func BenchmarkDecode(b *testing.B) {
	cases := []struct {
		name    string
		sub     SubscriptionConfig
		payload string
	}{
		{"json", SubscriptionConfig{Topic: "plant/+/line/#", Path: "acme/{1}/{3+}", JSON: JSONConfig{Value: "$.data.value", Timestamp: "$.ts"}},
			`{"data":{"value":21.53,"unit":"C"},"ts":1732568400123}`},
		{"raw", SubscriptionConfig{Topic: "plant/#", Format: FormatRaw}, `21.53`},
		{"weir", SubscriptionConfig{Topic: "plant/#", Format: FormatWeir},
			`{"value":21.53,"quality":"good","ts":1732568400123,"edge_ts":1732568400125,"seq":42}`},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			r := mustRoute(b, c.sub)
			payload := []byte(c.payload)
			buf := make([]model.Sample, 0, 4)
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = r.decode(buf[:0], "plant/p1/line/l2/temp", payload, 1); err != nil || len(buf) != 1 {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSparkplugDDATA measures one DDATA of 20 aliased metrics: decode,
// seq check, alias resolution and sample building.
func BenchmarkSparkplugDDATA(b *testing.B) {
	h := newSPHost(SparkplugConfig{GroupIDs: []string{"G"}, PathPrefix: new(string), RebirthInterval: time.Second, QoS: new(int)},
		slog.New(slog.DiscardHandler))
	h.connected(0, func(outMsg) bool { return true }, time.Unix(0, 0))
	now := time.Unix(1, 0)
	var birth, data []*sparkplugb.Metric
	for i := range 20 {
		bm := &sparkplugb.Metric{Name: proto.String("m" + string(rune('a'+i))), Alias: proto.Uint64(uint64(i + 1)),
			Datatype: proto.Uint32(uint32(sparkplugb.DataType_Double))}
		_ = sparkplugb.SetValue(bm, model.Float(1), sparkplugb.DataType_Double)
		birth = append(birth, bm)
		dm := &sparkplugb.Metric{Alias: proto.Uint64(uint64(i + 1)), Timestamp: proto.Uint64(1732568400123)}
		_ = sparkplugb.SetValue(dm, model.Float(float64(i)), sparkplugb.DataType_Double)
		data = append(data, dm)
	}
	enc := func(seq uint64, ms []*sparkplugb.Metric) []byte {
		p, err := sparkplugb.Encode(&sparkplugb.Payload{Timestamp: proto.Uint64(1), Seq: proto.Uint64(seq), Metrics: ms})
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	if _, err := h.handle(nil, "spBv1.0/G/NBIRTH/E", enc(0, nil), now); err != nil {
		b.Fatal(err)
	}
	if _, err := h.handle(nil, "spBv1.0/G/DBIRTH/E/D", enc(1, birth), now); err != nil {
		b.Fatal(err)
	}
	msgs := make([][]byte, 256)
	for i := range msgs {
		msgs[i] = enc(uint64((i+2)%256), data)
	}
	buf := make([]model.Sample, 0, 32)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		var err error
		if buf, err = h.handle(buf[:0], "spBv1.0/G/DDATA/E/D", msgs[i%256], now); err != nil || len(buf) != 20 {
			b.Fatalf("%v %d", err, len(buf))
		}
		i++
	}
	if h.seqGaps.Load() != 0 {
		b.Fatalf("seq gaps: %d", h.seqGaps.Load())
	}
}
