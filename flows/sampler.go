package flows

import (
	"context"
	"sync"
	"time"

	"github.com/weir-edge/weir/engine"
)

// Defaults of Options.
const (
	DefaultInterval = time.Second
	// DefaultWindow snapshots, one a second: rates over the last ~10 s.
	DefaultWindow = 11
	// maxWindow bounds the ring whatever the caller asks.
	maxWindow = 600
)

// Options configure a Sampler.
type Options struct {
	// Status is the engine's status (required); *engine.Engine.Status.
	Status func() engine.Status
	// Topology is the running configuration's view; nil: names and
	// numbers only.
	Topology func() Topology
	// Node names the gateway in the map.
	Node string
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// Interval between snapshots; default DefaultInterval.
	Interval time.Duration
	// Window is how many snapshots the ring holds; default DefaultWindow.
	Window int
}

// Sampler keeps the ring of snapshots that rates are computed from and
// builds the map. Safe for concurrent use; only Run starts a goroutine.
type Sampler struct {
	opts Options

	mu   sync.Mutex
	ring []snapshot // oldest first once full: ring[next] is the oldest
	next int
	full bool
}

// snapshot is the counters the map needs at one instant.
type snapshot struct {
	at       time.Time
	emitted  uint64
	filtered uint64
	counts   map[string]uint64 // "source/NAME" and "sink/NAME/KEY"
}

// New makes a Sampler; it takes no snapshot until Take or Run.
func New(opts Options) *Sampler {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Window < 2 {
		opts.Window = DefaultWindow
	}
	opts.Window = min(opts.Window, maxWindow)
	return &Sampler{opts: opts, ring: make([]snapshot, 0, opts.Window)}
}

// Run takes a snapshot now and then every Interval until ctx is done; it
// returns nil then. Call it once.
func (s *Sampler) Run(ctx context.Context) error {
	t := time.NewTicker(s.opts.Interval)
	defer t.Stop()
	s.Take()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.Take()
		}
	}
}

// Take records one snapshot of the engine's counters, replacing the
// oldest when the ring is full.
func (s *Sampler) Take() {
	snap := capture(s.opts.Now(), s.opts.Status())
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ring) < cap(s.ring) {
		s.ring = append(s.ring, snap)
		return
	}
	s.ring[s.next] = snap
	s.next = (s.next + 1) % len(s.ring)
}

// oldest is the oldest snapshot in the ring; ok is false when empty.
func (s *Sampler) oldest() (snapshot, bool) {
	snaps := s.ordered()
	if len(snaps) == 0 {
		return snapshot{}, false
	}
	return snaps[0], true
}

// ordered is the ring's snapshots, oldest first (a copy of the slice;
// snapshots are never changed once taken).
func (s *Sampler) ordered() []snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]snapshot, 0, len(s.ring))
	if len(s.ring) < cap(s.ring) {
		return append(out, s.ring...)
	}
	out = append(out, s.ring[s.next:]...)
	return append(out, s.ring[:s.next]...)
}

// base is where one component's rates are measured from.
type base struct {
	snap *snapshot // the counters to subtract; nil: from 0 (restarted after from)
	from time.Time // start of the span
	// restartedAfter is set when the component restarted (its counters
	// went down, or it appeared) within the window: the last snapshot
	// before that.
	restartedAfter time.Time
}

// baseFor walks the ring from the newest snapshot back, while every one
// of keys is present and no larger than in the next: a component whose
// counters went down (a reload replaced it) or that was missing restarted
// there, and its rates are over the time since rather than over the
// window, which would count a fresh total against the full span.
func baseFor(snaps []snapshot, live snapshot, keys []string) base {
	cur := live
	for i := len(snaps) - 1; i >= 0; i-- {
		sn := &snaps[i]
		for _, k := range keys {
			if v, had := sn.counts[k]; !had || v > cur.counts[k] {
				if i == len(snaps)-1 { // after the newest: count from 0
					return base{from: sn.at, restartedAfter: sn.at}
				}
				return base{snap: &snaps[i+1], from: snaps[i+1].at, restartedAfter: sn.at}
			}
		}
		cur = *sn
	}
	if len(snaps) == 0 {
		return base{}
	}
	return base{snap: &snaps[0], from: snaps[0].at}
}

func capture(at time.Time, st engine.Status) snapshot {
	snap := snapshot{at: at, emitted: st.Emitted, filtered: st.Filtered, counts: make(map[string]uint64, 8*len(st.Components))}
	for _, c := range st.Components {
		switch c.Kind {
		case "source":
			snap.counts["source/"+c.Name] = c.Counters[keySamples]
		case "sink":
			for _, k := range sinkKeys {
				snap.counts["sink/"+c.Name+"/"+k] = sinkCounter(c, k)
			}
		}
	}
	return snap
}

func sinkCounter(c engine.ComponentStatus, key string) uint64 {
	if key == keyDropped {
		if c.Buffer == nil {
			return 0
		}
		return c.Buffer.Dropped
	}
	return c.Counters[key]
}

// Map builds the map from the live status and the ring of snapshots.
func (s *Sampler) Map() Map {
	now := s.opts.Now()
	st := s.opts.Status()
	var topo Topology
	if s.opts.Topology != nil {
		topo = s.opts.Topology()
	}
	snaps := s.ordered()
	live := capture(now, st)
	dt := 0.0
	if len(snaps) > 0 {
		dt = now.Sub(snaps[0].at).Seconds()
	}
	ok := dt > 0
	if !ok {
		dt = 0
	}
	// rateOf measures one component: its counters under keys, from its
	// base (the window, or the time since it restarted).
	rateOf := func(keys []string) (func(key string) Count, Restart) {
		b := baseFor(snaps, live, keys)
		span := now.Sub(b.from).Seconds()
		if !ok || span <= 0 {
			return func(key string) Count { return Count{Total: live.counts[key]} }, Restart{}
		}
		r := Restart{RateSeconds: span, RestartedAfter: b.restartedAfter}
		return func(key string) Count {
			total, prev := live.counts[key], uint64(0)
			if b.snap != nil {
				prev = b.snap.counts[key]
			}
			delta := total
			if total >= prev {
				delta = total - prev
			}
			return Count{Total: total, PerSecond: float64(delta) / span}
		}, r
	}
	count := func(total uint64, prevOf func(snapshot) uint64) Count {
		c := Count{Total: total}
		if !ok {
			return c
		}
		prev := prevOf(snaps[0])
		delta := total
		if total >= prev {
			delta = total - prev
		}
		c.PerSecond = float64(delta) / dt
		return c
	}
	m := Map{Node: s.opts.Node, At: now, WindowSeconds: dt, Sources: []Source{}, Sinks: []Sink{}}
	out := uint64(0)
	if st.Emitted > st.Filtered {
		out = st.Emitted - st.Filtered
	}
	m.Chain = Chain{Processors: append([]string{}, topo.Chain...),
		In:       count(st.Emitted, func(sn snapshot) uint64 { return sn.emitted }),
		Filtered: count(st.Filtered, func(sn snapshot) uint64 { return sn.filtered }),
		Out:      count(out, func(sn snapshot) uint64 { return sn.emitted - min(sn.filtered, sn.emitted) }),
	}
	srcKinds := map[string]int{}
	for i, si := range topo.Sources {
		srcKinds[si.Name] = i
	}
	sinkInfo := map[string]int{}
	for i, si := range topo.Sinks {
		sinkInfo[si.Name] = i
	}
	for _, c := range st.Components {
		switch c.Kind {
		case "source":
			key := "source/" + c.Name
			k, restart := rateOf([]string{key})
			src := Source{Name: c.Name, State: c.State, Up: c.Up, Samples: k(key), Restart: restart}
			if i, known := srcKinds[c.Name]; known {
				src.Kind = topo.Sources[i].Kind
			}
			m.Sources = append(m.Sources, src)
		case "sink":
			_, routed := c.Counters[keyRouteIn]
			keys := make([]string, len(sinkKeys))
			for i, key := range sinkKeys {
				keys[i] = "sink/" + c.Name + "/" + key
			}
			byKey, restart := rateOf(keys)
			k := func(key string) Count { return byKey("sink/" + c.Name + "/" + key) }
			sk := Sink{Name: c.Name, State: c.State, Up: c.Up, Routed: routed, MaxClass: "internal", Route: Route{Quality: "any"},
				In: k(keyRouteIn), Filtered: k(keyRouteFiltered), Denied: k(keyRouteDenied), ChainIn: k(keyRouteChainIn), ChainOut: k(keyRouteChainOut),
				InBytes: k(keyRouteInBytes), OutBytes: k(keyRouteOutBytes), Written: k(keyWritten), WireBytes: k(keyWireBytes),
				Dropped: k(keyDropped), Restart: restart}
			if c.Buffer != nil {
				sk.BufferDepth = c.Buffer.Depth
			}
			if i, known := sinkInfo[c.Name]; known {
				info := topo.Sinks[i]
				sk.Kind, sk.Route = info.Kind, info.Route
				if info.MaxClass != "" {
					sk.MaxClass = info.MaxClass
				}
				if sk.Route.Quality == "" {
					sk.Route.Quality = "any"
				}
			}
			m.Sinks = append(m.Sinks, sk)
		}
	}
	orderBy(m.Sources, func(s Source) string { return s.Name }, srcKinds)
	orderBy(m.Sinks, func(s Sink) string { return s.Name }, sinkInfo)
	return m
}
