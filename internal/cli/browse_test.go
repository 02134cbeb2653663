package cli

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

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
