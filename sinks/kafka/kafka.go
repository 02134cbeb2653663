package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/weir-edge/weir/internal/wirecount"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

// Sink produces samples to a Kafka topic with an idempotent producer and
// acks=all. See the package documentation for records and guarantees.
type Sink struct {
	cfg   Config // defaults applied
	where string // "kafka <topic>", for errors
	log   *slog.Logger

	// mu serializes Connect and Close and guards cl, ready and closed.
	mu     sync.Mutex
	cl     *kgo.Client
	ready  bool // Connect succeeded and no Write has found the brokers gone since
	closed bool

	stMu    sync.Mutex
	state   string
	lastErr string

	// Write's buffers; the engine calls Write from one goroutine at a time.
	enc encoder

	records       atomic.Uint64
	samples       atomic.Uint64
	dropped       atomic.Uint64
	produceErrors atomic.Uint64
	connects      atomic.Uint64
	disconnects   atomic.Uint64
	// wire counts the bytes written to the brokers, over every client
	// and connection (see dialer).
	wire wirecount.Counter
}

var (
	_ pipeline.Sink           = (*Sink)(nil)
	_ pipeline.StatusReporter = (*Sink)(nil)
)

// New builds a sink from cfg. It validates, applies defaults and does no
// network or file I/O. log should already carry the component and name.
func New(cfg Config, log *slog.Logger) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("kafka sink: %w", err)
	}
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sink{
		cfg:   cfg,
		where: "kafka " + cfg.Topic,
		log:   log,
		state: pipeline.StateStarting,
		enc:   newEncoder(cfg.Mode == ModeBatch, cfg.ClientID),
	}, nil
}

// Connect builds the client (reading the SASL password and certificates
// now, so rotations apply on reconnect), checks the brokers answer and the
// topic exists, creating it when create_topic is set. It returns nil at
// once when already connected.
func (s *Sink) Connect(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("%s: connect: %w", s.where, pipeline.ErrClosed)
	}
	if s.ready {
		return nil
	}
	s.setState(pipeline.StateConnecting, "")
	if err := s.connectLocked(ctx); err != nil {
		s.setState(pipeline.StateRetrying, err.Error())
		return err
	}
	s.ready = true
	s.connects.Add(1)
	s.setState(pipeline.StateRunning, "")
	s.log.Info("connected", "brokers", strings.Join(s.cfg.Brokers, ","), "topic", s.cfg.Topic)
	return nil
}

func (s *Sink) connectLocked(ctx context.Context) error {
	fail := func(what string, err error) error {
		return fmt.Errorf("%s: connect: %s: %w", s.where, what, err)
	}
	if s.cl == nil {
		opts, err := s.clientOpts()
		if err != nil {
			return fail("options", err)
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return fail("client", err)
		}
		s.cl = cl
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ConnectTimeout)
	defer cancel()
	if err := s.ensureTopic(ctx); err != nil {
		// A fresh client next time: the brokers may have been replaced.
		s.cl.Close()
		s.cl = nil
		return fail("topic "+s.cfg.Topic, err)
	}
	return nil
}

func (s *Sink) clientOpts() ([]kgo.Opt, error) {
	codec := codecs[s.cfg.Compression]
	opts := []kgo.Opt{
		kgo.SeedBrokers(s.cfg.Brokers...),
		kgo.ClientID(s.cfg.ClientID),
		kgo.DefaultProduceTopic(s.cfg.Topic),
		// Idempotence (the client's default) needs acks from all in-sync
		// replicas; together they keep each partition gapless and in order
		// across retries.
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(codec),
		kgo.ProducerLinger(s.cfg.Linger),
		kgo.MaxBufferedRecords(s.cfg.MaxBufferedRecords),
		kgo.RecordDeliveryTimeout(s.cfg.ProduceTimeout),
		// A missing topic fails records quickly instead of waiting out
		// produce_timeout; Connect checks it exists anyway.
		kgo.UnknownTopicRetries(4),
		kgo.WithLogger(kgoLogger{s.log}),
	}
	var tc *tls.Config
	if s.cfg.TLS.Enabled || s.cfg.TLS.CAFile != "" || s.cfg.TLS.CertFile != "" {
		var err error
		if tc, err = s.cfg.TLS.Load(); err != nil {
			return nil, err
		}
	}
	opts = append(opts, kgo.Dialer(s.dialer(tc)))
	if s.cfg.SASL.Mechanism != "" {
		pw, err := s.cfg.SASL.Password.Resolve() // errors name the source, never the value
		if err != nil {
			return nil, fmt.Errorf("sasl password: %w", err)
		}
		var m sasl.Mechanism
		switch s.cfg.SASL.Mechanism {
		case MechanismPlain:
			m = plain.Auth{User: s.cfg.SASL.Username, Pass: pw}.AsMechanism()
		case MechanismScramSHA256:
			m = scram.Auth{User: s.cfg.SASL.Username, Pass: pw}.AsSha256Mechanism()
		case MechanismScramSHA512:
			m = scram.Auth{User: s.cfg.SASL.Username, Pass: pw}.AsSha512Mechanism()
		}
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

// dialer dials a broker within connect_timeout and wraps the TCP
// connection in the wire counter, under TLS when tc is set, so wire_bytes
// is what the socket carries (Kafka framing, TLS records, SASL, metadata
// requests). franz-go takes either a dialer or a TLS config, not both, so
// the TLS handshake is done here as kgo.DialTLSConfig would: a clone per
// dial, ServerName from the broker's host when the config has none.
func (s *Sink) dialer(tc *tls.Config) func(ctx context.Context, network, host string) (net.Conn, error) {
	dial := s.wire.DialContext(&net.Dialer{})
	return func(ctx context.Context, network, host string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, s.cfg.ConnectTimeout) // dial and handshake
		defer cancel()
		nc, err := dial(ctx, network, host)
		if err != nil || tc == nil {
			return nc, err
		}
		cfg := tc.Clone()
		if cfg.ServerName == "" {
			h, _, err := net.SplitHostPort(host)
			if err != nil {
				nc.Close()
				return nil, fmt.Errorf("broker %q: %w", host, err)
			}
			cfg.ServerName = h
		}
		tlsc := tls.Client(nc, cfg)
		if err := tlsc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, err
		}
		return tlsc, nil
	}
}

// ensureTopic asks the brokers for the topic's metadata, which also proves
// they answer, and creates the topic when it is missing and create_topic
// is set.
func (s *Sink) ensureTopic(ctx context.Context) error {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(s.cfg.Topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, s.cl)
	if err != nil {
		return err
	}
	if len(resp.Topics) != 1 {
		return fmt.Errorf("metadata answered %d topics", len(resp.Topics))
	}
	err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
	if err == nil || !errors.Is(err, kerr.UnknownTopicOrPartition) || !s.cfg.CreateTopic {
		return err
	}
	creq := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic = s.cfg.Topic
	ct.NumPartitions, ct.ReplicationFactor = -1, -1 // broker defaults
	if s.cfg.Partitions > 0 {
		ct.NumPartitions = int32(s.cfg.Partitions)
	}
	if s.cfg.ReplicationFactor > 0 {
		ct.ReplicationFactor = int16(s.cfg.ReplicationFactor)
	}
	creq.Topics = append(creq.Topics, ct)
	creq.TimeoutMillis = int32(s.cfg.ConnectTimeout.Milliseconds())
	cresp, err := creq.RequestWith(ctx, s.cl)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	if len(cresp.Topics) != 1 {
		return fmt.Errorf("create: answered %d topics", len(cresp.Topics))
	}
	if err := kerr.ErrorForCode(cresp.Topics[0].ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create: %w", err)
	}
	s.log.Info("created topic", "topic", s.cfg.Topic, "partitions", cresp.Topics[0].NumPartitions)
	return nil
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

// flight is one Write's records in the client. Promises run on the
// client's goroutine; mu orders them with a Write that stops waiting early.
type flight struct {
	mu    sync.Mutex
	errs  []error
	acked []bool
	left  int
	done  chan struct{}
}

func (f *flight) promise(i int) func(*kgo.Record, error) {
	return func(_ *kgo.Record, err error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.errs[i], f.acked[i] = err, err == nil
		f.left--
		if f.left == 0 {
			close(f.done)
		}
	}
}

// Write produces batch and returns nil once the brokers acknowledged every
// record (acks=all). Records are keyed by tag path (batch mode: asset path)
// so that one tag stays in one partition, in order.
//
// On a failure it returns *pipeline.PartialWriteError with the samples
// before the first unconfirmed record; when the brokers cannot be reached
// within produce_timeout the error wraps pipeline.ErrDisconnected. Samples
// that can never be a record (a tag path that is not UTF-8, larger than a
// record alone) and records the brokers refuse for good (too large,
// invalid) come back in a *pipeline.RejectedError once everything else is
// acknowledged; the engine dead-letters them.
func (s *Sink) Write(ctx context.Context, batch []model.Sample) error {
	s.mu.Lock()
	closed, ready, cl := s.closed, s.ready, s.cl
	s.mu.Unlock()
	if closed {
		return fmt.Errorf("%s: write: %w", s.where, pipeline.ErrClosed)
	}
	if !ready || cl == nil {
		return fmt.Errorf("%s: write: %w", s.where, pipeline.ErrDisconnected)
	}
	recs, msgs, rej := s.enc.encode(s.cfg.Topic, batch)
	if rej != nil {
		s.dropped.Add(uint64(len(rej.Rejected)))
	}
	if len(recs) == 0 {
		if rej != nil {
			return rej
		}
		return nil
	}
	f := &flight{errs: make([]error, len(recs)), acked: make([]bool, len(recs)), left: len(recs), done: make(chan struct{})}
	for i := range recs {
		cl.Produce(ctx, &recs[i], f.promise(i))
	}
	// Send now rather than after linger: linger only lets this Write's
	// records share requests while they are being enqueued. Flush waits for
	// every record; the promises tell which succeeded.
	_ = cl.Flush(ctx)
	abandoned := false
	select {
	case <-f.done:
	case <-ctx.Done():
		// Records already sent stay with the client until the brokers
		// answer; do not wait for that, and do not reuse their buffers.
		abandoned = true
	}

	f.mu.Lock()
	delivered, confirmedRecs, confirmedSamples, refused := len(batch), 0, 0, 0
	var firstErr error
	for i := range recs {
		if f.acked[i] {
			confirmedRecs++
			confirmedSamples += msgs[i].samples
			continue
		}
		if cause, ok := refusal(f.errs[i]); ok {
			// The brokers refuse this record for good; the others go on.
			for _, k := range s.enc.origin[msgs[i].olo:msgs[i].ohi] {
				pipeline.Reject(&rej, int(k), cause, f.errs[i])
			}
			refused++
			continue
		}
		delivered = min(delivered, msgs[i].first)
		if firstErr == nil {
			firstErr = f.errs[i]
		}
	}
	f.mu.Unlock()
	s.records.Add(uint64(confirmedRecs))
	s.samples.Add(uint64(confirmedSamples))
	if confirmedRecs+refused == len(recs) {
		s.enc.done()
		s.setLastErr("")
		if rej != nil {
			return rej
		}
		return nil
	}
	if abandoned {
		s.enc.abandon()
	}
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	s.produceErrors.Add(1)
	var err error
	if unreachable(firstErr) {
		s.mu.Lock()
		if s.cl == cl {
			// A fresh client (and producer id) on the next Connect: the
			// brokers may have been replaced while away.
			s.cl.Close()
			s.cl, s.ready = nil, false
			s.disconnects.Add(1)
		}
		s.mu.Unlock()
		err = fmt.Errorf("%s: write: %w: %w", s.where, pipeline.ErrDisconnected, firstErr)
		s.setState(pipeline.StateRetrying, err.Error())
		s.log.Warn("brokers unreachable", "error", firstErr)
	} else {
		err = fmt.Errorf("%s: write: %w", s.where, firstErr)
		s.setLastErr(err.Error())
	}
	if delivered > 0 {
		return &pipeline.PartialWriteError{Delivered: delivered, Err: err}
	}
	return err
}

// refusal reports whether a record's error refuses that record for good
// (too large, or invalid for the broker), and the rejection cause.
func refusal(err error) (cause string, ok bool) {
	switch {
	case err == nil:
		return "", false
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return pipeline.CauseOversize, true
	case errors.Is(err, kerr.InvalidRecord), errors.Is(err, kerr.CorruptMessage):
		return pipeline.CauseRefused, true
	}
	return "", false
}

// unreachable reports whether err means the brokers could not be reached
// (as opposed to a broker refusing a record).
func unreachable(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.Is(err, kgo.ErrRecordTimeout) || errors.Is(err, kgo.ErrRecordRetries) ||
		errors.Is(err, kgo.ErrClientClosed) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.As(err, &oe) || errors.As(err, &ne)
}

// Close closes the client. Write is synchronous, so nothing is buffered
// that Close could lose. It works after a partial start and more than
// once.
func (s *Sink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.setState(pipeline.StateStopping, "")
	if s.cl != nil {
		s.cl.Close()
		s.cl = nil
	}
	s.ready = false
	s.setState(pipeline.StateStopped, "")
	s.log.Info("closed", "topic", s.cfg.Topic)
	return nil
}

// Status reports the connection state and counters: records and samples
// acknowledged, samples dropped for their size, failed Writes, successful
// Connects, Writes that found the brokers unreachable, and wire_bytes:
// every byte written to the brokers' sockets (records with Kafka framing,
// metadata and handshake requests, TLS), summed over connections.
func (s *Sink) Status() pipeline.Status {
	s.stMu.Lock()
	st := pipeline.Status{Name: "kafka", State: s.state, LastError: s.lastErr}
	s.stMu.Unlock()
	st.Counters = map[string]uint64{
		"records":         s.records.Load(),
		"samples":         s.samples.Load(),
		"dropped_samples": s.dropped.Load(),
		"produce_errors":  s.produceErrors.Load(),
		"connects":        s.connects.Load(),
		"disconnects":     s.disconnects.Load(),
		"wire_bytes":      s.wire.Load(),
	}
	return st
}

// kgoLogger forwards the client's warnings and errors to slog; its info
// and debug chatter stays out.
type kgoLogger struct{ log *slog.Logger }

func (l kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (l kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	switch level {
	case kgo.LogLevelError:
		l.log.Error(msg, keyvals...)
	case kgo.LogLevelWarn:
		l.log.Warn(msg, keyvals...)
	}
}
