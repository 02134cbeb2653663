package sparkplug

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/internal/sparkplugb"
	"github.com/weir-edge/weir/internal/wirecount"
	"github.com/weir-edge/weir/pipeline"
)

// errHostOffline is returned by Write while the primary host application
// is offline: not ErrRejected (the data must stay buffered) and not
// ErrDisconnected (the connection is fine), so the engine retries later.
var errHostOffline = errors.New("primary host application is offline")

// Sink is a Sparkplug B 3.0 edge node. See the package documentation.
type Sink struct {
	cfg        Config // defaults applied
	addr       string
	log        *slog.Logger
	now        func() time.Time
	ncmdTopic  string
	stateTopic string // "" without primary_host_id

	// mu serializes Connect and Close and guards sess and closed. Lock
	// order: mu before pubMu; never take mu while holding pubMu.
	mu     sync.Mutex
	sess   *session
	closed bool

	// pubMu guards the node model, seq and every publish, so that seq
	// order is publish order.
	pubMu     sync.Mutex
	node      *node
	enc       dataEncoder
	seq       uint64 // next seq, 0..255
	bdSeq     uint64 // of the current connection
	nodeBorn  bool   // NBIRTH published in the current session
	lastBirth time.Time
	touched   []*deviceState
	metricsOf []*metricState // per batch index; nil: skipped
	// rej collects the samples of the Write in progress that no metric
	// can carry (under pubMu).
	rej *pipeline.RejectedError
	win window

	// hostMu guards the primary host state.
	hostMu     sync.Mutex
	hostOnline bool
	hostSeen   bool
	hostTS     uint64

	stMu    sync.Mutex
	state   string
	lastErr string
	closing atomic.Bool

	nbirths, dbirths, ndeaths, ddeaths atomic.Uint64
	dataMessages, metrics, invalid     atomic.Uint64
	suppressed, rebirthRequests        atomic.Uint64
	unchanged                          atomic.Uint64 // left out by report by exception
	connects, disconnects, pubErrors   atomic.Uint64
	conversions                        atomic.Uint64
	seqGauge, bdSeqGauge               atomic.Uint64
	// wire counts the bytes written to the broker over every connection
	// (births, deaths, data, framing, TLS, pings).
	wire wirecount.Counter

	cmd commands // NCMD/DCMD writes through a gate (commands.go)
}

// session is one connection and the goroutine that serves it.
type session struct {
	conn   mqttclient.Conn
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when serve has returned
	events chan struct{} // cap 1: "look at the flags"
	// flags set by the message handler, acted on by serve.
	rebirth     atomic.Bool
	hostOffline atomic.Bool
	closeOnce   sync.Once
	// cmds queues write commands for the worker (nil without a gate);
	// cmdDone is closed when the worker has returned.
	cmds    chan cmdMsg
	cmdDone chan struct{}
}

// closeConn disconnects once, whoever asks first (serve on a host going
// offline, Connect/Close/Write dropping the session).
func (ss *session) closeConn() { ss.closeOnce.Do(func() { _ = ss.conn.Close() }) }

func (ss *session) signal() {
	select {
	case ss.events <- struct{}{}:
	default:
	}
}

var (
	_ pipeline.Sink           = (*Sink)(nil)
	_ pipeline.StatusReporter = (*Sink)(nil)
)

// New builds a sink from cfg. It validates, applies defaults and does no
// network or file I/O. log should already carry the component and name.
func New(cfg Config, log *slog.Logger) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sparkplug sink: %w", err)
	}
	if cfg.EdgeNodeID == "" {
		return nil, fmt.Errorf("sparkplug sink: edge_node_id: is required (SetNode gives it node.id)")
	}
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sink{
		cfg: cfg, addr: cfg.Addr(), log: log,
		now: time.Now, state: pipeline.StateStarting,
		node: newNode(&cfg), enc: dataEncoder{seqProp: *cfg.SeqProperty},
	}
	s.ncmdTopic = s.node.topic(sparkplugb.NCMD, "")
	s.initCommands()
	if cfg.PrimaryHostID != "" {
		t := sparkplugb.Topic{Namespace: sparkplugb.Namespace, Type: sparkplugb.STATE, HostID: cfg.PrimaryHostID}
		if cfg.LegacyState {
			t.Namespace = ""
		}
		s.stateTopic = t.String()
	}
	return s, nil
}

func (s *Sink) nowMs() uint64 { return uint64(s.now().UnixMilli()) }

// Connect increments and persists bdSeq, connects with the NDEATH will,
// subscribes to NCMD (and STATE with a primary host) and, unless gated by
// an offline primary host, publishes NBIRTH and every known DBIRTH. It
// returns nil at once if the connection is already up.
func (s *Sink) Connect(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("sparkplug %s: connect: %w", s.addr, pipeline.ErrClosed)
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
		return fmt.Errorf("sparkplug %s: connect: %s: %w", s.addr, what, err)
	}
	bd, err := nextBdSeq(s.cfg.BdSeqFile)
	if err != nil {
		return fail("bdSeq", err)
	}
	o, err := s.cfg.Options() // password and certificates are read here
	if err != nil {
		return fmt.Errorf("sparkplug %s: connect: %w", s.addr, err)
	}
	sctx, scancel := context.WithCancel(context.Background())
	sess := &session{ctx: sctx, cancel: scancel, done: make(chan struct{}), events: make(chan struct{}, 1)}
	// Sparkplug: Clean Start and Session Expiry 0; the NDEATH will is QoS 1,
	// not retained.
	o.WireBytes = &s.wire
	o.Will = &mqttclient.Message{Topic: s.node.topic(sparkplugb.NDEATH, ""), Payload: deathPayload(s.nowMs(), bd), QoS: 1}
	o.OnMessage = func(m mqttclient.Message) { s.onMessage(sess, m.Topic, m.Payload) }
	subs := []mqttclient.Subscription{{Topic: s.ncmdTopic, QoS: 1}}
	if s.stateTopic != "" {
		subs = append(subs, mqttclient.Subscription{Topic: s.stateTopic, QoS: 1})
	}
	sess.cmds = s.commandSubscriptions(&subs)
	cctx, cancel := context.WithTimeout(ctx, s.cfg.ConnectTimeout)
	defer cancel()
	c, err := mqttclient.Dial(cctx, o)
	if err != nil {
		scancel()
		return fail("dial", err)
	}
	// Offline until this connection's STATE says otherwise; reset before
	// subscribing, as the retained STATE may be handled before Subscribe
	// returns.
	s.hostMu.Lock()
	s.hostOnline = false
	s.hostMu.Unlock()
	if err := c.Subscribe(cctx, subs); err != nil {
		_ = c.Close()
		scancel()
		return fail("dial", fmt.Errorf("subscribe: %w", err))
	}
	sess.conn = c

	s.pubMu.Lock()
	s.bdSeq = bd
	s.bdSeqGauge.Store(bd)
	s.nodeBorn = false
	for _, d := range s.node.devices {
		d.born = false
	}
	var berr error
	if s.stateTopic == "" {
		berr = s.birthAllLocked(cctx, c)
	}
	s.pubMu.Unlock()
	if berr != nil {
		_ = c.Close()
		scancel()
		return fail("births", berr)
	}
	s.sess = sess
	s.connects.Add(1)
	s.startCommands(sess)
	go s.serve(sess)
	s.log.Info("connected", "broker", s.addr, "client_id", s.cfg.ClientID,
		"protocol_version", s.cfg.ProtocolVersion, "tls", o.TLS != nil, "bdseq", bd,
		"primary_host_id", s.cfg.PrimaryHostID)
	return nil
}

// onMessage handles NCMD and STATE. It runs in the client library's
// goroutine and must not block: it sets flags for serve.
func (s *Sink) onMessage(sess *session, topic string, payload []byte) {
	switch topic {
	case s.ncmdTopic:
		p, err := sparkplugb.Decode(payload)
		if err != nil {
			s.log.Warn("ignoring malformed NCMD", "error", err)
			return
		}
		s.onNodeCommand(sess, p)
		m := sparkplugb.FindMetric(p, sparkplugb.MetricRebirth)
		if m == nil {
			s.log.Debug("ignoring NCMD without Node Control/Rebirth")
			return
		}
		if v, err := sparkplugb.ValueAs(m, sparkplugb.DataType_Boolean); err != nil || !v.AsBool() {
			return
		}
		s.rebirthRequests.Add(1)
		sess.rebirth.Store(true)
		sess.signal()
	case s.stateTopic:
		st, err := sparkplugb.ParseState(payload)
		if err != nil {
			s.log.Warn("ignoring malformed STATE", "host", s.cfg.PrimaryHostID, "error", err)
			return
		}
		s.hostMu.Lock()
		// A STATE older than the last one seen is stale (spec 5.x): the
		// first one seen is taken as valid; legacy STATE has no time.
		if s.hostSeen && !st.Legacy && st.Timestamp < s.hostTS {
			s.hostMu.Unlock()
			return
		}
		was := s.hostOnline
		s.hostSeen, s.hostOnline = true, st.Online
		if !st.Legacy {
			s.hostTS = st.Timestamp
		}
		s.hostMu.Unlock()
		s.log.Info("primary host state", "host", s.cfg.PrimaryHostID, "online", st.Online)
		switch {
		case st.Online && !was:
			sess.signal() // serve publishes the births
		case !st.Online && was:
			sess.hostOffline.Store(true)
			sess.signal()
		}
	default:
		if strings.HasPrefix(topic, s.cmd.dcmdPrefix) {
			s.onDeviceCommand(sess, topic, payload)
		}
	}
}

func (s *Sink) isHostOnline() bool {
	if s.stateTopic == "" {
		return true
	}
	s.hostMu.Lock()
	defer s.hostMu.Unlock()
	return s.hostOnline
}

// serve is the one goroutine of a connection: it notices the connection
// ending, answers rebirth requests (debounced), publishes births when the
// primary host comes online, and publishes NDEATH and disconnects when it
// goes offline.
func (s *Sink) serve(sess *session) {
	defer close(sess.done)
	defer func() {
		if sess.cmdDone != nil {
			<-sess.cmdDone // ends with sess.ctx, cancelled on every return
		}
	}()
	var debounce *time.Timer
	defer func() {
		if debounce != nil {
			debounce.Stop()
		}
	}()
	for {
		select {
		case <-sess.conn.Done():
			sess.cancel()
			if !s.closing.Load() {
				cause := sess.conn.Cause()
				if cause == nil {
					cause = errors.New("connection closed")
				}
				s.disconnects.Add(1)
				s.log.Warn("connection lost", "broker", s.addr, "error", cause)
				s.setState(pipeline.StateRetrying, fmt.Sprintf("connection lost: %v", cause))
			}
			return
		case <-sess.ctx.Done():
			return
		case <-sess.events:
		}
		if sess.hostOffline.Swap(false) {
			// Spec: on the primary host going offline publish NDEATH,
			// disconnect and start over.
			s.pubMu.Lock()
			ctx, cancel := context.WithTimeout(sess.ctx, s.cfg.KeepAlive)
			err := sess.conn.Publish(ctx, s.node.topic(sparkplugb.NDEATH, ""), deathPayload(s.nowMs(), s.bdSeq), 1, false)
			cancel()
			s.pubMu.Unlock()
			if err == nil {
				s.ndeaths.Add(1)
			}
			s.log.Warn("primary host offline: NDEATH published, disconnecting", "host", s.cfg.PrimaryHostID)
			s.setState(pipeline.StateRetrying, errHostOffline.Error())
			sess.closeConn()
			sess.cancel()
			return
		}
		if !s.isHostOnline() {
			continue
		}
		wantRebirth := sess.rebirth.Load()
		s.pubMu.Lock()
		if wantRebirth {
			if wait := s.cfg.RebirthDebounce - s.now().Sub(s.lastBirth); wait > 0 && s.nodeBorn {
				s.pubMu.Unlock()
				if debounce == nil {
					debounce = time.AfterFunc(wait, sess.signal)
				} else {
					debounce.Reset(wait)
				}
				continue
			}
			sess.rebirth.Store(false)
		}
		var err error
		if (wantRebirth || !s.nodeBorn) && sess.ctx.Err() == nil {
			ctx, cancel := context.WithTimeout(sess.ctx, s.cfg.ConnectTimeout)
			err = s.birthAllLocked(ctx, sess.conn)
			cancel()
		}
		s.pubMu.Unlock()
		if err != nil && sess.ctx.Err() == nil {
			s.log.Warn("births failed; reconnecting", "error", err)
			sess.closeConn()
		}
	}
}

func (s *Sink) setState(state, lastErr string) {
	s.stMu.Lock()
	s.state, s.lastErr = state, lastErr
	s.stMu.Unlock()
}

// dropLocked closes the current connection and waits for its goroutine.
func (s *Sink) dropLocked() {
	sess := s.sess
	s.sess = nil
	sess.closeConn()
	sess.cancel()
	<-sess.done
}

// Close publishes NDEATH (QoS 1, so it is confirmed before DISCONNECT,
// which makes the broker discard the will), disconnects and waits for the
// connection's goroutines. It works after a partial start and twice.
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
			stop := context.AfterFunc(sess.ctx, cancel)
			s.pubMu.Lock()
			perr := sess.conn.Publish(pctx, s.node.topic(sparkplugb.NDEATH, ""), deathPayload(s.nowMs(), s.bdSeq), 1, false)
			s.pubMu.Unlock()
			stop()
			cancel()
			if perr != nil {
				err = fmt.Errorf("sparkplug %s: close: publish NDEATH: %w", s.addr, perr)
			} else {
				s.ndeaths.Add(1)
			}
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

// Status reports the connection state and Sparkplug counters.
func (s *Sink) Status() pipeline.Status {
	s.stMu.Lock()
	st := pipeline.Status{Name: "sparkplug", State: s.state, LastError: s.lastErr}
	s.stMu.Unlock()
	hostOnline := 0.0
	if s.isHostOnline() {
		hostOnline = 1
	}
	st.Counters = map[string]uint64{
		"births":             s.nbirths.Load() + s.dbirths.Load(),
		"nbirths":            s.nbirths.Load(),
		"dbirths":            s.dbirths.Load(),
		"deaths":             s.ndeaths.Load() + s.ddeaths.Load(),
		"ndeaths":            s.ndeaths.Load(),
		"ddeaths":            s.ddeaths.Load(),
		"data_messages":      s.dataMessages.Load(),
		"metrics":            s.metrics.Load(),
		"invalid_samples":    s.invalid.Load(),
		"suppressed_samples": s.suppressed.Load(),
		"unchanged_samples":  s.unchanged.Load(),
		"conversion_errors":  s.conversions.Load(),
		"rebirth_requests":   s.rebirthRequests.Load(),
		"publish_errors":     s.pubErrors.Load(),
		"connects":           s.connects.Load(),
		"disconnects":        s.disconnects.Load(),
		"wire_bytes":         s.wire.Load(),
	}
	s.commandCounters(st.Counters)
	st.Gauges = map[string]float64{
		"seq":         float64(s.seqGauge.Load()),
		"bdseq":       float64(s.bdSeqGauge.Load()),
		"host_online": hostOnline,
	}
	return st
}
