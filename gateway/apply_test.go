package gateway

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/alarms"
	"github.com/weir-edge/weir/buffer/durable"
	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/security"
	"github.com/weir-edge/weir/writegate"
)

// offlineConfig is a gateway whose PLC answers (a simulated one) and
// whose MQTT sinks do not (port 1): the sinks' disk buffers fill.
func offlineConfig(t *testing.T, dir, plc string, sinks ...string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "node: {id: apply-test}\ndata_dir: %q\nsources:\n%ssinks:\n", dir, modbusSource(t, "plc1", plc, "plant/plc1"))
	for _, s := range sinks {
		fmt.Fprintf(&b, "  - name: %s\n    buffer: {type: disk}\n    mqtt: {url: \"tcp://127.0.0.1:1\", client_id: apply-%s}\n", s, s)
	}
	return b.String()
}

// startFromFile writes text to DIR/weir.yaml and runs a gateway from it,
// recording its security events in events.
func startFromFile(t *testing.T, dir, text string) (*Gateway, *eventList, func()) {
	t.Helper()
	file := filepath.Join(dir, "weir.yaml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(file, []byte(text), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(cfg, Options{Logger: testLogger(t), ConfigPath: file, ConfigData: []byte(text)})
	if err != nil {
		t.Fatal(err)
	}
	events := &eventList{}
	g.events = security.Fanout{g.events, events}
	return g, events, runGateway(t, g)
}

// An invalid configuration is refused with every problem at its line, the
// running one stays (same hash, same components), the file is not
// rewritten, and the refusal is audited.
func TestApplyRefusesInvalidConfig(t *testing.T) {
	dir := t.TempDir()
	text := offlineConfig(t, dir, startPlant(t, 7), "out")
	g, events, _ := startFromFile(t, dir, text)
	before := (configManager{g}).Running()
	bad := strings.Replace(text, "client_id: apply-out}", "client_id: apply-out, qos: 7}", 1) +
		"  - name: out\n    buffer: {type: memory}\n    mqtt: {url: \"tcp://127.0.0.1:1\", client_id: twice}\nbogus_key: 1\n"
	res, err := (configManager{g}).Apply(context.Background(), []byte(bad), "api:eve", true)
	if !errors.Is(err, ErrInvalid) || res.Valid || res.Applied {
		t.Fatalf("apply = %+v, %v; want refused", res, err)
	}
	var keys []string
	for _, p := range res.Errors {
		if p.Line == 0 {
			t.Errorf("problem without a line: %+v", p)
		}
		keys = append(keys, p.Key)
	}
	for _, want := range []string{"sinks[0].mqtt.qos", "sinks[1].name", "bogus_key"} {
		if !strings.Contains(strings.Join(keys, " "), want) {
			t.Errorf("no problem at %s among %+v", want, res.Errors)
		}
	}
	after := (configManager{g}).Running()
	if after.SHA256 != before.SHA256 || after.YAML != text {
		t.Fatal("the running configuration changed")
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "weir.yaml")); string(data) != text {
		t.Fatal("the file was rewritten")
	}
	if _, err := os.Stat(filepath.Join(dir, "weir.yaml.prev")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a .prev was written: %v", err)
	}
	ev := events.Last(security.ConfigApplied)
	if ev.Outcome != "refused" || ev.Actor != "api:eve" || !strings.Contains(ev.Detail, "sha256 "+res.SHA256) {
		t.Fatalf("refusal event %+v", ev)
	}
	if _, ok := sinkStatus(g.Engine(), "out"); !ok {
		t.Fatal("sink out is gone")
	}
}

// A sink removed by an apply through the API stops; what its durable
// buffer holds stays on disk (readable once released); the file is
// rewritten with the old text kept as .prev; reload re-reads the file.
func TestApplyRemovesSinkKeepingBuffer(t *testing.T) {
	dir := t.TempDir()
	plc := startPlant(t, 7)
	text := offlineConfig(t, dir, plc, "out", "spare")
	g, _, _ := startFromFile(t, dir, text)
	waitFor(t, "samples held in spare's buffer", func() bool {
		st, _ := sinkStatus(g.Engine(), "spare")
		return st.Buffer != nil && st.Buffer.Depth > 0
	})
	smaller := offlineConfig(t, dir, plc, "out")
	res, err := (configManager{g}).Apply(context.Background(), []byte(smaller), "api:eve", true)
	if err != nil || !res.Applied || res.Summary != "sinks: -spare" {
		t.Fatalf("apply = %+v, %v", res, err)
	}
	if _, ok := sinkStatus(g.Engine(), "spare"); ok {
		t.Fatal("sink spare still runs")
	}
	file := filepath.Join(dir, "weir.yaml")
	if data, _ := os.ReadFile(file); string(data) != smaller {
		t.Fatal("the file does not hold the applied text")
	}
	if data, _ := os.ReadFile(file + ".prev"); string(data) != text {
		t.Fatal("the .prev file does not hold the old text")
	}
	b, err := durable.Open(durable.Config{Dir: filepath.Join(dir, "buffers", "spare")}, nil)
	if err != nil {
		t.Fatalf("the removed sink's buffer: %v", err)
	}
	depth := b.Stats().Depth
	_ = b.Release()
	if depth == 0 {
		t.Fatal("the removed sink's buffer is empty on disk")
	}

	// The file changes behind the gateway's back; reload picks it up.
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err = (configManager{g}).Reload(context.Background(), "sighup")
	if err != nil || !res.Applied || res.Summary != "sinks: +spare" {
		t.Fatalf("reload = %+v, %v", res, err)
	}
	waitFor(t, "spare back with its buffer", func() bool {
		st, ok := sinkStatus(g.Engine(), "spare")
		return ok && st.Buffer != nil && st.Buffer.Depth >= depth
	})
}

// Validate says what an apply would do without doing it; restart-only
// keys are listed; nothing changes.
func TestCheckListsRestartKeys(t *testing.T) {
	dir := t.TempDir()
	text := offlineConfig(t, dir, startPlant(t, 7), "out")
	g, _, _ := startFromFile(t, dir, text)
	changed := strings.Replace(text, "node: {id: apply-test}", "node: {id: apply-test-2}", 1) +
		"write_limits: {per_caller: 5/min}\nalarms: {state_file: alarms.json}\n"
	res := (configManager{g}).Check(context.Background(), []byte(changed))
	if !res.Valid || res.Applied || strings.Join(res.RestartNeeded, ",") != "alarms.state_file,node" {
		t.Fatalf("check = %+v", res)
	}
	if !strings.Contains(res.Diff, "-node: {id: apply-test}\n+node: {id: apply-test-2}\n") {
		t.Fatalf("diff:\n%s", res.Diff)
	}
	if (configManager{g}).Running().YAML != text {
		t.Fatal("check changed the running configuration")
	}
}

// A gateway from no file (the demo) applies through the API in memory
// only, and has no file to reload; applies are serialised and each is
// audited once.
func TestApplyWithoutFile(t *testing.T) {
	dir := t.TempDir()
	plc := startPlant(t, 7)
	text := offlineConfig(t, dir, plc, "out")
	cfg, err := config.Parse("demo.yaml", []byte(text), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(cfg, Options{Logger: testLogger(t), Actor: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	events := &eventList{}
	g.events = security.Fanout{g.events, events}
	runGateway(t, g)
	if rc := (configManager{g}).Running(); rc.Path != "" || !strings.Contains(rc.YAML, "plc1") {
		t.Fatalf("running: %+v", rc)
	}
	if _, err := (configManager{g}).Reload(context.Background(), "cli"); !errors.Is(err, ErrNoFile) {
		t.Fatalf("reload: %v, want ErrNoFile", err)
	}
	texts := []string{offlineConfig(t, dir, plc, "out", "a"), offlineConfig(t, dir, plc, "out", "b")}
	errs := make(chan error, len(texts))
	for _, txt := range texts {
		go func() {
			_, err := (configManager{g}).Apply(context.Background(), []byte(txt), "api:eve", true)
			errs <- err
		}()
	}
	for range texts {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	final := (configManager{g}).Running().YAML
	if final != texts[0] && final != texts[1] {
		t.Fatal("the running text is neither applied text")
	}
	sinks := map[string]bool{}
	for _, c := range g.Engine().Status().Components {
		if c.Kind == "sink" {
			sinks[c.Name] = true
		}
	}
	want := "a"
	if final == texts[1] {
		want = "b"
	}
	if len(sinks) != 2 || !sinks["out"] || !sinks[want] {
		t.Fatalf("sinks %v, want out and %s", sinks, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "weir.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a file was written: %v", err)
	}
	if n := events.Count(security.ConfigApplied); n != 3 {
		t.Fatalf("config.applied events = %d, want the start and 2 applies", n)
	}
}

// Write policies apply live: a write the running policies deny is allowed
// (and reaches the device) once an apply adds a policy for it.
func TestApplyWritePoliciesLive(t *testing.T) {
	dir := t.TempDir()
	plc := startPlant(t, 7)
	text := offlineConfig(t, dir, plc, "out")
	g, _, _ := startFromFile(t, dir, text)
	write := func() error {
		_, err := g.gate.Write(context.Background(), writegate.Request{Path: "plant/plc1/heater_enable", Value: model.Bool(true),
			Caller: "api:eve", IssuedAt: time.Now(), Reason: "test"})
		return err
	}
	if err := write(); !errors.Is(err, writegate.ErrDenied) {
		t.Fatalf("before: %v, want denied", err)
	}
	allowed := text + "write_policies:\n  - {match: plant/plc1/heater_enable, allow: true, callers: [\"api:*\"], type: bool}\n"
	res, err := g.ApplyYAML(context.Background(), []byte(allowed), ApplyInfo{Actor: "api:eve"})
	if err != nil || len(res.Restart) != 0 || strings.Join(res.Diff.Live, ",") != "write_policies" {
		t.Fatalf("apply = %+v, %v", res, err)
	}
	waitFor(t, "plc1 to take the write", func() bool { return write() == nil })
}

// WEIR_MEASURE=1: how long validating, diffing and applying a 10,000-tag
// configuration takes when one device is added (the devices do not
// answer; nothing here waits on them).
func TestMeasureApplyLargeConfig(t *testing.T) {
	if os.Getenv("WEIR_MEASURE") != "1" {
		t.Skip("a figure, not a check: WEIR_MEASURE=1")
	}
	dir := t.TempDir()
	gen := func(devices int) string {
		var b strings.Builder
		fmt.Fprintf(&b, "node: {id: measure}\ndata_dir: %q\nsources:\n  - name: plcs\n    modbus:\n      devices:\n", dir)
		for d := range devices {
			fmt.Fprintf(&b, "        - name: dev%03d\n          address: \"127.0.0.1:1\"\n          namespace: plant/dev%03d\n          groups:\n            - interval: 1s\n              tags:\n", d, d)
			for i := range 200 {
				fmt.Fprintf(&b, "                - {name: r%03d, table: holding, address: %d, type: uint16}\n", i, i)
			}
		}
		b.WriteString("sinks:\n  - name: out\n    buffer: {type: memory}\n    mqtt: {url: \"tcp://127.0.0.1:1\", client_id: m}\n")
		return b.String()
	}
	text := gen(50)
	bigger := strings.Replace(text, "sinks:\n", "  - name: added\n    modbus:\n      devices:\n"+
		"        - {name: new, address: \"127.0.0.1:1\", namespace: plant/new, groups: [{interval: 1s, tags: [{name: r, table: holding, address: 0, type: uint16}]}]}\nsinks:\n", 1)
	g, _, _ := startFromFile(t, dir, text)
	t0 := time.Now()
	res, _ := g.Check([]byte(bigger))
	check := time.Since(t0)
	t0 = time.Now()
	res2, err := g.ApplyYAML(context.Background(), []byte(bigger), ApplyInfo{Actor: "measure"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d bytes, 10,000+ tags: check %s (%s), apply %s (%s); diff text %d bytes", len(bigger), check, res.Summary, time.Since(t0), res2.Summary, len(res2.Text))
}

// A rule changed live rebuilds the chain; its alarm keeps its state.
func TestApplyRulesKeepsAlarmState(t *testing.T) {
	dir := t.TempDir()
	plc := startPlant(t, 7)
	rule := func(limit string) string {
		return "rules:\n  - name: hot\n    when: \"x > " + limit + "\"\n    vars: {x: plant/plc1/run_cmd}\n    var_types: {x: bool}\n" +
			"    actions:\n      - alarm: {name: hot_alarm, priority: high, message: m}\n"
	}
	text := offlineConfig(t, dir, plc, "out") + strings.ReplaceAll(rule("1"), "x > 1", "x")
	g, _, _ := startFromFile(t, dir, text)
	if _, err := g.mgr.Raise("hot_alarm", time.Now()); err != nil {
		t.Fatal(err)
	}
	changed := offlineConfig(t, dir, plc, "out") + strings.ReplaceAll(rule("1"), "x > 1", "!x")
	res, err := g.ApplyYAML(context.Background(), []byte(changed), ApplyInfo{Actor: "test"})
	if err != nil || !res.Diff.Processors || len(res.Restart) != 0 {
		t.Fatalf("apply = %+v, %v", res, err)
	}
	if a, ok := g.mgr.Get("hot_alarm"); !ok || a.State != alarms.Unack {
		t.Fatalf("alarm after the reload: %+v %v, want its raised state kept", a, ok)
	}
}
