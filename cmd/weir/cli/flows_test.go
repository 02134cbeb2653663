package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/auth"
	"github.com/weir-edge/weir/flows"
	"github.com/weir-edge/weir/security"
	"github.com/weir-edge/weir/sim"
)

// weir flows, against a real gateway (the demo's configuration: a
// simulated PLC, an MQTT sink whose broker is away, the local
// historian): the map names each source and sink with its kind, class and
// route, the historian's rate and the MQTT sink's denied samples appear,
// -json is the API's answer, and a
// request without a token is refused with a hint.
func TestFlowsCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := sim.New(sim.Config{Listen: "127.0.0.1:0", Seed: 7, NoFaults: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dir := t.TempDir()
	text, err := demoConfig(s.Addr(), "127.0.0.1:1", "127.0.0.1:0", "weir-test", dir)
	if err != nil {
		t.Fatal(err)
	}
	text = strings.Replace(text, "    historian:\n", "    max_class: confidential\n    route: {exclude: [acme/+/secret], quality: not_bad}\n    historian:\n", 1)
	// uns takes public tags only: every demo tag (internal by default)
	// is held back from it.
	text = strings.Replace(text, "    mqtt:\n", "    max_class: public\n    mqtt:\n", 1)
	file := filepath.Join(t.TempDir(), "weir.yaml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- runNamed(ctx, "run", []string{"--log-level", "error", file}, &bytes.Buffer{}, &syncBuffer{})
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("weir run: %v", err)
			}
		case <-time.After(2 * time.Minute):
			t.Error("weir run did not stop within 2 min")
		}
	}()
	waitFile(t, filepath.Join(dir, apiAddrFile), done)
	store, err := auth.OpenTokens(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := store.Create("flows-viewer", security.Viewer, time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	tf := filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(tf, []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := runNamed(context.Background(), "flows", append([]string{"--data-dir", dir}, args...), &out, &errOut)
		return out.String() + errOut.String(), err
	}

	// addsUp: every routed sink's in = filtered + denied + chain_in, the
	// identity the answer must let one check (finding 6: chain_in was
	// missing). The counters are read one by one while batches flow, so
	// an answer that raced a batch may be a batch apart: poll for one that
	// adds up (a missing or wrong term never does).
	addsUp := func(m flows.Map) bool {
		for _, sk := range m.Sinks {
			if sk.Routed && sk.In.Total != sk.Filtered.Total+sk.Denied.Total+sk.ChainIn.Total {
				return false
			}
		}
		return true
	}
	// Poll -json until the historian shows a rate and its counters add up
	// (a bounded wait).
	var m flows.Map
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, err := run("-token-file", tf, "-json")
		if err != nil {
			t.Fatalf("weir flows -json: %v\n%s", err, out)
		}
		m = flows.Map{}
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("-json is not the map: %v\n%s", err, out)
		}
		if hist, uns := sinkOf(m, "history"), sinkOf(m, "uns"); hist != nil && hist.Written.PerSecond > 0 && hist.ChainIn.Total > 0 && uns != nil && uns.Denied.Total > 0 && addsUp(m) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("in 2 min no answer with the historian's rate, uns's denied samples and in = filtered + denied + chain_in for every sink: %s", out)
		}
		time.Sleep(100 * time.Millisecond) // polling, not synchronisation
	}
	hist := sinkOf(m, "history")
	if hist.Kind != "historian" || hist.MaxClass != "confidential" || hist.Route.Quality != "not_bad" || !hist.Routed || hist.Denied.Total != 0 {
		t.Errorf("history sink %+v", hist)
	}
	if hist.In.Total != hist.Filtered.Total+hist.Denied.Total+hist.ChainIn.Total || hist.InBytes.Total == 0 || hist.OutBytes.Total == 0 {
		t.Errorf("history sink %+v: in = filtered + denied + chain_in, bytes in and out", hist)
	}
	if uns := sinkOf(m, "uns"); uns.MaxClass != "public" || uns.ChainIn.Total != 0 || uns.ChainOut.Total != 0 || uns.Written.Total != 0 {
		t.Errorf("uns sink %+v: nothing may enter its buffer", uns)
	}

	out, err := run("-token-file", tf)
	if err != nil {
		t.Fatalf("weir flows: %v\n%s", err, out)
	}
	for _, want := range []string{
		"Data flows of weir-demo",
		"filling-line  modbus",
		"shared chain: security-events → rules → alarms → latest-values",
		"history  historian",
		"confidential",
		"  every tag exclude acme/+/secret quality not_bad\n",
		"  every tag\n",
		"IN = FILTERED + DENIED + CHAIN IN",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("weir flows lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`(?m)^uns\s+mqtt\s+\S+\s+public\s`).MatchString(out) {
		t.Errorf("no line for uns, an MQTT sink of class public:\n%s", out)
	}
	t.Setenv("WEIR_TOKEN", "")
	if out, err := run(); err == nil || !strings.Contains(err.Error(), "wants a token") {
		t.Errorf("without a token: %v, want a hint to give one\n%s", err, out)
	}
}

func sinkOf(m flows.Map, name string) *flows.Sink {
	for i := range m.Sinks {
		if m.Sinks[i].Name == name {
			return &m.Sinks[i]
		}
	}
	return nil
}
