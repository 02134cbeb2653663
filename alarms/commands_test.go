package alarms

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-edge/weir/internal/broker"
	"github.com/weir-edge/weir/internal/mqttclient"
)

func TestDecodeCommand(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"ok", `{"name":"hot","user":"alice","comment":"on it"}`, ""},
		{"not JSON", `ack hot`, "not a JSON object"},
		{"no name", `{"user":"alice"}`, "alarm name is empty"},
		{"bad name", `{"name":"a/b","user":"alice"}`, "may only hold"},
		{"no user", `{"name":"hot"}`, "needs a user"},
		{"huge", `{"name":"hot","user":"a","comment":"` + strings.Repeat("x", 20000) + `"}`, "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeCommand([]byte(tt.in))
			if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func FuzzDecodeCommand(f *testing.F) {
	f.Add([]byte(`{"name":"hot","user":"alice","comment":"on it"}`))
	f.Add([]byte(`{"name":"","user":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err == nil && (ValidName(c.Name) != nil || c.User == "") {
			t.Fatalf("accepted %q as %+v", b, c)
		}
	})
}

// TestCommandsAckOverMQTT publishes acknowledgements on the command topic
// of an embedded broker and checks the manager's state and the counters.
func TestCommandsAckOverMQTT(t *testing.T) {
	br, err := broker.Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	m, _ := newManager(t, "")
	if _, err := m.Raise("hot", t0); err != nil {
		t.Fatal(err)
	}
	c, err := NewCommands(CommandsConfig{Endpoint: mqttclient.Endpoint{URL: "tcp://" + br.Addr(), ClientID: "weir-alarms-test"}}, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Topic() != "acme/plant1/_commands/alarms/ack" {
		t.Fatalf("topic %q", c.Topic())
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = c.Run(ctx) })
	defer wg.Wait()
	defer cancel()
	select {
	case <-c.Subscribed():
	case <-time.After(2 * time.Minute):
		t.Fatal("not subscribed")
	}
	for _, p := range []string{`garbage`, `{"name":"hot","user":"alice","comment":"from the HMI"}`} {
		if err := br.Server().Publish(c.Topic(), []byte(p), false, 1); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.After(2 * time.Minute)
	for {
		st := c.Status()
		if st.Counters["received"] == 2 {
			if st.Counters["acked"] != 1 || st.Counters["rejected"] != 1 || st.State != "running" {
				t.Fatalf("status %+v", st)
			}
			break
		}
		select {
		case <-deadline:
			t.Fatalf("status %+v", st)
		case <-time.After(5 * time.Millisecond):
		}
	}
	if a, _ := m.Get("hot"); a.State != Acked || a.AckedBy != "mqtt:alice" || a.AckComment != "from the HMI" {
		t.Fatalf("alarm %+v", a)
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
