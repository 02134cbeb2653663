package latest

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

// DefaultMaxTags bounds a Store unless told otherwise.
const DefaultMaxTags = 100_000

// Store is a pipeline processor that remembers the newest sample of every
// tag and passes every batch on unchanged; the HTTP API reads it for
// GET /api/v1/values. Put it last in a chain to show what the sinks get,
// or first to show what the sources produce.
//
// It holds at most max tags; samples of further new tags are passed on but
// not remembered, and counted (Status counter "untracked_samples").
type Store struct {
	max       int
	mu        sync.RWMutex
	m         map[string]model.Sample
	untracked atomic.Uint64
	skipped   atomic.Uint64 // by every subscription (subscribe.go)

	// Subscriptions (subscribe.go), under mu; stored is Process's scratch
	// list of the samples it kept, for the fan-out.
	subs    []*Subscription
	maxSubs int
	stored  []model.Sample
	routes  map[string][]*Subscription // path -> matching subs (fanOut)
	touched []*Subscription            // fanOut scratch
}

var (
	_ pipeline.Processor      = (*Store)(nil)
	_ pipeline.StatusReporter = (*Store)(nil)
)

// New builds a store for up to maxTags tags (0: DefaultMaxTags).
func New(maxTags int) *Store {
	if maxTags <= 0 {
		maxTags = DefaultMaxTags
	}
	return &Store{max: maxTags, m: map[string]model.Sample{}}
}

// Process records each sample unless the store already holds a newer one
// of its tag (a replayed, historical sample does not hide the live value),
// and returns batch as is.
func (l *Store) Process(batch []model.Sample) []model.Sample {
	l.mu.Lock()
	defer l.mu.Unlock()
	fan := len(l.subs) > 0
	l.stored = l.stored[:0]
	for i := range batch {
		s := batch[i]
		old, ok := l.m[s.Path]
		if ok && old.SourceTime > s.SourceTime {
			continue
		}
		if !ok && len(l.m) >= l.max {
			l.untracked.Add(1)
			continue
		}
		if s.Value.Kind() == model.KindArray {
			// The batch's owner may reuse the elements; keep a copy.
			s.Value = model.Array(slices.Clone(s.Value.Elems()))
		}
		l.m[s.Path] = s
		if fan {
			l.stored = append(l.stored, s) // the stored copy: arrays cloned
		}
	}
	if fan && len(l.stored) > 0 {
		l.fanOut(l.stored)
		clear(l.stored) // let go of the values
	}
	return batch
}

// Get returns the newest sample of path.
func (l *Store) Get(path string) (model.Sample, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	s, ok := l.m[path]
	return s, ok
}

// Snapshot returns the newest sample of every tag at or below prefix (at
// a level boundary; "" for all), sorted by path.
func (l *Store) Snapshot(prefix string) []model.Sample {
	prefix = strings.TrimSuffix(prefix, "/")
	l.mu.RLock()
	out := make([]model.Sample, 0, len(l.m))
	for p, s := range l.m {
		if prefix == "" || p == prefix || (strings.HasPrefix(p, prefix) && p[len(prefix)] == '/') {
			out = append(out, s)
		}
	}
	l.mu.RUnlock()
	slices.SortFunc(out, func(a, b model.Sample) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// Status reports how many tags are held and how many samples were not,
// and the subscriptions with the samples they skipped.
func (l *Store) Status() pipeline.Status {
	l.mu.RLock()
	n, subs := len(l.m), len(l.subs)
	l.mu.RUnlock()
	return pipeline.Status{
		Name:     "latest",
		State:    pipeline.StateRunning,
		Counters: map[string]uint64{"untracked_samples": l.untracked.Load(), "subscriber_skipped_samples": l.skipped.Load()},
		Gauges:   map[string]float64{"tags": float64(n), "subscribers": float64(subs)},
	}
}
