package mqtt

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"gopkg.in/yaml.v3"

	"github.com/weir-edge/weir/internal/conf/conftest"
	"github.com/weir-edge/weir/internal/mqttaddr"
	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/model"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func decodeStrict(t *testing.T, data string) Config {
	t.Helper()
	return conftest.Decode[Config](t, data)
}

func TestSampleConfig(t *testing.T) {
	c := decodeStrict(t, SampleConfig)
	if err := c.Validate(); err != nil {
		t.Fatalf("sample.yaml does not validate: %v", err)
	}
	if len(c.Subscriptions) != 4 || c.Sparkplug == nil || !c.Sparkplug.PublishState || c.Password.Env == "" {
		t.Fatalf("sample.yaml decoded to %+v", c)
	}
	s, err := New(c, nil)
	if err != nil {
		t.Fatalf("New(sample): %v", err)
	}
	if _, useTLS, _ := mqttaddr.Parse(s.cfg.URL); len(s.routes) != 4 || s.sp == nil || !useTLS {
		t.Fatalf("source from sample: routes %d sp %v tls %v", len(s.routes), s.sp != nil, useTLS)
	}
}

func TestDefaults(t *testing.T) {
	c := decodeStrict(t, "url: tcp://h\nclient_id: x\nsubscriptions: [{topic: a/#}]\n")
	s, err := New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := s.cfg
	if got.ProtocolVersion != Version5 || *got.CleanStart || got.SessionExpiry != DefaultSessionExpiry ||
		got.KeepAlive != DefaultKeepAlive || got.MaxPayload != DefaultMaxPayload {
		t.Fatalf("defaults: %+v", got)
	}
	sub := got.Subscriptions[0]
	if *sub.QoS != 1 || sub.Format != FormatJSON || sub.Path != "{topic}" || sub.JSON.Value != "$" || sub.JSON.TimestampUnit != UnitMillis {
		t.Fatalf("subscription defaults: %+v", sub)
	}
	if c.Subscriptions[0].QoS != nil {
		t.Fatal("New changed the caller's config")
	}
	c = decodeStrict(t, "url: tcp://h\nclient_id: x\nsparkplug: {group_ids: [G]}\n")
	s, err = New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !*s.cfg.CleanStart || *s.cfg.Sparkplug.PathPrefix != "spBv1.0" || s.cfg.Sparkplug.RebirthInterval != DefaultRebirthInterval {
		t.Fatalf("sparkplug defaults: %+v %+v", s.cfg, s.cfg.Sparkplug)
	}
}

func TestValidate(t *testing.T) {
	base := "url: tcp://h\nclient_id: x\n"
	tests := []struct {
		name, yaml string
		want       []string // substrings, each must appear
	}{
		{"nothing to do", base, []string{"subscriptions: at least one"}},
		{"missing url and id", "subscriptions: [{topic: a}]", []string{"url: is required", "client_id: is required"}},
		{"bad scheme", "url: http://h\nclient_id: x\nsubscriptions: [{topic: a}]", []string{"url: scheme"}},
		{"credentials in url", "url: tcp://u:p@h\nclient_id: x\nsubscriptions: [{topic: a}]", []string{"credentials"}},
		{"bad version", base + "protocol_version: \"4\"\nsubscriptions: [{topic: a}]", []string{"protocol_version"}},
		{"bad filters", base + "subscriptions: [{topic: 'a/#/b'}, {topic: 'a+'}, {topic: ''}]",
			[]string{"subscriptions[0].topic", "subscriptions[1].topic", "subscriptions[2].topic"}},
		{"bad qos", base + "subscriptions: [{topic: a, qos: 3}]", []string{"subscriptions[0].qos"}},
		{"bad template", base + "subscriptions: [{topic: a, path: 'x/{a}'}, {topic: b, path: 'x/{1'}]",
			[]string{"subscriptions[0].path", "subscriptions[1].path"}},
		{"bad format", base + "subscriptions: [{topic: a, format: xml}]", []string{"subscriptions[0].format"}},
		{"json keys with raw", base + "subscriptions: [{topic: a, format: raw, json: {value: $.x}}]", []string{"subscriptions[0].json"}},
		{"bad selectors", base + "subscriptions: [{topic: a, json: {value: '$.', timestamp: '$[x]', timestamp_unit: min}}]",
			[]string{"json.value", "json.timestamp", "json.timestamp_unit"}},
		{"fields and value", base + "subscriptions: [{topic: a, json: {value: $.x, fields: [{name: a, value: $.a}, {name: a}]}}]",
			[]string{"json.value: give either", "fields[1].name", "fields[1].value"}},
		{"strip prefix cannot match", base + "subscriptions: [{topic: plant/+/x, strip_prefix: factory/}]", []string{"strip_prefix"}},
		{"sparkplug", base + "sparkplug: {group_ids: ['a/b', G, G], publish_state: true, qos: 2, rebirth_interval: -1s}",
			[]string{"sparkplug.group_ids[0]", "sparkplug.group_ids[2]", "sparkplug.host_id", "sparkplug.qos", "sparkplug.rebirth_interval"}},
		{"sparkplug needs clean start", base + "clean_start: false\nsparkplug: {group_ids: [G]}", []string{"clean_start"}},
		{"sparkplug namespace twice", base + "sparkplug: {group_ids: [G]}\nsubscriptions: [{topic: spBv1.0/#}]", []string{"subscriptions[0].topic"}},
		{"durations", base + "keep_alive: 10ms\nconnect_timeout: -1s\nsession_expiry: -1s\nsubscriptions: [{topic: a}]",
			[]string{"keep_alive", "connect_timeout", "session_expiry"}},
		{"password sources", base + "password: {env: A, file: B}\nsubscriptions: [{topic: a}]", []string{"password"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := decodeStrict(t, tt.yaml)
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate accepted the config")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestMatchTopic(t *testing.T) {
	tests := []struct {
		filter, topic string
		want          bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/+", "a/b", true},
		{"a/+", "a/b/c", false},
		{"a/+/c", "a/b/c", true},
		{"a/#", "a", true},
		{"a/#", "a/b/c", true},
		{"#", "x/y", true},
		{"+/+", "x/y", true},
		{"+", "x/y", false},
		{"#", "$SYS/x", false},
		{"+/x", "$SYS/x", false},
		{"$SYS/#", "$SYS/x", true},
		{"a/b/c", "a/b", false},
		{"a//b", "a//b", true},
		{"a/+/b", "a//b", true},
	}
	for _, tt := range tests {
		t.Run(tt.filter+" "+tt.topic, func(t *testing.T) {
			if got := matchTopic(tt.filter, tt.topic); got != tt.want {
				t.Fatalf("matchTopic = %v", got)
			}
		})
	}
}

func TestTemplate(t *testing.T) {
	tests := []struct {
		tmpl, topic, want, err string
	}{
		{"{topic}", "a/b/c", "a/b/c", ""},
		{"acme/{1}/{3}", "plant/p1/line/l2/temp", "acme/p1/l2", ""},
		{"acme/{1}/{3+}", "plant/p1/line/l2/temp/x", "acme/p1/l2/temp/x", ""},
		{"x/{0}-{2}", "a/b/c", "x/a-c", ""},
		{"fixed", "a/b", "fixed", ""},
		{"acme/{5}", "a/b", "", "no level 5"},
	}
	for _, tt := range tests {
		t.Run(tt.tmpl, func(t *testing.T) {
			tm, err := parseTemplate(tt.tmpl)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tm.render(tt.topic)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("render = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	for _, bad := range []string{"", "{", "}", "{x}", "{-1}", "{+}", "a}{b"} {
		if _, err := parseTemplate(bad); err == nil {
			t.Errorf("parseTemplate(%q) accepted", bad)
		}
	}
}

func TestSelector(t *testing.T) {
	doc := map[string]any{"data": map[string]any{"value": "v", "list": []any{"a", "b"}, "odd.key": "o"}}
	tests := []struct {
		sel  string
		want any
		ok   bool
	}{
		{"$.data.value", "v", true},
		{"data.value", "v", true},
		{"$.data.list[1]", "b", true},
		{`$.data["odd.key"]`, "o", true},
		{`$['data']['value']`, "v", true},
		{"$.data.list[2]", nil, false},
		{"$.data.value.x", nil, false},
		{"$.nope", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.sel, func(t *testing.T) {
			s, err := parseSelector(tt.sel)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := s.get(doc)
			if ok != tt.ok || got != tt.want {
				t.Fatalf("get = %v %v", got, ok)
			}
		})
	}
	for _, bad := range []string{"", "$.", "$..a", "$[", "$[-1]", "$x", "$[a]"} {
		if _, err := parseSelector(bad); err == nil {
			t.Errorf("parseSelector(%q) accepted", bad)
		}
	}
}

func TestRawValue(t *testing.T) {
	tests := []struct {
		in   string
		want model.Value
		err  bool
	}{
		{"21.5", model.Float(21.5), false},
		{" 42\n", model.Int(42), false},
		{"-7", model.Int(-7), false},
		{"18446744073709551615", model.Uint(math.MaxUint64), false},
		{"1e3", model.Float(1000), false},
		{"true", model.Bool(true), false},
		{"FALSE", model.Bool(false), false},
		{"RUNNING", model.String("RUNNING"), false},
		{"0x10", model.String("0x10"), false},
		{"1_000", model.String("1_000"), false},
		{"ünï", model.String("ünï"), false},
		{"\xff\xfe", model.Value{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := rawValue([]byte(tt.in))
			if (err != nil) != tt.err || !got.Equal(tt.want) {
				t.Fatalf("rawValue = %#v, %v; want %#v", got, err, tt.want)
			}
		})
	}
	if v, _ := rawValue([]byte("NaN")); v.Kind() != model.KindFloat || !math.IsNaN(v.AsFloat()) {
		t.Fatalf("NaN → %#v", v)
	}
}

func TestJSONTimestamp(t *testing.T) {
	ref := time.Date(2024, 11, 25, 21, 0, 0, 123_000_000, time.UTC)
	tests := []struct {
		name, doc, unit string
		want            int64
		err             bool
	}{
		{"ms", `{"ts":1732568400123}`, UnitMillis, ref.UnixNano(), false},
		{"ms string", `{"ts":"1732568400123"}`, UnitMillis, ref.UnixNano(), false},
		{"s fraction", `{"ts":1732568400.123}`, UnitSeconds, ref.UnixNano(), false},
		{"ns", `{"ts":1732568400123000000}`, UnitNanos, ref.UnixNano(), false},
		{"rfc3339", `{"ts":"2024-11-25T22:00:00.123+01:00"}`, UnitRFC3339, ref.UnixNano(), false},
		{"rfc3339 wants string", `{"ts":5}`, UnitRFC3339, 0, true},
		{"bool", `{"ts":true}`, UnitMillis, 0, true},
		{"overflow", `{"ts":1e300}`, UnitSeconds, 0, true},
		{"int overflow", `{"ts":9223372036854775807}`, UnitMillis, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustRoute(t, SubscriptionConfig{Topic: "a", JSON: JSONConfig{Value: "$.ts", Timestamp: "$.ts", TimestampUnit: tt.unit}})
			out, err := r.decode(nil, "a", []byte(tt.doc), 1)
			if tt.err {
				if err == nil {
					t.Fatalf("accepted: %+v", out)
				}
				return
			}
			if err != nil || len(out) != 1 || out[0].SourceTime != tt.want {
				t.Fatalf("decode = %+v, %v; want ts %d", out, err, tt.want)
			}
		})
	}
}

// mustRoute compiles a subscription with defaults applied.
func mustRoute(t testing.TB, sc SubscriptionConfig) *route {
	t.Helper()
	c := Config{Broker: mqttclient.Broker{URL: "tcp://h", ClientID: "x"}, Subscriptions: []SubscriptionConfig{sc}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.setDefaults()
	r, err := newRoute(c.Subscriptions[0])
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRateLimiter(t *testing.T) {
	r := rateLimiter{every: time.Second}
	t0 := time.Unix(100, 0)
	if _, ok := r.allow(t0); !ok {
		t.Fatal("first event suppressed")
	}
	for i := range 3 {
		if _, ok := r.allow(t0.Add(time.Duration(i) * time.Millisecond)); ok {
			t.Fatal("event within the interval allowed")
		}
	}
	if n, ok := r.allow(t0.Add(time.Second)); !ok || n != 3 {
		t.Fatalf("after the interval: %d %v", n, ok)
	}
}

func TestPasswordNeverLogged(t *testing.T) {
	t.Setenv("WEIR_TEST_MQTT_PW", "s3cr3t-value")
	c := decodeStrict(t, "url: tcp://127.0.0.1:1\nclient_id: x\nusername: u\npassword: {env: WEIR_TEST_MQTT_PW}\n"+
		"subscriptions: [{topic: a}]\nconnect_timeout: 1s\n")
	var logs syncBuffer
	s, err := New(c, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	attempts := make(chan error, 1)
	dialCounter(attempts)(s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, newCollector()) }()
	if err := <-attempts; err == nil {
		t.Fatal("connected to port 1")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "s3cr3t") || strings.Contains(s.Status().LastError, "s3cr3t") {
		t.Fatal("password leaked")
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestBadConfigFiles decodes every testdata/*.bad.yaml strictly and
// expects the error named on its first line ("# want: …").
func TestBadConfigFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/*.bad.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad configs: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(data), "\n")
			want, ok := strings.CutPrefix(first, "# want: ")
			if !ok {
				t.Fatal(`first line must be "# want: <error text>"`)
			}
			var c Config
			dec := yaml.NewDecoder(bytes.NewReader(data))
			dec.KnownFields(true)
			err = dec.Decode(&c)
			if err == nil {
				err = c.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("error %v, want it to contain %q", err, want)
			}
		})
	}
}
