package secevents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/security"
)

// Caps on an event's fields, in bytes: free text comes from outside
// (a user name, a request path, a reason) and is never trusted.
const (
	MaxField  = 256
	MaxDetail = 1024
	// maxKinds bounds the per-kind counters; further kinds count as
	// "other" (kinds come from code, but a consumer must pass unknown
	// ones through, so the map must not grow without limit).
	maxKinds = 64
)

// Stream is the security.Recorder that carries security events out of
// the box: as samples into the pipeline (it is a pipeline.Flusher placed
// in the processor chain, so events reach every sink with its buffer) and
// to a syslog collector. Record never blocks: each path has a bounded
// queue, and what does not fit is dropped and counted.
//
// Build with New; add it to the engine's processors; run Run until the
// gateway stops.
type Stream struct {
	cfg  Config
	node string
	log  *slog.Logger
	now  func() time.Time
	// live are the settings of the sinks' side a reload may change.
	live atomic.Pointer[sinkSettings]

	mu      sync.Mutex
	pending []model.Sample
	kinds   map[security.Kind]uint64

	filtered     atomic.Uint64
	droppedSinks atomic.Uint64

	syslog *sender // nil: no syslog
}

var (
	_ security.Recorder  = (*Stream)(nil)
	_ pipeline.Processor = (*Stream)(nil)
	_ pipeline.Flusher   = (*Stream)(nil)
)

// New builds the stream from a validated cfg; node names the gateway in
// every event (and is the default syslog HOSTNAME). Nothing connects
// until Run.
func New(cfg Config, node string, log *slog.Logger) (*Stream, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("security_events: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Syslog != nil {
		sc := *cfg.Syslog // the caller's block stays as written
		cfg.Syslog = &sc
	}
	cfg.setDefaults()
	s := &Stream{cfg: cfg, node: node, log: log, now: time.Now, kinds: map[security.Kind]uint64{}}
	s.live.Store(settingsOf(cfg))
	if sc := cfg.Syslog; sc != nil {
		fac, _ := ParseFacility(sc.Facility)
		f := Formatter{Facility: fac, Hostname: firstNonEmpty(sc.Hostname, node), AppName: sc.AppName,
			ProcID: strconv.Itoa(os.Getpid()), Node: node}
		s.syslog = newSender(*sc, f, log.With("syslog", sc.Address), s)
	}
	s.reportInsecure()
	return s, nil
}

// reportInsecure logs every warning of the configuration and records it
// as a config.insecure event, at every start.
func (s *Stream) reportInsecure() {
	err := s.cfg.Warnings()
	if err == nil {
		return
	}
	list := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	}
	for _, w := range list {
		key, msg := "", w.Error()
		var fe *conf.FieldError
		if errors.As(w, &fe) {
			key, msg = "security_events."+fe.Path, fe.Err.Error()
		}
		s.log.Warn("insecure setting: "+msg, "key", key)
		s.Record(context.Background(), security.Event{Kind: security.InsecureTransport, Severity: security.SeverityWarning,
			Component: "security_events", Object: key, Outcome: "ok", Detail: msg})
	}
}

// SetClock replaces the clock that stamps events without a time (tests).
func (s *Stream) SetClock(now func() time.Time) { s.now = now }

// Path is the sample path of events of kind k.
func (s *Stream) Path(k security.Kind) string { return s.live.Load().prefix + cleanKind(string(k)) }

// Record takes one event: it caps and cleans the fields, counts it, and
// queues it for the sinks and for syslog. It never blocks and never
// fails; an event that finds a queue full is dropped and counted.
func (s *Stream) Record(ctx context.Context, ev security.Event) { s.Offer(ctx, ev) }

// Offer is Record that tells whether the event was queued for at least
// one way out of the box (the sinks' samples or syslog): false when it is
// below min_severity, when every queue it was meant for is full, or when
// neither way is configured. The audit trail counts a checkpoint as
// published only when this is true. Queued is not delivered: a sample
// still has to reach a sink's buffer at the next engine tick, a syslog
// message the collector.
func (s *Stream) Offer(_ context.Context, ev security.Event) bool {
	ev = s.clean(ev)
	s.mu.Lock()
	k := ev.Kind
	if _, ok := s.kinds[k]; !ok && len(s.kinds) >= maxKinds {
		k = "other"
	}
	s.kinds[k]++
	s.mu.Unlock()
	// Checkpoints of the audit trail always leave: the trail keeps
	// history until one is published, so filtering them would grow it
	// without bound.
	live := s.live.Load()
	if ev.Severity > live.minSev && ev.Kind != security.AuditCheckpoint {
		s.filtered.Add(1)
		return false
	}
	queued := false
	if live.toSinks && s.queueSample(ev, live) {
		queued = true
	}
	if s.syslog != nil && s.syslog.enqueue(ev) {
		queued = true
	}
	return queued
}

// Event is the JSON form of an event in a sample's value (documented in
// docs/payloads.md). Empty fields are left out.
type Event struct {
	Time      time.Time `json:"time"`
	Kind      string    `json:"kind"`
	Severity  string    `json:"severity"`
	Actor     string    `json:"actor,omitempty"`
	Remote    string    `json:"remote,omitempty"`
	Component string    `json:"component,omitempty"`
	Object    string    `json:"object,omitempty"`
	Outcome   string    `json:"outcome,omitempty"`
	Detail    string    `json:"detail,omitempty"`
	Node      string    `json:"node,omitempty"`
}

func (s *Stream) queueSample(ev security.Event, live *sinkSettings) bool {
	b, err := json.Marshal(Event{Time: ev.Time, Kind: string(ev.Kind), Severity: SeverityName(ev.Severity),
		Actor: ev.Actor, Remote: ev.Remote, Component: ev.Component, Object: ev.Object, Outcome: ev.Outcome,
		Detail: ev.Detail, Node: s.node})
	if err != nil { // cannot happen: plain fields
		s.droppedSinks.Add(1)
		return false
	}
	smp := model.Sample{Path: live.prefix + string(ev.Kind), Value: model.String(string(b)),
		SourceTime: ev.Time.UnixNano(), EdgeTime: s.now().UnixNano()}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) >= live.maxPending {
		s.droppedSinks.Add(1)
		return false
	}
	s.pending = append(s.pending, smp)
	return true
}

// Process passes batch on unchanged: events enter the pipeline on the
// engine's clock, in Flush.
func (s *Stream) Process(batch []model.Sample) []model.Sample { return batch }

// Flush appends the events queued since the last tick to out; the
// processors after this one (rules, the latest-value store) and every
// sink's buffer see them as samples.
func (s *Stream) Flush(_ time.Time, out []model.Sample) []model.Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) == 0 {
		return out
	}
	out = append(out, s.pending...)
	clear(s.pending)
	s.pending = s.pending[:0]
	return out
}

// Run sends events to syslog until ctx ends, then sends what is queued
// for at most the drain timeout (only while connected: a collector that
// is away is not waited for). Without syslog it just waits for ctx. It
// always returns nil: a dead collector degrades this stream only.
func (s *Stream) Run(ctx context.Context) error {
	if s.syslog == nil {
		<-ctx.Done()
		return nil
	}
	s.syslog.run(ctx)
	return nil
}

// Stats are the stream's counters, for metrics.
type Stats struct {
	// Events counts every event recorded, by kind (at most 64 kinds; the
	// rest as "other"), filtered ones included.
	Events map[string]uint64
	// Filtered counts events below min_severity, sent nowhere.
	Filtered uint64
	// SinksOn tells whether events go to the sinks.
	SinksOn bool
	// DroppedSinks counts events lost because max_pending events were
	// already waiting for the engine.
	DroppedSinks uint64
	// Syslog is nil when no syslog is configured.
	Syslog *SyslogStats
}

// SyslogStats are the syslog sender's counters.
type SyslogStats struct {
	Sent      uint64 // messages written to the collector
	Dropped   uint64 // events dropped because the queue was full
	Failed    uint64 // connection attempts and writes that failed
	Queued    int    // events waiting to be sent
	Connected bool
}

// Stats returns a snapshot of the counters.
func (s *Stream) Stats() Stats {
	st := Stats{Events: map[string]uint64{}, Filtered: s.filtered.Load(), SinksOn: s.live.Load().toSinks,
		DroppedSinks: s.droppedSinks.Load()}
	s.mu.Lock()
	for k, n := range s.kinds {
		st.Events[string(k)] = n
	}
	s.mu.Unlock()
	if s.syslog != nil {
		st.Syslog = s.syslog.stats()
	}
	return st
}

// clean stamps, caps and cleans an event: time in UTC (now when unset),
// a severity in 1..7 (unset, 0, becomes notice: no component reports an
// emergency, and a forgotten severity must not page anyone), a kind fit
// for a tag path and a syslog MSGID, every field valid UTF-8 without
// control characters (no forged log lines) and within its cap.
func (s *Stream) clean(ev security.Event) security.Event {
	if ev.Time.IsZero() {
		ev.Time = s.now()
	}
	ev.Time = ev.Time.UTC()
	if ev.Severity <= 0 || ev.Severity > 7 {
		ev.Severity = security.SeverityNotice
	}
	ev.Kind = security.Kind(cleanKind(string(ev.Kind)))
	ev.Actor = cleanText(ev.Actor, MaxField)
	ev.Remote = cleanText(ev.Remote, MaxField)
	ev.Component = cleanText(ev.Component, MaxField)
	ev.Object = cleanText(ev.Object, MaxField)
	ev.Outcome = cleanText(ev.Outcome, MaxField)
	ev.Detail = cleanText(ev.Detail, MaxDetail)
	return ev
}

// cleanKind keeps letters, digits, '.', '_' and '-' (anything else
// becomes '_'), at most 32 bytes (syslog's MSGID limit); "" is "unknown".
func cleanKind(k string) string {
	if k == "" {
		return "unknown"
	}
	if len(k) > maxMsgID {
		k = k[:maxMsgID]
	}
	ok := true
	for i := 0; i < len(k) && ok; i++ {
		ok = kindByte(k[i])
	}
	if ok {
		return k
	}
	b := []byte(k)
	for i, c := range b {
		if !kindByte(c) {
			b[i] = '_'
		}
	}
	return string(b)
}

func kindByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// cleanText makes v valid UTF-8 without control characters (each becomes
// a space) and cuts it to at most max bytes on a character boundary.
func cleanText(v string, max int) string {
	clean := utf8.ValidString(v)
	for i := 0; i < len(v) && clean; i++ {
		// C0 controls and DEL, and C1 controls (U+0080..U+009F: 0xC2 0x80..0x9F).
		clean = v[i] >= 0x20 && v[i] != 0x7f && !(v[i] == 0xc2 && i+1 < len(v) && v[i+1] < 0xa0)
	}
	if !clean {
		v = strings.Map(func(r rune) rune {
			if unicode.IsControl(r) {
				return ' '
			}
			return r
		}, strings.ToValidUTF8(v, "\uFFFD"))
	}
	if len(v) <= max {
		return v
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(v[cut]) {
		cut--
	}
	return v[:cut]
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// sinkSettings are what Offer reads of the configuration for the sinks'
// side: one atomic value, so that a reload swaps them together.
type sinkSettings struct {
	minSev     security.Severity
	prefix     string
	toSinks    bool
	maxPending int
}

// settingsOf reads them from a cfg with its defaults set.
func settingsOf(cfg Config) *sinkSettings {
	minSev, _ := ParseSeverity(cfg.MinSeverity)
	return &sinkSettings{minSev: minSev, prefix: cfg.Prefix + "/_security/", toSinks: cfg.sinksOn(), maxPending: cfg.MaxPending}
}

// SetConfig applies a new `security_events:` block to the running stream
// (a reload): to_sinks, prefix, min_severity and max_pending take effect
// at the next event; events already queued for the sinks stay queued
// (a lower max_pending only refuses new ones) and keep their path. The
// syslog block is not changed here: the sender owns a connection and a
// queue of events not yet sent, so a changed syslog block needs a restart
// (the gateway reports security_events.syslog).
func (s *Stream) SetConfig(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("security_events: %w", err)
	}
	cfg.Syslog = nil // setDefaults would write into the caller's block
	cfg.setDefaults()
	s.live.Store(settingsOf(cfg))
	return nil
}
