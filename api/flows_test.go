package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/auth"
	"github.com/weir-edge/weir/flows"
	"github.com/weir-edge/weir/security"
)

type fixedFlows struct{ m flows.Map }

func (f fixedFlows) Map() flows.Map { return f.m }

var sampleFlowMap = flows.Map{Node: "gw", At: time.Date(2026, 12, 7, 23, 0, 0, 0, time.UTC), WindowSeconds: 10,
	Sources: []flows.Source{{Name: "plc", Kind: "modbus", State: "running", Up: true, Samples: flows.Count{Total: 100, PerSecond: 10}}},
	Chain:   flows.Chain{Processors: []string{"rules"}, In: flows.Count{Total: 100, PerSecond: 10}},
	Sinks: []flows.Sink{{Name: "cloud", Kind: "kafka", State: "running", Up: true, MaxClass: "public", Routed: true,
		Route:  flows.Route{Include: []string{"plant/#"}, Quality: "good", Processors: []string{"sink/cloud/window"}},
		Denied: flows.Count{Total: 3, PerSecond: 0.3}, WireBytes: flows.Count{Total: 2000, PerSecond: 200}}},
}

// GET /api/v1/flows answers the map as JSON, documented in openapi.json,
// to a viewer; nothing is mounted without a mapper. (The schema test
// checks the answer too; this one checks what it says.)
func TestFlowsEndpoint(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	ar := newAuthRig(t, auth.Config{}) // mounts Flows with sampleFlowMap
	for _, tc := range []struct {
		name string
		role security.Role
		code int
	}{
		{"viewer", security.Viewer, 200},
		{"unauthenticated", "", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/api/v1/flows", nil)
			req.RemoteAddr = "192.0.2.10:41000"
			if tc.role != "" {
				req.Header.Set("Authorization", "Bearer "+ar.tokens[tc.role])
			}
			rec := httptest.NewRecorder()
			ar.h.ServeHTTP(rec, req)
			if rec.Code != tc.code {
				t.Fatalf("%d %s, want %d", rec.Code, rec.Body.String(), tc.code)
			}
			if tc.code != 200 {
				return
			}
			s, err := documentedResponse(t, doc, "GET /api/v1/flows", 200, rec.Header().Get("Content-Type"))
			if err != nil {
				t.Fatal(err)
			}
			var v any
			if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
				t.Fatal(err)
			}
			if err := checkSchema(doc, s, v, "body"); err != nil {
				t.Errorf("answer does not match FlowMap: %v\n%s", err, rec.Body.String())
			}
			if !strings.Contains(rec.Body.String(), `"denied_samples":{"total":3,"per_second":0.3}`) {
				t.Errorf("answer lacks the denied count: %s", rec.Body.String())
			}
		})
	}
	mux := http.NewServeMux()
	(&Flows{}).Mount(mux)
	if _, pattern := mux.Handler(httptest.NewRequest("GET", "/api/v1/flows", nil)); pattern != "" {
		t.Errorf("mounted %q without a mapper", pattern)
	}
}
