package mqtt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/internal/wirecount"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

// Payloads of the status topic.
var (
	statusOnline  = []byte("online")
	statusOffline = []byte("offline")
)

// Sink publishes samples to an MQTT broker in the unified-namespace layout.
// See the package documentation for topics and payloads.
type Sink struct {
	cfg  Config // defaults applied
	addr string // host:port
	log  *slog.Logger

	// mu serializes Connect and Close and guards sess and closed. Write
	// takes it only to pick up the current session, never while publishing.
	mu     sync.Mutex
	sess   *session
	closed bool

	// stMu guards what Status reports. The connection watcher takes only
	// stMu, so that holding mu while waiting for a watcher cannot deadlock.
	stMu    sync.Mutex
	state   string
	lastErr string

	// closing is set by Close so the watcher does not count the final
	// disconnect as a loss.
	closing atomic.Bool
	// suspect is set when the connection was lost during a Write: the
	// broker may have dropped it over one message, so the next Write
	// publishes one message at a time to find it (isolate).
	suspect atomic.Bool

	// Write's buffers, reused between calls. The engine calls Write from
	// one goroutine at a time, so they need no lock.
	enc  encoder
	ring []pending // publishWindow's tokens

	messages      atomic.Uint64
	samples       atomic.Uint64
	invalid       atomic.Uint64
	publishErrors atomic.Uint64
	connects      atomic.Uint64
	disconnects   atomic.Uint64
	// wire counts the bytes written to the broker over every connection.
	wire wirecount.Counter
}

// session is one connection plus the context that ends with it, so that
// publishes waiting for a PUBACK are released as soon as it drops.
type session struct {
	conn    mqttclient.Conn
	ctx     context.Context
	cancel  context.CancelFunc
	watched chan struct{} // closed when the watcher goroutine has returned
}

var (
	_ pipeline.Sink           = (*Sink)(nil)
	_ pipeline.StatusReporter = (*Sink)(nil)
)

// New builds a sink from cfg. It validates, applies defaults and does no
// network or file I/O. log should already carry the component and name.
func New(cfg Config, log *slog.Logger) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("mqtt sink: %w", err)
	}
	cfg.setDefaults()
	if cfg.ClientID == "" {
		return nil, fmt.Errorf("mqtt sink: client_id: is required (SetNode gives it node.id)")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sink{
		cfg:   cfg,
		addr:  cfg.Addr(), // validated above
		log:   log,
		state: pipeline.StateStarting,
		enc:   newEncoder(cfg.TopicPrefix, cfg.Mode == ModeBatch),
	}, nil
}

// Connect dials the broker, announces "online" on the status topic and
// returns nil once both succeeded, or an error the engine retries with
// backoff. It returns nil at once if the connection is already up. The
// password and certificates are read here, not in New, so that rotated
// credentials apply on the next reconnect.
func (s *Sink) Connect(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("mqtt %s: connect: %w", s.addr, pipeline.ErrClosed)
	}
	if s.sess != nil {
		if s.sess.ctx.Err() == nil {
			return nil
		}
		s.dropLocked()
	}
	s.setState(pipeline.StateConnecting, "")
	if err := s.connectLocked(ctx); err != nil {
		s.setState(pipeline.StateRetrying, err.Error())
		return err
	}
	s.setState(pipeline.StateRunning, "")
	return nil
}

func (s *Sink) connectLocked(ctx context.Context) error {
	fail := func(what string, err error) error {
		return fmt.Errorf("mqtt %s: connect: %s: %w", s.addr, what, err)
	}
	o, err := s.cfg.Options() // password and certificates are read here
	if err != nil {
		return fmt.Errorf("mqtt %s: connect: %w", s.addr, err)
	}
	o.WireBytes = &s.wire
	o.Will = &mqttclient.Message{Topic: s.cfg.StatusTopic, Payload: statusOffline, QoS: 1, Retain: true}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ConnectTimeout)
	defer cancel()
	c, err := mqttclient.Dial(ctx, o)
	if err != nil {
		return fail("dial", err)
	}
	if err := c.Publish(ctx, s.cfg.StatusTopic, statusOnline, 1, true); err != nil {
		_ = c.Close()
		return fail("publish online status", err)
	}
	sctx, scancel := context.WithCancel(context.Background())
	sess := &session{conn: c, ctx: sctx, cancel: scancel, watched: make(chan struct{})}
	s.sess = sess
	s.connects.Add(1)
	go s.watch(sess)
	s.log.Info("connected", "broker", s.addr, "client_id", s.cfg.ClientID,
		"protocol_version", s.cfg.ProtocolVersion, "tls", o.TLS != nil)
	return nil
}

// watch waits for the connection to end, releases the publishes waiting on
// it and records the loss. One goroutine per connection, not per message.
func (s *Sink) watch(sess *session) {
	defer close(sess.watched)
	<-sess.conn.Done()
	sess.cancel()
	if s.closing.Load() {
		return
	}
	cause := sess.conn.Cause()
	if cause == nil {
		cause = errors.New("connection closed")
	}
	s.disconnects.Add(1)
	s.log.Warn("connection lost", "broker", s.addr, "error", cause)
	// No newer session can exist yet: dropLocked waits for this watcher
	// before a new connection is dialled.
	s.setState(pipeline.StateRetrying, fmt.Sprintf("connection lost: %v", cause))
}

// setState records the state and last error reported by Status.
func (s *Sink) setState(state, lastErr string) {
	s.stMu.Lock()
	s.state, s.lastErr = state, lastErr
	s.stMu.Unlock()
}

// dropLocked closes the current connection and waits for its watcher.
func (s *Sink) dropLocked() {
	sess := s.sess
	s.sess = nil
	_ = sess.conn.Close()
	<-sess.watched
}

// Write publishes batch and returns nil once every message is confirmed
// (QoS 1: PUBACK; QoS 0: written to the socket). Messages for one topic go
// out in batch order; at most max_inflight await their PUBACK at once. If
// the connection is lost, the error wraps
// pipeline.ErrDisconnected and the engine calls Connect before offering the
// same batch again, so delivery is at-least-once.
//
// A poison sample never blocks the batch: samples whose topic would be
// invalid (not UTF-8, wildcards, control characters, empty levels) are not
// sent, nor are samples whose message would exceed the maximum packet size
// the broker announced in its CONNACK (MQTT 5; the limit is per
// connection), and a message the broker disconnects over is found by
// publishing the batch again one message at a time (see isolate). All come
// back in a *pipeline.RejectedError once every other message is
// confirmed, and the engine dead-letters them.
func (s *Sink) Write(ctx context.Context, batch []model.Sample) error {
	s.mu.Lock()
	closed, sess := s.closed, s.sess
	s.mu.Unlock()
	if closed {
		return fmt.Errorf("mqtt %s: write: %w", s.addr, pipeline.ErrClosed)
	}
	if sess == nil || sess.ctx.Err() != nil {
		return fmt.Errorf("mqtt %s: write: %w", s.addr, pipeline.ErrDisconnected)
	}
	s.enc.limit = 0
	if pl, ok := sess.conn.(mqttclient.PacketLimiter); ok {
		s.enc.limit = int(pl.MaxPacketSize())
	}
	msgs, invalid := s.enc.encode(batch)
	var rej *pipeline.RejectedError
	for _, i := range invalid {
		pipeline.Reject(&rej, int(i), pipeline.CauseInvalidName, s.enc.topicErr(batch[i].Path))
	}
	for _, i := range s.enc.oversize {
		pipeline.Reject(&rej, int(i), pipeline.CauseOversize, fmt.Errorf(
			"mqtt %s: publish %s: message larger than the broker's maximum packet size of %d bytes",
			s.addr, batch[i].Path, s.enc.limit))
	}
	s.invalid.Add(uint64(len(invalid)))
	var err error
	if s.suspect.Load() {
		sess, err = s.isolate(ctx, sess, msgs, &rej)
	} else {
		err = s.publishAll(ctx, sess, msgs)
	}
	if err == nil {
		s.suspect.Store(false)
		s.enc.reset()
		s.stMu.Lock()
		s.lastErr = ""
		s.stMu.Unlock()
		if rej != nil {
			return rej
		}
		return nil
	}
	// The client library may still reference the payloads of failed
	// publishes: give up the buffer rather than overwrite it.
	s.enc.abandon()
	s.publishErrors.Add(1)
	switch {
	case ctx.Err() != nil:
		err = fmt.Errorf("mqtt %s: write: %w", s.addr, ctx.Err())
	case errors.Is(err, pipeline.ErrClosed), errors.Is(err, pipeline.ErrDisconnected):
		err = fmt.Errorf("mqtt %s: write: %w", s.addr, err)
	case errors.Is(err, mqttclient.ErrRefused):
		if _, final := pubackCause(err); final {
			// The broker refused one message for good: the next Write
			// publishes one at a time to reject exactly that one.
			s.suspect.Store(true)
		}
		err = fmt.Errorf("mqtt %s: write: %w", s.addr, err)
	default:
		// Lost, timed out or broken: drop the connection so that Connect
		// dials afresh. A connection lost while publishing may have been
		// closed over one of the messages: the next Write isolates it.
		if !errors.Is(err, mqttclient.ErrAckTimeout) {
			s.suspect.Store(true)
		}
		if c := sess.conn.Cause(); c != nil && sess.ctx.Err() != nil {
			err = fmt.Errorf("connection lost: %w", c)
		}
		s.mu.Lock()
		if s.sess == sess {
			s.dropLocked()
		}
		s.mu.Unlock()
		err = fmt.Errorf("mqtt %s: write: %w: %w", s.addr, pipeline.ErrDisconnected, err)
		s.setState(pipeline.StateRetrying, err.Error())
		return err
	}
	s.stMu.Lock()
	s.lastErr = err.Error()
	s.stMu.Unlock()
	return err
}

// publishAll publishes msgs on sess and returns the first failure.
func (s *Sink) publishAll(ctx context.Context, sess *session, msgs []message) error {
	if len(msgs) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(sess.ctx, cancel) // connection lost: release waiters
	defer stop()

	qos := byte(*s.cfg.QoS)
	if wp, ok := sess.conn.(mqttclient.AsyncPublisher); ok {
		return s.publishWindow(ctx, wp, msgs, qos)
	}
	workers := 1
	if qos > 0 {
		workers = min(s.cfg.MaxInflight, len(msgs))
	}
	if workers == 1 {
		for i := range msgs {
			if err := s.publishOne(ctx, sess, &msgs[i], qos); err != nil {
				return err
			}
		}
		return nil
	}

	shards := s.enc.shard(workers)
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for w := range workers {
		wg.Go(func() {
			for _, i := range shards[w] {
				if ctx.Err() != nil {
					return
				}
				if err := s.publishOne(ctx, sess, &msgs[i], qos); err != nil {
					errOnce.Do(func() { firstErr = err })
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

// pending is a publish handed to a token-based library, not yet confirmed.
type pending struct {
	tok mqttclient.Token
	msg *message
}

// publishWindow publishes msgs in order through a token-based library,
// keeping at most max_inflight unconfirmed: a ring of tokens, message i in
// slot i % size, so that the oldest is awaited before its slot is reused.
func (s *Sink) publishWindow(ctx context.Context, wp mqttclient.AsyncPublisher, msgs []message, qos byte) error {
	size := min(s.cfg.MaxInflight, len(msgs))
	if cap(s.ring) < size {
		s.ring = make([]pending, size)
	}
	ring := s.ring[:size]
	defer clear(ring)
	timer := time.NewTimer(s.cfg.KeepAlive)
	defer timer.Stop()
	await := func(p pending) error {
		timer.Reset(s.cfg.KeepAlive)
		if err := mqttclient.AwaitToken(ctx, p.tok, timer.C); err != nil {
			return fmt.Errorf("publish %s: %w", p.msg.topic, err)
		}
		s.messages.Add(1)
		s.samples.Add(uint64(p.msg.samples))
		return nil
	}
	for i := range msgs {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		slot := i % size
		if i >= size {
			if err := await(ring[slot]); err != nil {
				return err
			}
		}
		m := &msgs[i]
		ring[slot] = pending{wp.PublishAsync(m.topic, s.enc.payload(m), qos, s.cfg.Retain && !m.historical), m}
	}
	for i := max(0, len(msgs)-size); i < len(msgs); i++ {
		if err := await(ring[i%size]); err != nil {
			return err
		}
	}
	return nil
}

func (s *Sink) publishOne(ctx context.Context, sess *session, m *message, qos byte) error {
	if err := sess.conn.Publish(ctx, m.topic, s.enc.payload(m), qos, s.cfg.Retain && !m.historical); err != nil {
		return fmt.Errorf("publish %s: %w", m.topic, err)
	}
	s.messages.Add(1)
	s.samples.Add(uint64(m.samples))
	return nil
}

// Close publishes "offline" on the status topic, disconnects cleanly (so
// the broker discards the last will) and waits for the connection's
// goroutines. It works after a partial start and more than once.
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.closing.Store(true)
	s.setState(pipeline.StateStopping, "")
	var err error
	if sess := s.sess; sess != nil {
		if sess.ctx.Err() == nil {
			pctx, cancel := context.WithCancel(ctx)
			stop := context.AfterFunc(sess.ctx, cancel) // do not wait for a PUBACK from a dead connection
			if perr := sess.conn.Publish(pctx, s.cfg.StatusTopic, statusOffline, 1, true); perr != nil {
				err = fmt.Errorf("mqtt %s: close: publish offline status: %w", s.addr, perr)
			}
			stop()
			cancel()
		}
		s.dropLocked()
	}
	lastErr := ""
	if err != nil {
		lastErr = err.Error()
	}
	s.setState(pipeline.StateStopped, lastErr)
	s.log.Info("closed", "broker", s.addr)
	return err
}

// Status reports the connection state and counters: messages and samples
// confirmed by the broker, samples dropped for an invalid topic, failed
// Writes, connects, connections lost, and wire_bytes: every byte written
// to the broker's socket (MQTT framing, TLS, status messages and pings
// included), summed over connections.
func (s *Sink) Status() pipeline.Status {
	s.stMu.Lock()
	st := pipeline.Status{Name: "mqtt", State: s.state, LastError: s.lastErr}
	s.stMu.Unlock()
	st.Counters = map[string]uint64{
		"messages":        s.messages.Load(),
		"samples":         s.samples.Load(),
		"invalid_samples": s.invalid.Load(),
		"publish_errors":  s.publishErrors.Load(),
		"connects":        s.connects.Load(),
		"disconnects":     s.disconnects.Load(),
		"wire_bytes":      s.wire.Load(),
	}
	return st
}
