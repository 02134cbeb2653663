package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weir-edge/weir/internal/latency"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/sinks/historian"
)

// HistoryStore is what GET /api/v1/history reads; *historian.Store
// implements it.
type HistoryStore interface {
	Raw(ctx context.Context, path string, from, to int64, limit int) ([]model.Sample, error)
	Aggregate(ctx context.Context, path string, from, to, interval int64) ([]historian.Bucket, error)
}

// HistoryAnyQuality is the optional capability behind quality=any:
// aggregates that count numbers of every quality. *historian.Store
// implements it; a HistoryStore without it answers quality=any with 400.
type HistoryAnyQuality interface {
	AggregateWith(ctx context.Context, path string, from, to, interval int64, opt historian.AggregateOptions) ([]historian.Bucket, error)
}

var (
	_ HistoryStore      = (*historian.Store)(nil)
	_ HistoryAnyQuality = (*historian.Store)(nil)
)

// ErrHistoryUnavailable, wrapped by a HistoryStore, answers 503: the
// historian is not open (yet), which a client may retry.
var ErrHistoryUnavailable = errors.New("historian unavailable")

// ErrNoHistorian, returned by a HistoryStore, answers 503 "no historian
// sink configured": the route exists on every gateway, and a reload may
// add a historian sink.
var ErrNoHistorian = fmt.Errorf("no historian sink configured: %w", ErrHistoryUnavailable)

// Bounds of one history request, so that one chart cannot hold the
// process: raw samples per answer, and intervals per aggregate.
const (
	HistoryDefaultLimit = 10_000
	HistoryMaxLimit     = 100_000
	HistoryMaxPoints    = 10_000
	historyMinInterval  = time.Millisecond
	historyDefaultSpan  = time.Hour
)

// historyAggs are the aggregate names of ?agg=, in answer order.
var historyAggs = []string{"count", "min", "max", "mean", "first", "last", "twa"}

// History serves the historian query endpoint; mount it with
// Options.Extra:
//
//	GET /api/v1/history?tag=PATH[&from=RFC3339][&to=RFC3339][&limit=N]        raw samples, oldest first
//	GET /api/v1/history?tag=PATH&interval=1m|points=N[&agg=min,max,…][…]       aggregates per interval
//
// from defaults to an hour before to, to to now. Raw answers at most
// limit samples (default 10,000, at most 100,000) and says truncated when
// more were there. Aggregates: count, min, max, mean, first, last and twa
// (time-weighted mean); only intervals with numeric samples are listed.
// Aggregates count good-quality samples only, and a bad or uncertain
// sample ends the value before it (a gap, not a hold); quality=any counts
// numbers of every quality. points=N picks span ÷ N, rounded up to a
// multiple of 30 s when over 30 s (pointsInterval), so charts read the
// historian's rollups; interval= is used as given.
// Bad parameters answer 400 with a message naming the parameter.
type History struct {
	Store HistoryStore
	// Now is "now" for a missing to; default time.Now.
	Now func() time.Time
	Log *slog.Logger

	// durations of the store's answers, raw and aggregate, for
	// weir_history_query_duration_seconds (History is a
	// prometheus.Collector: register it with Options.Collectors).
	durations [2]latency.Histogram
}

var _ prometheus.Collector = (*History)(nil)

// Describe is empty: an unchecked collector, as the others here.
func (h *History) Describe(chan<- *prometheus.Desc) {}

// Collect exports the query duration histogram by kind.
func (h *History) Collect(ch chan<- prometheus.Metric) {
	for i, kind := range []string{"raw", "aggregate"} {
		histogram(ch, "weir_history_query_duration_seconds", prometheus.Labels{"kind": kind}, h.durations[i].Buckets())
	}
}

// Mount registers the endpoint on mux; nothing when Store is nil.
func (h *History) Mount(mux *http.ServeMux) {
	if h.Store == nil {
		return
	}
	if h.Log == nil {
		h.Log = slog.New(slog.DiscardHandler)
	}
	if h.Now == nil {
		h.Now = time.Now
	}
	mux.HandleFunc("GET /api/v1/history", h.history)
}

// historyBucket is one interval of an aggregate answer; the fields not
// asked for by ?agg= are left out.
type historyBucket map[string]any

func (h *History) history(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	tag := q.Get("tag")
	if tag == "" {
		writeError(w, http.StatusBadRequest, "tag is required (a tag path, such as plant/line1/speed)", nil)
		return
	}
	from, to, msg := historyRange(q.Get("from"), q.Get("to"), h.Now())
	if msg != "" {
		writeError(w, http.StatusBadRequest, msg, nil)
		return
	}
	interval, aggs, msg := historyAggQuery(q, to.Sub(from))
	if msg != "" {
		writeError(w, http.StatusBadRequest, msg, nil)
		return
	}
	if interval == 0 {
		if q.Has("quality") {
			writeError(w, http.StatusBadRequest, "quality is for aggregates (interval or points); raw samples carry their quality", nil)
			return
		}
		h.raw(w, r, tag, from, to, q.Get("limit"))
		return
	}
	if q.Has("limit") {
		writeError(w, http.StatusBadRequest, "limit is for raw samples; with interval or points the number of intervals bounds the answer", nil)
		return
	}
	var anyQ HistoryAnyQuality
	switch qs := q.Get("quality"); qs {
	case "", "good":
	case "any":
		var ok bool
		if anyQ, ok = h.Store.(HistoryAnyQuality); !ok {
			writeError(w, http.StatusBadRequest, "quality=any is not supported by this historian", nil)
			return
		}
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("quality must be good (default) or any, got %q", qs), nil)
		return
	}
	began := time.Now()
	var buckets []historian.Bucket
	var err error
	if anyQ != nil {
		buckets, err = anyQ.AggregateWith(r.Context(), tag, from.UnixNano(), to.UnixNano(), int64(interval), historian.AggregateOptions{AnyQuality: true})
	} else {
		buckets, err = h.Store.Aggregate(r.Context(), tag, from.UnixNano(), to.UnixNano(), int64(interval))
	}
	h.durations[1].Record(time.Since(began))
	if err != nil {
		h.fail(w, err)
		return
	}
	out := make([]historyBucket, len(buckets))
	for i, b := range buckets {
		hb := historyBucket{"start": model.Time(b.Start).Format(time.RFC3339Nano)}
		for _, a := range aggs {
			switch a {
			case "count":
				hb[a] = b.Count
			case "min":
				hb[a] = finite(b.Min)
			case "max":
				hb[a] = finite(b.Max)
			case "mean":
				hb[a] = finite(b.Mean)
			case "first":
				hb[a] = finite(b.First)
			case "last":
				hb[a] = finite(b.Last)
			case "twa":
				hb[a] = finite(b.TWMean)
			}
		}
		out[i] = hb
	}
	writeJSON(w, http.StatusOK, struct {
		Tag      string          `json:"tag"`
		From     string          `json:"from"`
		To       string          `json:"to"`
		Interval string          `json:"interval"`
		Buckets  []historyBucket `json:"buckets"`
	}{tag, from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano), interval.String(), out})
}

func (h *History) raw(w http.ResponseWriter, r *http.Request, tag string, from, to time.Time, limitS string) {
	limit := HistoryDefaultLimit
	if limitS != "" {
		n, err := strconv.Atoi(limitS)
		if err != nil || n < 1 || n > HistoryMaxLimit {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit must be a whole number from 1 to %d, got %q", HistoryMaxLimit, limitS), nil)
			return
		}
		limit = n
	}
	// One more than asked tells whether the answer is truncated.
	began := time.Now()
	samples, err := h.Store.Raw(r.Context(), tag, from.UnixNano(), to.UnixNano(), limit+1)
	h.durations[0].Record(time.Since(began))
	if err != nil {
		h.fail(w, err)
		return
	}
	truncated := len(samples) > limit
	if truncated {
		samples = samples[:limit]
	}
	out := make([]valueJSON, len(samples))
	for i, s := range samples {
		out[i] = valueJSON{Path: s.Path, Value: s.Value.AppendJSON(nil), Quality: s.Quality.Code.String(),
			Reason: s.Quality.Reason, SourceTime: stamp(s.SourceTime), EdgeTime: stamp(s.EdgeTime)}
	}
	writeJSON(w, http.StatusOK, struct {
		Tag       string      `json:"tag"`
		From      string      `json:"from"`
		To        string      `json:"to"`
		Samples   []valueJSON `json:"samples"`
		Truncated bool        `json:"truncated"`
	}{tag, from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano), out, truncated})
}

func (h *History) fail(w http.ResponseWriter, err error) {
	if errors.Is(err, historian.ErrBadQuery) {
		writeError(w, http.StatusBadRequest, err.Error(), nil)
		return
	}
	if errors.Is(err, ErrNoHistorian) {
		writeError(w, http.StatusServiceUnavailable, "no historian sink configured", nil)
		return
	}
	if errors.Is(err, ErrHistoryUnavailable) {
		writeError(w, http.StatusServiceUnavailable, "the historian is not open yet; try again", nil)
		return
	}
	h.Log.Warn("history query", "err", err)
	writeError(w, http.StatusInternalServerError, "history query failed", nil)
}

// historyRange parses from and to; msg is the 400 message.
func historyRange(fromS, toS string, now time.Time) (from, to time.Time, msg string) {
	to = now
	if toS != "" {
		t, err := time.Parse(time.RFC3339Nano, toS)
		if err != nil {
			return from, to, fmt.Sprintf("to must be an RFC 3339 time such as 2026-01-02T15:04:05Z, got %q", toS)
		}
		to = t
	}
	from = to.Add(-historyDefaultSpan)
	if fromS != "" {
		t, err := time.Parse(time.RFC3339Nano, fromS)
		if err != nil {
			return from, to, fmt.Sprintf("from must be an RFC 3339 time such as 2026-01-02T15:04:05Z, got %q", fromS)
		}
		from = t
	}
	if !to.After(from) {
		return from, to, "from must be before to"
	}
	return from, to, ""
}

// pointsInterval is the interval of points=n over span: span ÷ n rounded
// up, and above the historian's rollup block (30 s) rounded up to a whole
// multiple of it, so that a chart's query reads the rollups (a day of
// 1 s samples at points=1000: 90 s, 960 buckets, from 2,880 rollup rows
// instead of 86,400 samples). Rounding up keeps at most n intervals.
func pointsInterval(span time.Duration, n int) time.Duration {
	iv := max((span+time.Duration(n)-1)/time.Duration(n), historyMinInterval)
	if b := historian.RollupBlock; iv > b {
		iv = (iv + b - 1) / b * b
	}
	return iv
}

// historyAggQuery reads interval, points and agg; interval 0 means raw.
func historyAggQuery(q map[string][]string, span time.Duration) (time.Duration, []string, string) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	ivS, ptS, aggS := get("interval"), get("points"), get("agg")
	var iv time.Duration
	switch {
	case ivS != "" && ptS != "":
		return 0, nil, "give interval or points, not both"
	case ivS != "":
		d, err := time.ParseDuration(ivS)
		if err != nil || d < historyMinInterval {
			return 0, nil, fmt.Sprintf("interval must be a duration of at least 1ms such as 1m, got %q", ivS)
		}
		if n := (span + d - 1) / d; n > HistoryMaxPoints {
			return 0, nil, fmt.Sprintf("interval %s gives %d intervals from from to to, at most %d: widen the interval or narrow the range", d, n, HistoryMaxPoints)
		}
		iv = d
	case ptS != "":
		n, err := strconv.Atoi(ptS)
		if err != nil || n < 1 || n > HistoryMaxPoints {
			return 0, nil, fmt.Sprintf("points must be a whole number from 1 to %d, got %q", HistoryMaxPoints, ptS)
		}
		iv = pointsInterval(span, n)
	case aggS != "":
		return 0, nil, "agg needs interval or points"
	default:
		return 0, nil, ""
	}
	if aggS == "" {
		return iv, historyAggs, ""
	}
	var aggs []string
	for _, a := range strings.Split(aggS, ",") {
		a = strings.TrimSpace(a)
		if !contains(historyAggs, a) {
			return 0, nil, fmt.Sprintf("agg %q is not one of %s", a, strings.Join(historyAggs, ", "))
		}
		if !contains(aggs, a) {
			aggs = append(aggs, a)
		}
	}
	return iv, aggs, ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// finite answers nil (JSON null) for NaN and ±Inf, which JSON cannot hold.
func finite(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return f
}
