package gateway

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/weir-edge/weir/config"
)

// Posting back the very text GET /api/v1/config shows is no change —
// for a gateway from a file and for one built in (the demo, whose text
// is its configuration marshalled): no sink restarts, no chain rebuilt.
func TestApplySameTextIsNoChange(t *testing.T) {
	for _, tt := range []struct {
		name   string
		inFile bool
	}{{"file", true}, {"built in", false}} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			text := offlineConfig(t, dir, startPlant(t, 7), "out") + historianSink + ruleBlock
			var g *Gateway
			if tt.inFile {
				g, _, _ = startFromFile(t, dir, text)
			} else {
				cfg, err := config.Parse("demo.yaml", []byte(text), os.LookupEnv)
				if err != nil {
					t.Fatal(err)
				}
				if g, err = New(cfg, Options{Logger: testLogger(t), Actor: "demo"}); err != nil {
					t.Fatal(err)
				}
				runGateway(t, g)
			}
			shown := (configManager{g}).Running().YAML
			res := (configManager{g}).Check(context.Background(), []byte(shown))
			if res.Summary != "no changes" || len(res.RestartNeeded) != 0 {
				t.Fatalf("check of the running text = %+v", res)
			}
			res, err := (configManager{g}).Apply(context.Background(), []byte(shown), "api:eve", true)
			if err != nil || res.Summary != "no changes" || len(res.RestartNeeded) != 0 {
				t.Fatalf("apply of the running text = %+v, %v", res, err)
			}
			// An edit of one block changes that block only.
			edited := strings.Replace(shown, "apply-out", "apply-out-2", 1)
			if edited == shown {
				t.Fatal("the shown text has no client id apply-out")
			}
			if res := (configManager{g}).Check(context.Background(), []byte(edited)); res.Summary != "sinks: ~out" {
				t.Fatalf("check of one edit = %q", res.Summary)
			}
		})
	}
}

// A historian sink and a rule: blocks that did not survive the demo's
// marshalled round trip.
const (
	historianSink = "  - name: history\n    buffer: {type: disk}\n    historian: {}\n"
	ruleBlock     = "rules:\n  - name: fast\n    when: \"speed > 100\"\n    vars: {speed: plant/plc1/speed}\n    for: 5s\n    actions:\n      - alarm: {name: too_fast, priority: high}\n"
)

// restart_needed is what differs from the configuration the process
// booted with: a restart key changed and reverted is no longer waiting;
// a live key changed only in its restart part is not also called live.
func TestRestartNeededFollowsBoot(t *testing.T) {
	dir := t.TempDir()
	text := offlineConfig(t, dir, startPlant(t, 7), "out")
	g, _, _ := startFromFile(t, dir, text)
	m := configManager{g}
	changed := strings.Replace(text, "node: {id: apply-test}", "node: {id: apply-test-2}", 1)
	res, err := m.Apply(context.Background(), []byte(changed), "api:eve", true)
	if err != nil || !slices.Equal(res.RestartNeeded, []string{"node"}) {
		t.Fatalf("apply node change = %+v, %v", res, err)
	}
	if got := m.Running().RestartNeeded; !slices.Equal(got, []string{"node"}) {
		t.Fatalf("running restart_needed %q, want node", got)
	}
	res, err = m.Apply(context.Background(), []byte(text), "api:eve", true)
	if err != nil || len(res.RestartNeeded) != 0 {
		t.Fatalf("apply the revert = %+v, %v", res, err)
	}
	if got := m.Running().RestartNeeded; len(got) != 0 {
		t.Fatalf("running restart_needed %q after the revert, want none", got)
	}
	res = m.Check(context.Background(), []byte(text+"alarms: {state_file: alarms.json}\n"))
	if res.Summary != "restart needed for alarms.state_file" || !slices.Equal(res.RestartNeeded, []string{"alarms.state_file"}) {
		t.Fatalf("state_file only: summary %q, restart %q", res.Summary, res.RestartNeeded)
	}
}
