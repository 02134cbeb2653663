package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-edge/weir/internal/tlsconf"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/writegate"
)

// Gate is where write actions go; *writegate.Gate implements it.
type Gate interface {
	Write(ctx context.Context, req writegate.Request) (writegate.Result, error)
}

var _ Gate = (*writegate.Gate)(nil)

// Job is one queued action: a write through the gate or an HTTP call.
type Job struct {
	Rule  string
	Write *writegate.Request
	HTTP  *HTTPCall
}

// HTTPCall is an http action with the edge that triggered it.
type HTTPCall struct {
	Action HTTPAction
	Edge   string // rise or clear
	Time   time.Time
}

// Runner runs write and HTTP actions off the pipeline: a bounded queue
// served by a fixed pool of workers, so that a slow PLC or web hook never
// holds up the engine. A full queue drops the action and counts it; a
// dropped or failed write is never retried (the gate's rule: a command
// that did not go through is reported, not replayed).
type Runner struct {
	cfg  ActionsConfig
	gate Gate
	log  *slog.Logger
	q    chan Job

	mu      sync.Mutex
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started bool
	closed  bool
	client  *http.Client

	queued, dropped        atomic.Uint64
	writesOK, writesFailed atomic.Uint64
	httpOK, httpFailed     atomic.Uint64
	finished               atomic.Uint64 // jobs run to their end, for Drain
	shut                   atomic.Bool   // Close was called: Enqueue refuses
	// observe, when set (tests, metrics), sees every finished job.
	observe func(Job, error)
}

var (
	_ Enqueuer                = (*Runner)(nil)
	_ pipeline.StatusReporter = (*Runner)(nil)
)

// NewRunner builds a runner; gate may be nil when no rule writes (write
// jobs then fail). Nothing runs before Start.
func NewRunner(cfg ActionsConfig, gate Gate, log *slog.Logger) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("rules: rule_actions: %w", err)
	}
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Runner{cfg: cfg, gate: gate, log: log, q: make(chan Job, cfg.QueueSize)}, nil
}

// SetObserver registers f to be called after every job, from the worker
// that ran it (tests measure the loop with it). Call before Start.
func (r *Runner) SetObserver(f func(Job, error)) { r.observe = f }

// Enqueue queues j without blocking; false (and counted) when the queue
// is full or the runner closed.
func (r *Runner) Enqueue(j Job) bool {
	if r.shut.Load() {
		r.dropped.Add(1)
		return false
	}
	select {
	case r.q <- j:
		r.queued.Add(1)
		return true
	default:
		r.dropped.Add(1)
		r.log.Warn("rule action dropped: queue full", "rule", j.Rule, "queue_size", r.cfg.QueueSize)
		return false
	}
}

// Start launches the workers; they stop when ctx is done or at Close.
// The TLS files of https actions are read here.
func (r *Runner) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started || r.closed {
		return fmt.Errorf("rules: runner already started or closed")
	}
	r.started = true
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if r.cfg.TLS != (tlsconf.Config{}) {
		tc, err := r.cfg.TLS.Load()
		if err != nil {
			return fmt.Errorf("rules: rule_actions: %w", err)
		}
		tr.TLSClientConfig = tc
	}
	r.client = &http.Client{Transport: tr, Timeout: r.cfg.HTTPTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	ctx, r.cancel = context.WithCancel(ctx)
	for range r.cfg.Workers {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.work(ctx)
		}()
	}
	return nil
}

// Close stops the workers, waiting for the jobs in progress; queued jobs
// that did not start are dropped and counted. Safe to call more than
// once and without Start.
func (r *Runner) Close() {
	r.mu.Lock()
	r.closed = true
	r.shut.Store(true)
	cancel := r.cancel
	r.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	r.wg.Wait()
	for {
		select {
		case <-r.q:
			r.dropped.Add(1)
		default:
			r.mu.Lock()
			if r.client != nil {
				r.client.CloseIdleConnections()
			}
			r.mu.Unlock()
			return
		}
	}
}

// Drain lets the workers finish the queued jobs, until ctx is done, then
// closes the runner (what is left is dropped and counted). A reload that
// replaces the runner calls it on the old one once no rule enqueues to it
// any more, so that an action decided before the reload still runs.
func (r *Runner) Drain(ctx context.Context) {
	r.mu.Lock()
	started := r.started && !r.closed
	r.mu.Unlock()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for started && r.finished.Load() < r.queued.Load() {
		select {
		case <-ctx.Done():
			r.Close()
			return
		case <-t.C:
		}
	}
	r.Close()
}

func (r *Runner) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-r.q:
			if ctx.Err() != nil { // closing: a queued job does not start
				r.dropped.Add(1)
				return
			}
			var err error
			switch {
			case j.Write != nil:
				err = r.write(ctx, j)
			case j.HTTP != nil:
				err = r.call(ctx, j)
			}
			if r.observe != nil {
				r.observe(j, err)
			}
			r.finished.Add(1)
		}
	}
}

func (r *Runner) write(ctx context.Context, j Job) error {
	if r.gate == nil {
		r.writesFailed.Add(1)
		return fmt.Errorf("rule %s: no write gate", j.Rule)
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.WriteTimeout)
	defer cancel()
	_, err := r.gate.Write(ctx, *j.Write)
	if err != nil {
		r.writesFailed.Add(1)
		r.log.Warn("rule write failed", "rule", j.Rule, "path", j.Write.Path, "err", err)
		return err
	}
	r.writesOK.Add(1)
	return nil
}

// call runs an http action; a status other than 2xx is a failure.
func (r *Runner) call(ctx context.Context, j Job) error {
	a := j.HTTP.Action
	body := a.Body
	if body == "" {
		b, _ := json.Marshal(struct {
			Rule string    `json:"rule"`
			Edge string    `json:"edge"`
			Time time.Time `json:"time"`
		}{j.Rule, j.HTTP.Edge, j.HTTP.Time.UTC()})
		body = string(b)
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.HTTPTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, a.Method, a.URL, strings.NewReader(body))
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "weir-rules")
		for k, v := range a.Headers {
			req.Header.Set(k, v)
		}
		var resp *http.Response
		if resp, err = r.client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if resp.StatusCode < 200 || resp.StatusCode > 299 {
				err = fmt.Errorf("%s %s: status %s", a.Method, a.URL, resp.Status)
			}
		}
	}
	if err != nil {
		r.httpFailed.Add(1)
		r.log.Warn("rule http action failed", "rule", j.Rule, "url", a.URL, "err", err)
		return err
	}
	r.httpOK.Add(1)
	return nil
}

// Status reports the queue and the outcomes.
func (r *Runner) Status() pipeline.Status {
	return pipeline.Status{Name: "rule_actions", Gauges: map[string]float64{"queue_depth": float64(len(r.q))},
		Counters: map[string]uint64{
			"queued": r.queued.Load(), "dropped": r.dropped.Load(),
			"writes_ok": r.writesOK.Load(), "writes_failed": r.writesFailed.Load(),
			"http_ok": r.httpOK.Load(), "http_failed": r.httpFailed.Load(),
		}}
}
