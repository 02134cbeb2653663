package mqtt

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/conf/conftest"
	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/internal/payload"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func decodeStrict(t *testing.T, data []byte) Config {
	t.Helper()
	return conftest.Decode[Config](t, string(data))
}

func TestSampleConfig(t *testing.T) {
	c := decodeStrict(t, []byte(SampleConfig))
	if err := c.Validate(); err != nil {
		t.Fatalf("sample.yaml does not validate: %v", err)
	}
	if c.Password.Env != "WEIR_MQTT_PASSWORD" || c.QoS == nil || *c.QoS != 1 || c.TLS.CAFile == "" {
		t.Errorf("sample.yaml decoded to %+v", c)
	}
	if _, err := New(c, nil); err != nil {
		t.Fatalf("New(sample): %v", err)
	}
}

func TestDecodeScalars(t *testing.T) {
	tests := []struct {
		name, yaml string
		check      func(Config) bool
	}{
		{"protocol_version as int", "protocol_version: 5", func(c Config) bool { return c.ProtocolVersion == "5" }},
		{"protocol_version 3.1.1 unquoted", "protocol_version: 3.1.1", func(c Config) bool { return c.ProtocolVersion == "3.1.1" }},
		{"explicit qos 0", "qos: 0", func(c Config) bool { return c.QoS != nil && *c.QoS == 0 }},
		{"durations", "keep_alive: 5s\nconnect_timeout: 1m", func(c Config) bool {
			return c.KeepAlive == 5*time.Second && c.ConnectTimeout == time.Minute
		}},
		{"file secret", "password: {file: /run/secrets/mqtt}", func(c Config) bool { return c.Password.File == "/run/secrets/mqtt" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c := decodeStrict(t, []byte(tt.yaml)); !tt.check(c) {
				t.Errorf("decoded %+v", c)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	s, err := New(Config{Broker: mqttclient.Broker{URL: "tcp://127.0.0.1", ClientID: "gw1"}, TopicPrefix: "weir/v1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := s.cfg
	if c.ProtocolVersion != Version5 || *c.QoS != 1 || c.Mode != ModeSample || c.KeepAlive != 30*time.Second ||
		c.ConnectTimeout != 10*time.Second || c.MaxInflight != 64 || c.StatusTopic != "weir/v1/_status/gw1" {
		t.Errorf("defaults: %+v", c)
	}
	if o, err := s.cfg.Options(); err != nil || s.addr != "127.0.0.1:1883" || o.TLS != nil {
		t.Errorf("addr %q tls %v (%v)", s.addr, o.TLS != nil, err)
	}
	s2, err := New(Config{Broker: mqttclient.Broker{URL: "mqtts://broker", ClientID: "gw1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o, err := s2.cfg.Options(); err != nil || s2.addr != "broker:8883" || o.TLS == nil || s2.cfg.StatusTopic != "_status/gw1" {
		t.Errorf("addr %q tls %v status %q (%v)", s2.addr, o.TLS != nil, s2.cfg.StatusTopic, err)
	}
}

func intp(i int) *int { return &i }

func TestValidate(t *testing.T) {
	ok := func(c Config) Config {
		if c.URL == "" {
			c.URL = "tcp://127.0.0.1:1883"
		}
		if c.ClientID == "" {
			c.ClientID = "gw"
		}
		return c
	}
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings; nil: valid
	}{
		{"minimal", ok(Config{}), nil},
		{"all schemes", ok(Config{Broker: mqttclient.Broker{URL: "mqtt://h"}}), nil},
		{"ipv6", ok(Config{Broker: mqttclient.Broker{URL: "ssl://[::1]:8883"}}), nil},
		{"tls enabled with mqtts", ok(Config{Broker: mqttclient.Broker{URL: "tls://h", TLS: tlsEnabled()}}), nil},
		{"v5 password without username", ok(Config{Broker: mqttclient.Broker{Password: conf.Secret{Env: "X"}}}), nil},
		{"missing url", Config{}, []string{"url: is required"}},
		{"bad scheme", ok(Config{Broker: mqttclient.Broker{URL: "ws://h:1"}}), []string{`url: scheme "ws" is not supported`}},
		{"credentials in url", ok(Config{Broker: mqttclient.Broker{URL: "tcp://u:p@h"}}), []string{"url: must not contain credentials"}},
		{"url path", ok(Config{Broker: mqttclient.Broker{URL: "tcp://h/x"}}), []string{"url: must be scheme://host"}},
		{"no host", ok(Config{Broker: mqttclient.Broker{URL: "tcp://:1883"}}), []string{"url: has no host"}},
		{"tls enabled with tcp", ok(Config{Broker: mqttclient.Broker{TLS: tlsEnabled()}}), []string{"tls.enabled: is true but the url scheme is plaintext"}},
		{"protocol", ok(Config{Broker: mqttclient.Broker{ProtocolVersion: "4"}}), []string{`protocol_version: "4" is not supported`}},
		{"qos 2", ok(Config{QoS: intp(2)}), []string{"qos: 2 is not supported"}},
		{"prefix wildcard", ok(Config{TopicPrefix: "weir/+"}), []string{"topic_prefix: topic \"weir/+\" contains the wildcard"}},
		{"prefix empty level", ok(Config{TopicPrefix: "weir//v1"}), []string{"topic_prefix: topic \"weir//v1\" has an empty level"}},
		{"prefix trailing slash", ok(Config{TopicPrefix: "weir/"}), []string{"topic_prefix:", "empty level"}},
		{"prefix $", ok(Config{TopicPrefix: "$SYS"}), []string{"topic_prefix:", "reserve"}},
		{"mode", ok(Config{Mode: "bulk"}), []string{`mode: "bulk" is not supported`}},
		{"secret both", ok(Config{Broker: mqttclient.Broker{Password: conf.Secret{Env: "A", File: "b"}}}), []string{"password: give either env or file"}},
		{"3.1.1 password without username", ok(Config{Broker: mqttclient.Broker{ProtocolVersion: "3.1.1", Password: conf.Secret{Env: "X"}}}), []string{"username: is required with a password"}},
		{"tls block", ok(Config{Broker: mqttclient.Broker{URL: "mqtts://h", TLS: tlsConfig("c", "")}}), []string{"tls.key_file: is required"}},
		{"keep alive", ok(Config{Broker: mqttclient.Broker{KeepAlive: time.Millisecond}}), []string{"keep_alive: must be at least 1s"}},
		{"negative keep alive", ok(Config{Broker: mqttclient.Broker{KeepAlive: -time.Second}}), []string{"keep_alive: must not be negative"}},
		{"negative timeout", ok(Config{Broker: mqttclient.Broker{ConnectTimeout: -1}}), []string{"connect_timeout: must not be negative"}},
		{"max inflight", ok(Config{MaxInflight: -1}), []string{"max_inflight: must be between 1 and 65535"}},
		{"status topic", ok(Config{StatusTopic: "a/#"}), []string{"status_topic:", "wildcard"}},
		{"client id unfit for status topic", ok(Config{Broker: mqttclient.Broker{ClientID: "gw+1"}}), []string{"client_id: cannot name the default status topic"}},
		{"client id unfit but status topic set", ok(Config{Broker: mqttclient.Broker{ClientID: "gw+1"}, StatusTopic: "s/gw1"}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if _, nerr := New(tt.cfg, nil); nerr == nil {
				t.Error("New accepted an invalid config")
			}
		})
	}
}

// TestBadConfigs decodes each testdata/*.bad.yaml; its first line is
// "# want: <substring of the validation error>".
func TestBadConfigs(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.bad.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad configs found: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := bufio.NewReader(bytes.NewReader(data)).ReadLine()
			want, ok := strings.CutPrefix(string(first), "# want: ")
			if !ok {
				t.Fatal("first line must be '# want: …'")
			}
			c := decodeStrict(t, data)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("Validate() = %v, want it to contain %q", err, want)
			}
		})
	}
}

func TestEncoderSampleMode(t *testing.T) {
	e := newEncoder("weir/v1", false)
	batch := []model.Sample{
		{Path: "site/line1/temp", Value: model.Float(1.5), Seq: 1},
		{Path: "site/line#/temp", Value: model.Float(2), Seq: 2}, // invalid topic: rejected
		{Path: "site/line1/temp", Value: model.Float(3.5), Seq: 3},
		{Path: "site/bad\xffname", Value: model.Float(4), Seq: 4}, // not UTF-8: rejected
	}
	msgs, rejected := e.encode(batch)
	if fmt.Sprint(rejected) != "[1 3]" || len(msgs) != 2 {
		t.Fatalf("got %d messages, rejected %v", len(msgs), rejected)
	}
	for i, want := range []uint64{1, 3} {
		if msgs[i].topic != "weir/v1/site/line1/temp" {
			t.Errorf("topic %q", msgs[i].topic)
		}
		s, err := payload.DecodeSample(e.payload(&msgs[i]))
		if err != nil || s.Seq != want {
			t.Errorf("message %d: %v seq %d", i, err, s.Seq)
		}
	}
}

func TestEncoderBatchMode(t *testing.T) {
	tests := []struct {
		name, prefix string
		paths        []string
		want         map[string][]string // topic → tags in order
	}{
		{"groups by asset keeping order", "p", []string{"a/x/t1", "b/t2", "a/x/t3", "a/x/t1"},
			map[string][]string{"p/a/x": {"t1", "t3", "t1"}, "p/b": {"t2"}}},
		{"root-level tags go to the prefix", "p", []string{"t1", "a/t2", "t3"},
			map[string][]string{"p": {"t1", "t3"}, "p/a": {"t2"}}},
		{"root-level tags without prefix keep their path", "", []string{"t1", "a/t2", "t1"},
			map[string][]string{"t1": {"t1", "t1"}, "a": {"t2"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEncoder(tt.prefix, true)
			var batch []model.Sample
			for i, p := range tt.paths {
				batch = append(batch, model.Sample{Path: p, Value: model.Int(int64(i)), Seq: uint64(i)})
			}
			msgs, rejected := e.encode(batch)
			if len(rejected) != 0 || len(msgs) != len(tt.want) {
				t.Fatalf("%d messages, rejected %v", len(msgs), rejected)
			}
			for i := range msgs {
				asset, _ := strings.CutPrefix(msgs[i].topic, tt.prefix)
				samples, err := payload.DecodeBatch(e.payload(&msgs[i]), strings.TrimPrefix(asset, "/"))
				if err != nil {
					t.Fatal(err)
				}
				var tags []string
				for _, s := range samples {
					_, tag := payload.Asset(s.Path)
					tags = append(tags, tag)
				}
				if got, want := strings.Join(tags, ","), strings.Join(tt.want[msgs[i].topic], ","); got != want {
					t.Errorf("topic %s: tags %s, want %s", msgs[i].topic, got, want)
				}
				if msgs[i].samples != len(samples) {
					t.Errorf("topic %s: counted %d samples, payload has %d", msgs[i].topic, msgs[i].samples, len(samples))
				}
			}
		})
	}
}

// Assets come out in the order they first appear, and an encoder reused
// across Writes keeps nothing from the previous batch.
// In batch mode the samples of an asset whose topic is invalid are
// rejected by their batch index, and every message maps back to exactly
// the batch indexes of its samples, whatever the grouping moved.
func TestEncoderBatchModeOrigin(t *testing.T) {
	e := newEncoder("p", true)
	paths := []string{"a/t1", "bad\xff/t2", "b/t3", "a/t4", "bad\xff/t5", "b/t6", "bad#/t7"}
	var batch []model.Sample
	for i, p := range paths {
		batch = append(batch, model.Sample{Path: p, Value: model.Int(int64(i)), Seq: uint64(i)})
	}
	msgs, rejected := e.encode(batch)
	if fmt.Sprint(rejected) != "[1 4 6]" || len(msgs) != 2 {
		t.Fatalf("%d messages, rejected %v", len(msgs), rejected)
	}
	for _, m := range msgs {
		var idx []int32
		idx = append(idx, e.origin[m.olo:m.ohi]...)
		want := map[string]string{"p/a": "[0 3]", "p/b": "[2 5]"}[m.topic]
		if fmt.Sprint(idx) != want {
			t.Errorf("topic %s: batch indexes %v, want %s", m.topic, idx, want)
		}
	}
}

// A non-UTF-8 tag name in batch mode (valid asset topic, name inside the
// JSON payload) is rejected too, wherever it is in the batch.
func TestEncoderBatchModeBadName(t *testing.T) {
	e := newEncoder("p", true)
	for _, paths := range [][]string{{"a/bad\xff", "a/t1", "b/t2"}, {"a/t1", "b/t2", "a/bad\xff"}} {
		var batch []model.Sample
		for i, p := range paths {
			batch = append(batch, model.Sample{Path: p, Value: model.Int(int64(i)), Seq: uint64(i)})
		}
		msgs, rejected := e.encode(batch)
		bad := int32(slices.Index(paths, "a/bad\xff"))
		if len(rejected) != 1 || rejected[0] != bad || len(msgs) != 2 {
			t.Fatalf("%q: %d messages, rejected %v", paths, len(msgs), rejected)
		}
		for _, m := range msgs {
			for _, i := range e.origin[m.olo:m.ohi] {
				if i == bad {
					t.Fatalf("%q: the bad sample is in message %s", paths, m.topic)
				}
			}
		}
	}
}

func TestEncoderBatchModeOrderAndReuse(t *testing.T) {
	e := newEncoder("p", true)
	mk := func(paths ...string) []model.Sample {
		var b []model.Sample
		for i, p := range paths {
			b = append(b, model.Sample{Path: p, Value: model.Int(int64(i)), Seq: uint64(i)})
		}
		return b
	}
	for _, tt := range []struct {
		paths  []string
		topics []string
		counts []int
	}{
		{[]string{"b/t1", "a/t1", "b/t2", "c/t1", "a/t2"}, []string{"p/b", "p/a", "p/c"}, []int{2, 2, 1}},
		{[]string{"c/t1", "a/t1", "c/t2"}, []string{"p/c", "p/a"}, []int{2, 1}},
		{[]string{"a/t1", "a/t2"}, []string{"p/a"}, []int{2}},
	} {
		msgs, _ := e.encode(mk(tt.paths...))
		var topics []string
		var counts []int
		for _, m := range msgs {
			topics, counts = append(topics, m.topic), append(counts, m.samples)
		}
		if !slices.Equal(topics, tt.topics) || !slices.Equal(counts, tt.counts) {
			t.Errorf("%v: topics %v counts %v, want %v %v", tt.paths, topics, counts, tt.topics, tt.counts)
		}
	}
}

func TestShardKeepsTopicOrder(t *testing.T) {
	e := newEncoder("", false)
	var batch []model.Sample
	for i := range 100 {
		batch = append(batch, model.Sample{Path: []string{"a/b", "a/c", "d"}[i%3], Seq: uint64(i)})
	}
	msgs, _ := e.encode(batch)
	shards := e.shard(8)
	seen := map[string]int{} // topic → shard
	total := 0
	for w, idx := range shards {
		last := -1
		for _, i := range idx {
			if s, ok := seen[msgs[i].topic]; ok && s != w {
				t.Fatalf("topic %s in shards %d and %d", msgs[i].topic, s, w)
			}
			seen[msgs[i].topic] = w
			if int(i) <= last {
				t.Fatalf("shard %d out of order", w)
			}
			last = int(i)
			total++
		}
	}
	if total != len(msgs) {
		t.Fatalf("sharded %d of %d messages", total, len(msgs))
	}
}

func TestLifecycleWithoutBroker(t *testing.T) {
	// A port nothing listens on: bind, note it, close.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	_ = ln.Close()

	s, err := New(Config{Broker: mqttclient.Broker{URL: "tcp://" + dead, ClientID: "gw", ConnectTimeout: 2 * time.Second}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Write(ctx, []model.Sample{{Path: "a/b"}}); !errors.Is(err, pipeline.ErrDisconnected) {
		t.Errorf("Write before Connect = %v, want ErrDisconnected", err)
	}
	if err := s.Connect(ctx); err == nil || !strings.Contains(err.Error(), dead) {
		t.Errorf("Connect to a dead port = %v", err)
	}
	if st := s.Status(); st.State != pipeline.StateRetrying || st.LastError == "" {
		t.Errorf("status after failed connect: %+v", st)
	}
	if err := s.Close(ctx); err != nil {
		t.Errorf("Close after a failed start: %v", err)
	}
	if err := s.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := s.Connect(ctx); !errors.Is(err, pipeline.ErrClosed) {
		t.Errorf("Connect after Close = %v, want ErrClosed", err)
	}
	if err := s.Write(ctx, nil); !errors.Is(err, pipeline.ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
	if st := s.Status(); st.State != pipeline.StateStopped {
		t.Errorf("state after Close = %s", st.State)
	}
}

// TestConnectRespectsContext connects to a listener that accepts but never
// answers CONNECT: Connect must return when ctx ends, for both versions.
func TestConnectRespectsContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	defer func() {
		_ = ln.Close()
		for c := range accepted {
			_ = c.Close()
		}
	}()
	for _, v := range []string{Version5, Version311} {
		t.Run(v, func(t *testing.T) {
			s, err := New(Config{Broker: mqttclient.Broker{URL: "tcp://" + ln.Addr().String(), ClientID: "gw", ProtocolVersion: v}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(context.Background())
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			err = s.Connect(ctx)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Connect = %v, want DeadlineExceeded", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Connect took %v", d)
			}
		})
	}
}

func TestPasswordNeverInErrors(t *testing.T) {
	t.Setenv("WEIR_TEST_PW", "hunter2-secret")
	s, err := New(Config{Broker: mqttclient.Broker{URL: "mqtts://127.0.0.1:1", ClientID: "gw", Username: "u", Password: conf.Secret{Env: "WEIR_TEST_PW"}, TLS: tlsConfig("/nonexistent/c.pem", "/nonexistent/k.pem")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	err = s.Connect(context.Background())
	if err == nil {
		t.Fatal("Connect succeeded")
	}
	st := s.Status()
	for _, text := range []string{err.Error(), st.LastError} {
		if strings.Contains(text, "hunter2") {
			t.Errorf("password leaked: %s", text)
		}
	}
}

func TestMissingSecret(t *testing.T) {
	s, err := New(Config{Broker: mqttclient.Broker{URL: "tcp://127.0.0.1:1", ClientID: "gw", Username: "u", Password: conf.Secret{Env: "WEIR_TEST_UNSET_VARIABLE"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	if err := s.Connect(context.Background()); err == nil || !strings.Contains(err.Error(), "WEIR_TEST_UNSET_VARIABLE is not set") {
		t.Errorf("Connect = %v", err)
	}
}
