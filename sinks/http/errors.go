package httpsink

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/weir-edge/weir/pipeline"
)

// ErrRejected is wrapped by Write's error when the receiver refused a
// request with a 4xx status that retrying cannot change (400, 413, 415,
// 422, …; see Config.RetryOn for the temporary ones). The same batch would
// be refused forever, so the engine should not offer it again: count the
// unconfirmed samples as rejected, log them (or dead-letter them) and
// acknowledge them in the buffer. When an earlier request of the same Write
// was confirmed, the error is a *pipeline.PartialWriteError whose Err wraps
// ErrRejected: acknowledge the confirmed prefix as delivered first.
var ErrRejected = pipeline.ErrRejected

// RetryAfterError is returned by Write when the receiver answered 429 or
// 503 with a Retry-After header: the batch was not accepted and should be
// offered again no sooner than After (already capped by max_retry_after).
// The engine should wait max(After, its own backoff delay) before the next
// Write. It may be wrapped in a *pipeline.PartialWriteError when an earlier
// request of the same Write was confirmed.
type RetryAfterError struct {
	After time.Duration
	Err   error
}

var _ pipeline.RetryHinter = (*RetryAfterError)(nil)

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("retry after %s: %v", e.After, e.Err)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter is the delay the engine honours before offering the batch
// again (see pipeline.RetryHinter).
func (e *RetryAfterError) RetryAfter() time.Duration { return e.After }

// StatusError is a non-2xx response. Retryable statuses are returned as is
// (or inside a RetryAfterError); permanent ones wrap ErrRejected.
type StatusError struct {
	Code int
	// Rejected marks a status that retrying cannot change.
	Rejected bool
}

func (e *StatusError) Error() string {
	msg := "HTTP " + strconv.Itoa(e.Code) + " " + http.StatusText(e.Code)
	if e.Rejected {
		msg += ": " + ErrRejected.Error()
	}
	return msg
}

// Unwrap lets errors.Is(err, ErrRejected) see a permanent status.
func (e *StatusError) Unwrap() error {
	if e.Rejected {
		return ErrRejected
	}
	return nil
}

// parseRetryAfter reads a Retry-After header value (RFC 9110 §10.2.3):
// delay-seconds or an HTTP-date, relative to now. The result is in
// [0, limit]; ok is false when the value is neither form. A date in the
// past means "now" (0).
func parseRetryAfter(v string, now time.Time, limit time.Duration) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if isDigits(v) {
		secs, err := strconv.ParseUint(v, 10, 64)
		if err != nil || secs > uint64(limit/time.Second) { // overflow or beyond the cap
			return limit, true
		}
		return min(time.Duration(secs)*time.Second, limit), true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d = t.Sub(now)
	switch {
	case d < 0:
		return 0, true
	case d > limit:
		return limit, true
	}
	return d, true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
