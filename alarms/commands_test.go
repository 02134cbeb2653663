package alarms

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-edge/weir/internal/cmdproof"
	"github.com/weir-edge/weir/internal/cmdproof/prooftest"
	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/security"
)

func TestDecodeCommand(t *testing.T) {
	tests := []struct{ name, in, want, action string }{
		{"ack", `{"name":"hot","comment":"on it","issued_at":1,"id":"1"}`, "", ActionAck},
		{"shelve", `{"name":"hot","action":"shelve","for":"30m","issued_at":"2026-01-01T00:00:00Z","id":"1"}`, "", ActionShelve},
		{"unshelve", `{"name":"hot","action":"unshelve","issued_at":1,"id":"1"}`, "", ActionUnshelve},
		{"not JSON", `ack hot`, "not a JSON object", ""},
		{"names its own user", `{"name":"hot","user":"alice","issued_at":1,"id":"1"}`, "unknown field", ""},
		{"no id", `{"name":"hot","issued_at":1}`, "needs an id", ""},
		{"no name", `{"issued_at":1,"id":"1"}`, "alarm name is empty", ""},
		{"bad name", `{"name":"a/b","issued_at":1,"id":"1"}`, "may only hold", ""},
		{"no issued_at", `{"name":"hot","id":"1"}`, "needs issued_at", ""},
		{"bad action", `{"name":"hot","action":"clear","issued_at":1,"id":"1"}`, "ack, shelve or unshelve", ""},
		{"shelve without for", `{"name":"hot","action":"shelve","issued_at":1,"id":"1"}`, "positive duration", ""},
		{"for on ack", `{"name":"hot","for":"1h","issued_at":1,"id":"1"}`, "belongs to shelve", ""},
		{"trailing", `{"name":"hot","issued_at":1,"id":"1"} {}`, "after the JSON", ""},
		{"huge", `{"name":"hot","issued_at":1,"id":"1","comment":"` + strings.Repeat("x", 20000) + `"}`, "limit", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := DecodeCommand([]byte(tt.in))
			if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if err == nil && c.Action != tt.action {
				t.Fatalf("action %q", c.Action)
			}
		})
	}
}

func FuzzDecodeCommand(f *testing.F) {
	f.Add([]byte(`{"name":"hot","comment":"on it","issued_at":1,"id":"1"}`))
	f.Add([]byte(`{"name":"hot","action":"shelve","for":"30m","issued_at":"2026-01-01T00:00:00Z","id":"1"}`))
	f.Add([]byte(`{"name":"","user":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil {
			return
		}
		if ValidName(c.Name) != nil || c.ID == "" || c.IssuedAt.IsZero() ||
			(c.Action != ActionAck && c.Action != ActionShelve && c.Action != ActionUnshelve) || (c.Action == ActionShelve) != (c.For > 0) {
			t.Fatalf("accepted %q as %+v", b, c)
		}
	})
}

// TestSignedAlarmCommandsOverMosquitto acknowledges and shelves alarms
// with signed commands through the real broker: forged, wrong-role, stale
// and replayed commands are refused, replied to and reported; valid ones
// run as mqtt:<caller>.
func TestSignedAlarmCommandsOverMosquitto(t *testing.T) {
	prooftest.RequireMosquitto(t)
	t.Setenv("ALARMS_ALICE", prooftest.AliceKeyHex)
	t.Setenv("ALARMS_BOB", prooftest.BobKeyB64)
	prefix := prooftest.Prefix(t)
	m, _ := newManager(t, "")
	if err := m.Define(Def{Name: "cold", Priority: Low, Message: "too cold", Rule: "undercool"}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"hot", "cold"} {
		if _, err := m.Raise(n, t0); err != nil {
			t.Fatal(err)
		}
	}
	evs := &prooftest.Events{}
	logs := &prooftest.Log{}
	c, err := NewCommands(CommandsConfig{
		Endpoint: mqttclient.Endpoint{URL: "tcp://" + prooftest.MosquittoAddr, ClientID: "weir-alarms-" + strings.ReplaceAll(prefix, "/", "-")},
		Topic:    prefix + "/_commands/alarms/ack",
		Proof: cmdproof.Config{Callers: []cmdproof.Caller{
			{Name: "alice", Key: conf.Secret{Env: "ALARMS_ALICE"}, Role: security.Operator},
			{Name: "bob", Key: conf.Secret{Env: "ALARMS_BOB"}, Role: security.Viewer},
		}},
	}, m, evs, logs.Logger())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	c.now = func() time.Time { return now }
	cli := prooftest.Dial(t, c.ResultTopic())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = c.Run(ctx) })
	defer wg.Wait()
	defer cancel()
	select {
	case <-c.Subscribed():
	case <-time.After(prooftest.Wait):
		t.Fatal("not subscribed")
	}
	alice, _ := cmdproof.DecodeKey(prooftest.AliceKeyHex)
	bob, _ := cmdproof.DecodeKey(prooftest.BobKeyB64)
	wrong, _ := cmdproof.DecodeKey(prooftest.WrongKeyHex)
	ms := now.UnixMilli()
	sign := func(key []byte, kind, caller, cmd string) string {
		b, err := cmdproof.Sign(key, kind, caller, []byte(cmd))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	var replies strings.Builder
	ack := sign(alice, cmdproof.KindAlarm, "alice", fmt.Sprintf(`{"name":"hot","comment":"from the HMI","issued_at":%d,"id":"a1"}`, ms))
	tests := []struct {
		name, in, result, reason string
		event                    security.Kind
		actor                    string
	}{
		{"forged: names alice, no proof", `{"name":"cold","user":"alice","comment":"x"}`, "refused", "refused: no proof", security.RequestRefused, ""},
		{"forged: bad MAC", sign(wrong, cmdproof.KindAlarm, "alice", fmt.Sprintf(`{"name":"cold","issued_at":%d,"id":"f1"}`, ms)),
			"refused", "refused: bad proof", security.RequestRefused, ""},
		{"a write command's signature", sign(alice, cmdproof.KindWrite, "alice", fmt.Sprintf(`{"name":"cold","issued_at":%d,"id":"f2"}`, ms)),
			"refused", "refused: bad proof", security.RequestRefused, ""},
		{"viewer may not ack", sign(bob, cmdproof.KindAlarm, "bob", fmt.Sprintf(`{"name":"cold","issued_at":%d,"id":"b1"}`, ms)),
			"refused", "refused: role", security.AccessDenied, "mqtt:bob"},
		{"stale", sign(alice, cmdproof.KindAlarm, "alice", fmt.Sprintf(`{"name":"cold","issued_at":%d,"id":"s1"}`, ms-3_600_000)),
			"refused", "refused: stale", security.RequestRefused, ""},
		{"ack", ack, "ok", "", security.AlarmCommand, "mqtt:alice"},
		{"replayed", ack, "refused", "refused: replayed", security.RequestRefused, ""},
		{"shelve", sign(alice, cmdproof.KindAlarm, "alice", fmt.Sprintf(`{"name":"cold","action":"shelve","for":"30m","comment":"maintenance","issued_at":%d,"id":"sh1"}`, ms)),
			"ok", "", security.AlarmCommand, "mqtt:alice"},
		{"ack twice fails", sign(alice, cmdproof.KindAlarm, "alice", fmt.Sprintf(`{"name":"hot","issued_at":%d,"id":"a2"}`, ms)),
			"failed", "nothing to acknowledge", security.AlarmCommand, "mqtt:alice"},
		{"signed but malformed", sign(alice, cmdproof.KindAlarm, "alice", fmt.Sprintf(`{"name":"cold","action":"clear","issued_at":%d,"id":"m1"}`, ms)),
			"refused", "action must be", security.RequestRefused, "mqtt:alice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(evs.All())
			cli.Publish(t, c.Topic(), []byte(tt.in))
			var r Reply
			payload := cli.Next(t).Payload
			replies.Write(payload)
			dec := json.NewDecoder(bytes.NewReader(payload))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&r); err != nil {
				t.Fatal(err)
			}
			if r.Result != tt.result || !strings.Contains(r.Reason, tt.reason) {
				t.Fatalf("reply %+v", r)
			}
			all := evs.All()
			if len(all) != before+1 {
				t.Fatalf("%d events", len(all)-before)
			}
			if ev := all[before]; ev.Kind != tt.event || ev.Actor != tt.actor || ev.Component != "alarm_commands" || ev.Detail == "" || ev.Object == "" {
				t.Fatalf("event %+v", ev)
			}
		})
	}
	if a, _ := m.Get("hot"); a.State != Acked || a.AckedBy != "mqtt:alice" || a.AckComment != "from the HMI" {
		t.Fatalf("hot %+v", a)
	}
	if a, _ := m.Get("cold"); a.State != Unack || !a.Shelved || a.ShelvedBy != "mqtt:alice" {
		t.Fatalf("cold %+v", a)
	}
	if st := c.Status(); st.Counters["received"] != uint64(len(tests)) || st.Counters["acked"] != 2 || st.Counters["refused"] != 7 || st.Counters["failed"] != 1 {
		t.Fatalf("status %+v", st)
	}
	var seen strings.Builder
	seen.WriteString(logs.String())
	seen.WriteString(replies.String())
	for _, ev := range evs.All() {
		fmt.Fprintf(&seen, "%+v\n", ev)
	}
	for _, k := range []string{prooftest.AliceKeyHex, prooftest.BobKeyB64, prooftest.WrongKeyHex, string(alice), string(bob)} {
		if strings.Contains(seen.String(), k) {
			t.Fatal("a key appears in the log or an event")
		}
	}
}

func TestRunPersists(t *testing.T) {
	file := t.TempDir() + "/alarms.json"
	m, _ := newManager(t, file)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	if _, err := m.Raise("hot", t0); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	m2, _ := newManager(t, file)
	if a, _ := m2.Get("hot"); a.State != Unack {
		t.Fatalf("restored %+v", a)
	}
}
