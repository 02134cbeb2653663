package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/sinks/historian"
)

// historyBase is the time of the first stored sample: on the minute, well
// within the sink's clock window.
var historyBase = time.Now().UTC().Truncate(time.Minute).Add(-time.Hour)

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
	} {
		t.Run("400 "+c.want, func(t *testing.T) {
			code, b := historyGet(t, mux, c.q)
			if msg, _ := b["error"].(string); code != 400 || !strings.Contains(msg, c.want) {
				t.Fatalf("%s: %d %v, want 400 with %q", c.q, code, b, c.want)
			}
		})
	}
}

// closedHistory is a historian that is not open yet.
type closedHistory struct{ HistoryStore }

func (closedHistory) Raw(context.Context, string, int64, int64, int) ([]model.Sample, error) {
	return nil, ErrHistoryUnavailable
}

func TestHistoryUnavailable(t *testing.T) {
	mux := http.NewServeMux()
	(&History{Store: closedHistory{}}).Mount(mux)
	if code, b := historyGet(t, mux, "tag=a"); code != http.StatusServiceUnavailable {
		t.Fatalf("%d %v, want 503", code, b)
	}
}
