package mqtt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/paho/session/state"

	"github.com/weir-edge/weir/internal/backoff"
	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/internal/sparkplugb"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

// Compile-time guards.
var (
	_ pipeline.Source         = (*Source)(nil)
	_ pipeline.StatusReporter = (*Source)(nil)
	_ pipeline.TagLister      = (*Source)(nil)
)

// maxKnownTags bounds what Tags reports: wildcard subscriptions let
// producers invent tags, and the list must not grow without limit.
const maxKnownTags = 100_000

// outboxSize bounds the messages (rebirth requests, STATE) waiting to be
// published from the message handler; more are dropped and counted.
const outboxSize = 64

var errAlreadyRunning = errors.New("mqtt source: Run is already in progress")

// Source subscribes to an MQTT broker and turns messages into samples:
// plain topics through configured routes, and the Sparkplug B namespace as
// a host application.
type Source struct {
	cfg  Config // defaults applied
	addr string
	log  *slog.Logger
	// dial is mqttclient.Dial; tests wrap it to count attempts.
	dial   func(context.Context, mqttclient.Options) (mqttclient.Conn, error)
	now    func() time.Time
	policy backoff.Policy

	routes []*route
	sp     *spHost // nil without a sparkplug block

	running atomic.Bool

	// hmu serialises message handling: one connection's handler runs on
	// one goroutine, but an old connection's last message may overlap the
	// start of the next. It is held while emitting, so that samples leave
	// in arrival order.
	hmu sync.Mutex
	buf []model.Sample

	stMu    sync.Mutex
	state   string
	lastErr string

	tagsMu sync.Mutex
	tags   map[string]model.Kind

	badLog rateLimiter

	messages, samples, decodeErrors, unmatched atomic.Uint64
	connects, disconnects, outboxDropped       atomic.Uint64
	// oversize counts messages beyond the packet limit, skipped unread
	// (also counted in decodeErrors).
	oversize atomic.Uint64
}

// New validates cfg, applies defaults and compiles the routes. It does no
// network or file I/O. log should already carry the component and name.
func New(cfg Config, log *slog.Logger) (*Source, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("mqtt source: %w", err)
	}
	// setDefaults writes into nested structs: work on copies so the
	// caller's config (kept for hot-reload diffs) stays as written.
	cfg.Subscriptions = slices.Clone(cfg.Subscriptions)
	if cfg.Sparkplug != nil {
		sp := *cfg.Sparkplug
		cfg.Sparkplug = &sp
	}
	cfg.setDefaults()
	s := &Source{
		cfg:    cfg,
		addr:   cfg.Addr(), // validated above
		log:    log,
		dial:   mqttclient.Dial,
		now:    time.Now,
		policy: backoff.Policy{Initial: 200 * time.Millisecond, Max: 30 * time.Second},
		state:  pipeline.StateStopped,
		tags:   make(map[string]model.Kind),
		badLog: rateLimiter{every: 10 * time.Second},
	}
	for i, sc := range cfg.Subscriptions {
		r, err := newRoute(sc)
		if err != nil {
			return nil, fmt.Errorf("mqtt source: subscriptions[%d]: %w", i, err)
		}
		s.routes = append(s.routes, r)
	}
	if cfg.Sparkplug != nil {
		s.sp = newSPHost(*cfg.Sparkplug, log.With("sparkplug_host", cfg.Sparkplug.HostID))
	}
	return s, nil
}

// Tags lists the tags seen so far (up to 100 000): topics under wildcards
// and Sparkplug metrics are only known once they arrive or are born.
// Kind is the kind of the last value seen.
func (s *Source) Tags() []model.Tag {
	s.tagsMu.Lock()
	out := make([]model.Tag, 0, len(s.tags))
	for p, k := range s.tags {
		out = append(out, model.Tag{Path: p, Kind: k})
	}
	s.tagsMu.Unlock()
	slices.SortFunc(out, func(a, b model.Tag) int { return strings.Compare(a.Path, b.Path) })
	return out
}

func (s *Source) noteTags(batch []model.Sample) {
	s.tagsMu.Lock()
	defer s.tagsMu.Unlock()
	for i := range batch {
		k := batch[i].Value.Kind()
		old, ok := s.tags[batch[i].Path]
		switch {
		case ok && (k == old || k == model.KindInvalid):
		case ok || len(s.tags) < maxKnownTags:
			s.tags[batch[i].Path] = k
		}
	}
}

// Run connects, subscribes and emits until ctx is done, then returns nil.
// A lost connection is re-established with exponential backoff and
// jitter, and every subscription is sent again.
func (s *Source) Run(ctx context.Context, out pipeline.Emitter) error {
	if !s.running.CompareAndSwap(false, true) {
		return errAlreadyRunning
	}
	defer s.running.Store(false)
	var sess *state.State
	if s.cfg.ProtocolVersion == Version5 && !*s.cfg.CleanStart {
		// One session state for all connections, so that a resumed
		// session's packet ids stay consistent.
		sess = mqttclient.NewSession()
		defer func() { _ = sess.Close() }()
	}
	b := backoff.Backoff{Policy: s.policy}
	for {
		s.setState(pipeline.StateConnecting, "")
		up, err := s.runConn(ctx, out, sess)
		if ctx.Err() != nil {
			s.setState(pipeline.StateStopped, "")
			return nil
		}
		if up {
			b.Reset()
		}
		s.log.Warn("connection ended, reconnecting", "broker", s.addr, "error", err)
		s.setState(pipeline.StateRetrying, err.Error())
		if !backoff.Sleep(ctx, b.Next()) {
			s.setState(pipeline.StateStopped, "")
			return nil
		}
	}
}

// outMsg is a message the handler wants published.
type outMsg struct {
	topic   string
	payload []byte
	qos     byte
	retain  bool
}

// runConn runs one connection until it ends or ctx is done; up reports
// whether it got as far as subscribing.
func (s *Source) runConn(ctx context.Context, out pipeline.Emitter, sess *state.State) (up bool, err error) {
	fail := func(what string, err error) error {
		return fmt.Errorf("mqtt %s: %s: %w", s.addr, what, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	o, err := s.cfg.Options() // password and certificates are read here
	if err != nil {
		return false, fmt.Errorf("mqtt %s: %w", s.addr, err)
	}
	o.WriteTimeout = s.cfg.KeepAlive
	// The broker may not send more than max_payload plus the topic and
	// header: MQTT 5 announces it, and either version skips a larger
	// PUBLISH unread (it arrives as m.Oversize) instead of buffering it.
	o.MaxPacketSize = mqttclient.MaxPacketFor(s.cfg.MaxPayload)
	o.KeepSession, o.SessionExpiry, o.Session = !*s.cfg.CleanStart, s.cfg.SessionExpiry, sess
	// Ordered: samples leave in arrival order, and a QoS 1 message is
	// acknowledged only once its samples are emitted.
	o.OnMessage, o.Ordered = func(m mqttclient.Message) { s.onMessage(cctx, out, m) }, true
	var stateTopic string
	var stateTS uint64
	if s.sp != nil && s.sp.cfg.PublishState {
		stateTopic = sparkplugb.Topic{Type: sparkplugb.STATE, Namespace: sparkplugb.Namespace, HostID: s.sp.cfg.HostID}.String()
		stateTS = uint64(s.now().UnixMilli())
		o.Will = &mqttclient.Message{Topic: stateTopic, QoS: 1, Retain: true,
			Payload: sparkplugb.State{Online: false, Timestamp: stateTS}.AppendJSON(nil)}
	}
	dctx, dcancel := context.WithTimeout(ctx, s.cfg.ConnectTimeout)
	defer dcancel()
	c, err := s.dial(dctx, o)
	if err != nil {
		return false, fail("connect", err)
	}
	s.connects.Add(1)
	outbox := make(chan outMsg, outboxSize)
	var wg sync.WaitGroup
	defer func() {
		cancel() // releases a handler blocked in Emit and the outbox worker
		wg.Wait()
		if s.sp != nil {
			s.hmu.Lock()
			s.sp.send = nil // no more rebirths or STATE republishing
			s.hmu.Unlock()
		}
		if ctx.Err() != nil && stateTopic != "" && c.Cause() == nil {
			// A clean DISCONNECT suppresses the will: say offline first.
			pctx, pcancel := context.WithTimeout(context.Background(), s.cfg.ConnectTimeout)
			if err := c.Publish(pctx, stateTopic, sparkplugb.State{Online: false, Timestamp: stateTS}.AppendJSON(nil), 1, true); err != nil {
				s.log.Warn("cannot publish STATE offline", "error", err)
			}
			pcancel()
		}
		_ = c.Close()
		if s.sp != nil {
			s.connectionLost(ctx, out)
		}
	}()

	var subs []mqttclient.Subscription
	for _, r := range s.routes {
		subs = append(subs, mqttclient.Subscription{Topic: r.topic, QoS: r.qos})
	}
	if s.sp != nil {
		subs = append(subs, s.sp.subscriptions()...)
		s.hmu.Lock()
		s.sp.connected(stateTS, func(m outMsg) bool {
			select {
			case outbox <- m:
				return true
			default:
				s.outboxDropped.Add(1)
				return false
			}
		}, s.now())
		s.hmu.Unlock()
	}
	if err := c.Subscribe(dctx, subs); err != nil {
		return false, fail("subscribe", err)
	}
	s.setState(pipeline.StateRunning, "")
	if stateTopic != "" {
		payload := sparkplugb.State{Online: true, Timestamp: stateTS}.AppendJSON(nil)
		if err := c.Publish(dctx, stateTopic, payload, 1, true); err != nil {
			return false, fail("publish STATE", err)
		}
	}
	wg.Go(func() { s.drainOutbox(cctx, c, outbox) })
	s.log.Info("connected", "broker", s.addr, "client_id", s.cfg.ClientID,
		"protocol_version", s.cfg.ProtocolVersion, "tls", o.TLS != nil,
		"session_present", c.SessionPresent(), "subscriptions", len(subs))
	select {
	case <-ctx.Done():
		return true, nil
	case <-c.Done():
		s.disconnects.Add(1)
		cause := c.Cause()
		if cause == nil {
			cause = errors.New("connection closed")
		}
		return true, fail("connection lost", cause)
	}
}

// drainOutbox publishes what the handler queued, from a goroutine of its
// own: a QoS 1 publish from the handler would wait for a PUBACK that only
// the handler's goroutine could read.
func (s *Source) drainOutbox(ctx context.Context, c mqttclient.Conn, outbox <-chan outMsg) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-outbox:
			pctx, cancel := context.WithTimeout(ctx, s.cfg.KeepAlive)
			if err := c.Publish(pctx, m.topic, m.payload, m.qos, m.retain); err != nil && ctx.Err() == nil {
				s.log.Warn("publish failed", "topic", m.topic, "error", err)
			}
			cancel()
		}
	}
}

// connectionLost marks every Sparkplug metric stale: with the broker gone
// the host cannot know whether edge nodes are still alive.
func (s *Source) connectionLost(ctx context.Context, out pipeline.Emitter) {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	s.buf = s.sp.disconnected(s.buf[:0], s.now().UnixNano())
	if len(s.buf) > 0 && ctx.Err() == nil {
		s.emit(ctx, out, s.buf)
	}
}

// onMessage handles one PUBLISH on the library's goroutine. It returns
// (and the message is acknowledged) only once the samples are emitted.
func (s *Source) onMessage(ctx context.Context, out pipeline.Emitter, m mqttclient.Message) {
	s.messages.Add(1)
	now := s.now()
	s.hmu.Lock()
	defer s.hmu.Unlock()
	if m.Oversize > 0 {
		s.oversize.Add(1)
		s.badMessage(m.Topic, fmt.Errorf("message of %d bytes exceeds max_payload %d: skipped unread", m.Oversize, s.cfg.MaxPayload))
		return
	}
	if len(m.Payload) > s.cfg.MaxPayload {
		s.badMessage(m.Topic, fmt.Errorf("payload of %d bytes exceeds max_payload %d", len(m.Payload), s.cfg.MaxPayload))
		return
	}
	var err error
	buf := s.buf[:0]
	switch {
	case s.sp != nil && isSparkplugTopic(m.Topic):
		buf, err = s.sp.handle(buf, m.Topic, m.Payload, now)
	default:
		r := s.routeFor(m.Topic)
		if r == nil {
			s.unmatched.Add(1)
			return
		}
		buf, err = r.decode(buf, m.Topic, m.Payload, now.UnixNano())
		if errors.Is(err, errEmpty) {
			err = nil
		}
	}
	if err != nil {
		s.badMessage(m.Topic, err)
	}
	s.buf = buf
	if len(buf) > 0 {
		s.emit(ctx, out, buf)
	}
}

func (s *Source) emit(ctx context.Context, out pipeline.Emitter, batch []model.Sample) {
	// Counted and noted before Emit, so that whoever sees a sample
	// downstream also sees it in Status and Tags.
	s.samples.Add(uint64(len(batch)))
	s.noteTags(batch)
	_ = out.Emit(ctx, batch) // fails only when ctx ended: the connection is going away
	clear(batch)             // drop string references until the next message
}

// routeFor returns the first route whose filter matches topic.
func (s *Source) routeFor(topic string) *route {
	for _, r := range s.routes {
		if matchTopic(r.filter, topic) {
			return r
		}
	}
	return nil
}

func isSparkplugTopic(topic string) bool {
	return strings.HasPrefix(topic, sparkplugb.Namespace+"/")
}

// badMessage counts and logs (rate-limited) a message that could not be
// used. The payload is never logged: it may be large or sensitive.
func (s *Source) badMessage(topic string, err error) {
	s.decodeErrors.Add(1)
	if n, ok := s.badLog.allow(s.now()); ok {
		s.log.Warn("cannot decode message", "topic", topic, "error", err, "suppressed", n)
	}
}

func (s *Source) setState(state, lastErr string) {
	s.stMu.Lock()
	s.state, s.lastErr = state, lastErr
	s.stMu.Unlock()
}

// Status reports the connection state and counters; with Sparkplug, one
// child per edge node seen.
func (s *Source) Status() pipeline.Status {
	s.stMu.Lock()
	st := pipeline.Status{Name: "mqtt", State: s.state, LastError: s.lastErr}
	s.stMu.Unlock()
	st.Counters = map[string]uint64{
		"messages":       s.messages.Load(),
		"samples":        s.samples.Load(),
		"decode_errors":  s.decodeErrors.Load(),
		"unmatched":      s.unmatched.Load(),
		"connects":       s.connects.Load(),
		"disconnects":    s.disconnects.Load(),
		"outbox_dropped": s.outboxDropped.Load(),
		"oversize":       s.oversize.Load(),
	}
	s.tagsMu.Lock()
	st.Gauges = map[string]float64{"known_tags": float64(len(s.tags))}
	s.tagsMu.Unlock()
	if s.sp != nil {
		s.sp.status(&st)
	}
	return st
}

// rateLimiter lets one event through per interval and counts the rest.
type rateLimiter struct {
	every      time.Duration
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (r *rateLimiter) allow(now time.Time) (suppressed int, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.last.IsZero() && now.Sub(r.last) < r.every {
		r.suppressed++
		return 0, false
	}
	n := r.suppressed
	r.last, r.suppressed = now, 0
	return n, true
}
