package httpsink

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/payload"
	"github.com/weir-edge/weir/internal/wirecount"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

// snippetBytes is how much of an error response body is logged.
const snippetBytes = 512

// drainBytes is how much of a response body is read so that the
// connection can be reused; a longer body costs a new connection instead.
const drainBytes = 64 << 10

// Sink POSTs (or PUTs) JSON batches to a webhook. See the package
// documentation for the body and the status semantics.
type Sink struct {
	cfg   Config // defaults applied
	where string // scheme://host/path, for errors and logs (no query: it may hold a token)
	https bool
	log   *slog.Logger
	now   func() time.Time

	// mu guards the client and closed. Write takes it only to pick up the
	// current client, never while a request is in flight.
	mu     sync.Mutex
	client *client
	closed bool

	stMu    sync.Mutex
	state   string
	lastErr string

	// Write's buffers, reused between calls. The engine calls Write from
	// one goroutine at a time, so they need no lock.
	head []byte // `{"node":"…","samples":[`
	body []byte
	zbuf bytes.Buffer
	zw   *gzip.Writer

	requests      atomic.Uint64
	samples       atomic.Uint64
	errors4xx     atomic.Uint64
	errors5xx     atomic.Uint64
	retriesAfter  atomic.Uint64
	rejected      atomic.Uint64
	networkErrors atomic.Uint64
	// wire counts the bytes written to the receiver (or proxy) over
	// every connection of every client Connect builds.
	wire wirecount.Counter
}

// client is what Connect prepares: the transport and the resolved
// credential, replaced together after a network failure.
type client struct {
	http *http.Client
	tr   *http.Transport
	auth string // auth header value, prefix included; never logged
	// secret is the resolved value alone, to blank it out of a
	// receiver's reply that repeats it (see redactSecret).
	secret string
}

var (
	_ pipeline.Sink           = (*Sink)(nil)
	_ pipeline.StatusReporter = (*Sink)(nil)
)

// New builds a sink from cfg. It validates, applies defaults and does no
// network or file I/O. log should already carry the component and name.
func New(cfg Config, log *slog.Logger) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("http sink: %w", err)
	}
	cfg.setDefaults()
	cfg.RetryOn = slices.Clone(cfg.RetryOn)
	cfg.Headers = cloneMap(cfg.Headers)
	u, _ := parseURL(cfg.URL) // validated above
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sink{
		cfg:   cfg,
		where: u.Scheme + "://" + u.Host + u.EscapedPath(),
		https: u.Scheme == "https",
		log:   log,
		now:   time.Now,
		state: pipeline.StateStarting,
	}
	s.head = append(s.head, `{"node":`...)
	s.head = model.AppendJSONString(s.head, cfg.Node)
	s.head = append(s.head, `,"samples":[`...)
	return s, nil
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Connect prepares the HTTP client: it reads the auth secret and the TLS
// files (so rotated credentials apply after each reconnect) and builds a
// transport. A webhook has no session, so Connect does no network I/O:
// whether the receiver is reachable shows at Write. It returns nil at once
// when a client is already prepared.
func (s *Sink) Connect(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("http %s: connect: %w", s.where, pipeline.ErrClosed)
	}
	if s.client != nil {
		return nil
	}
	s.setState(pipeline.StateConnecting, "")
	c, err := s.newClient()
	if err != nil {
		err = fmt.Errorf("http %s: connect: %w", s.where, err)
		s.setState(pipeline.StateRetrying, err.Error())
		return err
	}
	s.client = c
	s.setState(pipeline.StateRunning, "")
	s.log.Info("ready", "url", s.where, "tls", c.tr.TLSClientConfig != nil, "gzip", s.cfg.Gzip)
	return nil
}

func (s *Sink) newClient() (*client, error) {
	c := &client{}
	if s.cfg.AuthHeader.Value.IsSet() {
		v, err := s.cfg.AuthHeader.Value.Resolve() // errors name the source, never the value
		if err != nil {
			return nil, fmt.Errorf("auth_header: %w", err)
		}
		c.auth, c.secret = s.cfg.AuthHeader.Prefix+v, v
		if !validHeaderValue(c.auth) {
			return nil, errors.New("auth_header: the secret contains a control character")
		}
	}
	dialer := &net.Dialer{Timeout: s.cfg.Timeout, KeepAlive: 30 * time.Second}
	c.tr = &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           s.wire.DialContext(dialer), // wire_bytes: headers, bodies, TLS
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   2, // one writer; a spare for the request after a Retry-After
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   s.cfg.Timeout,
		ExpectContinueTimeout: time.Second,
	}
	if s.https {
		tc, err := s.cfg.TLS.Load()
		if err != nil {
			return nil, err
		}
		c.tr.TLSClientConfig = tc
	}
	c.http = &http.Client{
		Transport: c.tr,
		Timeout:   s.cfg.Timeout,
		// A redirect turns POST into GET on 301-303, and a 200 to that GET
		// would confirm a batch nobody stored: never follow one.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// setState records the state and last error reported by Status.
func (s *Sink) setState(state, lastErr string) {
	s.stMu.Lock()
	s.state, s.lastErr = state, lastErr
	s.stMu.Unlock()
}

// Write sends batch in one or more requests (more when the body would
// exceed max_body_bytes), in order, one at a time, and returns nil once
// every request was answered 2xx. When a later request fails after earlier
// ones were confirmed, the error is a *pipeline.PartialWriteError with the
// confirmed prefix. Errors: ErrRejected (permanent 4xx), *RetryAfterError
// (429/503 with Retry-After), pipeline.ErrDisconnected (network failure;
// Connect builds a fresh transport), anything else is temporary.
func (s *Sink) Write(ctx context.Context, batch []model.Sample) error {
	s.mu.Lock()
	closed, c := s.closed, s.client
	s.mu.Unlock()
	if closed {
		return fmt.Errorf("http %s: write: %w", s.where, pipeline.ErrClosed)
	}
	if c == nil {
		return fmt.Errorf("http %s: write: %w", s.where, pipeline.ErrDisconnected)
	}
	var rej *pipeline.RejectedError
	skip := s.rejectNames(batch, &rej)
	delivered := 0 // everything before is confirmed or rejected
	for delivered < len(batch) {
		if skip != nil && skip[delivered] {
			delivered++
			continue
		}
		end := delivered + 1
		for end < len(batch) && (skip == nil || !skip[end]) {
			end++
		}
		rest := batch[delivered:end]
		n := s.encode(rest)
		err := s.send(ctx, c, rest[:n])
		if err == nil {
			s.requests.Add(1)
			s.samples.Add(uint64(n))
		} else if errors.Is(err, ErrRejected) {
			// The receiver refuses something in this request for good:
			// find exactly what, delivering the rest.
			err = s.isolate(ctx, c, batch, delivered, delivered+n, err, &rej)
		}
		if err != nil {
			err = s.failed(c, err)
			if rej != nil {
				// Rejected samples ahead of the failure are found again
				// on the next Write; they must not be taken as delivered.
				for _, r := range rej.Rejected {
					delivered = min(delivered, r.Index)
				}
			}
			if delivered > 0 {
				return &pipeline.PartialWriteError{Delivered: delivered, Err: err}
			}
			return err
		}
		delivered += n
	}
	s.stMu.Lock()
	s.state, s.lastErr = pipeline.StateRunning, ""
	s.stMu.Unlock()
	if rej != nil {
		return rej
	}
	return nil
}

// encode fills s.body with the body for the longest prefix of samples that
// fits max_body_bytes (at least one sample, even an oversized one: it can
// be sent no other way) and returns the prefix length.
func (s *Sink) encode(samples []model.Sample) int {
	b := append(s.body[:0], s.head...)
	n := 0
	for i := range samples {
		mark := len(b)
		if i > 0 {
			b = append(b, ',')
		}
		b = appendElem(b, &samples[i])
		if i > 0 && len(b)+2 > s.cfg.MaxBodyBytes {
			b = b[:mark]
			break
		}
		n++
	}
	s.body = append(b, "]}"...)
	return n
}

// appendElem writes {"path":…} followed by the members of the documented
// single-sample payload: AppendSample's opening brace is overwritten by the
// comma after the path, so nothing is copied twice.
func appendElem(dst []byte, sm *model.Sample) []byte {
	dst = append(dst, `{"path":`...)
	dst = model.AppendJSONString(dst, sm.Path)
	at := len(dst)
	dst = payload.AppendSample(dst, *sm)
	dst[at] = ','
	return dst
}

// send POSTs s.body for samples and classifies the response.
func (s *Sink) send(ctx context.Context, c *client, samples []model.Sample) error {
	key := strconv.FormatUint(samples[0].Seq, 10) + "-" + strconv.FormatUint(samples[len(samples)-1].Seq, 10)
	body := s.body
	if s.cfg.Gzip {
		s.zbuf.Reset()
		if s.zw == nil {
			s.zw = gzip.NewWriter(&s.zbuf)
		} else {
			s.zw.Reset(&s.zbuf)
		}
		_, _ = s.zw.Write(body) // writes to a bytes.Buffer cannot fail
		_ = s.zw.Close()
		body = s.zbuf.Bytes()
	}
	req, err := http.NewRequestWithContext(ctx, s.cfg.Method, s.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("request %s: %w", key, err)
	}
	h := req.Header
	for k, v := range s.cfg.Headers {
		h.Set(k, v)
	}
	h.Set("Content-Type", "application/json")
	if h.Get("User-Agent") == "" {
		h.Set("User-Agent", "weir")
	}
	if s.cfg.Gzip {
		h.Set("Content-Encoding", "gzip")
	}
	if c.auth != "" {
		h.Set(s.cfg.AuthHeader.Name, c.auth)
	}
	// Also makes the request replayable for net/http's own retry on a
	// stale keep-alive connection.
	h.Set("Idempotency-Key", key)

	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("request %s: %w", key, ctx.Err())
		}
		s.networkErrors.Add(1)
		return fmt.Errorf("request %s: %w: %w", key, pipeline.ErrDisconnected, err)
	}
	defer resp.Body.Close()
	code := resp.StatusCode
	if code >= 200 && code <= 299 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainBytes))
		return nil
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, snippetBytes))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainBytes))
	se := &StatusError{Code: code}
	var out error = se
	switch {
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), s.now(), s.cfg.MaxRetryAfter); ok && d > 0 {
			s.retriesAfter.Add(1)
			out = &RetryAfterError{After: d, Err: se}
		}
	case code >= 300 && code <= 399:
		// Not followed (see newClient): the url needs fixing, keep the data.
		out = fmt.Errorf("%w: redirect to %q not followed; fix the url", se, conf.RedactURL(resp.Header.Get("Location")))
	case code >= 400 && code <= 499 && code != http.StatusRequestTimeout && !slices.Contains(s.cfg.RetryOn, code):
		se.Rejected = true
	}
	switch {
	case code >= 500:
		s.errors5xx.Add(1)
	case code >= 400:
		s.errors4xx.Add(1)
	}
	attrs := []any{"url", s.where, "status", code, "idempotency_key", key, "samples", len(samples), "body", redactSecret(string(snippet), c.secret)}
	if se.Rejected {
		s.rejected.Add(1)
		s.log.Error("batch rejected; it will not be retried", attrs...)
	} else {
		s.log.Warn("request failed; will retry", attrs...)
	}
	return fmt.Errorf("request %s: %w", key, out)
}

// failed records a failed request and, after a network error, drops the
// client so that Connect builds a fresh one.
func (s *Sink) failed(c *client, err error) error {
	err = fmt.Errorf("http %s: write: %w", s.where, err)
	if errors.Is(err, pipeline.ErrDisconnected) {
		s.mu.Lock()
		if s.client == c {
			s.client = nil
			c.tr.CloseIdleConnections()
		}
		s.mu.Unlock()
		s.setState(pipeline.StateRetrying, err.Error())
		return err
	}
	s.stMu.Lock()
	s.lastErr = err.Error()
	s.stMu.Unlock()
	return err
}

// Close releases the idle connections. It works after a partial start and
// more than once. Nothing is in flight: the engine does not call Write
// concurrently with Close.
func (s *Sink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.client != nil {
		s.client.tr.CloseIdleConnections()
		s.client = nil
	}
	s.setState(pipeline.StateStopped, "")
	s.log.Info("closed", "url", s.where)
	return nil
}

// Status reports the state and counters: requests and samples confirmed
// (2xx), error responses by class, requests rejected for good, 429/503
// answers that carried a usable Retry-After, network failures, and
// wire_bytes: every byte written to the receiver's sockets (request
// lines, headers, bodies as sent, compressed or not, TLS), summed over
// connections.
func (s *Sink) Status() pipeline.Status {
	s.stMu.Lock()
	st := pipeline.Status{Name: "http", State: s.state, LastError: s.lastErr}
	s.stMu.Unlock()
	st.Counters = map[string]uint64{
		"requests":          s.requests.Load(),
		"samples":           s.samples.Load(),
		"http_errors_4xx":   s.errors4xx.Load(),
		"http_errors_5xx":   s.errors5xx.Load(),
		"rejected_requests": s.rejected.Load(),
		"retries_after":     s.retriesAfter.Load(),
		"network_errors":    s.networkErrors.Load(),
		"wire_bytes":        s.wire.Load(),
	}
	return st
}
