package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/alarms"
)

// newAlarmsRig mounts the alarm endpoints over a manager with one active
// alarm ("hot") and one normal one ("low_level"); the user comes from the
// X-Test-User header as in newValuesRig.
func newAlarmsRig(t *testing.T) (http.Handler, *alarms.Manager) {
	t.Helper()
	m, err := alarms.New(alarms.Config{Prefix: "plant", MaxShelve: 8 * time.Hour}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []alarms.Def{{Name: "hot", Priority: alarms.High, Message: "too hot"}, {Name: "low_level", Priority: alarms.Low}} {
		if err := m.Define(d); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Raise("hot", time.Now()); err != nil {
		t.Fatal(err)
	}
	auth := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u := r.Header.Get("X-Test-User"); u != "" {
				r = r.WithContext(WithUser(r.Context(), u))
			}
			next.ServeHTTP(w, r)
		})
	}
	a := &Alarms{Store: m}
	return New(Options{Status: &fakeStatus{}, Middleware: auth, Extra: a.Mount}).Handler(), m
}

func TestAlarmEndpoints(t *testing.T) {
	h, m := newAlarmsRig(t)
	until := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	tests := []struct {
		name, method, path, body, ctype, user string
		code                                  int
		check                                 func(t *testing.T, body string)
	}{
		{"list", "GET", "/api/v1/alarms", "", "", "", 200, func(t *testing.T, b string) {
			var out struct{ Alarms []alarms.Alarm }
			if json.Unmarshal([]byte(b), &out) != nil || len(out.Alarms) != 2 || out.Alarms[0].Name != "hot" || out.Alarms[0].State != alarms.Unack {
				t.Fatalf("list %s", b)
			}
		}},
		{"list filtered", "GET", "/api/v1/alarms?state=unack&priority=high", "", "", "", 200, func(t *testing.T, b string) {
			if !strings.Contains(b, `"hot"`) || strings.Contains(b, "low_level") {
				t.Fatalf("filtered %s", b)
			}
		}},
		{"list bad filter", "GET", "/api/v1/alarms?shelved=maybe", "", "", "", 400, nil},
		{"get", "GET", "/api/v1/alarms/low_level", "", "", "", 200, func(t *testing.T, b string) {
			if !strings.Contains(b, `"state":"normal"`) {
				t.Fatalf("get %s", b)
			}
		}},
		{"get unknown", "GET", "/api/v1/alarms/nope", "", "", "", 404, nil},
		{"ack needs JSON", "POST", "/api/v1/alarms/hot/ack", "", "text/plain", "alice", 415, nil},
		{"ack bad body", "POST", "/api/v1/alarms/hot/ack", `{"who":"x"}`, "application/json", "alice", 400, nil},
		{"ack", "POST", "/api/v1/alarms/hot/ack", `{"comment":"on it"}`, "application/json", "alice", 200, func(t *testing.T, b string) {
			if !strings.Contains(b, `"state":"acked"`) || !strings.Contains(b, `"acked_by":"api:alice"`) || !strings.Contains(b, `"ack_comment":"on it"`) {
				t.Fatalf("ack %s", b)
			}
		}},
		{"ack twice", "POST", "/api/v1/alarms/hot/ack", "", "application/json", "alice", 409, nil},
		{"ack unknown", "POST", "/api/v1/alarms/nope/ack", "", "application/json", "alice", 404, nil},
		{"shelve needs a time", "POST", "/api/v1/alarms/hot/shelve", `{"reason":"x"}`, "application/json", "bob", 400, nil},
		{"shelve bad duration", "POST", "/api/v1/alarms/hot/shelve", `{"duration":"soon"}`, "application/json", "bob", 400, nil},
		{"shelve too long", "POST", "/api/v1/alarms/hot/shelve", `{"duration":"9h"}`, "application/json", "bob", 400, nil},
		{"shelve for", "POST", "/api/v1/alarms/hot/shelve", `{"duration":"30m","reason":"sensor swap"}`, "application/json", "bob", 200, func(t *testing.T, b string) {
			if !strings.Contains(b, `"shelved":true`) || !strings.Contains(b, `"shelved_by":"api:bob"`) || !strings.Contains(b, `"shelve_reason":"sensor swap"`) {
				t.Fatalf("shelve %s", b)
			}
		}},
		{"shelve until", "POST", "/api/v1/alarms/low_level/shelve", `{"until":"` + until + `"}`, "application/json", "", 200, func(t *testing.T, b string) {
			if !strings.Contains(b, `"shelved_by":"api:anonymous"`) {
				t.Fatalf("shelve until %s", b)
			}
		}},
		{"list shelved", "GET", "/api/v1/alarms?shelved=true", "", "", "", 200, func(t *testing.T, b string) {
			if !strings.Contains(b, `"hot"`) || !strings.Contains(b, "low_level") {
				t.Fatalf("shelved %s", b)
			}
		}},
		{"unshelve", "POST", "/api/v1/alarms/hot/unshelve", `{}`, "application/json", "bob", 200, func(t *testing.T, b string) {
			if !strings.Contains(b, `"shelved":false`) {
				t.Fatalf("unshelve %s", b)
			}
		}},
		{"unshelve not shelved", "POST", "/api/v1/alarms/hot/unshelve", ``, "application/json", "bob", 409, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			if tt.user != "" {
				req.Header.Set("X-Test-User", tt.user)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.code {
				t.Fatalf("%s %s: %d %s, want %d", tt.method, tt.path, rec.Code, rec.Body.String(), tt.code)
			}
			if !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("not JSON: %q", rec.Body.String())
			}
			if tt.check != nil {
				tt.check(t, rec.Body.String())
			}
		})
	}
	// Every operator action became an event for the sinks.
	var kinds []string
	for _, s := range m.Drain(nil) {
		var e alarms.Event
		if err := json.Unmarshal([]byte(s.Value.AsString()), &e); err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, string(e.Transition)+":"+e.Alarm)
	}
	if got := strings.Join(kinds, " "); got != "raise:hot ack:hot shelve:hot shelve:low_level unshelve:hot" {
		t.Fatalf("events %s", got)
	}
}

func FuzzAlarmBody(f *testing.F) {
	f.Add(`{"comment":"x"}`)
	f.Add(`{"duration":"30m","reason":"r"}`)
	f.Add(`{"until":"2025-05-01T10:00:00Z"}`)
	f.Add(``)
	h := func() http.Handler {
		m, _ := alarms.New(alarms.Config{}, "", nil)
		_ = m.Define(alarms.Def{Name: "a", Priority: alarms.Low})
		mux := http.NewServeMux()
		(&Alarms{Store: m}).Mount(mux)
		return mux
	}()
	f.Fuzz(func(t *testing.T, body string) {
		for _, op := range []string{"ack", "shelve", "unshelve"} {
			req := httptest.NewRequest("POST", "/api/v1/alarms/a/"+op, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code >= 500 || !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("%s %q: %d %q", op, body, rec.Code, rec.Body.String())
			}
		}
	})
}
