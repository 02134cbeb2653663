package mqttcmd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-edge/weir/audit"
	"github.com/weir-edge/weir/internal/cmdproof"
	"github.com/weir-edge/weir/internal/cmdproof/prooftest"
	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/security"
)

// TestSignedCommandsOverMosquitto sends forged, stale, replayed,
// wrong-role and valid commands through the real broker and checks the
// reply, what reached the gate (caller and role) and the security events;
// then greps every reply, event and log line for the keys.
func TestSignedCommandsOverMosquitto(t *testing.T) {
	prooftest.RequireMosquitto(t)
	t.Setenv("MQTTCMD_ALICE", prooftest.AliceKeyHex)
	t.Setenv("MQTTCMD_BOB", prooftest.BobKeyB64)
	prefix := prooftest.Prefix(t)
	g := &fakeGate{}
	evs := &prooftest.Events{}
	logs := &prooftest.Log{}
	cfg := Config{
		Endpoint: mqttclient.Endpoint{URL: "tcp://" + prooftest.MosquittoAddr, ClientID: "weir-cmd-" + strings.ReplaceAll(prefix, "/", "-")},
		Topic:    prefix + "/_commands/write",
		Proof: cmdproof.Config{MaxAge: 10 * time.Second, Callers: []cmdproof.Caller{
			{Name: "alice", Key: conf.Secret{Env: "MQTTCMD_ALICE"}, Role: security.Operator},
			{Name: "bob", Key: conf.Secret{Env: "MQTTCMD_BOB"}, Role: security.Viewer},
		}},
	}
	c, err := New(cfg, g, evs, logs.Logger())
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
	sign := func(key []byte, caller, cmd string) string {
		b, err := cmdproof.Sign(key, cmdproof.KindWrite, caller, []byte(cmd))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	valid := sign(alice, "alice", fmt.Sprintf(`{"id":"v1","path":"ok/sp","value":42,"issued_at":%d,"reason":"recipe"}`, ms))
	var replies strings.Builder

	tests := []struct {
		name, in   string
		wantResult audit.Result
		wantReason string
		wantGate   bool
		wantEvent  security.Kind
		wantActor  string
	}{
		{"valid", valid, audit.Allowed, "", true, "", ""},
		{"forged: names alice, no proof", fmt.Sprintf(`{"id":"f1","path":"ok/sp","value":1,"user":"alice","issued_at":%d}`, ms),
			audit.Denied, "refused: no proof", false, security.RequestRefused, ""},
		{"forged: bad MAC", sign(wrong, "alice", fmt.Sprintf(`{"id":"f2","path":"ok/sp","value":1,"issued_at":%d}`, ms)),
			audit.Denied, "refused: bad proof", false, security.RequestRefused, ""},
		{"forged: unknown caller", sign(wrong, "mallory", fmt.Sprintf(`{"id":"f3","path":"ok/sp","value":1,"issued_at":%d}`, ms)),
			audit.Denied, "refused: bad proof", false, security.RequestRefused, ""},
		{"replayed", valid, audit.Denied, "refused: replayed", false, security.RequestRefused, ""},
		{"stale", sign(alice, "alice", fmt.Sprintf(`{"id":"s1","path":"ok/sp","value":1,"issued_at":%d}`, ms-60_000)),
			audit.Denied, "refused: stale", false, security.RequestRefused, ""},
		{"viewer may not write", sign(bob, "bob", fmt.Sprintf(`{"id":"b1","path":"ok/sp","value":1,"issued_at":%d}`, ms)),
			audit.Denied, "refused: role", false, security.AccessDenied, "mqtt:bob"},
		{"denied by policy", sign(alice, "alice", fmt.Sprintf(`{"id":"d1","path":"no/sp","value":true,"issued_at":%d}`, ms)),
			audit.Denied, "no policy allows writes to no/sp", true, "", ""}, // the gate reports its own refusals
		{"signed but malformed", sign(alice, "alice", fmt.Sprintf(`{"id":"m1","path":"ok/sp","issued_at":%d}`, ms)),
			audit.Denied, "malformed command: command needs a value", false, security.RequestRefused, "mqtt:alice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls, events := len(g.calls()), len(evs.All())
			cli.Publish(t, c.Topic(), []byte(tt.in))
			var r Reply
			payload := cli.Next(t).Payload
			replies.Write(payload)
			dec := json.NewDecoder(bytes.NewReader(payload))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&r); err != nil {
				t.Fatal(err)
			}
			if r.Result != tt.wantResult || !strings.Contains(r.Reason, tt.wantReason) || r.ID == "" {
				t.Fatalf("reply %+v", r)
			}
			got := g.calls()
			if n := len(got) - calls; n != map[bool]int{true: 1, false: 0}[tt.wantGate] {
				t.Fatalf("%d gate calls", n)
			}
			if tt.wantGate {
				req := got[len(got)-1]
				if req.Caller != "mqtt:alice" || req.Role != security.Operator || req.IssuedAt.UnixMilli() != ms {
					t.Fatalf("gate got %+v", req)
				}
			}
			all := evs.All()
			if tt.wantEvent == "" {
				if len(all) != events {
					t.Fatalf("events %+v", all[events:])
				}
				return
			}
			if len(all) != events+1 {
				t.Fatalf("%d events, want 1", len(all)-events)
			}
			ev := all[events]
			if ev.Kind != tt.wantEvent || ev.Actor != tt.wantActor || ev.Component != "write_commands" || ev.Remote != "" ||
				ev.Detail == "" || ev.Time.IsZero() || ev.Object == "" {
				t.Fatalf("event %+v", ev)
			}
		})
	}
	st := c.Status()
	if st.Counters["received"] != uint64(len(tests)) || st.Counters["allowed"] != 1 || st.Counters["refused"] != 6 ||
		st.Counters["malformed"] != 1 || st.Counters["denied"] != 8 {
		t.Fatalf("status %+v", st)
	}
	// No key, in any form, in the log, the events or the replies.
	var seen strings.Builder
	seen.WriteString(logs.String())
	seen.WriteString(replies.String())
	for _, ev := range evs.All() {
		fmt.Fprintf(&seen, "%+v\n", ev)
	}
	if !strings.Contains(seen.String(), "write command refused") {
		t.Fatalf("refusals not logged: %s", logs.String())
	}
	for _, k := range []string{prooftest.AliceKeyHex, prooftest.BobKeyB64, prooftest.WrongKeyHex, string(alice), string(bob)} {
		if strings.Contains(seen.String(), k) {
			t.Fatalf("a key appears in the log or an event")
		}
	}
}

// TestNewKeyErrors: a key that is unset, empty or short stops New, and
// the error names the caller and the key's source, not the key.
func TestNewKeyErrors(t *testing.T) {
	t.Setenv("MQTTCMD_SHORT", "5ec7e75ec7e7")
	t.Setenv("MQTTCMD_EMPTY", "")
	for _, env := range []string{"MQTTCMD_SHORT", "MQTTCMD_EMPTY", "MQTTCMD_NOT_SET_ANYWHERE"} {
		cfg := Config{Endpoint: mqttclient.Endpoint{URL: "tcp://127.0.0.1:1", ClientID: "x"},
			Proof: cmdproof.Config{Callers: []cmdproof.Caller{{Name: "alice", Key: conf.Secret{Env: env}, Role: security.Operator}}}}
		_, err := New(cfg, &fakeGate{}, nil, nil)
		if err == nil || !strings.Contains(err.Error(), "caller alice") || strings.Contains(err.Error(), "5ec7e7") {
			t.Fatalf("%s: %v", env, err)
		}
	}
}

// TestBrokerTopicOverMosquitto: with proof: broker_topic the caller is the
// topic level after <topic>/by/ (which the broker's ACL reserves to that
// user; the test broker does not enforce it, so only the mapping is
// tested), the payload a bare command; freshness and role still apply.
func TestBrokerTopicOverMosquitto(t *testing.T) {
	prooftest.RequireMosquitto(t)
	prefix := prooftest.Prefix(t)
	g := &fakeGate{}
	evs := &prooftest.Events{}
	c, err := New(Config{
		Endpoint: mqttclient.Endpoint{URL: "tcp://" + prooftest.MosquittoAddr, ClientID: "weir-cmd-bt-" + strings.ReplaceAll(prefix, "/", "-")},
		Topic:    prefix + "/_commands/write",
		Proof: cmdproof.Config{Proof: cmdproof.ProofBrokerTopic, Callers: []cmdproof.Caller{
			{Name: "alice", Role: security.Operator}, {Name: "bob", Role: security.Viewer}}},
	}, g, evs, nil)
	if err != nil {
		t.Fatal(err)
	}
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
	ms := time.Now().UnixMilli()
	cmd := fmt.Sprintf(`{"id":"t1","path":"ok/sp","value":5,"issued_at":%d}`, ms)
	tests := []struct {
		name, who, in, reason string
		gate                  bool
	}{
		{"alice", "alice", cmd, "", true},
		{"replayed", "alice", cmd, "refused: replayed", false},
		{"unknown user", "mallory", fmt.Sprintf(`{"id":"t2","path":"ok/sp","value":5,"issued_at":%d}`, ms), "refused: bad proof", false},
		{"viewer", "bob", fmt.Sprintf(`{"id":"t3","path":"ok/sp","value":5,"issued_at":%d}`, ms), "refused: role", false},
		{"stale", "alice", fmt.Sprintf(`{"id":"t4","path":"ok/sp","value":5,"issued_at":%d}`, ms-3_600_000), "refused: stale", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := len(g.calls())
			cli.Publish(t, c.Topic()+"/by/"+tt.who, []byte(tt.in))
			var r Reply
			if err := json.Unmarshal(cli.Next(t).Payload, &r); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(r.Reason, tt.reason) || (tt.reason == "") != (r.Result == audit.Allowed) {
				t.Fatalf("reply %+v", r)
			}
			got := g.calls()
			if (len(got) > calls) != tt.gate {
				t.Fatalf("gate calls %+v", got[calls:])
			}
			if tt.gate && (got[calls].Caller != "mqtt:alice" || got[calls].Role != security.Operator) {
				t.Fatalf("gate got %+v", got[calls])
			}
		})
	}
	if n := len(evs.All()); n != 4 {
		t.Fatalf("%d events", n)
	}
}

// TestBrokerTopicACLEnforced runs a private Mosquitto with the ACL the
// README prescribes for proof: broker_topic and checks that it is the
// proof: mallory's publish on alice's topic never reaches the gateway,
// alice's does and runs as mqtt:alice, and mallory on its own topic is
// refused (not a caller).
func TestBrokerTopicACLEnforced(t *testing.T) {
	topic := "weir/_commands/write"
	acl := "pattern write " + topic + "/by/%u\n" +
		"user weir-gw\ntopic read " + topic + "/by/+\ntopic write " + topic + "/result\n" +
		"user alice\ntopic read " + topic + "/result\n" +
		"user mallory\ntopic read " + topic + "/result\n"
	addr := prooftest.StartMosquitto(t, map[string]string{"weir-gw": "gw-pw", "alice": "alice-pw", "mallory": "mallory-pw"}, acl)
	t.Setenv("MQTTCMD_GW_PW", "gw-pw")
	g := &fakeGate{}
	evs := &prooftest.Events{}
	c, err := New(Config{
		Endpoint: mqttclient.Endpoint{URL: "tcp://" + addr, ClientID: "weir-gw", Username: "weir-gw", Password: conf.Secret{Env: "MQTTCMD_GW_PW"}},
		Topic:    topic,
		Proof:    cmdproof.Config{Proof: cmdproof.ProofBrokerTopic, Callers: []cmdproof.Caller{{Name: "alice", Role: security.Operator}}},
	}, g, evs, nil)
	if err != nil {
		t.Fatal(err)
	}
	alice := prooftest.DialAs(t, addr, "alice", "alice-pw", c.ResultTopic())
	mallory := prooftest.DialAs(t, addr, "mallory", "mallory-pw", c.ResultTopic())
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
	ms := time.Now().UnixMilli()
	next := func(cl *prooftest.Client) Reply {
		var r Reply
		if err := json.Unmarshal(cl.Next(t).Payload, &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	// The forgery first: the broker drops it (QoS 1 is still acknowledged
	// to mallory), so the first reply anyone sees is alice's command.
	mallory.Publish(t, topic+"/by/alice", fmt.Appendf(nil, `{"id":"forged","path":"ok/sp","value":666,"issued_at":%d}`, ms))
	alice.Publish(t, topic+"/by/alice", fmt.Appendf(nil, `{"id":"real","path":"ok/sp","value":5,"issued_at":%d}`, ms))
	if r := next(alice); r.ID != "real" || r.Result != audit.Allowed {
		t.Fatalf("first reply %+v", r)
	}
	if r := next(mallory); r.ID != "real" {
		t.Fatalf("mallory saw %+v", r)
	}
	mallory.Publish(t, topic+"/by/mallory", fmt.Appendf(nil, `{"id":"m","path":"ok/sp","value":666,"issued_at":%d}`, ms))
	if r := next(mallory); r.ID != "m" || r.Reason != "refused: bad proof" {
		t.Fatalf("reply %+v", r)
	}
	calls := g.calls()
	if len(calls) != 1 || calls[0].Caller != "mqtt:alice" || !calls[0].Value.Equal(model.Int(5)) {
		t.Fatalf("gate calls %+v", calls)
	}
	if st := c.Status(); st.Counters["received"] != 2 {
		t.Fatalf("the forged command reached the gateway: %+v", st)
	}
}
