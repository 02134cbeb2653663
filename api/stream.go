package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/processors/latest"
	"github.com/weir-edge/weir/processors/match"
)

// StreamSource is what GET /api/v1/stream reads; *latest.Store implements
// it. Values.Mount mounts the stream when its Store is one.
type StreamSource interface {
	Subscribe(m *match.Matcher, maxTags int) (*latest.Subscription, []model.Sample, error)
}

var _ StreamSource = (*latest.Store)(nil)

// Bounds of one stream.
const (
	// StreamMaxTags bounds the tags one stream may match; beyond it the
	// stream sends an error event and ends.
	StreamMaxTags = 10_000
	// DefaultStreamHeartbeat is the interval of the comment line that
	// keeps proxies and the client's idle timers from closing a quiet
	// stream.
	DefaultStreamHeartbeat = 15 * time.Second
	// DefaultStreamMaxAge ends a stream, asking the client to reconnect
	// at once: credentials are checked when a stream opens, so a revoked
	// token or an ended session loses its stream within this time.
	DefaultStreamMaxAge = 10 * time.Minute
	// DefaultStreamRecheck is how often an open stream checks that its
	// caller's credentials still hold (session not logged out, token not
	// revoked, role still sufficient); it ends the stream when they do
	// not, so a logout or `weir token revoke` reaches open streams within
	// this time, not only at StreamMaxAge.
	DefaultStreamRecheck = 5 * time.Second
	// streamRetryAfterAge is the reconnect delay (ms) asked at that end.
	streamRetryAfterAge = 500
	// streamMaxFilters bounds the comma-separated patterns of ?tags=.
	streamMaxFilters = 64
	// streamWriteWindow is the time one flush of events may take; the
	// server's WriteTimeout would otherwise end every stream after 30 s.
	streamWriteWindow = 30 * time.Second
	// streamRetryAfterError is the reconnect delay (ms) an error event
	// asks of an EventSource, so a stream that cannot be served is not
	// retried every three seconds.
	streamRetryAfterError = 60_000
)

// stream serves GET /api/v1/stream?tags=p1,p2 as server-sent events: a
// snapshot of the matching tags, then their changes, each an "event:
// sample" whose data is one item of GET /api/v1/values and whose id
// counts up from 1. Changes are coalesced per tag, so a slow client skips
// intermediate values rather than holding the pipeline or growing memory.
//
// The connection outlives the server's read and write timeouts: the read
// deadline is lifted (the request has no body) and each flush gets its
// own write deadline. It ends when the caller's credentials no longer
// hold (checked every StreamRecheck), when the client leaves, when the server
// shuts down (Serve signals streams through the request context), after
// an error event (too many tags), or after StreamMaxAge, when the client
// reconnects and its credentials are checked again.
func (v *Values) stream(w http.ResponseWriter, r *http.Request) {
	src := v.Store.(StreamSource)
	q := r.URL.Query().Get("tags")
	if q == "" {
		q = "#"
	}
	filters := strings.Split(q, ",")
	if len(filters) > streamMaxFilters {
		writeError(w, http.StatusBadRequest, "tags: at most "+strconv.Itoa(streamMaxFilters)+" patterns", nil)
		return
	}
	for i := range filters {
		filters[i] = strings.TrimSpace(filters[i])
	}
	m, err := match.Compile(filters)
	if err != nil {
		writeError(w, http.StatusBadRequest, "tags: "+err.Error(), nil)
		return
	}
	sub, snap, err := src.Subscribe(m, StreamMaxTags)
	switch {
	case errors.Is(err, latest.ErrTooManySubscribers):
		w.Header().Set("Retry-After", "10")
		writeError(w, http.StatusServiceUnavailable, "too many live streams; try again later", nil)
		return
	case err != nil && !errors.Is(err, latest.ErrTooManyTags):
		v.Log.Error("stream endpoint", "err", err)
		writeError(w, http.StatusInternalServerError, "stream unavailable", nil)
		return
	}
	if sub != nil {
		defer sub.Close()
	}

	rc := http.NewResponseController(w)
	// No body follows: lift the read deadline ReadTimeout set, so that no
	// read error can end the stream (net/http's background read ignores
	// it today; this does not rely on that). Unsupported (a test
	// recorder) is fine.
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // a reverse proxy must not buffer it
	w.WriteHeader(http.StatusOK)
	es := &eventWriter{w: w, rc: rc}
	if err != nil { // ErrTooManyTags
		es.fail("more than " + strconv.Itoa(StreamMaxTags) + " tags match " + strconv.Quote(q) + "; narrow the pattern")
		return
	}
	if !es.samples(snap) {
		return
	}

	beat := v.StreamHeartbeat
	if beat <= 0 {
		beat = DefaultStreamHeartbeat
	}
	ticker := time.NewTicker(beat)
	defer ticker.Stop()
	age := v.StreamMaxAge
	if age <= 0 {
		age = DefaultStreamMaxAge
	}
	expire := time.NewTimer(age)
	defer expire.Stop()
	var recheckC <-chan time.Time
	recheck := recheckFrom(r.Context())
	if recheck != nil {
		every := v.StreamRecheck
		if every <= 0 {
			every = DefaultStreamRecheck
		}
		rt := time.NewTicker(every)
		defer rt.Stop()
		recheckC = rt.C
	}
	closing := shutdownSignal(r.Context())
	for {
		select {
		case <-r.Context().Done():
			return
		case <-closing:
			return
		case <-ticker.C:
			if !es.comment("heartbeat") {
				return
			}
		case <-recheckC:
			if !recheck() {
				// Logged out, revoked or demoted: end now. The prompt
				// reconnect is refused (401/403), which the page turns
				// into the login form.
				es.write([]byte("retry: " + strconv.Itoa(streamRetryAfterAge) + "\n: credentials ended\n\n"))
				es.flush()
				return
			}
		case <-expire.C:
			// Reconnect now, and be authenticated again.
			es.write([]byte("retry: " + strconv.Itoa(streamRetryAfterAge) + "\n: reconnect\n\n"))
			es.flush()
			return
		case <-sub.Ready():
			batch, resync := sub.Take()
			if resync {
				if batch, err = sub.Resync(); err != nil {
					es.fail("more than " + strconv.Itoa(StreamMaxTags) + " tags match " + strconv.Quote(q) + "; narrow the pattern")
					return
				}
			}
			if len(batch) > 0 && !es.samples(batch) {
				return
			}
		}
	}
}

// eventWriter writes server-sent events, one flush per batch, each flush
// within its own write deadline.
type eventWriter struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	id  uint64
	buf []byte
}

// samples writes one "sample" event per sample and flushes; false: the
// client is gone.
func (e *eventWriter) samples(batch []model.Sample) bool {
	b := e.buf[:0]
	for _, s := range batch {
		e.id++
		b = append(b, "event: sample\nid: "...)
		b = strconv.AppendUint(b, e.id, 10)
		b = append(b, "\ndata: "...)
		b = appendValueJSON(b, s)
		b = append(b, "\n\n"...)
		if len(b) >= 32<<10 {
			if !e.write(b) {
				return false
			}
			b = b[:0]
		}
	}
	ok := e.write(b) && e.flush()
	if cap(b) <= 64<<10 {
		e.buf = b[:0] // keep a modest buffer, not the largest snapshot's
	} else {
		e.buf = nil
	}
	return ok
}

func (e *eventWriter) comment(text string) bool {
	return e.write([]byte(": "+text+"\n\n")) && e.flush()
}

// fail sends an error event, asks the client to wait before it retries,
// and flushes.
func (e *eventWriter) fail(msg string) {
	data, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	b := append([]byte("retry: "+strconv.Itoa(streamRetryAfterError)+"\nevent: error\ndata: "), data...)
	e.write(append(b, "\n\n"...))
	e.flush()
}

func (e *eventWriter) write(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	_ = e.rc.SetWriteDeadline(time.Now().Add(streamWriteWindow))
	_, err := e.w.Write(b)
	return err == nil
}

func (e *eventWriter) flush() bool {
	_ = e.rc.SetWriteDeadline(time.Now().Add(streamWriteWindow))
	return e.rc.Flush() == nil
}

// appendValueJSON appends s as one item of GET /api/v1/values.
func appendValueJSON(b []byte, s model.Sample) []byte {
	out, err := json.Marshal(valueJSON{Path: s.Path, Value: s.Value.AppendJSON(nil), Quality: s.Quality.Code.String(),
		Reason: s.Quality.Reason, SourceTime: stamp(s.SourceTime), EdgeTime: stamp(s.EdgeTime)})
	if err != nil { // a value that is not valid JSON: never from AppendJSON
		return append(b, `{"path":`+strconv.Quote(s.Path)+`,"value":null,"quality":"bad"}`...)
	}
	return append(b, out...)
}

// recheckKey carries the func RequireAuth stores: true while the
// caller's credentials still hold.
type recheckKey struct{}

func withRecheck(ctx context.Context, f func() bool) context.Context {
	return context.WithValue(ctx, recheckKey{}, f)
}

// recheckFrom returns the func of withRecheck, or nil (nothing to
// recheck: no authentication, or an Authenticator without Recheck).
func recheckFrom(ctx context.Context) func() bool {
	f, _ := ctx.Value(recheckKey{}).(func() bool)
	return f
}

// shutdownKey carries the channel Serve closes when it starts to shut
// down: long-lived responses (streams) end then, instead of holding the
// graceful shutdown until its deadline.
type shutdownKey struct{}

func withShutdownSignal(ctx context.Context, ch <-chan struct{}) context.Context {
	return context.WithValue(ctx, shutdownKey{}, ch)
}

// shutdownSignal returns the channel of withShutdownSignal, or nil (never
// ready) for a handler used without Serve.
func shutdownSignal(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(shutdownKey{}).(<-chan struct{})
	return ch
}
