package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"

	"github.com/weir-edge/weir/internal/third_party/gopcua/ua"
	"gopkg.in/yaml.v3"

	"github.com/weir-edge/weir/sim"
	simopcua "github.com/weir-edge/weir/sim/opcua"
	opcuasrc "github.com/weir-edge/weir/sources/opcua"
)

func TestBrowseSimulator(t *testing.T) {
	srv, err := simopcua.Serve(context.Background(), "127.0.0.1:0", sim.NewPlant(sim.PlantOptions{Seed: 1}), simopcua.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	t.Run("tree", func(t *testing.T) {
		var out, errb bytes.Buffer
		if err := runNamed(context.Background(), "browse", []string{srv.Endpoint(), "-root", "ns=1;s=filler", "-depth", "1"}, &out, &errb); err != nil {
			t.Fatalf("%v; stderr: %s", err, errb.String())
		}
		for _, want := range []string{
			"product_temp (ns=1;s=filler.product_temp) Variable Float access=r",
			"speed_setpoint (ns=1;s=filler.speed_setpoint) Variable UInt16 access=rw",
			"run_cmd (ns=1;s=filler.run_cmd) Variable Boolean access=rw",
		} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("output lacks %q:\n%s", want, out.String())
			}
		}
	})
	t.Run("snippet", func(t *testing.T) {
		var out, errb bytes.Buffer
		if err := runNamed(context.Background(), "browse", []string{"-depth", "2", "-snippet", srv.Endpoint()}, &out, &errb); err != nil {
			t.Fatalf("%v; stderr: %s", err, errb.String())
		}
		// The snippet plus an endpoint is a valid source configuration.
		cfg := opcuasrc.Config{}
		dec := yaml.NewDecoder(&out)
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil {
			t.Fatal(err)
		}
		cfg.Endpoint, cfg.SecurityPolicy = srv.Endpoint(), "None"
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		items := cfg.Subscriptions[0].Items
		found := false
		for _, it := range items {
			if it.Name == "filler/product_temp" && it.NodeID == "nsu="+simopcua.NamespaceURI+";s=filler.product_temp" {
				found = true
			}
		}
		if !found || len(items) < 30 {
			t.Errorf("%d items, product_temp found %v: %+v", len(items), found, items)
		}
	})
	t.Run("usage", func(t *testing.T) {
		var out, errb bytes.Buffer
		if err := runNamed(context.Background(), "browse", nil, &out, &errb); !errors.Is(err, errUsage) {
			t.Errorf("no endpoint: %v", err)
		}
	})
}

// fakeSpace is an address space for the walker: children by parent id.
type fakeSpace map[string][]*ua.ReferenceDescription

func (f fakeSpace) add(parent, id, name string, class ua.NodeClass) {
	n := ua.MustParseNodeID(id)
	f[parent] = append(f[parent], &ua.ReferenceDescription{NodeID: ua.NewExpandedNodeID(n, "", 0),
		BrowseName: &ua.QualifiedName{Name: name}, NodeClass: class})
}

func (f fakeSpace) Browse(_ context.Context, req *ua.BrowseRequest) (*ua.BrowseResponse, error) {
	refs := f[req.NodesToBrowse[0].NodeID.String()]
	return &ua.BrowseResponse{Results: []*ua.BrowseResult{{StatusCode: ua.StatusOK, References: refs}}}, nil
}

func (f fakeSpace) BrowseNext(context.Context, *ua.BrowseNextRequest) (*ua.BrowseNextResponse, error) {
	return &ua.BrowseNextResponse{}, nil
}

func (f fakeSpace) Read(_ context.Context, req *ua.ReadRequest) (*ua.ReadResponse, error) {
	return &ua.ReadResponse{Results: make([]*ua.DataValue, len(req.NodesToRead))}, nil
}

// A plant modelled Objects/Plant/Line/Machine/Variable next to the
// Server object's diagnostics: the default walk shows the variables and
// none of the diagnostics.
func TestBrowseDefaultsReachThePlant(t *testing.T) {
	space := fakeSpace{}
	space.add("i=85", "i=2253", "Server", ua.NodeClassObject)
	for i := range 200 {
		space.add("i=2253", fmt.Sprintf("i=%d", 3000+i), fmt.Sprintf("Diag%d", i), ua.NodeClassVariable)
	}
	space.add("i=85", "ns=2;s=Plant", "Plant", ua.NodeClassObject)
	space.add("ns=2;s=Plant", "ns=2;s=Line1", "Line1", ua.NodeClassObject)
	space.add("ns=2;s=Line1", "ns=2;s=Filler", "Filler", ua.NodeClassObject)
	space.add("ns=2;s=Filler", "ns=2;s=Filler.Speed", "Speed", ua.NodeClassVariable)
	space.add("ns=2;s=Filler", "ns=2;s=Filler.Temp", "Temp", ua.NodeClassVariable)

	fs := flag.NewFlagSet("browse", flag.ContinueOnError)
	defineBrowse(fs)
	depth := fs.Lookup("depth").Value.(flag.Getter).Get().(int)
	for _, tt := range []struct {
		name         string
		server       bool
		wantVars     int
		wantServer   bool
		wantSkipNote bool
	}{
		{"default", false, 2, false, true},
		{"-server", true, 202, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWalker(space, depth, tt.server, nil)
			var out bytes.Buffer
			if err := w.run(context.Background(), ua.MustParseNodeID("i=85"), "Objects", false, &out); err != nil {
				t.Fatal(err)
			}
			if len(w.vars) != tt.wantVars {
				t.Errorf("%d variables, want %d:\n%s", len(w.vars), tt.wantVars, out.String())
			}
			if got := strings.Contains(out.String(), "Server (i=2253)"); got != tt.wantServer {
				t.Errorf("Server shown %v, want %v", got, tt.wantServer)
			}
			if got := strings.Contains(out.String(), "-server includes it"); got != tt.wantSkipNote {
				t.Errorf("skip note %v, want %v", got, tt.wantSkipNote)
			}
			if !strings.Contains(out.String(), "        Speed (ns=2;s=Filler.Speed) Variable") {
				t.Errorf("the machine's variables are not shown:\n%s", out.String())
			}
		})
	}
}

// Against the simulator, from the Objects folder with the defaults.
func TestBrowseSimulatorDefaults(t *testing.T) {
	srv, err := simopcua.Serve(context.Background(), "127.0.0.1:0", sim.NewPlant(sim.PlantOptions{Seed: 1}), simopcua.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, tt := range []struct {
		args       []string
		wantServer bool
	}{
		{[]string{srv.Endpoint()}, false},
		{[]string{srv.Endpoint(), "-server", "-depth", "1"}, true},
	} {
		var out, errb bytes.Buffer
		if err := runNamed(context.Background(), "browse", tt.args, &out, &errb); err != nil {
			t.Fatalf("%v: %v; stderr: %s", tt.args, err, errb.String())
		}
		if got := strings.Contains(out.String(), "Server (i=2253) Object"); got != tt.wantServer {
			t.Errorf("%v: Server object shown %v, want %v:\n%s", tt.args, got, tt.wantServer, out.String())
		}
		if !tt.wantServer && !strings.Contains(out.String(), "product_temp (ns=1;s=filler.product_temp) Variable") {
			t.Errorf("%v: variables not reached:\n%s", tt.args, out.String())
		}
	}
}
