package sparkplug

import (
	"fmt"
	"testing"

	"github.com/weir-edge/weir/internal/sparkplugb"
	"github.com/weir-edge/weir/model"
)

// BenchmarkEncodeDDATA measures building and encoding DDATA payloads
// (alias, timestamp, value, weir_seq property per metric) from samples:
// the per-sample CPU cost of the sink. Target: ≥ 500,000 metrics/s/core.
func BenchmarkEncodeDDATA(b *testing.B) {
	for _, seqProp := range []bool{true, false} {
		b.Run(fmt.Sprintf("seq_property=%v", seqProp), func(b *testing.B) {
			const per = 500
			cfg := Config{GroupID: "G", EdgeNodeID: "E"}
			cfg.setDefaults()
			n := newNode(&cfg)
			enc := dataEncoder{seqProp: seqProp}
			batch := make([]model.Sample, per)
			ms := make([]*metricState, per)
			for i := range batch {
				batch[i] = sample(fmt.Sprintf("line/cell/tag%d", i%50), model.Float(float64(i)+0.5), uint64(i))
				if i%10 == 3 {
					batch[i].Value = model.Int(int64(i))
				}
				m, _, err := n.resolve(batch[i].Path)
				if err != nil {
					b.Fatal(err)
				}
				m.observe(batch[i].Value)
				ms[i] = m
			}
			var buf []byte
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				p := sparkplugb.NewPayload(1, 7)
				p.Metrics = make([]*sparkplugb.Metric, per)
				for i := range batch {
					p.Metrics[i] = enc.metric(ms[i], &batch[i])
				}
				var err error
				buf, err = sparkplugb.AppendEncode(buf[:0], p)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)*per/b.Elapsed().Seconds(), "metrics/s")
		})
	}
}
