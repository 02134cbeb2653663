package mqtt

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/internal/mqttclient/mqtttest"
	"github.com/weir-edge/weir/internal/tlsconf"
	"github.com/weir-edge/weir/internal/tlsconf/tlstest"
	"github.com/weir-edge/weir/model"
)

// want is an expected sample; ts 0 means "the arrival time" (fixedClock).
type want struct {
	path    string
	value   model.Value
	quality model.QualityCode
	ts      int64
}

func checkSamples(t *testing.T, got []model.Sample, wants []want) {
	t.Helper()
	if len(got) != len(wants) {
		t.Fatalf("got %d samples, want %d:\n%s", len(got), len(wants), dumpSamples(got))
	}
	for i, w := range wants {
		g := got[i]
		ts := w.ts
		if ts == 0 {
			ts = fixedClock.UnixNano()
		}
		if g.Path != w.path || !g.Value.Equal(w.value) || g.Quality.Code != w.quality || g.SourceTime != ts ||
			g.EdgeTime != fixedClock.UnixNano() {
			t.Errorf("sample %d = %s %#v %s ts=%d edge=%d; want %s %#v %s ts=%d", i, g.Path, g.Value, g.Quality,
				g.SourceTime, g.EdgeTime, w.path, w.value, w.quality, ts)
		}
	}
}

// mappingCase is one subscription, one message and what it must yield.
type mappingCase struct {
	name    string
	sub     SubscriptionConfig
	topic   string
	payload string
	want    []want
	bad     bool // the message must be counted as a decode error
}

var tsRef = time.Date(2024, 11, 25, 21, 0, 0, 123_000_000, time.UTC).UnixNano()

func jsonCases() []mappingCase {
	return []mappingCase{
		{name: "whole payload number", sub: SubscriptionConfig{Topic: "t/a"}, topic: "t/a", payload: `21.5`,
			want: []want{{"t/a", model.Float(21.5), model.Good, 0}}},
		{name: "nested value and ms timestamp", sub: SubscriptionConfig{Topic: "plant/+/line/#", Path: "acme/{1}/{3}",
			JSON: JSONConfig{Value: "$.data.value", Timestamp: "$.ts"}},
			topic: "plant/p1/line/l2/temp", payload: `{"data":{"value":42},"ts":1732568400123}`,
			want: []want{{"acme/p1/l2", model.Int(42), model.Good, tsRef}}},
		{name: "rest of levels", sub: SubscriptionConfig{Topic: "plant/+/line/#", Path: "acme/{1}/{3+}", JSON: JSONConfig{Value: "$.v"}},
			topic: "plant/p1/line/l2/filler/temp", payload: `{"v":true}`,
			want: []want{{"acme/p1/l2/filler/temp", model.Bool(true), model.Good, 0}}},
		{name: "seconds with fraction", sub: SubscriptionConfig{Topic: "s/#", JSON: JSONConfig{Value: "v", Timestamp: "t", TimestampUnit: "s"}},
			topic: "s/x", payload: `{"v":"on","t":1732568400.123}`,
			want: []want{{"s/x", model.String("on"), model.Good, tsRef}}},
		{name: "nanoseconds", sub: SubscriptionConfig{Topic: "n/#", JSON: JSONConfig{Value: "$.v", Timestamp: "$.t", TimestampUnit: "ns"}},
			topic: "n/x", payload: `{"v":-3,"t":1732568400123000000}`,
			want: []want{{"n/x", model.Int(-3), model.Good, tsRef}}},
		{name: "rfc3339", sub: SubscriptionConfig{Topic: "r/#", JSON: JSONConfig{Value: "$.v", Timestamp: "$.meta.time", TimestampUnit: "rfc3339"}},
			topic: "r/x", payload: `{"v":1.5,"meta":{"time":"2024-11-25T21:00:00.123Z"}}`,
			want: []want{{"r/x", model.Float(1.5), model.Good, tsRef}}},
		{name: "array element and strip prefix", sub: SubscriptionConfig{Topic: "pfx/#", StripPrefix: "pfx/", JSON: JSONConfig{Value: "$.vals[1]"}},
			topic: "pfx/a/b", payload: `{"vals":[1,2,3]}`,
			want: []want{{"a/b", model.Int(2), model.Good, 0}}},
		{name: "array value mixing ints and floats", sub: SubscriptionConfig{Topic: "arr"}, topic: "arr", payload: `[1,2.5]`,
			want: []want{{"arr", model.Array([]model.Value{model.Float(1), model.Float(2.5)}), model.Good, 0}}},
		{name: "fields", sub: SubscriptionConfig{Topic: "env/+", Path: "site/{1}", JSON: JSONConfig{Timestamp: "$.ts",
			Fields: []FieldConfig{{Name: "temperature", Value: "$.t"}, {Name: "humidity", Value: "$.h"}, {Name: "co2", Value: "$.c"}}}},
			topic: "env/room1", payload: `{"t":21.5,"h":40,"ts":1732568400123}`,
			want: []want{{"site/room1/temperature", model.Float(21.5), model.Good, tsRef}, {"site/room1/humidity", model.Int(40), model.Good, tsRef}}},
		{name: "null is bad quality", sub: SubscriptionConfig{Topic: "nul", JSON: JSONConfig{Value: "$.v"}}, topic: "nul", payload: `{"v":null}`,
			want: []want{{"nul", model.Value{}, model.Bad, 0}}},
		{name: "uint beyond int64", sub: SubscriptionConfig{Topic: "big"}, topic: "big", payload: `18446744073709551615`,
			want: []want{{"big", model.Uint(math.MaxUint64), model.Good, 0}}},
		{name: "value missing", sub: SubscriptionConfig{Topic: "miss", JSON: JSONConfig{Value: "$.v"}}, topic: "miss", payload: `{"x":1}`, bad: true},
		{name: "object value", sub: SubscriptionConfig{Topic: "obj"}, topic: "obj", payload: `{"x":1}`, bad: true},
		{name: "not json", sub: SubscriptionConfig{Topic: "nj"}, topic: "nj", payload: `hello`, bad: true},
		{name: "trailing garbage", sub: SubscriptionConfig{Topic: "tg"}, topic: "tg", payload: `1 2`, bad: true},
		{name: "timestamp missing", sub: SubscriptionConfig{Topic: "tm", JSON: JSONConfig{Value: "$.v", Timestamp: "$.ts"}}, topic: "tm", payload: `{"v":1}`, bad: true},
		{name: "template level missing", sub: SubscriptionConfig{Topic: "lv/#", Path: "x/{4}"}, topic: "lv/a", payload: `1`, bad: true},
		{name: "topic makes an invalid path", sub: SubscriptionConfig{Topic: "el/#"}, topic: "el//x", payload: `1`, bad: true},
		// What a path cannot carry is escaped (model.EscapePath), not refused.
		{name: "topic escaped into a path", sub: SubscriptionConfig{Topic: "ctl/#"}, topic: "ctl/a\tb ", payload: `1`,
			want: []want{{"ctl/a%09b%20", model.Int(1), model.Good, 0}}},
	}
}

func rawCases() []mappingCase {
	raw := func(topic string) SubscriptionConfig {
		return SubscriptionConfig{Topic: topic, Format: FormatRaw, Path: "raw/{topic}"}
	}
	return []mappingCase{
		{name: "raw float", sub: raw("f"), topic: "f", payload: "21.5", want: []want{{"raw/f", model.Float(21.5), model.Good, 0}}},
		{name: "raw int", sub: raw("i"), topic: "i", payload: "-42\n", want: []want{{"raw/i", model.Int(-42), model.Good, 0}}},
		{name: "raw bool", sub: raw("b"), topic: "b", payload: "true", want: []want{{"raw/b", model.Bool(true), model.Good, 0}}},
		{name: "raw string", sub: raw("s"), topic: "s", payload: "RUNNING", want: []want{{"raw/s", model.String("RUNNING"), model.Good, 0}}},
		{name: "raw not utf8", sub: raw("u"), topic: "u", payload: "\xff", bad: true},
	}
}

func weirCases() []mappingCase {
	weir := func(topic string) SubscriptionConfig {
		return SubscriptionConfig{Topic: topic, Format: FormatWeir, StripPrefix: "w/"}
	}
	return []mappingCase{
		{name: "weir sample", sub: weir("w/#"), topic: "w/site/line1/temp",
			payload: `{"value":21.5,"quality":"good","ts":1732568400123,"edge_ts":1732568400125,"seq":42}`,
			want:    []want{{"site/line1/temp", model.Float(21.5), model.Good, tsRef}}},
		{name: "weir batch", sub: weir("w/#"), topic: "w/site/line1",
			payload: `{"samples":[{"tag":"temp","value":21.0,"quality":"good","ts":1732568400123},` +
				`{"tag":"alarm","value":null,"quality":"bad","reason":"device unreachable","ts":1732568400123}]}`,
			want: []want{{"site/line1/temp", model.Float(21), model.Good, tsRef}, {"site/line1/alarm", model.Value{}, model.Bad, tsRef}}},
		{name: "weir string value samples", sub: weir("w/#"), topic: "w/x",
			payload: `{"value":"samples","quality":"good","ts":1732568400123}`,
			want:    []want{{"x", model.String("samples"), model.Good, tsRef}}},
		{name: "weir missing quality", sub: weir("w/#"), topic: "w/x", payload: `{"value":1}`, bad: true},
	}
}

// TestMappingThroughBroker runs every mapping case end to end: a source
// subscribed to an embedded broker receives the message and emits samples.
func TestMappingThroughBroker(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	subs := 0
	var cases []mappingCase
	cases = append(cases, jsonCases()...)
	cases = append(cases, rawCases()...)
	cases = append(cases, weirCases()...)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := newCollector()
			s := runSource(t, Config{Broker: mqttclient.Broker{URL: b.URL("tcp"), ClientID: "map-" + strconv.Itoa(i)}, Subscriptions: []SubscriptionConfig{tc.sub}}, out, withClock)
			subs++
			b.WaitSubscribed(t, waitTimeout, subs)
			b.Publish(t, tc.topic, []byte(tc.payload), 1, false)
			if tc.bad {
				// A sentinel after the bad message: once it is through, the
				// bad one was handled.
				b.Publish(t, tc.topic, []byte(`__sentinel__`), 1, false)
				waitCounter(t, s, "messages", 2)
				if got := out.snapshot(); len(got) != 0 && !(tc.sub.Format == FormatRaw && len(got) == 1) {
					t.Fatalf("bad message produced samples:\n%s", dumpSamples(got))
				}
				if n := s.Status().Counters["decode_errors"]; n < 1 {
					t.Fatalf("decode_errors = %d", n)
				}
				return
			}
			got := out.waitN(t, len(tc.want))
			checkSamples(t, got, tc.want)
			if n := s.Status().Counters["decode_errors"]; n != 0 {
				t.Fatalf("decode_errors = %d", n)
			}
		})
	}
}

// waitCounter waits until the source's counter reaches n. The source has
// no change notification for counters, so this polls at a short interval
// bounded by waitTimeout; the condition is what the test needs, not time.
func waitCounter(t *testing.T, s *Source, name string, n uint64) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for s.Status().Counters[name] < n {
		if time.Now().After(deadline) {
			t.Fatalf("counter %s = %d, want ≥ %d", name, s.Status().Counters[name], n)
		}
		<-tick.C
	}
}

// TestProtocolVersions subscribes with both protocol versions and both
// QoS levels and checks the messages arrive and Tags lists them.
func TestProtocolVersions(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	subs := 0
	for _, v := range []string{Version5, Version311} {
		for _, qos := range []int{0, 1} {
			t.Run(fmt.Sprintf("v%s/qos%d", v, qos), func(t *testing.T) {
				out := newCollector()
				prefix := fmt.Sprintf("pv/%s/%d", strings.ReplaceAll(v, ".", ""), qos)
				s := runSource(t, Config{
					Broker:        mqttclient.Broker{URL: b.URL("tcp"), ClientID: "pv-" + prefix, ProtocolVersion: v},
					Subscriptions: []SubscriptionConfig{{Topic: prefix + "/#", QoS: &qos, Format: FormatRaw}}}, out)
				subs++
				b.WaitSubscribed(t, waitTimeout, subs)
				for i := range 20 {
					b.Publish(t, fmt.Sprintf("%s/t%02d", prefix, i), []byte(strconv.Itoa(i)), byte(qos), false)
				}
				got := out.waitN(t, 20)
				for i, smp := range got {
					if smp.Path != fmt.Sprintf("%s/t%02d", prefix, i) || smp.Value.AsInt() != int64(i) {
						t.Fatalf("sample %d out of order or wrong: %s = %s", i, smp.Path, smp.Value)
					}
				}
				if tags := s.Tags(); len(tags) != 20 || tags[0].Kind != model.KindInt {
					t.Fatalf("Tags = %+v", tags)
				}
				st := s.Status()
				if st.Counters["samples"] != 20 || st.Counters["connects"] != 1 {
					t.Fatalf("status %+v", st)
				}
			})
		}
	}
}

// TestUnmatchedAndEmpty: an empty payload (a retained-message deletion) is
// skipped silently; a topic no route matches is counted.
func TestUnmatchedAndEmpty(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	out := newCollector()
	s := runSource(t, Config{Broker: mqttclient.Broker{URL: b.URL("tcp"), ClientID: "um"}, Subscriptions: []SubscriptionConfig{
		{Topic: "u/a/#", Format: FormatRaw}, {Topic: "u/#", Format: FormatRaw, Path: "other/{topic}"}}}, out)
	b.WaitSubscribed(t, waitTimeout, 1)
	b.Publish(t, "u/a/x", nil, 1, false)
	b.Publish(t, "u/b", []byte("1"), 1, false)
	b.Publish(t, "u/a/y", []byte("2"), 1, false)
	got := out.waitN(t, 2)
	if got[0].Path != "other/u/b" || got[1].Path != "u/a/y" {
		t.Fatalf("first matching route must win:\n%s", dumpSamples(got))
	}
	if st := s.Status(); st.Counters["decode_errors"] != 0 || st.Counters["messages"] < 3 {
		t.Fatalf("status %+v", st.Counters)
	}
}

// TestMaxPayload refuses oversized messages.
func TestMaxPayload(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	out := newCollector()
	tr := true
	s := runSource(t, Config{Broker: mqttclient.Broker{URL: b.URL("tcp"), ClientID: "mp"}, MaxPayload: 8, CleanStart: &tr,
		Subscriptions: []SubscriptionConfig{{Topic: "mp", Format: FormatRaw}}}, out)
	b.WaitSubscribed(t, waitTimeout, 1)
	b.Publish(t, "mp", []byte("123456789"), 1, false)
	b.Publish(t, "mp", []byte("1"), 1, false)
	got := out.waitN(t, 1)
	if len(got) != 1 || got[0].Value.AsInt() != 1 || s.Status().Counters["decode_errors"] != 1 {
		t.Fatalf("got %s, status %+v", dumpSamples(got), s.Status().Counters)
	}
}

// TestReconnectResubscribes cuts the connection: the source dials again
// with backoff, subscribes again and keeps receiving. With the default
// persistent session, a QoS 1 message published while the source was away
// is delivered after the reconnect.
func TestReconnectResubscribes(t *testing.T) {
	for _, v := range []string{Version5, Version311} {
		t.Run("v"+v, func(t *testing.T) {
			b := mqtttest.Start(t, mqtttest.Options{})
			out := newCollector()
			attempts := make(chan struct{}, 16)
			gate := make(chan struct{})
			s := runSource(t, Config{
				Broker:        mqttclient.Broker{URL: b.URL("tcp"), ClientID: "rc-" + v, ProtocolVersion: v},
				Subscriptions: []SubscriptionConfig{{Topic: "rc/#", Format: FormatRaw}}}, out, gatedDial(attempts, gate))
			<-attempts
			b.WaitSubscribed(t, waitTimeout, 1)
			b.Publish(t, "rc/a", []byte("1"), 1, false)
			out.waitN(t, 1)

			b.DropAll()
			<-attempts // the source is now disconnected and held at the gate
			b.Publish(t, "rc/b", []byte("2"), 1, false)
			close(gate)
			b.WaitSubscribed(t, waitTimeout, 2)
			b.Publish(t, "rc/c", []byte("3"), 1, false)
			got := out.waitFor(t, "rc/b and rc/c", func(ss []model.Sample) bool {
				m := byPath(ss)
				_, okB := m["rc/b"]
				_, okC := m["rc/c"]
				return okB && okC
			})
			// rc/a may come twice (its PUBACK may not have made it before
			// the cut): delivery is at-least-once. The cut may also hit the
			// first SUBSCRIBE before its SUBACK arrived, which makes that
			// connection end without counting as a loss.
			if st := s.Status(); st.Counters["connects"] < 2 {
				t.Fatalf("status %+v", st)
			}
			if m := byPath(got); !m["rc/b"].Value.Equal(model.Int(2)) || !m["rc/c"].Value.Equal(model.Int(3)) {
				t.Fatalf("delivered:\n%s", dumpSamples(got))
			}
		})
	}
}

// gatedDial reports every dial attempt; attempts after the first wait for
// gate to close.
func gatedDial(attempts chan<- struct{}, gate <-chan struct{}) func(*Source) {
	return func(s *Source) {
		inner := s.dial
		n := 0
		s.dial = func(ctx context.Context, o mqttclient.Options) (mqttclient.Conn, error) {
			n++
			attempts <- struct{}{}
			if n > 1 {
				select {
				case <-gate:
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			return inner(ctx, o)
		}
	}
}

// TestTLSAndAuth connects over mutual TLS with a username and a password
// read from a conf.Secret, for both protocol versions; wrong credentials or
// certificates make the dial fail (and the source retry).
func TestTLSAndAuth(t *testing.T) {
	pki := tlstest.Generate(t, t.TempDir())
	srvTLS, err := (&tlsconf.Config{CAFile: pki.CA, CertFile: pki.ServerCert, KeyFile: pki.ServerKey}).LoadServer()
	if err != nil {
		t.Fatal(err)
	}
	b := mqtttest.Start(t, mqtttest.Options{TLS: srvTLS, Users: map[string]string{"ingest": "pw-ok"}})
	t.Setenv("WEIR_TEST_PW_OK", "pw-ok")
	t.Setenv("WEIR_TEST_PW_BAD", "nope")
	client := tlsconf.Config{CAFile: pki.CA, CertFile: pki.ClientCert, KeyFile: pki.ClientKey}
	tests := []struct {
		name string
		tls  tlsconf.Config
		pw   string
		ok   bool
	}{
		{"mtls and password", client, "WEIR_TEST_PW_OK", true},
		{"wrong password", client, "WEIR_TEST_PW_BAD", false},
		{"unknown server CA", tlsconf.Config{CAFile: pki.OtherCA, CertFile: pki.ClientCert, KeyFile: pki.ClientKey}, "WEIR_TEST_PW_OK", false},
	}
	subs := 0
	for _, v := range []string{Version5, Version311} {
		for i, tt := range tests {
			t.Run("v"+v+"/"+tt.name, func(t *testing.T) {
				out := newCollector()
				dials := make(chan error, 1)
				topic := fmt.Sprintf("tls/%s/%d", strings.ReplaceAll(v, ".", ""), i)
				runSource(t, Config{
					Broker: mqttclient.Broker{URL: "mqtts://" + b.Addr(), ClientID: "tls-" + topic, ProtocolVersion: v, TLS: tt.tls,
						Username: "ingest", Password: conf.Secret{Env: tt.pw}, ConnectTimeout: 3 * time.Second},
					Subscriptions: []SubscriptionConfig{{Topic: topic, Format: FormatRaw}}}, out, dialCounter(dials))
				err := <-dials
				if !tt.ok {
					if err == nil {
						t.Fatal("connected")
					}
					return
				}
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				subs++
				b.WaitSubscribed(t, waitTimeout, subs)
				b.Publish(t, topic, []byte("1"), 1, false)
				out.waitN(t, 1)
			})
		}
	}
}

// TestOversizeMessageSkipped: a message far beyond max_payload never
// reaches the source's memory. MQTT 5 announces the limit and the broker
// drops the message; MQTT 3.1.1 has no way to say it, so the client skips
// the PUBLISH unread, acknowledges it and counts it. Either way the
// connection stays up (one connect) and the next message arrives.
func TestOversizeMessageSkipped(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	for i, v := range []string{Version5, Version311} {
		t.Run("v"+v, func(t *testing.T) {
			out := newCollector()
			tr := true
			topic := "os/" + strings.ReplaceAll(v, ".", "")
			s := runSource(t, Config{Broker: mqttclient.Broker{URL: b.URL("tcp"), ClientID: "os" + topic, ProtocolVersion: v},
				MaxPayload: 1024, CleanStart: &tr,
				Subscriptions: []SubscriptionConfig{{Topic: topic, Format: FormatRaw}}}, out)
			b.WaitSubscribed(t, waitTimeout, i+1)
			b.Publish(t, topic, bytes.Repeat([]byte("9"), 2<<20), 1, false)
			b.Publish(t, topic, []byte("1"), 1, false)
			got := out.waitN(t, 1)
			st := s.Status().Counters
			if len(got) != 1 || got[0].Value.AsInt() != 1 || st["connects"] != 1 {
				t.Fatalf("got %s, status %+v", dumpSamples(got), st)
			}
			want := uint64(0) // the MQTT 5 broker drops it for us
			if v == Version311 {
				want = 1
			}
			if st["oversize"] != want || st["decode_errors"] != want {
				t.Fatalf("oversize %d, decode errors %d, want %d", st["oversize"], st["decode_errors"], want)
			}
		})
	}
}
