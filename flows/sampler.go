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
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ring) == 0 {
		return snapshot{}, false
	}
	if len(s.ring) < cap(s.ring) {
		return s.ring[0], true
	}
	return s.ring[s.next], true
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

// Map builds the map from the live status and the oldest snapshot.
func (s *Sampler) Map() Map {
	now := s.opts.Now()
	st := s.opts.Status()
	var topo Topology
	if s.opts.Topology != nil {
		topo = s.opts.Topology()
	}
	old, ok := s.oldest()
	dt := 0.0
	if ok {
		dt = now.Sub(old.at).Seconds()
	}
	if dt <= 0 {
		ok, dt = false, 0
	}
	count := func(total uint64, prevOf func(snapshot) (uint64, bool)) Count {
		c := Count{Total: total}
		if !ok {
			return c
		}
		prev, had := prevOf(old)
		delta := total
		if had && total >= prev {
			delta = total - prev
		}
		c.PerSecond = float64(delta) / dt
		return c
	}
	byKey := func(key string) func(snapshot) (uint64, bool) {
		return func(sn snapshot) (uint64, bool) { v, had := sn.counts[key]; return v, had }
	}
	m := Map{Node: s.opts.Node, At: now, WindowSeconds: dt, Sources: []Source{}, Sinks: []Sink{}}
	out := uint64(0)
	if st.Emitted > st.Filtered {
		out = st.Emitted - st.Filtered
	}
	m.Chain = Chain{Processors: append([]string{}, topo.Chain...),
		In:       count(st.Emitted, func(sn snapshot) (uint64, bool) { return sn.emitted, true }),
		Filtered: count(st.Filtered, func(sn snapshot) (uint64, bool) { return sn.filtered, true }),
		Out:      count(out, func(sn snapshot) (uint64, bool) { return sn.emitted - min(sn.filtered, sn.emitted), true }),
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
			src := Source{Name: c.Name, State: c.State, Up: c.Up,
				Samples: count(c.Counters[keySamples], byKey("source/"+c.Name))}
			if i, known := srcKinds[c.Name]; known {
				src.Kind = topo.Sources[i].Kind
			}
			m.Sources = append(m.Sources, src)
		case "sink":
			_, routed := c.Counters[keyRouteIn]
			k := func(key string) Count { return count(sinkCounter(c, key), byKey("sink/"+c.Name+"/"+key)) }
			sk := Sink{Name: c.Name, State: c.State, Up: c.Up, Routed: routed, MaxClass: "internal", Route: Route{Quality: "any"},
				In: k(keyRouteIn), Filtered: k(keyRouteFiltered), Denied: k(keyRouteDenied), ChainOut: k(keyRouteChainOut),
				InBytes: k(keyRouteInBytes), OutBytes: k(keyRouteOutBytes), Written: k(keyWritten), WireBytes: k(keyWireBytes),
				Dropped: k(keyDropped)}
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
