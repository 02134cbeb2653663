package modbus

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/internal/payload"
	"github.com/weir-edge/weir/model"
)

// nopSink lets the engine be built; the benchmark drives the buffer itself.
type nopSink struct{}

func (nopSink) Connect(context.Context) error               { return nil }
func (nopSink) Write(context.Context, []model.Sample) error { return nil }
func (nopSink) Close(context.Context) error                 { return nil }

// BenchmarkHotPath measures Weir's per-sample path from a Modbus response to
// MQTT payload bytes: register decode (the real poll code) → engine Emit
// (sequence ids, processor chain, push into the sink buffer) → buffer Next →
// JSON encoding of the batch message → Ack. One op is one poll cycle of
// 200 tags (100 uint16 + 50 float32 CDAB + 50 scaled int32).
func BenchmarkHotPath(b *testing.B) {
	const nTags = 200
	var tags []TagConfig
	addr := 0
	for i := 0; i < nTags; i++ {
		t := TagConfig{Name: fmt.Sprintf("t%03d", i), Table: "holding", Address: addr}
		switch {
		case i < 100:
			t.Type = "uint16"
			addr++
		case i < 150:
			t.Type, t.Order = "float32", "CDAB"
			addr += 2
		default:
			scale := 0.1
			t.Type, t.Scale = "int32", &scale
			addr += 2
		}
		tags = append(tags, t)
	}
	src, err := New(Config{Devices: []DeviceConfig{{
		Name: "plc", Address: "127.0.0.1:1", Namespace: "acme/plant1/area/line1/cell1",
		Groups: []GroupConfig{{Interval: time.Second, Tags: tags}},
	}}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	g := src.devices[0].groups[0]
	regs := make([]uint16, 125)
	for i := range regs {
		regs[i] = uint16(uint64(i) * 2654435761 >> 7)
	}
	binary := math.Float32bits(21.5)
	regs[101], regs[100] = uint16(binary>>16), uint16(binary)

	buf := buffer.NewMemory(10*nTags, buffer.DropOldest)
	eng, err := engine.New(engine.Options{Sinks: []engine.SinkSpec{{Name: "s", Sink: nopSink{}, Buffer: buf}}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	out := make([]byte, 0, 64<<10)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now := int64(i)
		for ri := range g.reqs {
			g.decode(&g.reqs[ri], regs, nil, now)
		}
		if err := eng.Emit(ctx, g.batch); err != nil {
			b.Fatal(err)
		}
		batch, err := buf.Next(ctx, 10*nTags)
		if err != nil {
			b.Fatal(err)
		}
		// The MQTT sink's batch mode: one message per asset.
		out = payload.AppendBatch(out[:0], batch.Samples)
		if err := buf.Ack(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*nTags)/b.Elapsed().Seconds(), "samples/s")
}
