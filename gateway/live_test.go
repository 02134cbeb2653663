package gateway

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/alarms"
	"github.com/weir-edge/weir/api"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/rules"
	"github.com/weir-edge/weir/security"
	"github.com/weir-edge/weir/sinks/sparkplug"
	"github.com/weir-edge/weir/writegate"
	"github.com/weir-edge/weir/writegate/mqttcmd"
)

// alarmRule is a rule raising alarm name on plc1's run command.
func alarmRule(rule, name string) string { return alarmRuleWhen(rule, name, "x") }

// alarmRuleWhen is alarmRule with its condition.
func alarmRuleWhen(rule, name, when string) string {
	return "  - name: " + rule + "\n    when: \"" + when + "\"\n    vars: {x: plant/plc1/run_cmd}\n    var_types: {x: bool}\n" +
		"    actions:\n      - alarm: {name: " + name + ", priority: high, message: m}\n"
}

func currentRunner(g *Gateway) *rules.Runner {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.runner
}

// rule_actions and alarms apply live: a new action runner replaces the
// old one (drained and closed), the alarm manager takes its new prefix
// and shelve limit with every state kept; alarms whose rule was removed
// are retired — a normal one disappears, an unacknowledged one is
// cleared with the removed reason and stays until acknowledged.
func TestApplyRuleActionsAndAlarmsLive(t *testing.T) {
	dir := t.TempDir()
	plc := startPlant(t, 7)
	base := offlineConfig(t, dir, plc, "out")
	text := base + "rules:\n" + alarmRule("r1", "kept") + alarmRule("r2", "loud") + alarmRuleWhen("r3", "calm", "x && !x")
	g, _, _ := startFromFile(t, dir, text)
	for _, a := range []string{"kept", "loud"} {
		if _, err := g.mgr.Raise(a, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	oldRunner := currentRunner(g)
	changed := base + "rules:\n" + alarmRule("r1", "kept") +
		"rule_actions: {queue_size: 64}\nalarms: {prefix: site, max_shelve: 1h}\n"
	res, err := g.ApplyYAML(context.Background(), []byte(changed), ApplyInfo{Actor: "test"})
	if err != nil || len(res.Restart) != 0 || strings.Join(res.Diff.Live, ",") != "alarms,rule_actions,rules" {
		t.Fatalf("apply = %+v, %v", res, err)
	}
	if currentRunner(g) == oldRunner {
		t.Fatal("rule_actions changed but the runner was kept")
	}
	if oldRunner.Enqueue(rules.Job{Rule: "x"}) {
		t.Fatal("the old runner still takes actions")
	}
	if a, ok := g.mgr.Get("kept"); !ok || a.State != alarms.Unack {
		t.Fatalf("kept: %+v %v", a, ok)
	}
	if _, ok := g.mgr.Get("calm"); ok {
		t.Fatal("a normal alarm whose rule was removed is still defined")
	}
	a, ok := g.mgr.Get("loud")
	if !ok || a.State != alarms.RTNUnack {
		t.Fatalf("loud: %+v %v, want cleared and kept until acknowledged", a, ok)
	}
	if g.mgr.Prefix() != "site" || g.mgr.EventPath("kept") != "site/_alarms/kept" {
		t.Fatalf("prefix %q", g.mgr.Prefix())
	}
	if _, err := g.mgr.ShelveFor("kept", "op", "", 2*time.Hour); !errors.Is(err, alarms.ErrShelveTime) {
		t.Fatalf("shelve beyond the new max_shelve: %v", err)
	}
	if _, err := g.mgr.Acknowledge("loud", "op", "seen"); err != nil {
		t.Fatal(err)
	}
	if _, ok := g.mgr.Get("loud"); ok {
		t.Fatal("a retired alarm stays after its acknowledgement")
	}
	// An alarm moved to a renamed rule keeps its state.
	renamed := base + "rules:\n" + alarmRule("r1_new", "kept")
	if _, err := g.ApplyYAML(context.Background(), []byte(renamed), ApplyInfo{Actor: "test"}); err != nil {
		t.Fatalf("rename the rule: %v", err)
	}
	if a, ok := g.mgr.Get("kept"); !ok || a.State != alarms.Unack || a.Rule != "r1_new" {
		t.Fatalf("kept after the rename: %+v %v", a, ok)
	}
	// The new runner takes the actions of the running rules.
	if !currentRunner(g).Enqueue(rules.Job{Rule: "x"}) {
		t.Fatal("the new runner refuses actions")
	}
}

// write_limits apply live: a caller's budget follows the new per_caller
// rate at once, without a restart.
func TestApplyWriteLimitsLive(t *testing.T) {
	dir := t.TempDir()
	plc := startPlant(t, 7)
	text := offlineConfig(t, dir, plc, "out") +
		"write_policies:\n  - {match: plant/plc1/heater_enable, allow: true, callers: [\"api:*\"], type: bool}\n"
	g, _, _ := startFromFile(t, dir, text)
	write := func() error {
		_, err := g.gate.Write(context.Background(), writegate.Request{Path: "plant/plc1/heater_enable", Value: model.Bool(true),
			Caller: "api:eve", IssuedAt: time.Now(), Reason: "test"})
		return err
	}
	waitFor(t, "plc1 to take a write", func() bool { return write() == nil })
	res, err := g.ApplyYAML(context.Background(), []byte(text+"write_limits: {per_caller: 1/h}\n"), ApplyInfo{Actor: "test"})
	if err != nil || len(res.Restart) != 0 {
		t.Fatalf("apply = %+v, %v", res, err)
	}
	// What eve had left is capped to the new burst (1): one more write.
	_ = write()
	if err := write(); err == nil || !strings.Contains(err.Error(), "per-caller rate limit 1/h") {
		t.Fatalf("after the apply: %v, want the new limit", err)
	}
}

// security_events apply live (prefix, filter); a changed syslog block is
// listed as needing a restart.
func TestApplySecurityEventsLive(t *testing.T) {
	dir := t.TempDir()
	plc := startPlant(t, 7)
	text := offlineConfig(t, dir, plc, "out")
	g, _, _ := startFromFile(t, dir, text)
	res, err := g.ApplyYAML(context.Background(), []byte(text+"security_events: {prefix: soc}\n"), ApplyInfo{Actor: "test"})
	if err != nil || len(res.Restart) != 0 {
		t.Fatalf("apply = %+v, %v", res, err)
	}
	if p := g.secStream.Path(security.LoginFailed); p != "soc/_security/auth.login_failed" {
		t.Fatalf("path %q", p)
	}
	check, _ := g.Check([]byte(text + "security_events: {prefix: soc, syslog: {address: \"127.0.0.1:1\", protocol: udp}}\n"))
	if strings.Join(check.Restart, ",") != "security_events.syslog" {
		t.Fatalf("check = %+v", check.Restart)
	}
}

// The history route answers "no historian sink configured" without one,
// and follows a historian sink a reload adds and removes.
func TestHistoryFollowsReload(t *testing.T) {
	dir := t.TempDir()
	plc := startPlant(t, 7)
	text := offlineConfig(t, dir, plc, "out")
	g, _, _ := startFromFile(t, dir, text)
	hs := sinkHistory{g.historian}
	ctx := context.Background()
	if _, err := hs.Raw(ctx, "a", 0, 1, 1); !errors.Is(err, api.ErrNoHistorian) {
		t.Fatalf("without a historian: %v", err)
	}
	with := text + "  - name: hist\n    historian: {}\n"
	if _, err := g.ApplyYAML(ctx, []byte(with), ApplyInfo{Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the added historian to answer", func() bool {
		_, err := hs.Raw(ctx, "plant/plc1/run_cmd", 0, time.Now().UnixNano(), 10)
		return err == nil
	})
	if _, err := g.ApplyYAML(ctx, []byte(text), ApplyInfo{Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := hs.Raw(ctx, "a", 0, 1, 1); !errors.Is(err, api.ErrNoHistorian) {
		t.Fatalf("after removing it: %v", err)
	}
}

// A Sparkplug sink that runs while write_policies go from none to some is
// rebuilt (its buffer kept) to take the write gate, as at start.
func TestApplyPoliciesRewireSparkplug(t *testing.T) {
	dir := t.TempDir()
	plc := startPlant(t, 7)
	text := offlineConfig(t, dir, plc, "out") +
		"  - name: sp\n    buffer: {type: disk}\n    sparkplug: {url: \"tcp://127.0.0.1:1\", group_id: G, edge_node_id: E, client_id: sp-test}\n"
	g, _, _ := startFromFile(t, dir, text)
	before := sinkByName(g, "sp")
	policies := text + "write_policies:\n  - {match: plant/plc1/heater_enable, allow: true, callers: [\"api:*\"], type: bool}\n"
	res, err := g.ApplyYAML(context.Background(), []byte(policies), ApplyInfo{Actor: "test"})
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if strings.Join(res.Diff.Sinks.Changed, ",") != "sp" || strings.Join(res.Diff.KeepBuffers, ",") != "sp" {
		t.Fatalf("diff %+v, want sp rebuilt with its buffer", res.Diff)
	}
	after := sinkByName(g, "sp")
	if after == nil || after == before {
		t.Fatal("the Sparkplug sink was not rebuilt")
	}
	if !after.HasWriteGate() {
		t.Fatal("the rebuilt Sparkplug sink has no write gate")
	}
}

func sinkByName(g *Gateway, name string) *sparkplug.Sink {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, s := range g.sinks {
		if sp, ok := s.Sink.(*sparkplug.Sink); ok && s.Name == name {
			return sp
		}
	}
	return nil
}

// write_commands apply live: the MQTT command subscriber alone is
// replaced (the old session stops, the new one subscribes its topic), and
// removed when the block goes.
func TestApplyWriteCommandsLive(t *testing.T) {
	needMosquitto(t)
	t.Setenv("WEIR_TEST_LIVE_CMD_KEY", strings.Repeat("ab", 32))
	dir := t.TempDir()
	plc := startPlant(t, 7)
	cmds := func(topic string) string {
		return "write_commands:\n  url: tcp://" + mosquitto + "\n  client_id: weir-live-cmds-" + strings.ReplaceAll(topic, "/", "-") +
			"\n  topic: " + topic + "\n  callers:\n    - {name: mes, key: {env: WEIR_TEST_LIVE_CMD_KEY}, role: operator}\n"
	}
	base := offlineConfig(t, dir, plc, "out")
	g, _, _ := startFromFile(t, dir, base+cmds("weirtest/live/a"))
	current := func() (*mqttcmdCommands, *task) {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.writeCmds, g.writeTask
	}
	first, firstTask := current()
	waitFor(t, "the first subscriber", func() bool { return isClosed(first.Subscribed()) })
	res, err := g.ApplyYAML(context.Background(), []byte(base+cmds("weirtest/live/b")), ApplyInfo{Actor: "test"})
	if err != nil || len(res.Restart) != 0 {
		t.Fatalf("apply = %+v, %v", res, err)
	}
	second, _ := current()
	if second == first || second.Topic() != "weirtest/live/b" {
		t.Fatalf("subscriber not replaced: topic %q", second.Topic())
	}
	if !isClosed(firstTask.done) {
		t.Fatal("the old subscriber still runs")
	}
	waitFor(t, "the new subscriber", func() bool { return isClosed(second.Subscribed()) })
	if _, err := g.ApplyYAML(context.Background(), []byte(base), ApplyInfo{Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	if c, tk := current(); c != nil || tk != nil {
		t.Fatal("write_commands removed but a subscriber remains")
	}
}

type mqttcmdCommands = mqttcmd.Commands

func isClosed[T any](c <-chan T) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// A changed alarms.commands block (here: none → some → its default
// topic following a new prefix) restarts the alarm command subscriber
// alone; the alarm states stay.
func TestApplyAlarmCommandsLive(t *testing.T) {
	needMosquitto(t)
	t.Setenv("WEIR_TEST_LIVE_ALARM_KEY", strings.Repeat("cd", 32))
	dir := t.TempDir()
	plc := startPlant(t, 7)
	base := offlineConfig(t, dir, plc, "out") + "rules:\n" + alarmRule("r1", "kept")
	alarmsBlock := func(prefix string) string {
		return "alarms:\n  prefix: " + prefix + "\n  commands:\n    url: tcp://" + mosquitto + "\n    client_id: weir-live-alarms-" + prefix +
			"\n    callers:\n      - {name: hmi, key: {env: WEIR_TEST_LIVE_ALARM_KEY}, role: operator}\n"
	}
	g, _, _ := startFromFile(t, dir, base)
	if _, err := g.mgr.Raise("kept", time.Now()); err != nil {
		t.Fatal(err)
	}
	current := func() *alarms.Commands {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.alarmCmds
	}
	for _, prefix := range []string{"livea", "liveb"} {
		before := current()
		res, err := g.ApplyYAML(context.Background(), []byte(base+alarmsBlock(prefix)), ApplyInfo{Actor: "test"})
		if err != nil || len(res.Restart) != 0 {
			t.Fatalf("apply %s = %+v, %v", prefix, res, err)
		}
		c := current()
		if c == nil || c == before || c.Topic() != prefix+"/_commands/alarms/ack" {
			t.Fatalf("alarm command subscriber not replaced for %s", prefix)
		}
		waitFor(t, "the alarm command subscriber of "+prefix, func() bool { return isClosed(c.Subscribed()) })
	}
	if a, ok := g.mgr.Get("kept"); !ok || a.State != alarms.Unack {
		t.Fatalf("kept: %+v %v", a, ok)
	}
}
