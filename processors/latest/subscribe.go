package latest

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/processors/match"
)

// Bounds of subscriptions unless told otherwise (SetSubscriberLimit).
const (
	// DefaultMaxSubscribers bounds the subscriptions of a Store: each one
	// may hold up to its maxTags pending samples (about 150 bytes each
	// with the index), so 64 streams of 10,000 tags, all behind, hold
	// about 100 MB at worst.
	DefaultMaxSubscribers = 64
	// DefaultMaxPending bounds the distinct tags a subscription holds
	// between two Takes.
	DefaultMaxPending = 10_000
)

// Errors of Subscribe and Resync.
var (
	// ErrTooManySubscribers: the store already has its maximum of
	// subscriptions; try again later.
	ErrTooManySubscribers = errors.New("latest: too many subscribers")
	// ErrTooManyTags: more tags match than the subscription may hold.
	ErrTooManyTags = errors.New("latest: too many matching tags")
	// ErrClosed: the subscription was closed.
	ErrClosed = errors.New("latest: subscription closed")
)

// Subscription receives the stored samples of the tags its matcher
// selects, coalesced per tag: between two Takes it holds at most the
// newest sample of each tag (the values in between are skipped and
// counted), and at most maxPending distinct tags. When one more tag would
// not fit, it drops what it holds and asks for a resync (Take reports it):
// the consumer reads a fresh snapshot with Resync, which loses nothing
// because every dropped sample is in the store.
//
// Process offers to subscriptions under the store's lock and never
// blocks on them: a slow consumer costs memory up to its bound, never
// time in the processor chain.
//
// Ready, Take, Resync and Close are for one consumer goroutine; Skipped
// may be called from anywhere.
type Subscription struct {
	store      *Store
	m          *match.Matcher // used only under store.mu
	maxPending int
	ready      chan struct{} // cap 1: "there is something to Take"

	mu      sync.Mutex
	pending []model.Sample // arrival order of each tag's first offer
	index   map[string]int // path -> slot in pending
	spare   []model.Sample // the slice handed out by the previous Take
	touched bool           // in store.touched; under store.mu
	resync  bool
	closed  bool
	skipped atomic.Uint64
}

// SetSubscriberLimit changes the bound on subscriptions (n <= 0:
// DefaultMaxSubscribers). Call it before the first Subscribe.
func (l *Store) SetSubscriberLimit(n int) {
	if n <= 0 {
		n = DefaultMaxSubscribers
	}
	l.mu.Lock()
	l.maxSubs = n
	l.mu.Unlock()
}

// Subscribe registers a subscription for the tags m matches and returns,
// atomically with the registration, the stored samples of those tags
// sorted by path: every later change reaches the subscription, none is
// missed between the snapshot and the first Take. It fails with
// ErrTooManyTags when more than maxTags tags match (maxTags <= 0:
// DefaultMaxPending; it also bounds the pending set) and with
// ErrTooManySubscribers past the store's bound. The store owns m from
// now on (a Matcher is not safe for concurrent use). Close the
// subscription when done.
func (l *Store) Subscribe(m *match.Matcher, maxTags int) (*Subscription, []model.Sample, error) {
	if maxTags <= 0 {
		maxTags = DefaultMaxPending
	}
	s := &Subscription{store: l, m: m, maxPending: maxTags, ready: make(chan struct{}, 1), index: map[string]int{}}
	l.mu.Lock()
	max := l.maxSubs
	if max <= 0 {
		max = DefaultMaxSubscribers
	}
	if len(l.subs) >= max {
		l.mu.Unlock()
		return nil, nil, ErrTooManySubscribers
	}
	snap, err := l.matchingLocked(m, maxTags)
	if err != nil {
		l.mu.Unlock()
		return nil, nil, err
	}
	// Copy on write: Process ranges over l.subs under the same lock, but a
	// fresh slice keeps the reasoning local.
	l.subs = append(slices.Clip(l.subs), s)
	clear(l.routes)
	l.mu.Unlock()
	sortByPath(snap)
	return s, snap, nil
}

// matchingLocked returns the stored samples m matches, unsorted, or
// ErrTooManyTags past max. Caller holds l.mu.
func (l *Store) matchingLocked(m *match.Matcher, max int) ([]model.Sample, error) {
	var out []model.Sample
	for p, s := range l.m {
		if m.Match(p) {
			if len(out) >= max {
				return nil, ErrTooManyTags
			}
			out = append(out, s)
		}
	}
	return out, nil
}

func sortByPath(s []model.Sample) {
	slices.SortFunc(s, func(a, b model.Sample) int { return strings.Compare(a.Path, b.Path) })
}

// Subscribers returns the number of open subscriptions.
func (l *Store) Subscribers() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.subs)
}

// fanOut offers the samples Process stored to the subscriptions that
// match them. Which subscriptions match a path is cached (routes, cleared
// when one subscribes or leaves), so a batch costs one map lookup per
// sample rather than one match per sample and subscription; each
// subscription is signalled once per batch. Caller holds l.mu (write).
func (l *Store) fanOut(stored []model.Sample) {
	if l.routes == nil {
		l.routes = map[string][]*Subscription{}
	}
	for i := range stored {
		smp := &stored[i]
		subs, ok := l.routes[smp.Path]
		if !ok {
			for _, s := range l.subs {
				if s.m.Match(smp.Path) {
					subs = append(subs, s)
				}
			}
			// Bounded: only stored paths get here, at most max of them.
			l.routes[smp.Path] = subs
		}
		for _, s := range subs {
			if s.offer(smp) && !s.touched {
				s.touched = true
				l.touched = append(l.touched, s)
			}
		}
	}
	for i, s := range l.touched {
		s.touched = false
		select {
		case s.ready <- struct{}{}:
		default:
		}
		l.touched[i] = nil
	}
	l.touched = l.touched[:0]
}

// offer takes one matching sample and says whether the consumer should be
// woken. It runs under the store's lock.
func (s *Subscription) offer(smp *model.Sample) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.resync || s.closed {
		return false // the snapshot Resync takes will hold it
	}
	if j, ok := s.index[smp.Path]; ok {
		s.pending[j] = *smp
		s.skip(1)
		return false // already signalled when the tag became pending
	}
	if len(s.pending) >= s.maxPending {
		// One tag too many: drop what is held (it is all in the store)
		// and let the consumer read a fresh snapshot.
		s.skip(uint64(len(s.pending)))
		clear(s.pending)
		s.pending = s.pending[:0]
		clear(s.index)
		s.resync = true
		return true
	}
	s.index[smp.Path] = len(s.pending)
	s.pending = append(s.pending, *smp)
	return true
}

// Ready is signalled when there may be something to Take (or a resync to
// do). A signal may be spurious; Take then returns nothing.
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

// Take returns the pending samples, the newest of each tag in the order
// their tags first changed since the previous Take, and whether the
// consumer must call Resync (then the slice is empty). The slice is valid
// until the next Take.
func (s *Subscription) Take() (samples []model.Sample, resync bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.resync {
		return nil, true
	}
	out := s.pending
	clear(s.spare) // let the previous batch's values go
	s.pending = s.spare[:0]
	s.spare = out
	clear(s.index)
	return out, false
}

// Resync returns a fresh sorted snapshot of the matching tags and resumes
// delivery after it; use it when Take asks. ErrTooManyTags: the tags that
// match have grown past the bound.
func (s *Subscription) Resync() ([]model.Sample, error) {
	l := s.store
	l.mu.Lock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.mu.Unlock()
		return nil, ErrClosed
	}
	s.mu.Unlock()
	snap, err := l.matchingLocked(s.m, s.maxPending)
	if err == nil {
		s.mu.Lock()
		s.resync = false
		s.pending = s.pending[:0]
		clear(s.index)
		s.mu.Unlock()
	}
	l.mu.Unlock()
	if err != nil {
		return nil, err
	}
	sortByPath(snap)
	return snap, nil
}

func (s *Subscription) skip(n uint64) {
	s.skipped.Add(n)
	s.store.skipped.Add(n)
}

// Skipped counts the samples not delivered: intermediate values
// overwritten by a newer one of the same tag, and those dropped for a
// resync.
func (s *Subscription) Skipped() uint64 { return s.skipped.Load() }

// Close unregisters the subscription; it is safe to call more than once.
func (s *Subscription) Close() {
	l := s.store
	l.mu.Lock()
	defer l.mu.Unlock()
	s.mu.Lock()
	s.closed = true
	s.pending, s.spare = nil, nil
	clear(s.index)
	s.mu.Unlock()
	if i := slices.Index(l.subs, s); i >= 0 {
		subs := make([]*Subscription, 0, len(l.subs)-1)
		subs = append(subs, l.subs[:i]...)
		l.subs = append(subs, l.subs[i+1:]...)
		clear(l.routes)
		if len(l.subs) == 0 {
			l.routes = nil // give the memory back (clear keeps the buckets)
		}
	}
}
