package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/processors/latest"
	"github.com/weir-edge/weir/processors/match"
)

// streamHangBound bounds every wait of these tests: a broken stream fails
// the test instead of hanging it.
const streamHangBound = 2 * time.Minute

// sseEvent is one server-sent event, or one comment line.
type sseEvent struct {
	event, id, data, retry, comment string
}

type sseReader struct {
	resp *http.Response
	br   *bufio.Reader
}

// openStream GETs url with a context bounded by streamHangBound; cancel
// ends the request.
func openStream(t *testing.T, ctx context.Context, url string) (*sseReader, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, streamHangBound)
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("stream: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	return &sseReader{resp: resp, br: bufio.NewReader(resp.Body)}, cancel
}

// next reads one event or comment.
func (r *sseReader) next() (sseEvent, error) {
	var ev sseEvent
	seen := false
	for {
		line, err := r.br.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if seen {
				return ev, nil
			}
		case strings.HasPrefix(line, ":"):
			ev.comment, seen = strings.TrimSpace(line[1:]), true
		default:
			k, v, _ := strings.Cut(line, ": ")
			switch k {
			case "event":
				ev.event = v
			case "id":
				ev.id = v
			case "data":
				ev.data = v
			case "retry":
				ev.retry = v
			}
			seen = true
		}
	}
}

// nextSample skips comments and returns the next sample event, decoded.
func (r *sseReader) nextSample(t *testing.T) (valueJSON, int) {
	t.Helper()
	for {
		ev, err := r.next()
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		if ev.comment != "" {
			continue
		}
		if ev.event != "sample" {
			t.Fatalf("event %+v, want a sample", ev)
		}
		var v valueJSON
		if err := json.Unmarshal([]byte(ev.data), &v); err != nil {
			t.Fatalf("data %q: %v", ev.data, err)
		}
		id, err := strconv.Atoi(ev.id)
		if err != nil {
			t.Fatalf("id %q", ev.id)
		}
		return v, id
	}
}

func TestStreamSnapshotThenUpdates(t *testing.T) {
	store := latest.New(0)
	store.Process([]model.Sample{
		{Path: "plant/l1/speed", Value: model.Int(300), SourceTime: time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC).UnixNano()},
		{Path: "plant/l1/temp", Value: model.Float(21.5), Quality: model.Quality{Code: model.Uncertain, Reason: "stale"}},
		{Path: "plant/l2/speed", Value: model.Int(400)},
		{Path: "other/x", Value: model.Int(1)},
	})
	base, _ := serve(t, Options{Status: &fakeStatus{}, Extra: (&Values{Store: store}).Mount})
	s, _ := openStream(t, context.Background(), base+"/api/v1/stream?tags=plant/l1/%23,%20plant/%2B/speed")
	want := []string{
		`{"path":"plant/l1/speed","value":300,"quality":"good","source_time":"2025-05-01T10:00:00Z"}`,
		`{"path":"plant/l1/temp","value":21.5,"quality":"uncertain","reason":"stale"}`,
		`{"path":"plant/l2/speed","value":400,"quality":"good"}`,
	}
	for i, w := range want {
		v, id := s.nextSample(t)
		got, _ := json.Marshal(v)
		if string(got) != w || id != i+1 {
			t.Fatalf("snapshot event %d: id %d %s, want id %d %s", i, id, got, i+1, w)
		}
	}
	store.Process([]model.Sample{{Path: "other/x", Value: model.Int(2)}, {Path: "plant/l2/speed", Value: model.Int(410)}})
	if v, id := s.nextSample(t); v.Path != "plant/l2/speed" || string(v.Value) != "410" || id != 4 {
		t.Fatalf("update: id %d %+v", id, v)
	}
	// A new tag that matches arrives too.
	store.Process([]model.Sample{{Path: "plant/l3/speed", Value: model.Int(5)}})
	if v, id := s.nextSample(t); v.Path != "plant/l3/speed" || id != 5 {
		t.Fatalf("new tag: id %d %+v", id, v)
	}
}

// TestStreamEnds: a stream ends when its client leaves (the subscription
// is released) and when the server shuts down (Serve returns at once,
// not after its shutdown deadline). goleak (TestMain) checks that no
// goroutine is left.
func TestStreamEnds(t *testing.T) {
	store := latest.New(0)
	store.Process([]model.Sample{{Path: "a", Value: model.Int(1)}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() {
		done <- New(Options{Status: &fakeStatus{}, Extra: (&Values{Store: store}).Mount}).Serve(ctx, ln)
	}()
	url := "http://" + ln.Addr().String() + "/api/v1/stream"

	s1, leave := openStream(t, context.Background(), url)
	s1.nextSample(t)
	if n := store.Subscribers(); n != 1 {
		t.Fatalf("%d subscribers", n)
	}
	leave()
	deadline := time.Now().Add(streamHangBound)
	for store.Subscribers() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the subscription outlived its client")
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, bounded above
	}

	s2, _ := openStream(t, context.Background(), url)
	s2.nextSample(t)
	start := time.Now()
	stop()
	for {
		if _, err := s2.next(); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("stream ended with %v, want EOF", err)
			}
			break
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve = %v (a stream held the shutdown?)", err)
		}
	case <-time.After(streamHangBound):
		t.Fatal("Serve did not return")
	}
	if time.Since(start) > 4*time.Second {
		t.Logf("shutdown took %v", time.Since(start)) // informative only: the CI machine may be slow
	}
	http.DefaultClient.CloseIdleConnections()
}

// TestStreamOutlivesServerTimeouts: a quiet stream on a server with short
// read and write timeouts keeps going on heartbeats and still delivers.
func TestStreamOutlivesServerTimeouts(t *testing.T) {
	store := latest.New(0)
	store.Process([]model.Sample{{Path: "a", Value: model.Int(1)}})
	h := New(Options{Status: &fakeStatus{}, Extra: (&Values{Store: store, StreamHeartbeat: 40 * time.Millisecond}).Mount}).Handler()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadTimeout: 250 * time.Millisecond, WriteTimeout: 250 * time.Millisecond}
	go srv.Serve(ln)
	defer func() {
		srv.Close()
		http.DefaultClient.CloseIdleConnections()
	}()
	s, leave := openStream(t, context.Background(), "http://"+ln.Addr().String()+"/api/v1/stream?tags=a")
	defer leave()
	s.nextSample(t)
	// Several times both timeouts: heartbeats keep arriving.
	beats := 0
	for start := time.Now(); time.Since(start) < time.Second; {
		ev, err := s.next()
		if err != nil {
			t.Fatalf("after %v and %d heartbeats: %v", time.Since(start), beats, err)
		}
		if ev.comment != "heartbeat" {
			t.Fatalf("event %+v, want a heartbeat", ev)
		}
		beats++
	}
	store.Process([]model.Sample{{Path: "a", Value: model.Int(2)}})
	if v, _ := s.nextSample(t); string(v.Value) != "2" {
		t.Fatalf("update %+v", v)
	}
}

func TestStreamRefusals(t *testing.T) {
	store := latest.New(0)
	batch := make([]model.Sample, StreamMaxTags+1)
	for i := range batch {
		batch[i] = model.Sample{Path: fmt.Sprintf("big/t%05d", i), Value: model.Int(int64(i))}
	}
	store.Process(batch)
	store.Process([]model.Sample{{Path: "small/a", Value: model.Int(1)}})
	h := New(Options{Status: &fakeStatus{}, Extra: (&Values{Store: store}).Mount}).Handler()
	get := func(q string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/stream"+q, nil))
		return rec
	}
	for _, q := range []string{"?tags=a/%23/b", "?tags=a,,b", "?tags=" + strings.Repeat("a,", streamMaxFilters)} {
		if rec := get(q); rec.Code != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", q, rec.Code, rec.Body)
		}
	}
	rec := get("?tags=big/%23")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "event: error\ndata: {\"error\":\"more than 10000 tags match") ||
		!strings.Contains(rec.Body.String(), "retry: 60000\n") || strings.Contains(rec.Body.String(), "event: sample") {
		t.Fatalf("too many tags: %d %q", rec.Code, rec.Body)
	}
	store.SetSubscriberLimit(1)
	sub, _, err := store.Subscribe(match.MustCompile("small/a"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if rec := get("?tags=small/a"); rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("too many streams: %d %s", rec.Code, rec.Body)
	}
}

func mustMatcher(t testing.TB, filters ...string) *match.Matcher {
	t.Helper()
	m, err := match.Compile(filters)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestStreamMaxAge: a stream ends after its age and asks for a prompt
// reconnect, so credentials are checked again.
func TestStreamMaxAge(t *testing.T) {
	store := latest.New(0)
	store.Process([]model.Sample{{Path: "a", Value: model.Int(1)}})
	base, _ := serve(t, Options{Status: &fakeStatus{}, Extra: (&Values{Store: store, StreamMaxAge: 50 * time.Millisecond}).Mount})
	s, _ := openStream(t, context.Background(), base+"/api/v1/stream")
	s.nextSample(t)
	var last sseEvent
	for {
		ev, err := s.next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("ended with %v", err)
			}
			break
		}
		last = ev
	}
	if last.retry != "500" || last.comment != "reconnect" {
		t.Fatalf("last event %+v, want retry 500 and a reconnect comment", last)
	}
}

// TestStreamSlowClient: a client that does not read never holds Process
// back; when it reads again it gets the newest value of every tag (the
// values in between are skipped and counted).
func TestStreamSlowClient(t *testing.T) {
	store := latest.New(0)
	const tags, rounds = 200, 2000
	path := func(i int) string { return fmt.Sprintf("plant/t%03d", i) }
	batch := make([]model.Sample, tags)
	for i := range batch {
		batch[i] = model.Sample{Path: path(i), Value: model.Int(0), SourceTime: 1}
	}
	store.Process(batch)
	base, _ := serve(t, Options{Status: &fakeStatus{}, Extra: (&Values{Store: store}).Mount})
	s, _ := openStream(t, context.Background(), base+"/api/v1/stream?tags=plant/%23")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for r := 1; r <= rounds; r++ { // ~400,000 events (28 MB), far beyond the socket buffers
			for i := range batch {
				batch[i].Value, batch[i].SourceTime = model.Int(int64(r)), int64(r+1)
			}
			store.Process(batch)
		}
	}()
	select {
	case <-done:
	case <-time.After(streamHangBound):
		t.Fatal("Process is held back by a client that does not read")
	}
	last := map[string]string{}
	for len(last) < tags || func() bool {
		for _, v := range last {
			if v != strconv.Itoa(rounds) {
				return true
			}
		}
		return false
	}() {
		v, _ := s.nextSample(t)
		last[v.Path] = string(v.Value)
	}
	if st := store.Status(); st.Counters["subscriber_skipped_samples"] == 0 {
		t.Fatalf("nothing skipped: %+v", st)
	}
}
