package api

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weir-edge/weir/auth"
	"github.com/weir-edge/weir/buffer/durable"
	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/security"
	"github.com/weir-edge/weir/sinks/historian"
)

// historyBase is the time of the first stored sample: on the minute, well
// within the sink's clock window.
var historyBase = time.Now().UTC().Truncate(time.Hour).Add(-time.Hour) // a multiple of every interval below

// newHistoryStore writes 600 one-second samples of plant/speed (value i)
// through a real historian sink in t.TempDir.
func newHistoryStore(t testing.TB) *historian.Store {
	t.Helper()
	sk, err := historian.New(historian.Config{Dir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := sk.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sk.Close(ctx) })
	batch := make([]model.Sample, 600)
	for i := range batch {
		ts := historyBase.Add(time.Duration(i) * time.Second).UnixNano()
		batch[i] = model.Sample{Path: "plant/speed", Value: model.Float(float64(i)), Quality: model.Quality{Code: model.Good}, SourceTime: ts, EdgeTime: ts}
	}
	if err := sk.Write(ctx, batch); err != nil {
		t.Fatal(err)
	}
	return sk.Store()
}

func historyGet(t *testing.T, h http.Handler, q string) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/history?"+q, nil))
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("%s: not JSON: %v %s", q, err, rec.Body.String())
	}
	return rec.Code, body
}

func TestHistory(t *testing.T) {
	mux := http.NewServeMux()
	(&History{Store: newHistoryStore(t)}).Mount(mux)
	at := func(d time.Duration) string { return url.QueryEscape(historyBase.Add(d).Format(time.RFC3339Nano)) }
	rng := "tag=plant/speed&from=" + at(0) + "&to=" + at(10*time.Minute)

	t.Run("raw", func(t *testing.T) {
		code, b := historyGet(t, mux, "tag=plant/speed&from="+at(10*time.Second)+"&to="+at(15*time.Second))
		if code != 200 {
			t.Fatalf("%d %v", code, b)
		}
		s := b["samples"].([]any)
		if len(s) != 5 || b["truncated"] != false {
			t.Fatalf("%d samples, truncated %v", len(s), b["truncated"])
		}
		first := s[0].(map[string]any)
		if first["value"] != 10.0 || first["path"] != "plant/speed" || first["quality"] != "good" {
			t.Fatalf("first sample %v", first)
		}
	})
	t.Run("raw limit", func(t *testing.T) {
		_, b := historyGet(t, mux, rng+"&limit=7")
		if s := b["samples"].([]any); len(s) != 7 || b["truncated"] != true {
			t.Fatalf("%d samples, truncated %v", len(s), b["truncated"])
		}
	})
	t.Run("aggregate interval", func(t *testing.T) {
		code, b := historyGet(t, mux, rng+"&interval=1m&agg=count,min,max,first,last,mean")
		if code != 200 {
			t.Fatalf("%d %v", code, b)
		}
		bk := b["buckets"].([]any)
		if len(bk) != 10 {
			t.Fatalf("%d buckets, want 10", len(bk))
		}
		for i, x := range bk {
			m := x.(map[string]any)
			lo := float64(60 * i)
			if m["count"] != 60.0 || m["min"] != lo || m["max"] != lo+59 || m["first"] != lo || m["last"] != lo+59 || m["mean"] != lo+29.5 {
				t.Fatalf("bucket %d: %v", i, m)
			}
			if _, ok := m["twa"]; ok {
				t.Fatalf("twa not asked for: %v", m)
			}
		}
	})
	t.Run("aggregate points", func(t *testing.T) {
		_, b := historyGet(t, mux, rng+"&points=5")
		if b["interval"] != "2m0s" {
			t.Fatalf("interval %v", b["interval"])
		}
		bk := b["buckets"].([]any)
		if len(bk) != 5 || bk[0].(map[string]any)["count"] != 120.0 || bk[0].(map[string]any)["twa"] == nil {
			t.Fatalf("buckets %v", bk)
		}
	})
	t.Run("edges aligned", func(t *testing.T) {
		// A window that slides by 30 s keeps its edges: the first bucket
		// starts at the minute before from and holds the samples from from.
		_, b := historyGet(t, mux, "tag=plant/speed&from="+at(90*time.Second)+"&to="+at(5*time.Minute+30*time.Second)+"&interval=1m&agg=count,first")
		bk := b["buckets"].([]any)
		first, last := bk[0].(map[string]any), bk[len(bk)-1].(map[string]any)
		if len(bk) != 5 || first["start"] != historyBase.Add(time.Minute).Format(time.RFC3339Nano) || first["count"] != 30.0 || first["first"] != 90.0 || last["count"] != 30.0 {
			t.Fatalf("buckets %v", bk)
		}
		_, b = historyGet(t, mux, "tag=plant/speed&from="+at(90*time.Second)+"&to="+at(5*time.Minute+30*time.Second)+"&points=5")
		// 240 s ÷ 5 = 48 s, rounded up to a multiple of the rollup block.
		if bk := b["buckets"].([]any); b["interval"] != "1m0s" || len(bk) > 5 || bk[0].(map[string]any)["start"] != historyBase.Add(time.Minute).Format(time.RFC3339Nano) {
			t.Fatalf("points: interval %v, buckets %v", b["interval"], bk)
		}
	})
	for _, c := range []struct{ q, want string }{
		{"from=" + at(0), "tag is required"},
		{"tag=a&from=yesterday", "from must be an RFC 3339 time"},
		{"tag=a&to=now", "to must be an RFC 3339 time"},
		{"tag=a&from=" + at(time.Minute) + "&to=" + at(0), "from must be before to"},
		{"tag=a&limit=0", "limit must be a whole number from 1 to 100000"},
		{"tag=a&limit=100001", "limit must be"},
		{"tag=a&interval=1m&points=10", "not both"},
		{"tag=a&interval=0s", "interval must be a duration of at least 1ms"},
		{"tag=a&interval=x", "interval must be"},
		{"tag=a&interval=100ms", "at most 10000"},
		{"tag=a&points=0", "points must be a whole number from 1 to 10000"},
		{"tag=a&points=10001", "points must be"},
		{"tag=a&agg=min", "agg needs interval or points"},
		{"tag=a&interval=1m&agg=median", `agg "median" is not one of`},
		{"tag=a&interval=1m&limit=5", "limit is for raw samples"},
		{"tag=a&interval=1m&quality=bad", "quality must be good (default) or any"},
		{"tag=a&quality=any", "quality is for aggregates"},
	} {
		t.Run("400 "+c.want, func(t *testing.T) {
			code, b := historyGet(t, mux, c.q)
			if msg, _ := b["error"].(string); code != 400 || !strings.Contains(msg, c.want) {
				t.Fatalf("%s: %d %v, want 400 with %q", c.q, code, b, c.want)
			}
		})
	}
}

// TestHistoryQuality: aggregates count good samples only unless
// quality=any; a store without that capability answers 400.
func TestHistoryQuality(t *testing.T) {
	sk, err := historian.New(historian.Config{Dir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := sk.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sk.Close(ctx) })
	ts := func(d time.Duration) int64 { return historyBase.Add(d).UnixNano() }
	if err := sk.Write(ctx, []model.Sample{
		{Path: "a/x", Value: model.Float(10), SourceTime: ts(0)},
		{Path: "a/x", Value: model.Float(1000), Quality: model.Quality{Code: model.Uncertain, Reason: "drift"}, SourceTime: ts(30 * time.Second)},
	}); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	(&History{Store: sk.Store()}).Mount(mux)
	q := "tag=a/x&interval=1m&agg=count,mean&from=" + url.QueryEscape(historyBase.Format(time.RFC3339Nano)) + "&to=" + url.QueryEscape(historyBase.Add(time.Minute).Format(time.RFC3339Nano))
	for _, c := range []struct {
		q           string
		count, mean float64
	}{{"", 1, 10}, {"&quality=good", 1, 10}, {"&quality=any", 2, 505}} {
		code, b := historyGet(t, mux, q+c.q)
		bk, _ := b["buckets"].([]any)
		if code != 200 || len(bk) != 1 {
			t.Fatalf("%s: %d %v", c.q, code, b)
		}
		if m := bk[0].(map[string]any); m["count"] != c.count || m["mean"] != c.mean {
			t.Fatalf("%s: bucket %v, want count %v mean %v", c.q, m, c.count, c.mean)
		}
	}
	mux = http.NewServeMux()
	(&History{Store: closedHistory{}}).Mount(mux)
	if code, b := historyGet(t, mux, "tag=a&interval=1m&quality=any"); code != 400 || !strings.Contains(b["error"].(string), "not supported") {
		t.Fatalf("quality=any without the capability: %d %v", code, b)
	}
}

// closedHistory is a historian that is not open yet (or, with err
// ErrNoHistorian, not configured).
type closedHistory struct {
	HistoryStore
	err error
}

func (h closedHistory) Raw(context.Context, string, int64, int64, int) ([]model.Sample, error) {
	return nil, h.err
}

func TestHistoryUnavailable(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{ErrHistoryUnavailable, "not open yet"},
		{ErrNoHistorian, "no historian sink configured"},
	} {
		mux := http.NewServeMux()
		(&History{Store: closedHistory{err: c.err}}).Mount(mux)
		code, b := historyGet(t, mux, "tag=a")
		if msg, _ := b["error"].(string); code != http.StatusServiceUnavailable || !strings.Contains(msg, c.want) {
			t.Fatalf("%d %v, want 503 %q", code, b, c.want)
		}
	}
}

// e2eSource emits prepared samples in batches of 250, then waits.
type e2eSource struct{ samples []model.Sample }

func (s *e2eSource) Run(ctx context.Context, out pipeline.Emitter) error {
	for b := range slices.Chunk(s.samples, 250) {
		if err := out.Emit(ctx, slices.Clone(b)); err != nil {
			return nil
		}
	}
	<-ctx.Done()
	return nil
}

// TestHistoryEndToEnd: samples from a source through the engine, a
// durable buffer and a historian sink, then GET /api/v1/history over a
// real HTTP server with authentication; raw and aggregate answers equal
// a brute-force model of what was emitted.
func TestHistoryEndToEnd(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 2))
	base := time.Now().UTC().Truncate(time.Minute).Add(-3 * time.Hour)
	tags := []string{"plant/line1/speed", "plant/line1/temp", "plant/line2/count"}
	var all []model.Sample
	for i, p := range tags {
		ts := base
		for range 1500 {
			ts = ts.Add(time.Duration(1+rng.IntN(9000)) * time.Millisecond)
			v := model.Float(rng.NormFloat64() * 50)
			if i == 2 {
				v = model.Int(rng.Int64N(1000))
			}
			q := model.Quality{}
			if rng.IntN(20) == 0 {
				q = model.Quality{Code: model.Uncertain, Reason: "drift"}
			}
			all = append(all, model.Sample{Path: p, Value: v, Quality: q, SourceTime: ts.UnixNano(), EdgeTime: ts.UnixNano()})
		}
	}
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] }) // tags interleaved, times out of order across tags

	sk, err := historian.New(historian.Config{Dir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	buf, err := durable.Open(durable.Config{Dir: t.TempDir(), Fsync: durable.FsyncGroup}, nil)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Options{
		Sources: []engine.SourceSpec{{Name: "gen", Source: &e2eSource{samples: all}}},
		Sinks:   []engine.SinkSpec{{Name: "history", Sink: sk, Buffer: buf}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	engDone := make(chan error, 1)
	go func() { engDone <- eng.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-engDone:
		case <-time.After(2 * time.Minute):
			t.Error("engine did not stop")
		}
	})
	deadline := time.Now().Add(2 * time.Minute) // bounds a hang
	for sk.Status().Counters["historian_samples_stored"] < uint64(len(all)) {
		if time.Now().After(deadline) {
			t.Fatalf("stored %d of %d in 2 minutes", sk.Status().Counters["historian_samples_stored"], len(all))
		}
		time.Sleep(5 * time.Millisecond) // polling an outside observation
	}

	a, err := auth.New(auth.Config{}, auth.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := a.Tokens().Create("trend-viewer", security.Viewer, time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	hist := &History{Store: sk.Store()}
	srv := New(Options{Status: eng, Auth: a, Extra: hist.Mount, Collectors: []prometheus.Collector{hist}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-served:
		case <-time.After(2 * time.Minute):
			t.Error("server did not stop")
		}
	})
	get := func(path, tok string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	from, to := base.Add(20*time.Minute), base.Add(3*time.Hour)
	rangeQ := "&from=" + url.QueryEscape(from.Format(time.RFC3339Nano)) + "&to=" + url.QueryEscape(to.Format(time.RFC3339Nano))

	if code, _ := get("/api/v1/history?tag="+tags[0]+rangeQ, ""); code != http.StatusUnauthorized {
		t.Fatalf("without a token: %d, want 401", code)
	}
	for _, p := range tags {
		var want []model.Sample
		for _, s := range all {
			if s.Path == p && s.SourceTime >= from.UnixNano() && s.SourceTime < to.UnixNano() {
				want = append(want, s)
			}
		}
		slices.SortFunc(want, func(a, b model.Sample) int { return int(a.SourceTime - b.SourceTime) })

		t.Run("raw "+p, func(t *testing.T) {
			code, body := get("/api/v1/history?tag="+url.QueryEscape(p)+rangeQ+"&limit=100000", token)
			var got struct {
				Samples []struct {
					Value      json.Number `json:"value"`
					Quality    string      `json:"quality"`
					Reason     string      `json:"reason"`
					SourceTime string      `json:"source_time"`
				} `json:"samples"`
				Truncated bool `json:"truncated"`
			}
			dec := json.NewDecoder(strings.NewReader(string(body)))
			dec.UseNumber()
			if err := dec.Decode(&got); code != 200 || err != nil {
				t.Fatalf("%d %v %s", code, err, body)
			}
			if len(got.Samples) != len(want) || got.Truncated {
				t.Fatalf("%d samples (truncated %v), want %d", len(got.Samples), got.Truncated, len(want))
			}
			for i, w := range want {
				g := got.Samples[i]
				if g.SourceTime != stamp(w.SourceTime) || string(g.Value) != string(w.Value.AppendJSON(nil)) ||
					g.Quality != w.Quality.Code.String() || g.Reason != w.Quality.Reason {
					t.Fatalf("sample %d = %+v, want %s %s %v", i, g, stamp(w.SourceTime), w.Value.AppendJSON(nil), w.Quality)
				}
			}
		})
		t.Run("aggregate "+p, func(t *testing.T) {
			const iv = 7 * time.Minute
			code, body := get("/api/v1/history?tag="+url.QueryEscape(p)+rangeQ+"&interval=7m&agg=count,min,max,mean,first,last", token)
			var got struct {
				Buckets []map[string]any `json:"buckets"`
			}
			if err := json.Unmarshal(body, &got); code != 200 || err != nil {
				t.Fatalf("%d %v %s", code, err, body)
			}
			// The model: aligned buckets, each with its samples from "from" on.
			type agg struct {
				start                      time.Time
				n                          int
				min, max, sum, first, last float64
			}
			var wantB []*agg
			for _, s := range want {
				if !s.Quality.IsGood() { // aggregates count good samples only
					continue
				}
				start := time.Unix(0, s.SourceTime/int64(iv)*int64(iv)).UTC() // edges at multiples of iv since the epoch
				f, _ := s.Value.Float64()
				if len(wantB) == 0 || !wantB[len(wantB)-1].start.Equal(start) {
					wantB = append(wantB, &agg{start: start, min: f, max: f, first: f})
				}
				m := wantB[len(wantB)-1]
				m.n++
				m.min, m.max, m.sum, m.last = min(m.min, f), max(m.max, f), m.sum+f, f
			}
			if len(got.Buckets) != len(wantB) {
				t.Fatalf("%d buckets, want %d", len(got.Buckets), len(wantB))
			}
			for i, m := range wantB {
				g := got.Buckets[i]
				near := func(k string, w float64) bool {
					f, ok := g[k].(float64)
					return ok && math.Abs(f-w) <= 1e-9*math.Max(1, math.Abs(w))
				}
				if g["start"] != m.start.Format(time.RFC3339Nano) || g["count"] != float64(m.n) || !near("min", m.min) || !near("max", m.max) ||
					!near("mean", m.sum/float64(m.n)) || !near("first", m.first) || !near("last", m.last) {
					t.Fatalf("bucket %d = %v, want %+v (mean %v)", i, g, *m, m.sum/float64(m.n))
				}
			}
		})
	}
	code, body := get("/metrics", token)
	if code != 200 || !strings.Contains(string(body), `weir_history_query_duration_seconds_count{kind="aggregate"} 3`) ||
		!strings.Contains(string(body), `weir_sink_historian_samples_stored_total{name="history"} 4500`) {
		t.Fatalf("metrics %d: no query histogram or stored count:\n%s", code, grepLines(string(body), "histor"))
	}
}

// TestPointsInterval: points=N gives span ÷ N rounded up, and above 30 s
// a whole multiple of 30 s (so a chart reads the historian's rollups),
// never more than N intervals; interval= is used as given.
func TestPointsInterval(t *testing.T) {
	day := 24 * time.Hour
	for _, tc := range []struct {
		name   string
		span   time.Duration
		points int
		want   time.Duration
	}{
		{"day at 1000 points", day, 1000, 90 * time.Second},
		{"day at 2880 points", day, 2880, 30 * time.Second},
		{"day at 10000 points", day, 10000, 8640 * time.Millisecond},
		{"hour at 100 points", time.Hour, 100, time.Minute}, // 36 s → 60 s
		{"ten minutes at 100 points", 10 * time.Minute, 100, 6 * time.Second},
		{"31 s each", 31 * time.Second, 1, time.Minute},
		{"a week at 500 points", 7 * day, 500, 1230 * time.Second},
		{"tiny", time.Microsecond, 10, time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := pointsInterval(tc.span, tc.points)
			if got != tc.want {
				t.Fatalf("pointsInterval(%v, %d) = %v, want %v", tc.span, tc.points, got, tc.want)
			}
			if n := (tc.span + got - 1) / got; int(n) > tc.points {
				t.Fatalf("%d intervals, more than %d points", n, tc.points)
			}
		})
	}
	iv, _, msg := historyAggQuery(map[string][]string{"interval": {"48s"}}, time.Hour)
	if msg != "" || iv != 48*time.Second {
		t.Fatalf("interval=48s gave %v %q, want 48s as given", iv, msg)
	}
}
