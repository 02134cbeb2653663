package nats

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/weir-edge/weir/internal/wirecount"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

// Header names the sink sets besides Nats-Msg-Id.
const (
	HeaderHistorical = "Weir-Historical"
)

// Sink publishes samples to NATS JetStream and waits for every PubAck.
// See the package documentation for subjects, headers and guarantees.
type Sink struct {
	cfg     Config // defaults applied
	servers string // comma-separated, as nats.Connect takes them
	log     *slog.Logger
	// idBase starts every message id: "<client_id>-<instance>-". The
	// instance is random per Sink so that sequence ids, which restart with
	// the process, never collide with a previous run's inside JetStream's
	// duplicate window (which would silently drop new data).
	idBase string

	// mu serializes Connect and Close and guards sess and closed. Write
	// takes it only to pick up the current session.
	mu     sync.Mutex
	sess   *session
	closed bool

	stMu    sync.Mutex // guards state and lastErr
	state   string
	lastErr string

	// Write's buffers, reused between calls. The engine calls Write from
	// one goroutine at a time, so they need no lock.
	enc     encoder
	pending []pending
	idBuf   []byte

	messages      atomic.Uint64
	samples       atomic.Uint64
	invalid       atomic.Uint64
	duplicates    atomic.Uint64
	publishErrors atomic.Uint64
	connects      atomic.Uint64
	disconnects   atomic.Uint64
	// wire counts the bytes written to the server over every connection.
	wire wirecount.Counter
}

// session is one connection with its JetStream context. lost is closed by
// the connection's closed handler.
type session struct {
	nc      *natsgo.Conn
	js      jetstream.JetStream
	lost    chan struct{}
	closing atomic.Bool // set by the sink before it closes nc itself
	gone    atomic.Bool // the loss has been counted
}

// lost counts and logs the loss of sess once, whoever notices it first:
// the client's disconnect handler or a Write that saw publishes fail.
func (s *Sink) lost(sess *session, err error) {
	if !sess.gone.CompareAndSwap(false, true) {
		return
	}
	s.disconnects.Add(1)
	if err == nil {
		err = errors.New("connection closed")
	}
	s.log.Warn("connection lost", "servers", s.servers, "error", err)
	s.setState(pipeline.StateRetrying, fmt.Sprintf("connection lost: %v", err))
}

// pending is one published message awaiting its PubAck.
type pending struct {
	msg int // index into the encoder's messages
	ok  <-chan *jetstream.PubAck
	err <-chan error
}

var (
	_ pipeline.Sink           = (*Sink)(nil)
	_ pipeline.StatusReporter = (*Sink)(nil)
)

// New builds a sink from cfg. It validates, applies defaults and does no
// network or file I/O. log should already carry the component and name.
func New(cfg Config, log *slog.Logger) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("nats sink: %w", err)
	}
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	servers := cfg.servers()
	norm := make([]string, len(servers))
	for i, u := range servers {
		norm[i], _ = parseURL(u) // validated above
	}
	var rnd [5]byte
	_, _ = rand.Read(rnd[:]) // never fails (crypto/rand panics instead)
	inst := strings.ToLower(base32.StdEncoding.EncodeToString(rnd[:]))
	return &Sink{
		cfg:     cfg,
		servers: strings.Join(norm, ","),
		log:     log,
		idBase:  cfg.ClientID + "-" + inst + "-",
		state:   pipeline.StateStarting,
		enc:     newEncoder(cfg.SubjectPrefix, cfg.Mode == ModeBatch),
	}, nil
}

// Connect dials the servers, checks (or creates) the stream and returns
// nil once both succeeded, or an error the engine retries with backoff. It
// returns nil at once if the connection is already up. Secrets, the creds
// file and certificates are read here, so rotations apply on reconnect.
//
// The client does not reconnect by itself: a lost connection fails the
// pending publishes, Write reports ErrDisconnected, and the engine calls
// Connect, which tries every configured server.
func (s *Sink) Connect(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("nats %s: connect: %w", s.servers, pipeline.ErrClosed)
	}
	if s.sess != nil {
		if s.sess.nc.IsConnected() {
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
		return fmt.Errorf("nats %s: connect: %s: %w", s.servers, what, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ConnectTimeout)
	defer cancel()
	sess := &session{lost: make(chan struct{})}
	opts := []natsgo.Option{
		natsgo.Name(s.cfg.ClientID),
		natsgo.Timeout(s.cfg.ConnectTimeout),
		natsgo.NoReconnect(),
		natsgo.SetCustomDialer(ctxDialer{ctx: ctx, wire: &s.wire}),
		natsgo.DisconnectErrHandler(func(_ *natsgo.Conn, err error) {
			if !sess.closing.Load() {
				s.lost(sess, err)
			}
		}),
		natsgo.ClosedHandler(func(*natsgo.Conn) { close(sess.lost) }),
		// Asynchronous errors (slow consumer, permissions) are logged; the
		// publishes they affect fail on their own.
		natsgo.ErrorHandler(func(_ *natsgo.Conn, _ *natsgo.Subscription, err error) {
			s.log.Warn("async error", "error", err)
		}),
	}
	switch {
	case s.cfg.CredsFile != "":
		opts = append(opts, natsgo.UserCredentials(s.cfg.CredsFile))
	case s.cfg.Password.IsSet():
		pw, err := s.cfg.Password.Resolve() // errors name the source, never the value
		if err != nil {
			return fail("password", err)
		}
		opts = append(opts, natsgo.UserInfo(s.cfg.Username, pw))
	case s.cfg.Token.IsSet():
		tok, err := s.cfg.Token.Resolve()
		if err != nil {
			return fail("token", err)
		}
		opts = append(opts, natsgo.Token(tok))
	}
	if s.cfg.TLS.Enabled || strings.Contains(s.servers, "tls://") {
		tc, err := s.cfg.TLS.Load()
		if err != nil {
			return fail("tls", err)
		}
		opts = append(opts, natsgo.Secure(tc))
	}
	nc, err := natsgo.Connect(s.servers, opts...)
	if err != nil {
		return fail("dial", err)
	}
	sess.nc = nc
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(s.cfg.MaxPending),
		jetstream.WithPublishAsyncTimeout(s.cfg.AckTimeout),
		jetstream.WithDefaultTimeout(s.cfg.AckTimeout),
	)
	if err != nil {
		s.closeSession(sess)
		return fail("jetstream", err)
	}
	sess.js = js
	if err := s.ensureStream(ctx, js); err != nil {
		s.closeSession(sess)
		return fail("stream "+s.cfg.Stream, err)
	}
	if mp := int(nc.MaxPayload()) - headerRoom; mp > 0 {
		s.enc.maxPayload = mp
	}
	s.sess = sess
	s.connects.Add(1)
	s.log.Info("connected", "server", nc.ConnectedUrlRedacted(), "client_id", s.cfg.ClientID,
		"stream", s.cfg.Stream, "tls", nc.TLSRequired())
	return nil
}

// ensureStream checks the configured stream exists, creating it when
// create_stream is set. An existing stream is left as it is.
func (s *Sink) ensureStream(ctx context.Context, js jetstream.JetStream) error {
	if s.cfg.Stream == "" {
		return nil
	}
	_, err := js.Stream(ctx, s.cfg.Stream)
	if err == nil {
		return nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) || !s.cfg.CreateStream {
		return err
	}
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{
		Name:     s.cfg.Stream,
		Subjects: []string{s.cfg.SubjectPrefix, s.cfg.SubjectPrefix + ".>"},
		Storage:  jetstream.FileStorage,
	})
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return nil // another gateway created it first
	}
	if err == nil {
		s.log.Info("created stream", "stream", s.cfg.Stream, "subjects", s.cfg.SubjectPrefix+".>")
	}
	return err
}

// ctxDialer makes dialling honour Connect's context and counts what is
// written to the connection (nats.go puts TLS on top of it, so wire_bytes
// includes TLS, protocol lines, headers, pings and JetStream requests).
type ctxDialer struct {
	ctx  context.Context
	wire *wirecount.Counter
}

func (d ctxDialer) Dial(network, address string) (net.Conn, error) {
	var nd net.Dialer
	return d.wire.DialContext(&nd)(d.ctx, network, address)
}

func (s *Sink) setState(state, lastErr string) {
	s.stMu.Lock()
	s.state, s.lastErr = state, lastErr
	s.stMu.Unlock()
}

func (s *Sink) setLastErr(lastErr string) {
	s.stMu.Lock()
	s.lastErr = lastErr
	s.stMu.Unlock()
}

func (s *Sink) closeSession(sess *session) {
	sess.closing.Store(true)
	sess.nc.Close()
}

// dropLocked closes the current connection.
func (s *Sink) dropLocked() {
	s.closeSession(s.sess)
	s.sess = nil
}

// Write publishes batch asynchronously, at most max_pending messages
// awaiting their PubAck at once, and returns nil once JetStream confirmed
// every message. Each message carries a Nats-Msg-Id derived from the
// samples' sequence ids, so a batch offered again after a failure is
// de-duplicated by the stream's duplicate window.
//
// On a failure it returns *pipeline.PartialWriteError with the samples
// before the first unconfirmed message; when the connection is gone the
// error wraps pipeline.ErrDisconnected. Samples whose path cannot become a
// subject (not UTF-8, wildcards, control characters, too long) or that are
// larger than max_payload on their own are not sent: once the rest is
// confirmed they come back in a *pipeline.RejectedError, counted as
// invalid_samples, and the engine dead-letters them rather than failing
// the batch forever.
func (s *Sink) Write(ctx context.Context, batch []model.Sample) error {
	s.mu.Lock()
	closed, sess := s.closed, s.sess
	s.mu.Unlock()
	if closed {
		return fmt.Errorf("nats %s: write: %w", s.servers, pipeline.ErrClosed)
	}
	if sess == nil || !sess.nc.IsConnected() {
		return fmt.Errorf("nats %s: write: %w", s.servers, pipeline.ErrDisconnected)
	}
	msgs, rej := s.enc.encode(batch)
	if rej != nil {
		s.invalid.Add(uint64(len(rej.Rejected)))
	}
	confirmed, err := s.publishAll(ctx, sess, msgs)
	if err == nil {
		s.enc.done()
		s.setLastErr("")
		if rej != nil {
			return rej // every other sample is confirmed
		}
		return nil
	}
	s.enc.abandon()
	s.publishErrors.Add(1)
	delivered := len(batch)
	for i := confirmed; i < len(msgs); i++ {
		delivered = min(delivered, msgs[i].first)
	}
	disconnected := errors.Is(err, natsgo.ErrDisconnected) || errors.Is(err, natsgo.ErrConnectionClosed) ||
		errors.Is(err, natsgo.ErrConnectionReconnecting) || errors.Is(err, natsgo.ErrInvalidConnection) ||
		errors.Is(err, pipeline.ErrDisconnected)
	if !disconnected && errors.Is(err, jetstream.ErrAsyncPublishTimeout) {
		// No PubAck in time: a stream can be briefly leaderless, but a
		// half-open TCP connection looks the same. A round trip tells.
		if ferr := sess.nc.FlushTimeout(s.cfg.AckTimeout); ferr != nil {
			disconnected = true
			err = fmt.Errorf("%w (and the server does not answer: %w)", err, ferr)
		}
	}
	if disconnected {
		s.lost(sess, err)
		s.mu.Lock()
		if s.sess == sess {
			s.dropLocked()
		}
		s.mu.Unlock()
		err = fmt.Errorf("nats %s: write: %w: %w", s.servers, pipeline.ErrDisconnected, err)
		s.setState(pipeline.StateRetrying, err.Error())
	} else {
		err = fmt.Errorf("nats %s: write: %w", s.servers, err)
		s.setLastErr(err.Error())
	}
	if delivered > 0 {
		return &pipeline.PartialWriteError{Delivered: delivered, Err: err}
	}
	return err
}

// publishAll publishes msgs and waits for their PubAcks in order. It
// returns how many leading messages were confirmed and the first failure.
// It stops at the first failure: what follows cannot extend the
// confirmed prefix.
func (s *Sink) publishAll(ctx context.Context, sess *session, msgs []message) (confirmed int, err error) {
	s.pending = s.pending[:0]
	head := 0
	wait := func() error {
		p := s.pending[head]
		head++
		select {
		case ack := <-p.ok:
			if ack.Duplicate {
				s.duplicates.Add(1)
			}
			s.messages.Add(1)
			s.samples.Add(uint64(msgs[p.msg].samples))
			confirmed++
			return nil
		case err := <-p.err:
			return fmt.Errorf("publish %s: %w", msgs[p.msg].subject, err)
		case <-sess.lost:
			return fmt.Errorf("publish %s: %w", msgs[p.msg].subject, pipeline.ErrDisconnected)
		case <-ctx.Done():
			return fmt.Errorf("publish %s: waiting for PubAck: %w", msgs[p.msg].subject, ctx.Err())
		}
	}
	for i := range msgs {
		if len(s.pending)-head >= s.cfg.MaxPending {
			if err := wait(); err != nil {
				return confirmed, err
			}
		}
		if err := ctx.Err(); err != nil {
			return confirmed, err
		}
		f, err := sess.js.PublishMsgAsync(s.natsMsg(&msgs[i]),
			jetstream.WithRetryAttempts(0), // a retry could overtake later messages
			jetstream.WithStallWait(s.cfg.AckTimeout))
		if err != nil {
			return confirmed, fmt.Errorf("publish %s: %w", msgs[i].subject, err)
		}
		s.pending = append(s.pending, pending{msg: i, ok: f.Ok(), err: f.Err()})
	}
	for head < len(s.pending) {
		if err := wait(); err != nil {
			return confirmed, err
		}
	}
	clear(s.pending) // drop the futures
	return confirmed, nil
}

// natsMsg builds the message with its headers. nats.Header is a map, so
// this allocates; the payload is copied into the connection's buffer by
// the publish call.
func (s *Sink) natsMsg(m *message) *natsgo.Msg {
	h := make(natsgo.Header, 3)
	if m.firstSeq != 0 { // seq 0: not stamped by the engine, no identity to de-duplicate on
		s.idBuf = append(s.idBuf[:0], s.idBase...)
		s.idBuf = strconv.AppendUint(s.idBuf, m.firstSeq, 10)
		if s.enc.batch {
			s.idBuf = append(s.idBuf, '-')
			s.idBuf = strconv.AppendUint(s.idBuf, m.lastSeq, 10)
		}
		h[jetstream.MsgIDHeader] = []string{string(s.idBuf)}
	}
	if s.cfg.Stream != "" {
		h[jetstream.ExpectedStreamHeader] = []string{s.cfg.Stream}
	}
	if m.historical {
		h[HeaderHistorical] = []string{"true"}
	}
	return &natsgo.Msg{Subject: m.subject, Data: s.enc.payload(m), Header: h}
}

// Close closes the connection; the server keeps what it acknowledged. It
// works after a partial start and more than once.
func (s *Sink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.setState(pipeline.StateStopping, "")
	if s.sess != nil {
		s.dropLocked()
	}
	s.setState(pipeline.StateStopped, "")
	s.log.Info("closed", "servers", s.servers)
	return nil
}

// Status reports the connection state and counters: messages and samples
// confirmed by JetStream, confirmed messages the stream had already stored
// (duplicates), samples dropped for an invalid path or size, failed
// Writes, connects, connections lost, and wire_bytes: every byte written
// to the server's socket (TLS and protocol included), summed over
// connections.
func (s *Sink) Status() pipeline.Status {
	s.stMu.Lock()
	st := pipeline.Status{Name: "nats", State: s.state, LastError: s.lastErr}
	s.stMu.Unlock()
	st.Counters = map[string]uint64{
		"messages":        s.messages.Load(),
		"samples":         s.samples.Load(),
		"invalid_samples": s.invalid.Load(),
		"duplicates":      s.duplicates.Load(),
		"publish_errors":  s.publishErrors.Load(),
		"connects":        s.connects.Load(),
		"disconnects":     s.disconnects.Load(),
		"wire_bytes":      s.wire.Load(),
	}
	return st
}
