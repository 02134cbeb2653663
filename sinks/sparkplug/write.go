package sparkplug

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/internal/sparkplugb"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

// Write publishes batch as NDATA/DDATA (alias only, one message per device
// per max_metrics_per_message samples), preceded by the DBIRTHs (or the
// NBIRTH) that new tags, datatype changes or revived devices need, and
// followed by DDEATH for devices whose every metric is now bad. It returns
// nil once every message is confirmed: written to the socket with QoS 0,
// PUBACK'd with data_qos 1.
//
// While the primary host is offline Write publishes nothing and returns an
// error (neither ErrRejected nor ErrDisconnected) so the engine keeps the
// batch buffered and retries. A lost connection gives ErrDisconnected; the
// next Connect starts a new session (new bdSeq, NBIRTH, all DBIRTHs) and
// the engine offers the batch again: at-least-once, de-duplicate by the
// weir_seq property. A sample no metric can carry (an empty or non-UTF-8
// metric name, an invalid device id) is not published: it comes back in a
// *pipeline.RejectedError once the rest is, and the engine dead-letters it.
func (s *Sink) Write(ctx context.Context, batch []model.Sample) error {
	s.mu.Lock()
	closed, sess := s.closed, s.sess
	s.mu.Unlock()
	if closed {
		return fmt.Errorf("sparkplug %s: write: %w", s.addr, pipeline.ErrClosed)
	}
	if sess == nil || sess.ctx.Err() != nil {
		return fmt.Errorf("sparkplug %s: write: %w", s.addr, pipeline.ErrDisconnected)
	}
	if !s.isHostOnline() {
		return fmt.Errorf("sparkplug %s: write: %w (host %q)", s.addr, errHostOffline, s.cfg.PrimaryHostID)
	}
	if len(batch) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(sess.ctx, cancel) // connection lost: release waiters
	defer stop()

	s.pubMu.Lock()
	s.rej = nil
	err := s.writeLocked(ctx, sess.conn, batch)
	rej := s.rej
	s.rej = nil
	if err != nil {
		// What this Write reported may not have reached the host: the
		// retry sends every value again, changed or not.
		s.node.reportEpoch++
	}
	s.pubMu.Unlock()
	if err == nil {
		s.stMu.Lock()
		s.lastErr = ""
		s.stMu.Unlock()
		if rej != nil {
			return rej // every other sample is published
		}
		return nil
	}
	s.pubErrors.Add(1)
	switch {
	case errors.Is(err, errHostOffline):
		err = fmt.Errorf("sparkplug %s: write: %w", s.addr, err)
	case ctx.Err() != nil && sess.ctx.Err() == nil:
		err = fmt.Errorf("sparkplug %s: write: %w", s.addr, ctx.Err())
	case errors.Is(err, mqttclient.ErrRefused):
		err = fmt.Errorf("sparkplug %s: write: %w", s.addr, err)
	default:
		if c := sess.conn.Cause(); c != nil && sess.ctx.Err() != nil {
			err = fmt.Errorf("connection lost: %w", c)
		}
		s.mu.Lock()
		if s.sess == sess {
			s.dropLocked()
		}
		s.mu.Unlock()
		err = fmt.Errorf("sparkplug %s: write: %w: %w", s.addr, pipeline.ErrDisconnected, err)
		s.setState(pipeline.StateRetrying, err.Error())
		return err
	}
	s.stMu.Lock()
	s.lastErr = err.Error()
	s.stMu.Unlock()
	return err
}

func (s *Sink) writeLocked(ctx context.Context, c mqttclient.Conn, batch []model.Sample) error {
	n := s.node
	s.win.start(c, s.cfg)
	defer s.win.reset()
	defer func() {
		for _, d := range s.touched {
			d.batch = d.batch[:0]
		}
		clear(s.touched)
		s.touched = s.touched[:0]
		clear(s.metricsOf)
	}()
	if !s.nodeBorn {
		// Gated and the host just came online, or births failed earlier.
		if err := s.birthAllLocked(ctx, c); err != nil {
			return err
		}
	}
	// Pass 1: resolve tags, note what needs a birth.
	if cap(s.metricsOf) < len(batch) {
		s.metricsOf = make([]*metricState, len(batch))
	}
	s.metricsOf = s.metricsOf[:len(batch)]
	for i := range batch {
		smp := &batch[i]
		m, _, err := n.resolve(smp.Path)
		if err != nil {
			// No metric can carry it: rejected (the engine dead-letters
			// it) once the rest is published.
			s.invalid.Add(1)
			pipeline.Reject(&s.rej, i, pipeline.CauseInvalidName, err)
			continue
		}
		s.metricsOf[i] = m
		d := m.dev
		if !m.born {
			// Not in any birth yet: its first valid value sets the
			// datatype the coming birth announces.
			m.observe(smp.Value)
		}
		if d.dead && smp.Quality.Code != model.Bad {
			d.needBirth = true
		}
		if len(d.batch) == 0 {
			s.touched = append(s.touched, d)
		}
		d.batch = append(d.batch, i)
	}
	// Pass 2: births.
	if n.nodeRebirth {
		if err := s.birthAllLocked(ctx, c); err != nil {
			return err
		}
	}
	nowMs := s.nowMs()
	for _, d := range s.touched {
		if d == n.self || !(d.needBirth || (!d.born && !d.dead)) {
			continue
		}
		if err := s.deviceBirthLocked(ctx, d, nowMs); err != nil {
			return err
		}
	}
	// Pass 3: data, per device in order of first appearance.
	for _, d := range s.touched {
		if d.dead {
			// Still dead: every sample is bad and DDEATH already told
			// hosts the device's metrics are stale.
			s.suppressed.Add(uint64(len(d.batch)))
			for _, i := range d.batch {
				s.metricsOf[i].last, s.metricsOf[i].has = batch[i], true
			}
			continue
		}
		if err := s.deviceData(ctx, d, batch, nowMs); err != nil {
			return err
		}
	}
	// Pass 4: deaths of devices now entirely bad.
	for _, d := range s.touched {
		if d == n.self || d.dead || !d.allBad() {
			continue
		}
		if err := s.publishSeq(ctx, d.deathTopic, sparkplugb.NewPayload(nowMs, 0)); err != nil {
			return err
		}
		d.dead, d.born = true, false
		s.ddeaths.Add(1)
	}
	return s.win.flush(ctx)
}

// deviceData publishes d's samples of this batch as NDATA/DDATA, at most
// max_metrics_per_message per message. A value whose kind does not match
// the metric's datatype ends the current message and is preceded by a
// birth (DBIRTH, or NBIRTH for node metrics) announcing the new datatype.
func (s *Sink) deviceData(ctx context.Context, d *deviceState, batch []model.Sample, nowMs uint64) error {
	var p *sparkplugb.Payload
	var idx []int
	flush := func() error {
		if p == nil {
			return nil
		}
		if err := s.publishSeq(ctx, d.dataTopic, p); err != nil {
			return err
		}
		for _, i := range idx {
			s.metricsOf[i].last, s.metricsOf[i].has = batch[i], true
		}
		s.dataMessages.Add(1)
		s.metrics.Add(uint64(len(idx)))
		p, idx = nil, idx[:0]
		return nil
	}
	rbe := *s.cfg.ReportByException
	for _, i := range d.batch {
		m := s.metricsOf[i]
		if rbe && m.unchanged(&batch[i], s.node.reportEpoch) {
			// Report by exception: the host has this value and quality.
			// The newer sample becomes the metric's last (for births).
			m.last = batch[i]
			s.unchanged.Add(1)
			continue
		}
		if m.observe(batch[i].Value) {
			if err := flush(); err != nil {
				return err
			}
			var err error
			if d == s.node.self {
				err = s.birthAllLocked(ctx, s.win.c)
			} else {
				err = s.deviceBirthLocked(ctx, d, nowMs)
			}
			if err != nil {
				return err
			}
		}
		if p == nil {
			p = sparkplugb.NewPayload(nowMs, 0)
			p.Metrics = make([]*sparkplugb.Metric, 0, min(len(d.batch), s.cfg.MaxMetricsPerMessage))
		}
		before := s.enc.conversions
		p.Metrics = append(p.Metrics, s.enc.metric(m, &batch[i]))
		s.conversions.Add(s.enc.conversions - before)
		idx = append(idx, i)
		// Reported from now on (for later samples of this batch too); a
		// failed publish moves the report epoch on.
		m.last, m.has, m.reported, m.reportEpoch = batch[i], true, true, s.node.reportEpoch
		if len(p.Metrics) == s.cfg.MaxMetricsPerMessage {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// birthAllLocked publishes NBIRTH (seq 0) and a DBIRTH for every device
// that is not dead, as after a connect or a rebirth request.
func (s *Sink) birthAllLocked(ctx context.Context, c mqttclient.Conn) error {
	s.win.start(c, s.cfg)
	nowMs := s.nowMs()
	s.seq = 0
	if err := s.publishSeq(ctx, s.node.self.birthTopic, s.node.nodeBirth(nowMs, s.bdSeq)); err != nil {
		return err
	}
	s.nbirths.Add(1)
	s.nodeBorn = true
	s.node.nodeRebirth = false
	s.lastBirth = s.now()
	for _, d := range s.node.devices {
		d.born = false
		if d.dead && !d.needBirth {
			continue
		}
		if err := s.deviceBirthLocked(ctx, d, nowMs); err != nil {
			return err
		}
	}
	return s.win.flush(ctx)
}

func (s *Sink) deviceBirthLocked(ctx context.Context, d *deviceState, nowMs uint64) error {
	if err := s.publishSeq(ctx, d.birthTopic, d.deviceBirth(nowMs)); err != nil {
		return err
	}
	d.born, d.dead, d.needBirth = true, false, false
	s.dbirths.Add(1)
	return nil
}

// publishSeq stamps p with the next seq (0..255, shared by every node and
// device message) and publishes it through the window.
func (s *Sink) publishSeq(ctx context.Context, topic string, p *sparkplugb.Payload) error {
	p.Seq = proto.Uint64(s.seq)
	s.seqGauge.Store(s.seq)
	s.seq = (s.seq + 1) % 256
	b, err := sparkplugb.Encode(p)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", mqttclient.ErrRefused, topic, err)
	}
	if err := s.win.send(ctx, topic, b); err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	return nil
}

// window publishes in order, keeping up to max_inflight unconfirmed
// messages when the connection supports it (MQTT 3.1.1), else one at a
// time.
type window struct {
	c       mqttclient.Conn
	qos     byte
	size    int
	timeout time.Duration
	ring    []pending
	n       int // messages sent since start
	first   int // oldest unconfirmed index
}

type pending struct {
	tok   mqttclient.Token
	topic string
}

func (w *window) start(c mqttclient.Conn, cfg Config) {
	if w.c == c && w.n > w.first {
		return // nested start (births inside a write): keep the window
	}
	w.c, w.qos, w.size, w.timeout = c, byte(cfg.DataQoS), cfg.MaxInflight, cfg.KeepAlive
	w.n, w.first = 0, 0
	if len(w.ring) < w.size {
		w.ring = make([]pending, w.size)
	}
}

func (w *window) send(ctx context.Context, topic string, payload []byte) error {
	ap, ok := w.c.(mqttclient.AsyncPublisher)
	if !ok {
		return w.c.Publish(ctx, topic, payload, w.qos, false)
	}
	tok := ap.PublishAsync(topic, payload, w.qos, false)
	if w.n-w.first == w.size {
		if err := w.awaitOldest(ctx); err != nil {
			return err
		}
	}
	w.ring[w.n%w.size] = pending{tok, topic}
	w.n++
	return nil
}

func (w *window) awaitOldest(ctx context.Context) error {
	p := w.ring[w.first%w.size]
	w.ring[w.first%w.size] = pending{}
	w.first++
	t := time.NewTimer(w.timeout)
	defer t.Stop()
	if err := mqttclient.AwaitToken(ctx, p.tok, t.C); err != nil {
		return fmt.Errorf("publish %s: %w", p.topic, err)
	}
	return nil
}

// flush waits for every message sent so far.
func (w *window) flush(ctx context.Context) error {
	for w.first < w.n {
		if err := w.awaitOldest(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (w *window) reset() {
	clear(w.ring)
	w.c, w.n, w.first = nil, 0, 0
}
