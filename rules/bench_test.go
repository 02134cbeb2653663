package rules

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/internal/latency"
	"github.com/weir-edge/weir/model"
)

// benchConfig is 1,000 rules over 10,000 tags: rule i watches tags
// 10i..10i+9 (the mean of ten temperatures above 90, for 2 s, with a
// deadband), raises an alarm and sets a tag.
func benchConfig() (Config, []string) {
	const nRules, perRule = 1000, 10
	tags := make([]string, nRules*perRule)
	for i := range tags {
		tags[i] = fmt.Sprintf("acme/plant1/area%d/line%d/tag%05d", i/1000, i/100, i)
	}
	var c Config
	for i := range nRules {
		vars := map[string]string{}
		terms := make([]string, perRule)
		for k := range perRule {
			name := fmt.Sprintf("v%d", k)
			vars[name] = tags[i*perRule+k]
			terms[k] = name
		}
		c.Rules = append(c.Rules, Rule{
			Name: fmt.Sprintf("r%04d", i), Vars: vars, For: 2 * time.Second,
			When:       "(" + strings.Join(terms, " + ") + ") / 10 > 90",
			Hysteresis: &Hysteresis{Deadband: 2},
			Actions: []Action{
				{Alarm: &AlarmAction{Name: fmt.Sprintf("a%04d", i), Priority: "high"}},
				{Set: &SetAction{Path: fmt.Sprintf("acme/plant1/rules/r%04d", i), Value: true}},
			},
		})
	}
	return c, tags
}

// BenchmarkProcess feeds batches of 200 samples (a Modbus source's batch)
// over the 10,000 tags: "contiguous" batches are one device's block of
// consecutive tags (20 rules evaluated per batch), "scattered" batches
// hit 200 different rules. Values wander between 80 and 100, so rules
// rise and clear. Reports the p99 time per batch and samples/s.
func BenchmarkProcess(b *testing.B) {
	for _, layout := range []string{"contiguous", "scattered"} {
		b.Run(layout, func(b *testing.B) {
			cfg, tags := benchConfig()
			p, err := New(cfg, Deps{Alarms: newManager(b), Actions: &queue{}}, nil)
			if err != nil {
				b.Fatal(err)
			}
			const batchSize = 200
			rng := rand.New(rand.NewPCG(1, 2))
			values := make([]float64, len(tags))
			for i := range values {
				values[i] = 85
			}
			batch := make([]model.Sample, 0, 4*batchSize)
			var h latency.Histogram
			now := t0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				batch = batch[:0]
				now = now.Add(10 * time.Millisecond)
				for k := range batchSize {
					var tag int
					if layout == "contiguous" {
						tag = (i*batchSize + k) % len(tags)
					} else {
						tag = (k*50 + i) % len(tags)
					}
					values[tag] = min(100, max(80, values[tag]+rng.NormFloat64()))
					batch = append(batch, model.Sample{Path: tags[tag], Value: model.Float(values[tag]),
						SourceTime: now.UnixNano(), EdgeTime: now.UnixNano()})
				}
				b.StartTimer()
				start := time.Now()
				out := p.Process(batch)
				if i%10 == 0 {
					out = p.Flush(now, out)
				}
				h.Record(time.Since(start))
				batch = out
			}
			b.StopTimer()
			secs := float64(h.Mean()) * float64(h.Count()) / 1e9
			b.ReportMetric(float64(h.Quantile(0.99).Nanoseconds()), "p99-ns/batch")
			b.ReportMetric(float64(h.Quantile(0.5).Nanoseconds()), "p50-ns/batch")
			b.ReportMetric(float64(h.Count()*batchSize)/secs, "samples/s")
			st := p.Status().Counters
			b.ReportMetric(float64(st["evaluated"])/float64(h.Count()), "evals/batch")
			b.ReportMetric(float64(st["rises"]), "rises")
		})
	}
}
