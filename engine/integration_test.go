package engine

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/buffer/durable"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
	httpsink "github.com/weir-edge/weir/sinks/http"
)

// streamSource emits numbered samples over tags, batch after batch, until
// ctx ends or total samples were emitted. Values are per-tag counters, so
// the consumer can check order and completeness per tag.
type streamSource struct {
	tags, batch, total int
	emitted            atomic.Int64
	done               chan struct{}
}

func (s *streamSource) Run(ctx context.Context, out pipeline.Emitter) error {
	next := make([]int64, s.tags)
	buf := make([]model.Sample, 0, s.batch)
	for n := 0; n < s.total; {
		buf = buf[:0]
		for i := 0; i < s.batch && n < s.total; i, n = i+1, n+1 {
			tag := n % s.tags
			next[tag]++
			now := time.Now().UnixNano()
			buf = append(buf, model.Sample{Path: fmt.Sprintf("it/line/tag%d", tag), Value: model.Int(next[tag]),
				SourceTime: now, EdgeTime: now})
		}
		if err := out.Emit(ctx, buf); err != nil {
			return nil
		}
		s.emitted.Add(int64(len(buf)))
		if n%(s.batch*20) == 0 {
			time.Sleep(time.Millisecond) // a source paces itself; keeps the outage mid-stream
		}
	}
	close(s.done)
	<-ctx.Done()
	return nil
}

// receiver is an HTTP endpoint that can be switched to 503 (an outage).
type receiver struct {
	mu      sync.Mutex
	down    bool
	perTag  map[string][]int64
	batches int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	down := r.down
	r.mu.Unlock()
	if down {
		w.Header().Set("Retry-After", "0")
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
		return
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		body = zr
	}
	var msg struct {
		Samples []struct {
			Path  string `json:"path"`
			Value int64  `json:"value"`
		} `json:"samples"`
	}
	if err := json.NewDecoder(body).Decode(&msg); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	r.mu.Lock()
	for _, s := range msg.Samples {
		r.perTag[s.Path] = append(r.perTag[s.Path], s.Value)
	}
	r.batches++
	r.mu.Unlock()
}

func (r *receiver) setDown(d bool) { r.mu.Lock(); r.down = d; r.mu.Unlock() }

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, v := range r.perTag {
		n += len(v)
	}
	return n
}

// The destination goes away mid-stream and comes back: every sample
// arrives, in order per tag, exactly once (HTTP 503 means not accepted, so
// nothing is resent), through the real HTTP sink and the durable buffer.
func TestOutageMidStreamLosesNothing(t *testing.T) {
	rcv := &receiver{perTag: map[string][]int64{}}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	sink, err := httpsink.New(httpsink.Config{URL: srv.URL, Timeout: 5 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	buf, err := durable.Open(durable.Config{Dir: t.TempDir(), Fsync: durable.FsyncGroup, MaxBytes: 64 << 20}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const total, tags = 60_000, 50
	src := &streamSource{tags: tags, batch: 100, total: total, done: make(chan struct{})}
	r := start(t, Options{
		Sources: []SourceSpec{{Name: "s", Source: src}},
		Sinks:   []SinkSpec{{Name: "http", Sink: sink, Buffer: buf, BatchSize: 2000}},
	})
	// Let some data through, then cut the destination mid-stream.
	waitUntil(t, "first deliveries", func() bool { return rcv.count() > 5000 })
	rcv.setDown(true)
	// Both: samples pile up, and the sink has met the outage at least once
	// (a fast source can fill the buffer while the sink is still in a
	// Write that started before the cut).
	waitUntil(t, "samples to pile up during the outage", func() bool {
		return buf.Stats().Depth > 10_000 && component(t, r.Status(), "sink", "http").Counters["write_errors"] > 0
	})
	rcv.setDown(false)
	<-src.done
	waitUntil(t, "every sample delivered", func() bool { return rcv.count() >= total })
	r.stop(t)

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if n := rcv.countLocked(); n != total {
		t.Fatalf("received %d samples, want exactly %d", n, total)
	}
	for tag, vals := range rcv.perTag {
		for i, v := range vals {
			if v != int64(i+1) {
				t.Fatalf("%s: position %d holds %d, want %d (lost, duplicated or reordered)", tag, i, v, i+1)
			}
		}
	}
	st := component(t, r.Status(), "sink", "http")
	if st.Counters["write_errors"] == 0 {
		t.Fatal("the outage was not observed by the sink")
	}
	t.Logf("%d samples in %d requests; %d write errors during the outage; buffer peak depth > 10000",
		total, rcv.batches, st.Counters["write_errors"])
}

// countLocked is count for a caller that holds r.mu.
func (r *receiver) countLocked() int {
	n := 0
	for _, v := range r.perTag {
		n += len(v)
	}
	return n
}

// A sink far slower than its sources: the durable buffer takes the
// difference on disk, and the process's heap stays bounded. The sink's
// first write is held until the source is done and the depth read, so it
// is the bottleneck however fast or slow the machine.
func TestSlowSinkKeepsMemoryBounded(t *testing.T) {
	const total = 400_000
	src := &streamSource{tags: 100, batch: 1000, total: total, done: make(chan struct{})}
	release := make(chan struct{})
	sink := newSink("slow")
	var writes atomic.Int32
	sink.write = func(ctx context.Context, _ int, _ []model.Sample) error {
		writes.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}
	buf, err := durable.Open(durable.Config{Dir: t.TempDir(), Fsync: durable.FsyncOS, MaxBytes: 512 << 20}, nil)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak uint64
	r := start(t, Options{
		Sources:      []SourceSpec{{Name: "s", Source: src}},
		Sinks:        []SinkSpec{{Name: "slow", Sink: sink, Buffer: buf, BatchSize: 500}},
		DrainTimeout: 100 * time.Millisecond,
	})
	sample := func() {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		peak = max(peak, m.HeapInuse)
	}
	for done := false; !done; {
		select {
		case <-src.done:
			done = true
		case <-time.After(20 * time.Millisecond):
		}
		sample()
	}
	depth := buf.Stats().Depth
	close(release)
	r.stop(t)
	if depth < total/2 {
		t.Fatalf("only %d samples waited in the buffer: the sink was not the bottleneck", depth)
	}
	// 400k samples held in memory would take > 40 MB (a Sample is > 100
	// bytes); on disk they take none of the heap.
	growth := int64(peak) - int64(before.HeapInuse)
	if growth > 32<<20 {
		t.Fatalf("heap grew by %d MB while %d samples waited for a slow sink", growth>>20, depth)
	}
	t.Logf("%d samples buffered on disk behind a slow sink; heap growth %d MB", depth, growth>>20)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling an outside observation, not synchronising goroutines
	}
}

var _ buffer.Buffer = (*durable.Buffer)(nil)
