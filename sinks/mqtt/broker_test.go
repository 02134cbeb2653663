package mqtt

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/internal/mqttclient/mqtttest"
	"github.com/weir-edge/weir/internal/payload"
	"github.com/weir-edge/weir/internal/tlsconf"
	"github.com/weir-edge/weir/internal/tlsconf/tlstest"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

const waitTimeout = 10 * time.Second

func tlsEnabled() tlsconf.Config { return tlsconf.Config{Enabled: true} }

func tlsConfig(cert, key string) tlsconf.Config {
	return tlsconf.Config{CertFile: cert, KeyFile: key}
}

// newSink builds and connects a sink, closing it at cleanup.
func newSink(t *testing.T, cfg Config) *Sink {
	t.Helper()
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := s.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return s
}

// testBatch is three samples of asset line1 and one of line2, with
// distinct sequence numbers.
func testBatch() []model.Sample {
	ts := time.Date(2024, 11, 25, 20, 36, 40, 123_000_000, time.UTC).UnixNano()
	return []model.Sample{
		{Path: "site/line1/temperature", Value: model.Float(21.5), SourceTime: ts, EdgeTime: ts + 2e6, Seq: 42},
		{Path: "site/line2/speed", Value: model.Int(1200), SourceTime: ts, EdgeTime: ts + 2e6, Seq: 43},
		{Path: "site/line1/running", Value: model.Bool(true), SourceTime: ts, EdgeTime: ts + 2e6, Seq: 44},
		{Path: "site/line1/alarm", Quality: model.Quality{Code: model.Bad, Reason: model.ReasonUnreachable},
			SourceTime: ts, EdgeTime: ts + 2e6, Seq: 45, Historical: true},
	}
}

// checkDelivered asserts that msgs under prefix carry batch in the layout
// of mode.
func checkDelivered(t *testing.T, msgs []mqtttest.Message, prefix, mode string, batch []model.Sample) {
	t.Helper()
	bySeq := map[uint64]model.Sample{}
	for _, m := range mqtttest.OnPrefix(msgs, prefix+"/site/") {
		rel := strings.TrimPrefix(m.Topic, prefix+"/")
		if mode == ModeSample {
			s, err := payload.DecodeSample(m.Payload)
			if err != nil {
				t.Fatalf("%s: %v: %s", m.Topic, err, m.Payload)
			}
			s.Path = rel
			bySeq[s.Seq] = s
			continue
		}
		samples, err := payload.DecodeBatch(m.Payload, rel)
		if err != nil {
			t.Fatalf("%s: %v: %s", m.Topic, err, m.Payload)
		}
		for _, s := range samples {
			bySeq[s.Seq] = s
		}
	}
	if len(bySeq) != len(batch) {
		t.Fatalf("delivered %d distinct samples, want %d:\n%s", len(bySeq), len(batch), mqtttest.Dump(msgs))
	}
	for _, want := range batch {
		got := bySeq[want.Seq]
		if got.Path != want.Path || !got.Value.Equal(want.Value) || got.Quality != want.Quality ||
			got.SourceTime != want.SourceTime || got.EdgeTime != want.EdgeTime || got.Historical != want.Historical {
			t.Errorf("seq %d: got %#v\nwant %#v", want.Seq, got, want)
		}
	}
}

func TestPublish(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	n := 0
	for _, version := range []string{Version5, Version311} {
		for _, mode := range []string{ModeSample, ModeBatch} {
			for _, qos := range []int{0, 1} {
				for _, retain := range []bool{false, true} {
					n++
					name := fmt.Sprintf("v%s/%s/qos%d/retain=%v", version, mode, qos, retain)
					t.Run(name, func(t *testing.T) {
						prefix := fmt.Sprintf("weir/t%d", n)
						id := fmt.Sprintf("gw-%d", n)
						s := newSink(t, Config{
							Broker: mqttclient.Broker{URL: b.URL("tcp"), ClientID: id, ProtocolVersion: version},
							QoS:    intp(qos), Retain: retain, TopicPrefix: prefix, Mode: mode})
						status := prefix + "/_status/" + id
						batch := testBatch()
						if err := s.Write(context.Background(), batch); err != nil {
							t.Fatalf("Write: %v", err)
						}
						wantMsgs := 4
						if mode == ModeBatch {
							wantMsgs = 2
						}
						msgs := b.WaitFor(t, waitTimeout, "data", func(m []mqtttest.Message) bool {
							return len(mqtttest.OnPrefix(m, prefix+"/site/")) >= wantMsgs
						})
						checkDelivered(t, msgs, prefix, mode, batch)
						// The alarm sample is historical (replayed): its message
						// is never retained, whatever the retain option says.
						historical := func(topic string) bool {
							return strings.HasSuffix(topic, "/alarm") || (mode == ModeBatch && strings.HasSuffix(topic, "/line1"))
						}
						for _, m := range mqtttest.OnPrefix(msgs, prefix+"/site/") {
							if m.QoS != byte(qos) || m.Retain != (retain && !historical(m.Topic)) {
								t.Errorf("%s: qos %d retain %v", m.Topic, m.QoS, m.Retain)
							}
						}
						if mode == ModeBatch {
							if got := mqtttest.On(msgs, prefix+"/site/line1"); len(got) != 1 {
								t.Errorf("line1: %d messages", len(got))
							}
						}
						wantRetained := 0
						if retain {
							wantRetained = wantMsgs - 1
						}
						if got := b.Retained(t, prefix+"/site/#"); len(got) != wantRetained {
							t.Errorf("retained data: %d messages with retain=%v", len(got), retain)
						}
						if got := mqtttest.On(msgs, status); len(got) != 1 || string(got[0].Payload) != "online" || !got[0].Retain || got[0].QoS != 1 {
							t.Errorf("status: %+v", got)
						}
						st := s.Status()
						if st.State != pipeline.StateRunning || st.Counters["messages"] != uint64(wantMsgs) ||
							st.Counters["samples"] != 4 || st.Counters["connects"] != 1 {
							t.Errorf("status %+v", st)
						}
						if err := s.Close(context.Background()); err != nil {
							t.Fatalf("Close: %v", err)
						}
						b.WaitFor(t, waitTimeout, "offline", func(m []mqtttest.Message) bool {
							got := mqtttest.On(m, status)
							return len(got) == 2 && string(got[1].Payload) == "offline" && got[1].Retain
						})
						if r := b.Retained(t, status); len(r) != 1 || string(r[0].Payload) != "offline" {
							t.Errorf("retained status after Close: %+v", r)
						}
					})
				}
			}
		}
	}
}

// TestManyTopicsInOrder publishes many samples over a few tags with a small
// in-flight window: everything arrives, and each tag's samples arrive in
// batch order despite the concurrency.
func TestManyTopicsInOrder(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	for _, version := range []string{Version5, Version311} {
		t.Run("v"+version, func(t *testing.T) {
			prefix := "order/v" + strings.ReplaceAll(version, ".", "")
			s := newSink(t, Config{
				Broker:      mqttclient.Broker{URL: b.URL("mqtt"), ClientID: "order-" + version, ProtocolVersion: version},
				TopicPrefix: prefix, MaxInflight: 8})
			var batch []model.Sample
			for i := range 600 {
				batch = append(batch, model.Sample{Path: fmt.Sprintf("a/tag%d", i%20), Value: model.Int(int64(i)), Seq: uint64(i)})
			}
			if err := s.Write(context.Background(), batch); err != nil {
				t.Fatal(err)
			}
			msgs := b.WaitFor(t, waitTimeout, "600 samples", func(m []mqtttest.Message) bool {
				return len(mqtttest.OnPrefix(m, prefix+"/a/")) >= 600
			})
			last := map[string]uint64{}
			for _, m := range mqtttest.OnPrefix(msgs, prefix+"/a/") {
				smp, err := payload.DecodeSample(m.Payload)
				if err != nil {
					t.Fatal(err)
				}
				if prev, ok := last[m.Topic]; ok && smp.Seq <= prev {
					t.Fatalf("%s: seq %d after %d", m.Topic, smp.Seq, prev)
				}
				last[m.Topic] = smp.Seq
			}
		})
	}
}

// TestLastWill cuts the connection in the network (a proxy): the broker
// publishes the will, Write reports ErrDisconnected, and Connect restores
// service with "online".
func TestLastWill(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	for _, version := range []string{Version5, Version311} {
		t.Run("v"+version, func(t *testing.T) {
			p := mqtttest.StartProxy(t, b.Addr())
			id := "will-" + version
			status := "will/_status/" + id
			// connect_timeout also bounds how long paho.mqtt.golang may block
			// handing over a publish when the connection drops.
			s := newSink(t, Config{Broker: mqttclient.Broker{URL: "tcp://" + p.Addr(), ClientID: id, ProtocolVersion: version, ConnectTimeout: 2 * time.Second}, TopicPrefix: "will"})
			b.WaitFor(t, waitTimeout, "online", func(m []mqtttest.Message) bool { return len(mqtttest.On(m, status)) == 1 })
			p.Drop()
			b.WaitFor(t, waitTimeout, "last will", func(m []mqtttest.Message) bool {
				got := mqtttest.On(m, status)
				return len(got) == 2 && string(got[1].Payload) == "offline" && got[1].Retain && got[1].QoS == 1
			})
			err := s.Write(context.Background(), testBatch())
			for err == nil { // the sink may not have noticed yet: a later Write fails
				err = s.Write(context.Background(), testBatch())
			}
			if !errors.Is(err, pipeline.ErrDisconnected) {
				t.Fatalf("Write after drop = %v, want ErrDisconnected", err)
			}
			if st := s.Status(); st.State != pipeline.StateRetrying || st.Counters["disconnects"] != 1 || st.LastError == "" {
				t.Errorf("status after drop: %+v", st)
			}
			if err := s.Connect(context.Background()); err != nil {
				t.Fatalf("reconnect: %v", err)
			}
			if err := s.Write(context.Background(), testBatch()); err != nil {
				t.Fatalf("Write after reconnect: %v", err)
			}
			b.WaitFor(t, waitTimeout, "online again", func(m []mqtttest.Message) bool {
				got := mqtttest.On(m, status)
				return len(got) == 3 && string(got[2].Payload) == "online"
			})
			if st := s.Status(); st.State != pipeline.StateRunning || st.Counters["connects"] != 2 || st.LastError != "" {
				t.Errorf("status after reconnect: %+v", st)
			}
		})
	}
}

// TestBrokerRestart stops the broker between Writes and starts a new one on
// the same port.
func TestBrokerRestart(t *testing.T) {
	for _, version := range []string{Version5, Version311} {
		t.Run("v"+version, func(t *testing.T) {
			b := mqtttest.Start(t, mqtttest.Options{})
			s := newSink(t, Config{
				Broker:      mqttclient.Broker{URL: b.URL("tcp"), ClientID: "restart", ProtocolVersion: version, KeepAlive: 2 * time.Second},
				TopicPrefix: "r", Mode: ModeBatch})
			ctx := context.Background()
			if err := s.Write(ctx, testBatch()); err != nil {
				t.Fatal(err)
			}
			b.Stop()
			var err error
			for err == nil {
				err = s.Write(ctx, testBatch())
			}
			if !errors.Is(err, pipeline.ErrDisconnected) {
				t.Fatalf("Write with broker stopped = %v, want ErrDisconnected", err)
			}
			if err := s.Connect(ctx); err == nil {
				t.Fatal("Connect succeeded with the broker stopped")
			}
			b2 := mqtttest.Start(t, mqtttest.Options{Addr: b.Addr()})
			if err := s.Connect(ctx); err != nil {
				t.Fatalf("Connect after restart: %v", err)
			}
			if err := s.Write(ctx, testBatch()); err != nil {
				t.Fatalf("Write after restart: %v", err)
			}
			msgs := b2.WaitFor(t, waitTimeout, "data on the new broker", func(m []mqtttest.Message) bool {
				return len(mqtttest.OnPrefix(m, "r/site/")) == 2
			})
			checkDelivered(t, msgs, "r", ModeBatch, testBatch())
		})
	}
}

// TestBrokerStopsMidWrite stops the broker while a Write waits for PUBACKs.
func TestBrokerStopsMidWrite(t *testing.T) {
	for _, version := range []string{Version5, Version311} {
		t.Run("v"+version, func(t *testing.T) {
			stall := mqtttest.NewStallHook("mid/a/")
			b := mqtttest.Start(t, mqtttest.Options{Hooks: []mochi.Hook{stall}})
			// connect_timeout also bounds how long paho.mqtt.golang may block
			// handing over a publish when the connection drops.
			s := newSink(t, Config{Broker: mqttclient.Broker{URL: b.URL("tcp"), ClientID: "mid", ProtocolVersion: version, ConnectTimeout: 2 * time.Second}, TopicPrefix: "mid"})
			var batch []model.Sample
			for i := range 200 {
				batch = append(batch, model.Sample{Path: fmt.Sprintf("a/t%d", i), Value: model.Int(int64(i)), Seq: uint64(i)})
			}
			werr := make(chan error, 1)
			go func() { werr <- s.Write(context.Background(), batch) }()
			<-stall.Arrived
			stopped := make(chan struct{})
			go func() { b.Stop(); close(stopped) }() // blocks until the stalled publish is released
			err := <-werr
			close(stall.Release)
			<-stopped
			if !errors.Is(err, pipeline.ErrDisconnected) {
				t.Fatalf("Write = %v, want ErrDisconnected", err)
			}
			if st := s.Status(); st.Counters["publish_errors"] != 1 || st.State != pipeline.StateRetrying {
				t.Errorf("status %+v", st)
			}
			b2 := mqtttest.Start(t, mqtttest.Options{Addr: b.Addr()})
			if err := s.Connect(context.Background()); err != nil {
				t.Fatalf("Connect after restart: %v", err)
			}
			if err := s.Write(context.Background(), batch); err != nil {
				t.Fatalf("retried Write: %v", err)
			}
			b2.WaitFor(t, waitTimeout, "the retried batch", func(m []mqtttest.Message) bool {
				return len(mqtttest.OnPrefix(m, "mid/a/")) == len(batch)
			})
		})
	}
}

func TestMutualTLS(t *testing.T) {
	pki := tlstest.Generate(t, t.TempDir())
	srvTLS, err := (&tlsconf.Config{CAFile: pki.CA, CertFile: pki.ServerCert, KeyFile: pki.ServerKey}).LoadServer()
	if err != nil {
		t.Fatal(err)
	}
	b := mqtttest.Start(t, mqtttest.Options{TLS: srvTLS})
	tests := []struct {
		name, scheme string
		tls          tlsconf.Config
		wantErr      bool
	}{
		{"mtls", "mqtts", tlsconf.Config{CAFile: pki.CA, CertFile: pki.ClientCert, KeyFile: pki.ClientKey}, false},
		{"ssl scheme", "ssl", tlsconf.Config{CAFile: pki.CA, CertFile: pki.ClientCert, KeyFile: pki.ClientKey, MinVersion: "1.3"}, false},
		{"no client cert", "mqtts", tlsconf.Config{CAFile: pki.CA}, true},
		{"unknown server CA", "mqtts", tlsconf.Config{CAFile: pki.OtherCA, CertFile: pki.ClientCert, KeyFile: pki.ClientKey}, true},
		{"plaintext to a TLS port", "tcp", tlsconf.Config{}, true},
	}
	for _, version := range []string{Version5, Version311} {
		for i, tt := range tests {
			t.Run("v"+version+"/"+tt.name, func(t *testing.T) {
				id := fmt.Sprintf("tls-%s-%d", version, i)
				s, err := New(Config{Broker: mqttclient.Broker{URL: b.URL(tt.scheme), ClientID: id, ProtocolVersion: version, TLS: tt.tls, ConnectTimeout: 3 * time.Second}, TopicPrefix: "tls"}, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close(context.Background())
				err = s.Connect(context.Background())
				if tt.wantErr {
					if err == nil {
						t.Fatal("Connect succeeded")
					}
					return
				}
				if err != nil {
					t.Fatalf("Connect: %v", err)
				}
				if err := s.Write(context.Background(), testBatch()[:1]); err != nil {
					t.Fatal(err)
				}
				b.WaitFor(t, waitTimeout, "data over TLS", func(m []mqtttest.Message) bool {
					return len(mqtttest.On(m, "tls/_status/"+id)) == 1
				})
			})
		}
	}
}

func TestAuth(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{Users: map[string]string{"weir": "s3cret"}})
	t.Setenv("WEIR_TEST_MQTT_PASSWORD", "s3cret")
	t.Setenv("WEIR_TEST_MQTT_WRONG", "guess")
	tests := []struct {
		name, user, env string
		wantErr         bool
	}{
		{"right password", "weir", "WEIR_TEST_MQTT_PASSWORD", false},
		{"wrong password", "weir", "WEIR_TEST_MQTT_WRONG", true},
		{"unknown user", "eve", "WEIR_TEST_MQTT_PASSWORD", true},
	}
	for _, version := range []string{Version5, Version311} {
		for i, tt := range tests {
			t.Run("v"+version+"/"+tt.name, func(t *testing.T) {
				s, err := New(Config{Broker: mqttclient.Broker{URL: b.URL("tcp"), ClientID: fmt.Sprintf("auth-%s-%d", version, i), ProtocolVersion: version, Username: tt.user, Password: conf.Secret{Env: tt.env}}}, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close(context.Background())
				err = s.Connect(context.Background())
				if (err != nil) != tt.wantErr {
					t.Fatalf("Connect = %v, want error %v", err, tt.wantErr)
				}
				if err != nil && strings.Contains(err.Error(), "guess") {
					t.Errorf("error shows the password: %v", err)
				}
			})
		}
	}
}

// BenchmarkWriteBatch writes 1000 samples (10 assets × 100 tags) per Write
// in batch mode at QoS 1 to the embedded broker.
func BenchmarkWriteBatch(b *testing.B) {
	for _, version := range []string{Version5, Version311} {
		b.Run("v"+version, func(b *testing.B) {
			br := mqtttest.Start(b, mqtttest.Options{Quiet: true})
			s, err := New(Config{
				Broker:      mqttclient.Broker{URL: "tcp://" + br.Addr(), ClientID: "bench", ProtocolVersion: version},
				TopicPrefix: "bench", Mode: ModeBatch}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close(context.Background())
			if err := s.Connect(context.Background()); err != nil {
				b.Fatal(err)
			}
			batch := make([]model.Sample, 1000)
			for i := range batch {
				batch[i] = model.Sample{Path: fmt.Sprintf("site/asset%d/tag%d", i%10, i/10), Value: model.Float(float64(i) + 0.5),
					SourceTime: time.Now().UnixNano(), EdgeTime: time.Now().UnixNano(), Seq: uint64(i)}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := s.Write(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "samples/s")
		})
	}
}

// Replayed (historical) samples are never retained: a backlog delivered
// after an outage must not replace a topic's current value.
func TestHistoricalSamplesAreNotRetained(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	for _, mode := range []string{ModeSample, ModeBatch} {
		t.Run(mode, func(t *testing.T) {
			prefix := "weir/hist-" + mode
			s := newSink(t, Config{Broker: mqttclient.Broker{URL: b.URL("tcp"), ClientID: "hist-" + mode}, QoS: intp(1), Retain: true,
				TopicPrefix: prefix, Mode: mode})
			live := model.Sample{Path: "site/a/live", Value: model.Int(2), SourceTime: 2e15, EdgeTime: 2e15, Seq: 2}
			old := model.Sample{Path: "site/b/old", Value: model.Int(1), SourceTime: 1e15, EdgeTime: 1e15, Seq: 1, Historical: true}
			if err := s.Write(context.Background(), []model.Sample{old, live}); err != nil {
				t.Fatal(err)
			}
			msgs := b.WaitFor(t, waitTimeout, "both", func(m []mqtttest.Message) bool { return len(mqtttest.OnPrefix(m, prefix+"/site/")) >= 2 })
			for _, m := range mqtttest.OnPrefix(msgs, prefix+"/site/") {
				wantRetain := !strings.Contains(m.Topic, "/b")
				if m.Retain != wantRetain {
					t.Errorf("%s: retain=%v, want %v", m.Topic, m.Retain, wantRetain)
				}
			}
		})
	}
}
