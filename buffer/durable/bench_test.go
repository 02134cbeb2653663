package durable

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/weir-edge/weir/model"
)

func benchBatch(n int) []model.Sample {
	s := make([]model.Sample, n)
	now := time.Now().UnixNano()
	for i := range s {
		s[i] = model.Sample{Path: fmt.Sprintf("site/line1/machine%d/temperature", i%50), Value: model.Float(float64(i) * 0.1),
			SourceTime: now, EdgeTime: now, Seq: uint64(i)}
	}
	return s
}

// BenchmarkPush: 1000-sample batches, one pusher and four concurrent ones.
func BenchmarkPush(b *testing.B) {
	for _, fsync := range []string{FsyncGroup, FsyncAlways, FsyncOS} {
		for _, pushers := range []int{1, 4} {
			b.Run(fmt.Sprintf("fsync=%s/pushers=%d", fsync, pushers), func(b *testing.B) {
				buf := openT(b, Config{Fsync: fsync, MaxBytes: 8 << 30, Policy: "drop_oldest"}, options{})
				batch := benchBatch(1000)
				b.ReportAllocs()
				b.SetParallelism(pushers) // GOMAXPROCS × pushers goroutines
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := buf.Push(context.Background(), batch); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "samples/s")
				b.StopTimer()
				b.ReportMetric(float64(len(chunkKeys(b, buf.db)))/float64(b.N*len(batch)), "keys/sample")
			})
		}
	}
}

// BenchmarkReplay: Next+Ack of a stored backlog, 1000 per batch.
func BenchmarkReplay(b *testing.B) {
	buf := openT(b, Config{Fsync: FsyncOS, MaxBytes: 8 << 30}, options{})
	batch := benchBatch(1000)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		if err := buf.Push(ctx, batch); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		got, err := buf.Next(ctx, 1000)
		if err != nil {
			b.Fatal(err)
		}
		if err := buf.Ack(got); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkReplayAfterRestart: the backlog comes from disk (sstables), not
// the memtable.
func BenchmarkReplayAfterRestart(b *testing.B) {
	dir := b.TempDir() + "/sink"
	const total = 200_000
	buf, err := Open(Config{Dir: dir, Fsync: FsyncOS, MaxBytes: 8 << 30}, nil)
	if err != nil {
		b.Fatal(err)
	}
	batch := benchBatch(1000)
	for range total / 1000 {
		if err := buf.Push(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	if err := buf.db.Flush(); err != nil {
		b.Fatal(err)
	}
	_ = buf.Release()
	buf = openT(b, Config{Dir: dir, Fsync: FsyncOS, MaxBytes: 8 << 30}, options{})
	ctx := context.Background()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		got, err := buf.Next(ctx, 1000)
		if err != nil {
			b.Fatal(err)
		}
		n += got.Len()
		buf.Nack(got) // replay the same again: the store stays full
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "samples/s")
}
