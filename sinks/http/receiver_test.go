package httpsink

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/weir-edge/weir/internal/payload"
	"github.com/weir-edge/weir/model"
)

// request is one request as the receiver saw it.
type request struct {
	method  string
	header  http.Header
	rawLen  int    // bytes on the wire
	body    []byte // decompressed
	node    string
	samples []model.Sample
	code    int // what the receiver answered
}

// responder decides the answer to the n-th request (0-based).
type responder func(n int, r *http.Request) (code int, header map[string]string)

func always200(int, *http.Request) (int, map[string]string) { return http.StatusOK, nil }

// receiver is an httptest server that decodes every body with the
// documented schema and records it; samples count as received only when
// the answer was 2xx.
type receiver struct {
	t    testing.TB
	srv  *httptest.Server
	addr string

	mu      sync.Mutex
	reqs    []request
	respond responder
}

func newReceiver(t testing.TB) *receiver {
	r := &receiver{t: t, respond: always200}
	r.srv = httptest.NewServer(r)
	r.addr = r.srv.Listener.Addr().String()
	t.Cleanup(r.close)
	return r
}

func (r *receiver) url() string { return r.srv.URL }

func (r *receiver) close() {
	r.mu.Lock()
	srv := r.srv
	r.mu.Unlock()
	srv.Close()
}

// restart replaces a closed server by a new one on the same address.
func (r *receiver) restart() {
	l, err := net.Listen("tcp", r.addr)
	if err != nil {
		r.t.Fatalf("listen again on %s: %v", r.addr, err)
	}
	srv := httptest.NewUnstartedServer(r)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
}

func (r *receiver) setResponder(f responder) {
	r.mu.Lock()
	r.respond = f
	r.mu.Unlock()
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	raw, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	body := raw
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytesReader(raw))
		if err == nil {
			body, err = io.ReadAll(zr)
		}
		if err != nil {
			http.Error(w, "bad gzip: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	node, samples, err := decodeBody(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnprocessableEntity)
		return
	}
	r.mu.Lock()
	code, hdr := r.respond(len(r.reqs), req)
	r.reqs = append(r.reqs, request{
		method: req.Method, header: req.Header.Clone(), rawLen: len(raw), body: body,
		node: node, samples: samples, code: code,
	})
	r.mu.Unlock()
	for k, v := range hdr {
		w.Header().Set(k, v)
	}
	w.WriteHeader(code)
	if code >= 400 {
		_, _ = io.WriteString(w, `{"error":"refused by test receiver"}`)
	}
}

// requests returns a copy of what was recorded.
func (r *receiver) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.reqs...)
}

// received returns the samples of 2xx-answered requests in arrival order.
func (r *receiver) received() []model.Sample {
	var out []model.Sample
	for _, q := range r.requests() {
		if q.code >= 200 && q.code <= 299 {
			out = append(out, q.samples...)
		}
	}
	return out
}

// decodeBody parses the documented webhook body.
func decodeBody(body []byte) (string, []model.Sample, error) {
	var w struct {
		Node    *string           `json:"node"`
		Samples []json.RawMessage `json:"samples"`
	}
	if err := json.Unmarshal(body, &w); err != nil {
		return "", nil, err
	}
	if w.Node == nil || w.Samples == nil {
		return "", nil, errMissing
	}
	out := make([]model.Sample, 0, len(w.Samples))
	for _, raw := range w.Samples {
		s, err := payload.DecodeSample(raw)
		if err != nil {
			return "", nil, err
		}
		var p struct {
			Path *string `json:"path"`
		}
		if err := json.Unmarshal(raw, &p); err != nil || p.Path == nil {
			return "", nil, errMissing
		}
		s.Path = *p.Path
		out = append(out, s)
	}
	return *w.Node, out, nil
}
