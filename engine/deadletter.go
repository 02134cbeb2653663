package engine

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/weir-edge/weir/buffer"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

// DeadLetters keeps the samples a sink's destination refused for good, so
// that a poison sample leaves the sink's buffer (and stops blocking the
// samples behind it) without being lost: an operator inspects them and
// replays them once the cause is fixed (`weir buffer dead`, `weir buffer
// replay`). The engine calls Put from the sink's worker goroutine only;
// Stats may be called concurrently. durable.DeadLetters implements it.
type DeadLetters interface {
	// Put stores copies of samples under cause (a pipeline.Cause…
	// constant). When the store is full it drops its oldest entries and
	// counts them; an error means the samples could not be kept.
	Put(ctx context.Context, cause string, samples []model.Sample) error
	// Stats reports the store of each cause that holds or held samples.
	Stats() map[string]buffer.Stats
}

// DeadLetterStatus is what /status shows about a sink's refused samples.
type DeadLetterStatus struct {
	// Rejected counts, per cause, the samples the destination refused
	// since the start (dead-lettered, or dropped when the sink has no
	// dead-letter store or it failed).
	Rejected map[string]uint64 `json:"rejected"`
	// Lost counts rejected samples that could not be dead-lettered.
	Lost uint64 `json:"lost,omitempty"`
	// Held is the samples the dead-letter store keeps per cause, from
	// this run and earlier ones; Bytes their size on disk. Dropped counts
	// the oldest dead letters dropped to stay in the store's bounds.
	Held    map[string]int `json:"held,omitempty"`
	Bytes   int64          `json:"bytes,omitempty"`
	Dropped uint64         `json:"dropped,omitempty"`
}

// rejectLogEvery is how often each cause of rejection is logged at most:
// a flood of poison samples must not flood the log too.
const rejectLogEvery = time.Minute

// rejections counts and logs a sink's rejected samples by cause.
type rejections struct {
	mu        sync.Mutex
	byCause   map[string]uint64
	lost      uint64
	lastLog   map[string]time.Time
	sinceLast map[string]uint64 // rejected since the cause was last logged
}

// count records n samples rejected for cause and reports whether to log
// now (first time, or rejectLogEvery after the last line for the cause),
// with how many went unlogged since.
func (r *rejections) count(cause string, n int, now time.Time) (log bool, unlogged uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byCause == nil {
		r.byCause, r.lastLog, r.sinceLast = map[string]uint64{}, map[string]time.Time{}, map[string]uint64{}
	}
	r.byCause[cause] += uint64(n)
	r.sinceLast[cause] += uint64(n)
	if last, ok := r.lastLog[cause]; ok && now.Sub(last) < rejectLogEvery {
		return false, 0
	}
	r.lastLog[cause] = now
	unlogged = r.sinceLast[cause] - uint64(n)
	r.sinceLast[cause] = 0
	return true, unlogged
}

func (r *rejections) addLost(n int) {
	r.mu.Lock()
	r.lost += uint64(n)
	r.mu.Unlock()
}

func (r *rejections) snapshot() (map[string]uint64, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string]uint64, len(pipeline.Causes))
	for _, c := range pipeline.Causes {
		m[c] = r.byCause[c]
	}
	for c, n := range r.byCause {
		m[c] = n
	}
	return m, r.lost
}

// handleRejected deals with a Write that returned ErrRejected: the samples
// the destination refused go to the dead-letter store, the whole batch is
// acknowledged (the rest was confirmed, see pipeline.RejectedError) and the
// sink goes on at once, without a backoff. A plain ErrRejected refuses
// every sample not in the confirmed prefix (delivered).
func (r *sinkRunner) handleRejected(ctx context.Context, batch buffer.Batch, delivered int, err error) {
	var rej *pipeline.RejectedError
	refused := map[int]bool{}
	byCause := map[string][]model.Sample{}
	errOf := map[string]error{}
	if errors.As(err, &rej) {
		for _, x := range rej.Rejected {
			if x.Index < 0 || x.Index >= batch.Len() || refused[x.Index] {
				continue
			}
			refused[x.Index] = true
			cause := x.Cause
			if cause == "" {
				cause = pipeline.CauseRefused
			}
			byCause[cause] = append(byCause[cause], batch.Samples[x.Index])
			if errOf[cause] == nil {
				errOf[cause] = x.Err
			}
		}
	} else {
		for i := delivered; i < batch.Len(); i++ {
			refused[i] = true
		}
		byCause[pipeline.CauseRefused] = slices.Clone(batch.Samples[delivered:])
		errOf[pipeline.CauseRefused] = err
	}
	// Deterministic order, so the log and the store read the same way
	// every time.
	causes := make([]string, 0, len(byCause))
	for c := range byCause {
		causes = append(causes, c)
	}
	slices.Sort(causes)
	now := r.engine.opts.Now()
	for _, cause := range causes {
		samples := byCause[cause]
		n := len(samples)
		r.rejected.Add(uint64(n))
		stored := false
		if dl := r.spec.DeadLetters; dl != nil {
			if perr := dl.Put(ctx, cause, samples); perr != nil {
				r.rej.addLost(n)
				r.log.Error("sink dead-letter store failed; rejected samples dropped", "err", perr, "cause", cause, "samples", n)
			} else {
				stored = true
			}
		} else {
			r.rej.addLost(n)
		}
		if log, unlogged := r.rej.count(cause, n, now); log {
			r.log.Error("sink destination refused samples for good; moved aside so the rest goes on",
				"cause", cause, "err", errOf[cause], "samples", n, "dead_lettered", stored,
				"first_path", samples[0].Path, "first_seq", samples[0].Seq,
				"unlogged_since_last", unlogged, "next_log_in", rejectLogEvery)
		}
	}
	if delivered == 0 && len(refused) < batch.Len() {
		r.confirmExcept(batch, refused)
	} else if aerr := r.spec.Buffer.Ack(batch); aerr != nil {
		r.log.Error("sink buffer ack failed", "err", aerr)
	}
	r.setState(pipeline.StateRunning, nil)
}

// confirmExcept records a delivered batch (latency per sample, counters,
// Ack) whose refused samples, if any, did not
// reach the destination: they are left out of the latency and the written
// counters; the whole batch is acknowledged.
func (r *sinkRunner) confirmExcept(batch buffer.Batch, refused map[int]bool) {
	now := r.engine.opts.Now().UnixNano()
	historical, written := 0, 0
	for i := range batch.Samples {
		if refused[i] {
			continue
		}
		written++
		if batch.Samples[i].Historical {
			historical++
			continue
		}
		r.latency.Record(time.Duration(now - batch.Samples[i].SourceTime))
		r.gatewayLatency.Record(time.Duration(now - batch.Samples[i].EdgeTime))
	}
	r.historical.Add(uint64(historical))
	if err := r.spec.Buffer.Ack(batch); err != nil {
		r.log.Error("sink buffer ack failed", "err", err)
	}
	r.written.Add(uint64(written))
	r.batches.Add(1)
}

// deadLetterStatus snapshots the rejections and the store.
func (r *sinkRunner) deadLetterStatus() *DeadLetterStatus {
	byCause, lost := r.rej.snapshot()
	st := &DeadLetterStatus{Rejected: byCause, Lost: lost}
	if dl := r.spec.DeadLetters; dl != nil {
		st.Held = map[string]int{}
		for cause, bs := range dl.Stats() {
			st.Held[cause] = bs.Depth
			st.Bytes += bs.Bytes
			st.Dropped += bs.Dropped
		}
	}
	return st
}
