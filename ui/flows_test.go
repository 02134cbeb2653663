package ui

import (
	"html"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/api"
	"github.com/weir-edge/weir/auth"
	"github.com/weir-edge/weir/flows"
	"github.com/weir-edge/weir/security"
)

type fixedFlows struct{ m flows.Map }

func (f fixedFlows) Map() flows.Map { return f.m }

// The Flows page (viewer) and its fragment show every source, the chain
// and each sink with its class, route and figures; without a map it says
// so.
func TestFlowsPage(t *testing.T) {
	m := flows.Map{Node: "gw1", At: time.Now(), WindowSeconds: 10,
		Sources: []flows.Source{{Name: "plc1", Kind: "modbus", State: "running", Up: true, Samples: flows.Count{Total: 1000, PerSecond: 100}}},
		Chain:   flows.Chain{Processors: []string{"scale", "rules"}},
		Sinks: []flows.Sink{{Name: "cloud", Kind: "kafka", State: "running", Up: true, MaxClass: "public", Routed: true,
			Route:   flows.Route{Include: []string{"plant/+/temp"}, Exclude: []string{"plant/secret/#"}, Quality: "good", Processors: []string{"window"}},
			Written: flows.Count{Total: 50, PerSecond: 12.5}, Denied: flows.Count{Total: 3}, WireBytes: flows.Count{Total: 25000, PerSecond: 2500},
			In: flows.Count{Total: 1000}, Filtered: flows.Count{Total: 900}, ChainIn: flows.Count{Total: 97}, ChainOut: flows.Count{Total: 52},
			Restart: flows.Restart{RateSeconds: 4, RestartedAfter: time.Now().Add(-5 * time.Second)}}},
	}
	for _, tc := range []struct {
		name   string
		mapper FlowMapper
		path   string
		has    []string
	}{
		{"page", fixedFlows{m}, "/ui/flows", []string{`id="flowmap"`, `hx-get="/ui/flows/map"`, `href="/ui/flows" aria-current="page"`,
			`id="source-plc1"`, "<li>scale</li><li>rules</li>", `id="sink-cloud"`, "≤ public", "<code>plant/+/temp</code>",
			"exclude <code>plant/secret/#</code>", "quality good", "then window", `<span class="v sent">12.5</span>`,
			`<span class="v wire">2.5 kB/s</span>`, `class="fig denied-some"><span class="v denied">3</span>`, "css/flows.css",
			"1\u202f000 in = 900 filtered + 3 denied + <span class=\"chain-in\">97</span> to its chain → <span class=\"chain-out\">52</span> to the buffer",
			"rates are over the last 4 s"}},
		{"fragment", fixedFlows{m}, "/ui/flows/map", []string{`id="sink-cloud"`, "Rates per second over the last 10 s."}},
		{"no map", nil, "/ui/flows", []string{"No data-flow map in this process."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := auth.New(auth.Config{}, auth.Options{DataDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			u, err := New(Options{Sessions: a, Flows: tc.mapper, NodeID: "gw1", Version: "test"})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(api.New(api.Options{Status: fixedStatus{}, Auth: a, Extra: u.Mount}).Handler())
			defer srv.Close()
			tok, _, err := a.Tokens().Create("v", security.Viewer, time.Hour, "")
			if err != nil {
				t.Fatal(err)
			}
			r := &rig{srv: srv, authn: a}
			c := r.client(t)
			r.login(t, c, url.Values{"token": {tok}})
			resp, body := get(t, c, srv.URL+tc.path)
			if resp.StatusCode != 200 {
				t.Fatalf("%d", resp.StatusCode)
			}
			text := html.UnescapeString(body) // html/template writes + as &#43;
			for _, s := range tc.has {
				if !strings.Contains(text, s) {
					t.Errorf("lacks %q", s)
				}
			}
			if strings.Contains(body, "<script>") || strings.Contains(body, " style=") {
				t.Error("inline script or style: the CSP forbids them")
			}
		})
	}
}
