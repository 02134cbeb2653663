package httpsink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/tlsconf"
	"github.com/weir-edge/weir/internal/tlsconf/tlstest"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/sinks/sinktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errMissing = errors.New(`missing "node", "samples" or "path"`)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newSink builds and connects a sink for url; mod adjusts the config.
func newSink(t testing.TB, url string, mod func(*Config)) *Sink {
	t.Helper()
	cfg := Config{URL: url, Node: "test-node", Timeout: 5 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func TestConformance(t *testing.T) {
	outages := map[string]func(r *receiver) (restore func()){
		// The receiver is up but refuses with 503 + Retry-After.
		"retry_after_503": func(r *receiver) func() {
			r.setResponder(func(int, *http.Request) (int, map[string]string) {
				return http.StatusServiceUnavailable, map[string]string{"Retry-After": "1"}
			})
			return func() { r.setResponder(always200) }
		},
		// The listener goes away; a new server comes up on the same port.
		"listener_closed": func(r *receiver) func() {
			r.close()
			return r.restart
		},
	}
	for name, outage := range outages {
		t.Run(name, func(t *testing.T) {
			var servers sync.Map // *testing.T → *receiver
			get := func(t *testing.T) *receiver {
				r, ok := servers.Load(t)
				if !ok {
					t.Fatal("no receiver for this test")
				}
				return r.(*receiver)
			}
			sinktest.Run(t, sinktest.Harness{
				New: func(t *testing.T) pipeline.Sink {
					r := newReceiver(t)
					servers.Store(t, r)
					s, err := New(Config{URL: r.url(), Timeout: 2 * time.Second}, slog.New(slog.DiscardHandler))
					if err != nil {
						t.Fatal(err)
					}
					return s
				},
				Received: func(t *testing.T) []model.Sample { return get(t).received() },
				Outage:   func(t *testing.T) func() { return outage(get(t)) },
				// The bodies the sink's encoder makes of the batch.
				MinWireBytes: func(b []model.Sample) uint64 {
					s, err := New(Config{URL: "http://127.0.0.1:1/", Timeout: 2 * time.Second}, slog.New(slog.DiscardHandler))
					if err != nil {
						t.Fatal(err)
					}
					var n uint64
					for len(b) > 0 {
						k := s.encode(b)
						n += uint64(len(s.body))
						b = b[k:]
					}
					return n
				},
			})
		})
	}
}

func TestRequestFormat(t *testing.T) {
	t.Setenv("WEIR_TEST_HTTP_TOKEN", "s3cret")
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprintf("gzip=%v", gz), func(t *testing.T) {
			r := newReceiver(t)
			s := newSink(t, r.url()+"/ingest?site=1", func(c *Config) {
				c.Method = "put"
				c.Gzip = gz
				c.Headers = map[string]string{"X-Plant": "line1", "User-Agent": "custom"}
				c.AuthHeader = AuthHeader{Prefix: "Bearer ", Value: conf.Secret{Env: "WEIR_TEST_HTTP_TOKEN"}}
			})
			batch := []model.Sample{
				{Path: "a/b/c", Value: model.Float(21), SourceTime: 1_700_000_000_123_000_000, EdgeTime: 1_700_000_000_124_000_000, Seq: 7},
				{Path: "a/b/d", Quality: model.Quality{Code: model.Bad, Reason: model.ReasonTimeout}, Seq: 8, Historical: true},
				{Path: "a/\"q\"", Value: model.Array([]model.Value{model.Int(1), model.Int(2)}), Seq: 9},
			}
			if err := s.Write(ctxT(t), batch); err != nil {
				t.Fatalf("Write: %v", err)
			}
			reqs := r.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			q := reqs[0]
			want := map[string]string{
				"Content-Type":    "application/json",
				"Idempotency-Key": "7-9",
				"Authorization":   "Bearer s3cret",
				"X-Plant":         "line1",
				"User-Agent":      "custom",
			}
			if gz {
				want["Content-Encoding"] = "gzip"
			}
			for k, v := range want {
				if got := q.header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if !gz && q.header.Get("Content-Encoding") != "" {
				t.Errorf("Content-Encoding %q without gzip", q.header.Get("Content-Encoding"))
			}
			if q.method != http.MethodPut {
				t.Errorf("method %s", q.method)
			}
			if gz && q.rawLen >= len(q.body) {
				t.Errorf("gzip body %d bytes, plain %d: not compressed", q.rawLen, len(q.body))
			}
			wantBody := `{"node":"test-node","samples":[` +
				`{"path":"a/b/c","value":21.0,"quality":"good","ts":1700000000123,"edge_ts":1700000000124,"seq":7},` +
				`{"path":"a/b/d","value":null,"quality":"bad","reason":"timeout","ts":0,"edge_ts":0,"seq":8,"historical":true},` +
				`{"path":"a/\"q\"","value":[1,2],"quality":"good","ts":0,"edge_ts":0,"seq":9}]}`
			if string(q.body) != wantBody {
				t.Errorf("body\n got %s\nwant %s", q.body, wantBody)
			}
			if q.node != "test-node" || len(q.samples) != 3 || !q.samples[1].Historical || q.samples[2].Path != `a/"q"` {
				t.Errorf("decoded %q %+v", q.node, q.samples)
			}
		})
	}
}

func TestStatusClassification(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	type want struct {
		ok, rejected, disconnected bool
		after                      time.Duration // >0: a RetryAfterError with this delay
		msg                        string
	}
	tests := []struct {
		name    string
		code    int
		header  map[string]string
		retryOn []int
		want    want
	}{
		{"200", 200, nil, nil, want{ok: true}},
		{"204", 204, nil, nil, want{ok: true}},
		{"429 seconds", 429, map[string]string{"Retry-After": "7"}, nil, want{after: 7 * time.Second}},
		{"429 date", 429, map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}, nil, want{after: 90 * time.Second}},
		{"429 without header", 429, nil, nil, want{msg: "HTTP 429 Too Many Requests"}},
		{"429 garbage header", 429, map[string]string{"Retry-After": "soon"}, nil, want{msg: "HTTP 429"}},
		{"503 seconds", 503, map[string]string{"Retry-After": "1"}, nil, want{after: time.Second}},
		{"503 capped", 503, map[string]string{"Retry-After": "86400"}, nil, want{after: 5 * time.Minute}},
		{"503 past date", 503, map[string]string{"Retry-After": now.Add(-time.Hour).Format(http.TimeFormat)}, nil, want{msg: "HTTP 503"}},
		{"500", 500, nil, nil, want{msg: "HTTP 500 Internal Server Error"}},
		{"502 with Retry-After is plain", 502, map[string]string{"Retry-After": "5"}, nil, want{msg: "HTTP 502"}},
		{"400 rejected", 400, nil, nil, want{rejected: true, msg: "HTTP 400 Bad Request: rejected by destination"}},
		{"413 rejected", 413, nil, nil, want{rejected: true}},
		{"422 rejected", 422, nil, nil, want{rejected: true}},
		{"408 temporary", 408, nil, nil, want{msg: "HTTP 408"}},
		{"401 temporary by default", 401, nil, nil, want{msg: "HTTP 401"}},
		{"404 temporary by default", 404, nil, nil, want{msg: "HTTP 404"}},
		{"401 rejected with retry_on []", 401, nil, []int{}, want{rejected: true}},
		{"418 temporary with retry_on [418]", 418, nil, []int{418}, want{msg: "HTTP 418"}},
		{"302 not followed", 302, map[string]string{"Location": "/elsewhere"}, nil, want{msg: `redirect to "/elsewhere" not followed`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReceiver(t)
			r.setResponder(func(int, *http.Request) (int, map[string]string) { return tt.code, tt.header })
			s := newSink(t, r.url(), func(c *Config) { c.RetryOn = tt.retryOn })
			s.now = func() time.Time { return now }
			err := s.Write(ctxT(t), sinktest.Batch("c", 2, 4, 1))
			if tt.want.ok {
				if err != nil {
					t.Fatalf("Write: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Write succeeded")
			}
			if got := errors.Is(err, ErrRejected); got != tt.want.rejected {
				t.Errorf("errors.Is(ErrRejected) = %v: %v", got, err)
			}
			if got := errors.Is(err, pipeline.ErrDisconnected); got != tt.want.disconnected {
				t.Errorf("errors.Is(ErrDisconnected) = %v: %v", got, err)
			}
			var ra *RetryAfterError
			switch {
			case tt.want.after > 0 && !errors.As(err, &ra):
				t.Errorf("no RetryAfterError: %v", err)
			case tt.want.after > 0 && ra.After != tt.want.after:
				t.Errorf("After = %v, want %v", ra.After, tt.want.after)
			case tt.want.after == 0 && errors.As(err, &ra):
				t.Errorf("unexpected RetryAfterError: %v", err)
			}
			var se *StatusError
			if !errors.As(err, &se) || se.Code != tt.code {
				t.Errorf("no StatusError %d: %v", tt.code, err)
			}
			if !strings.Contains(err.Error(), tt.want.msg) {
				t.Errorf("error %q does not contain %q", err, tt.want.msg)
			}
			st := s.Status()
			class := "http_errors_4xx"
			if tt.code >= 500 {
				class = "http_errors_5xx"
			}
			// A refusal is tried again in two halves (isolate), which are
			// refused too: three requests, then the sink gives up.
			requests := uint64(1)
			if tt.want.rejected {
				requests = 3
			}
			if tt.code >= 400 && st.Counters[class] != requests {
				t.Errorf("%s = %d, want %d", class, st.Counters[class], requests)
			}
			if (tt.want.after > 0) != (st.Counters["retries_after"] == 1) || (st.Counters["rejected_requests"] == requests) != tt.want.rejected {
				t.Errorf("counters %v", st.Counters)
			}
			if st.LastError == "" {
				t.Error("no last error")
			}
		})
	}
}

// TestPoisonIsolated: the receiver refuses (400) any request that carries
// one particular sample. The sink sends the refused request again in
// halves until that sample is alone, rejects exactly it, and delivers
// every other sample once in the same Write.
func TestPoisonIsolated(t *testing.T) {
	for _, code := range []int{400, 413} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			batch := sinktest.Batch("iso", 3, 40, 1)
			const poison = 23
			r := newReceiver(t)
			r.setResponder(func(_ int, req *http.Request) (int, map[string]string) {
				// Requests carry consecutive samples; the key names the
				// first and last sequence ids.
				var first, last uint64
				fmt.Sscanf(req.Header.Get("Idempotency-Key"), "%d-%d", &first, &last)
				if p := batch[poison].Seq; first <= p && p <= last {
					return code, nil
				}
				return 200, nil
			})
			s := newSink(t, r.url(), nil)
			err := s.Write(ctxT(t), batch)
			var rej *pipeline.RejectedError
			if !errors.As(err, &rej) || len(rej.Rejected) != 1 || rej.Rejected[0].Index != poison {
				t.Fatalf("Write = %v; want exactly index %d rejected", err, poison)
			}
			wantCause := map[int]string{400: pipeline.CauseRefused, 413: pipeline.CauseOversize}[code]
			if rej.Rejected[0].Cause != wantCause {
				t.Errorf("cause %s, want %s", rej.Rejected[0].Cause, wantCause)
			}
			var got []uint64
			for _, smp := range r.received() {
				got = append(got, smp.Seq)
			}
			if len(got) != len(batch)-1 || slices.Contains(got, batch[poison].Seq) {
				t.Fatalf("%d samples delivered, want %d each once: %v", len(got), len(batch)-1, got)
			}
			if n := len(r.requests()); n > 1+2*6 {
				t.Errorf("%d requests; isolating one sample among 40 needs at most 13", n)
			}
		})
	}
}

func TestSplitByMaxBodyBytes(t *testing.T) {
	batch := sinktest.Batch("split", 3, 60, 100)
	batch[30].Value = model.String(strings.Repeat("x", 1500)) // larger than max alone: sent on its own
	tests := []struct {
		name     string
		failNth  int // 0-based request that fails; -1 none
		failCode int
		rejected bool
	}{
		{"all confirmed", -1, 0, false},
		{"second fails 500", 1, 500, false},
		{"first fails 503", 0, 503, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReceiver(t)
			r.setResponder(func(n int, _ *http.Request) (int, map[string]string) {
				if n == tt.failNth {
					return tt.failCode, nil
				}
				return 200, nil
			})
			s := newSink(t, r.url(), func(c *Config) { c.MaxBodyBytes = 1024 })
			err := s.Write(ctxT(t), batch)
			reqs := r.requests()
			if tt.failNth < 0 {
				if err != nil {
					t.Fatalf("Write: %v", err)
				}
				if len(reqs) < 4 {
					t.Fatalf("%d requests, want the batch split", len(reqs))
				}
				var all []model.Sample
				next := batch[0].Seq
				for i, q := range reqs {
					if len(q.body) > 1024 && len(q.samples) != 1 {
						t.Errorf("request %d: %d bytes with %d samples", i, len(q.body), len(q.samples))
					}
					first, last := q.samples[0].Seq, q.samples[len(q.samples)-1].Seq
					if first != next || q.header.Get("Idempotency-Key") != fmt.Sprintf("%d-%d", first, last) {
						t.Errorf("request %d: seqs %d-%d, key %q, want first %d", i, first, last, q.header.Get("Idempotency-Key"), next)
					}
					next = last + 1
					all = append(all, q.samples...)
				}
				if len(all) != len(batch) {
					t.Fatalf("%d samples arrived, want %d", len(all), len(batch))
				}
				if st := s.Status(); st.Counters["requests"] != uint64(len(reqs)) || st.Counters["samples"] != uint64(len(batch)) {
					t.Errorf("counters %v", st.Counters)
				}
				return
			}
			if len(reqs) != tt.failNth+1 {
				t.Fatalf("%d requests, want %d (stop at the failure)", len(reqs), tt.failNth+1)
			}
			if errors.Is(err, ErrRejected) != tt.rejected {
				t.Errorf("ErrRejected = %v: %v", !tt.rejected, err)
			}
			var pe *pipeline.PartialWriteError
			if tt.failNth == 0 {
				if errors.As(err, &pe) {
					t.Fatalf("PartialWriteError with nothing delivered: %v", err)
				}
				return
			}
			if !errors.As(err, &pe) {
				t.Fatalf("want PartialWriteError, got %v", err)
			}
			if pe.Delivered != len(reqs[0].samples) {
				t.Errorf("Delivered = %d, want %d", pe.Delivered, len(reqs[0].samples))
			}
		})
	}
}

func TestMutualTLS(t *testing.T) {
	pki := tlstest.Generate(t, t.TempDir())
	srvCfg := tlsconf.Config{CertFile: pki.ServerCert, KeyFile: pki.ServerKey, CAFile: pki.CA}
	tc, err := srvCfg.LoadServer()
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{t: t, respond: always200}
	r.srv = httptest.NewUnstartedServer(r)
	r.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // expected handshake failures
	r.srv.TLS = tc
	r.srv.StartTLS()
	t.Cleanup(r.close)

	tests := []struct {
		name string
		tls  tlsconf.Config
		ok   bool
	}{
		{"client certificate", tlsconf.Config{CAFile: pki.CA, CertFile: pki.ClientCert, KeyFile: pki.ClientKey}, true},
		{"no client certificate", tlsconf.Config{CAFile: pki.CA}, false},
		{"unknown server CA", tlsconf.Config{CAFile: pki.OtherCA, CertFile: pki.ClientCert, KeyFile: pki.ClientKey}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(r.received())
			s := newSink(t, r.url(), func(c *Config) { c.TLS = tt.tls })
			err := s.Write(ctxT(t), sinktest.Batch("tls", 1, 3, 1))
			if tt.ok {
				if err != nil {
					t.Fatalf("Write: %v", err)
				}
				if got := len(r.received()) - before; got != 3 {
					t.Errorf("%d samples arrived", got)
				}
				return
			}
			if !errors.Is(err, pipeline.ErrDisconnected) {
				t.Fatalf("want ErrDisconnected, got %v", err)
			}
			if s.Status().Counters["network_errors"] != 1 {
				t.Errorf("counters %v", s.Status().Counters)
			}
		})
	}
}

func TestLifecycle(t *testing.T) {
	r := newReceiver(t)
	s, err := New(Config{URL: r.url()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctxT(t), sinktest.Batch("l", 1, 1, 1)); !errors.Is(err, pipeline.ErrDisconnected) {
		t.Errorf("Write before Connect: %v", err)
	}
	if err := s.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctxT(t), nil); err != nil || len(r.requests()) != 0 {
		t.Errorf("empty Write: %v, %d requests", err, len(r.requests()))
	}
	if err := s.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctxT(t)); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := s.Write(ctxT(t), sinktest.Batch("l", 1, 1, 1)); !errors.Is(err, pipeline.ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	if err := s.Connect(ctxT(t)); !errors.Is(err, pipeline.ErrClosed) {
		t.Errorf("Connect after Close: %v", err)
	}
	if st := s.Status(); st.State != pipeline.StateStopped {
		t.Errorf("state %q", st.State)
	}
}

func TestConnectSecretErrors(t *testing.T) {
	t.Setenv("WEIR_TEST_BAD_TOKEN", "a\nb")
	tests := []struct {
		name   string
		secret conf.Secret
		want   string
	}{
		{"unset env", conf.Secret{Env: "WEIR_TEST_UNSET_TOKEN"}, "environment variable WEIR_TEST_UNSET_TOKEN is not set"},
		{"missing file", conf.Secret{File: "/nonexistent/token"}, "/nonexistent/token"},
		{"control character", conf.Secret{Env: "WEIR_TEST_BAD_TOKEN"}, "the secret contains a control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(Config{URL: "http://127.0.0.1:1", AuthHeader: AuthHeader{Value: tt.secret}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(context.Background())
			err = s.Connect(ctxT(t))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Connect: %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "a\nb") {
				t.Error("error reveals the secret")
			}
		})
	}
}

func TestCancelledContext(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	s := newSink(t, srv.URL, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Write(ctx, sinktest.Batch("x", 1, 1, 1))
	if !errors.Is(err, context.Canceled) || errors.Is(err, pipeline.ErrDisconnected) {
		t.Fatalf("Write: %v", err)
	}
}

func BenchmarkWrite(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	for _, gz := range []bool{false, true} {
		b.Run(fmt.Sprintf("gzip=%v/batch=1000", gz), func(b *testing.B) {
			s := newSink(b, srv.URL, func(c *Config) { c.Gzip = gz })
			batch := sinktest.Batch("bench", 50, 1000, 1)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := s.Write(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "samples/s")
		})
	}
}

func BenchmarkEncode(b *testing.B) {
	s, err := New(Config{URL: "http://127.0.0.1:1", Node: "n"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	batch := sinktest.Batch("bench", 50, 1000, 1)
	b.ReportAllocs()
	for b.Loop() {
		if n := s.encode(batch); n != len(batch) {
			b.Fatalf("encoded %d", n)
		}
	}
	b.SetBytes(int64(len(s.body)))
}
