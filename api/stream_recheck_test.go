package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/auth"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/processors/latest"
	"github.com/weir-edge/weir/security"
)

// openAuthStream opens the stream with the header set (a cookie or a
// bearer token), bounded by streamHangBound.
func openAuthStream(t *testing.T, url, header, value string) *sseReader {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), streamHangBound)
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(header, value)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: %d", resp.StatusCode)
	}
	return &sseReader{resp: resp, br: bufio.NewReader(resp.Body)}
}

// TestStreamEndsWithCredentials: logout, token revocation and the
// revocation of the token a session was opened with each end an open
// stream at the next recheck, long before StreamMaxAge.
func TestStreamEndsWithCredentials(t *testing.T) {
	a, err := auth.New(auth.Config{RateLimit: "100000/min"}, auth.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	store := latest.New(0)
	store.Process([]model.Sample{{Path: "a", Value: model.Int(1)}})
	// Heartbeat and max age far beyond the test: only the recheck ends it.
	v := &Values{Store: store, StreamRecheck: 20 * time.Millisecond, StreamHeartbeat: time.Hour, StreamMaxAge: time.Hour}
	base, _ := serve(t, Options{Status: &fakeStatus{}, Auth: a, Extra: v.Mount})

	newToken := func(t *testing.T) (string, string) {
		tok, info, err := a.Tokens().Create("stream-user", security.Viewer, time.Hour, "")
		if err != nil {
			t.Fatal(err)
		}
		return tok, info.ID
	}
	login := func(t *testing.T, tok string) *http.Cookie {
		c, d := a.Login(httptest.NewRequest("POST", "/ui/login", nil), "", "", tok)
		if d.Outcome != auth.OK || c == nil {
			t.Fatalf("login: %+v", d)
		}
		return c
	}
	for _, tc := range []struct {
		name string
		// start opens a stream and returns what ends its credentials.
		start func(t *testing.T) (*sseReader, func())
	}{
		{"token revoked", func(t *testing.T) (*sseReader, func()) {
			tok, id := newToken(t)
			s := openAuthStream(t, base+"/api/v1/stream", "Authorization", "Bearer "+tok)
			return s, func() {
				if _, err := a.Tokens().Revoke(id); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"logout", func(t *testing.T) (*sseReader, func()) {
			tok, _ := newToken(t)
			c := login(t, tok)
			s := openAuthStream(t, base+"/api/v1/stream", "Cookie", c.Name+"="+c.Value)
			return s, func() {
				r := httptest.NewRequest("POST", "/ui/logout", nil)
				r.AddCookie(c)
				a.Logout(r)
			}
		}},
		{"session token revoked", func(t *testing.T) (*sseReader, func()) {
			tok, id := newToken(t)
			c := login(t, tok)
			s := openAuthStream(t, base+"/api/v1/stream", "Cookie", c.Name+"="+c.Value)
			return s, func() {
				if _, err := a.Tokens().Revoke(id); err != nil {
					t.Fatal(err)
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, end := tc.start(t)
			s.nextSample(t)
			// Still open across several rechecks while the credentials hold.
			store.Process([]model.Sample{{Path: "a", Value: model.Int(2)}})
			s.nextSample(t)
			end()
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
			if last.comment != "credentials ended" {
				t.Fatalf("last event %+v, want the credentials-ended comment", last)
			}
		})
	}
}

// TestCSRFMessage: a session request without the CSRF token is told so
// (reload the page), not that its role is too low; a role too low still
// hears that.
func TestCSRFMessage(t *testing.T) {
	a, err := auth.New(auth.Config{RateLimit: "100000/min"}, auth.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := a.Tokens().Create("op", security.Operator, time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	c, d := a.Login(httptest.NewRequest("POST", "/ui/login", nil), "", "", tok)
	if d.Outcome != auth.OK {
		t.Fatal(d.Outcome)
	}
	h := RequireAuth(a, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	for _, tc := range []struct{ name, path, want string }{
		{"no CSRF token", "/api/v1/write", CSRFMessage},
		{"role too low", "/api/v1/tokens", "your role does not allow this"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", tc.path, strings.NewReader(`{}`))
			r.AddCookie(c)
			if tc.name == "role too low" {
				s, _ := a.Session(r)
				r.Header.Set(auth.CSRFHeader, s.CSRF)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			var body struct{ Error string }
			_ = json.Unmarshal(rec.Body.Bytes(), &body)
			if rec.Code != http.StatusForbidden || body.Error != tc.want {
				t.Fatalf("%d %q, want 403 %q", rec.Code, body.Error, tc.want)
			}
		})
	}
}
