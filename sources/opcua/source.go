package opcua

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-edge/weir/internal/third_party/gopcua"
	"github.com/weir-edge/weir/internal/third_party/gopcua/ua"

	"github.com/weir-edge/weir/internal/backoff"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

// Compile-time guards: Source is a pipeline source that reports status.
var (
	_ pipeline.Source         = (*Source)(nil)
	_ pipeline.StatusReporter = (*Source)(nil)
	_ pipeline.TagLister      = (*Source)(nil)
)

// errAlreadyRunning is returned by a second, concurrent Run: one source is
// one session, and two would subscribe everything twice.
var errAlreadyRunning = errors.New("opcua source: Run is already in progress")

// Source keeps one session to one OPC UA server, with its subscriptions
// and polled groups, and rebuilds all of it after any failure.
type Source struct {
	cfg   Config // defaults applied
	log   *slog.Logger
	items []*item // index = client handle of the monitored item
	subs  [][]int // item indexes per subscription
	polls [][]int // item indexes per poll group
	tags  []model.Tag

	running atomic.Bool
	ctr     counters
	// live is the running session's client, nil between sessions; WriteTag
	// (write.go) borrows it.
	live atomic.Pointer[opcua.Client]

	mu        sync.Mutex // guards the fields below
	state     string
	lastErr   string
	failed    map[int]string // item index → why it is not delivered, this session
	revised   []time.Duration
	connected time.Time
}

type counters struct {
	notifications, samples, duplicates, deadbandDropped atomic.Uint64
	dataChanges                                         atomic.Uint64 // DataChangeNotifications received (a publish response may carry several)
	sessions, sessionFailures, reads, readErrors        atomic.Uint64
	itemsCreated                                        atomic.Uint64
}

// item is one configured node. The fields after the configuration are
// touched only by the goroutine that delivers the item (the session's
// notification loop or its poll group), one session at a time.
type item struct {
	path     string
	nodeSpec string // as configured; nsu= resolved per session
	sub      int    // subscription index, -1 when polled
	sampling time.Duration
	queue    uint32
	discard  bool
	deadband *Deadband

	// Per-session state.
	node     *ua.NodeID
	euLow    float64
	euHigh   float64
	hasEU    bool
	dbRef    model.Value // last value passed by the deadband this session
	dbActive bool

	// Across sessions, for duplicate suppression.
	seen       bool
	last       model.Value
	lastSrc    int64
	lastStatus ua.StatusCode
}

// New validates cfg, applies defaults and builds the item table. It does
// no I/O; certificates are created and servers contacted by Run.
func New(cfg Config, log *slog.Logger) (*Source, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("opcua source: %w", err)
	}
	// setDefaults writes into the slices: work on copies so the caller's
	// config (kept for hot-reload diffs) stays as written.
	cfg.Subscriptions = slices.Clone(cfg.Subscriptions)
	for i := range cfg.Subscriptions {
		cfg.Subscriptions[i].Items = slices.Clone(cfg.Subscriptions[i].Items)
	}
	cfg.Poll = slices.Clone(cfg.Poll)
	cfg.setDefaults()

	s := &Source{cfg: cfg, log: log, state: pipeline.StateStopped, failed: map[int]string{}}
	for i, sc := range cfg.Subscriptions {
		var idx []int
		for _, it := range sc.Items {
			idx = append(idx, len(s.items))
			s.items = append(s.items, &item{
				path: model.JoinPath(cfg.Namespace, it.Name), nodeSpec: it.NodeID, sub: i,
				sampling: it.SamplingInterval, queue: it.QueueSize, discard: *it.DiscardOldest, deadband: it.Deadband,
			})
		}
		s.subs = append(s.subs, idx)
	}
	for _, pc := range cfg.Poll {
		var idx []int
		for _, it := range pc.Items {
			idx = append(idx, len(s.items))
			s.items = append(s.items, &item{path: model.JoinPath(cfg.Namespace, it.Name), nodeSpec: it.NodeID, sub: -1})
		}
		s.polls = append(s.polls, idx)
	}
	for _, it := range s.items {
		s.tags = append(s.tags, model.Tag{Path: it.path, Description: "OPC UA " + it.nodeSpec})
	}
	s.revised = make([]time.Duration, len(s.subs))
	return s, nil
}

// Tags lists every tag the source produces. Kind is left invalid: an OPC
// UA node's data type is known only once the server is asked.
func (s *Source) Tags() []model.Tag { return slices.Clone(s.tags) }

// Run keeps a session up until ctx is done, then closes it and returns
// nil. Every failure (connect, security, a lost connection, a dead
// watchdog) closes the whole session and builds a new one after a backoff
// delay, recreating every subscription and monitored item, so what runs
// after a server restart is exactly what the configuration says.
func (s *Source) Run(ctx context.Context, out pipeline.Emitter) error {
	if !s.running.CompareAndSwap(false, true) {
		return errAlreadyRunning
	}
	defer s.running.Store(false)
	defer s.setState(pipeline.StateStopped, "")

	bo := backoff.Backoff{Policy: backoff.Policy{Initial: 250 * time.Millisecond, Max: s.cfg.ReconnectMax}}
	for ctx.Err() == nil {
		s.setState(pipeline.StateConnecting, "")
		start := time.Now()
		err := s.session(ctx, out)
		if ctx.Err() != nil {
			return nil
		}
		s.ctr.sessionFailures.Add(1)
		// A session that ran for a while was healthy: start the backoff
		// over, so a restart of the server is rejoined quickly.
		if time.Since(start) > 30*time.Second {
			bo.Reset()
		}
		d := bo.Next()
		s.setState(pipeline.StateRetrying, err.Error())
		s.log.Warn("session ended, reconnecting", "error", err, "retry_in", d.Round(time.Millisecond))
		if !backoff.Sleep(ctx, d) {
			return nil
		}
	}
	return nil
}

func (s *Source) setState(state, lastErr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state = state
	if lastErr != "" || state == pipeline.StateRunning {
		s.lastErr = lastErr
	}
	if state == pipeline.StateRunning {
		s.connected = time.Now()
	}
}

// setFailed records why an item is not delivered this session ("" clears).
func (s *Source) setFailed(i int, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if reason == "" {
		delete(s.failed, i)
	} else {
		s.failed[i] = reason
	}
}

// Status reports the session state and counters; children are the
// subscriptions and poll groups, and their children the items that the
// server refused, with the status code's name.
func (s *Source) Status() pipeline.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := pipeline.Status{
		Name: "opcua", State: s.state, LastError: s.lastErr,
		Counters: map[string]uint64{
			"notifications":    s.ctr.notifications.Load(),
			"data_changes":     s.ctr.dataChanges.Load(),
			"samples":          s.ctr.samples.Load(),
			"duplicates":       s.ctr.duplicates.Load(),
			"deadband_dropped": s.ctr.deadbandDropped.Load(),
			"sessions":         s.ctr.sessions.Load(),
			"session_failures": s.ctr.sessionFailures.Load(),
			"reads":            s.ctr.reads.Load(),
			"read_errors":      s.ctr.readErrors.Load(),
			"items_created":    s.ctr.itemsCreated.Load(),
		},
		Gauges: map[string]float64{"items": float64(len(s.items)), "items_failed": float64(len(s.failed))},
	}
	group := func(name string, idx []int, gauges map[string]float64) pipeline.Status {
		c := pipeline.Status{Name: name, State: s.state, Gauges: gauges}
		for _, i := range idx {
			if r, ok := s.failed[i]; ok {
				c.Children = append(c.Children, pipeline.Status{Name: s.items[i].path, State: pipeline.StateFailed,
					LastError: r + " (" + s.items[i].nodeSpec + ")"})
			}
		}
		c.Gauges["items"] = float64(len(idx))
		c.Gauges["items_failed"] = float64(len(c.Children))
		return c
	}
	for i, idx := range s.subs {
		st.Children = append(st.Children, group(fmt.Sprintf("subscription[%d]", i), idx,
			map[string]float64{"revised_publishing_interval_seconds": s.revised[i].Seconds()}))
	}
	for i, idx := range s.polls {
		st.Children = append(st.Children, group(fmt.Sprintf("poll[%d]", i), idx, map[string]float64{}))
	}
	return st
}
