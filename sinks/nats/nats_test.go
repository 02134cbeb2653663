package nats

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/conf/conftest"
	"github.com/weir-edge/weir/internal/tlsconf"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/sinks/sinktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func decodeStrict(t *testing.T, data []byte) (Config, error) {
	return conftest.DecodeErr[Config](string(data))
}

func TestSampleConfig(t *testing.T) {
	c, err := decodeStrict(t, []byte(SampleConfig))
	if err != nil {
		t.Fatalf("decode sample.yaml: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("sample.yaml does not validate: %v", err)
	}
	if c.Password.Env != "WEIR_NATS_PASSWORD" || c.Stream != "WEIR" || !c.CreateStream || c.MaxPending != 256 {
		t.Errorf("sample.yaml decoded to %+v", c)
	}
	if _, err := New(c, nil); err != nil {
		t.Fatalf("New(sample): %v", err)
	}
}

func TestDefaults(t *testing.T) {
	s, err := New(Config{URL: "nats://127.0.0.1", SubjectPrefix: "weir"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := s.cfg
	if c.ClientID != "weir" || c.Mode != ModeSample || c.ConnectTimeout != 10*time.Second ||
		c.AckTimeout != 10*time.Second || c.MaxPending != 256 {
		t.Errorf("defaults: %+v", c)
	}
	if s.servers != "nats://127.0.0.1:4222" || !strings.HasPrefix(s.idBase, "weir-") {
		t.Errorf("servers %q id base %q", s.servers, s.idBase)
	}
	s2, err := New(Config{URLs: []string{"nats://a:1", "tls://b"}, SubjectPrefix: "weir"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s2.servers != "nats://a:1,tls://b:4222" {
		t.Errorf("servers %q", s2.servers)
	}
	if s.idBase == s2.idBase {
		t.Errorf("two sinks share the message id base %q", s.idBase)
	}
}

func TestValidate(t *testing.T) {
	ok := func(c Config) Config {
		if c.URL == "" && c.URLs == nil {
			c.URL = "nats://127.0.0.1:4222"
		}
		if c.SubjectPrefix == "" {
			c.SubjectPrefix = "weir.v1"
		}
		return c
	}
	tests := []struct {
		name string
		cfg  Config
		want []string // exact messages; nil: valid
	}{
		{"minimal", ok(Config{}), nil},
		{"urls", ok(Config{URLs: []string{"nats://a", "tls://[::1]:4443"}}), nil},
		{"stream created", ok(Config{Stream: "WEIR", CreateStream: true}), nil},
		{"token", ok(Config{Token: conf.Secret{Env: "T"}}), nil},
		{"creds", ok(Config{CredsFile: "/etc/x.creds"}), nil},
		{"missing url and prefix", Config{}, []string{"url: is required (or urls)", "subject_prefix: is required"}},
		{"url and urls", ok(Config{URL: "nats://a", URLs: []string{"nats://b"}}), []string{"urls: give either url or urls, not both"}},
		{"bad scheme", ok(Config{URL: "ws://h"}), []string{`url: scheme "ws" is not supported (nats, tls)`}},
		{"bad urls entry", ok(Config{URLs: []string{"nats://a", "nats://u:p@b"}}), []string{"urls[1]: must not contain credentials; use username/password, token or creds_file"}},
		{"no host", ok(Config{URL: "nats://:4222"}), []string{"url: has no host"}},
		{"url path", ok(Config{URL: "nats://h/x"}), []string{"url: must be scheme://host[:port] without path or query"}},
		{"prefix wildcard", ok(Config{SubjectPrefix: "weir.>"}), []string{`subject_prefix: "weir.>" contains a wildcard`}},
		{"prefix empty token", ok(Config{SubjectPrefix: "weir..v1"}), []string{`subject_prefix: "weir..v1" has an empty token`}},
		{"prefix dollar", ok(Config{SubjectPrefix: "$JS.x"}), []string{`subject_prefix: "$JS.x" starts with '$', which NATS reserves`}},
		{"prefix space", ok(Config{SubjectPrefix: "weir v1"}), []string{`subject_prefix: "weir v1" contains spaces or control characters`}},
		{"stream dot", ok(Config{Stream: "a.b"}), []string{`stream: "a.b" must not contain '.'`}},
		{"create without stream", ok(Config{CreateStream: true}), []string{"stream: is required with create_stream"}},
		{"mode", ok(Config{Mode: "bulk"}), []string{`mode: "bulk" is not supported (use "sample" or "batch")`}},
		{"client id space", ok(Config{ClientID: "gw 1"}), []string{"client_id: must not contain spaces or control characters"}},
		{"username without password", ok(Config{Username: "u"}), []string{"password: is required with username"}},
		{"password without username", ok(Config{Password: conf.Secret{Env: "P"}}), []string{"username: is required with password"}},
		{"two auths", ok(Config{Username: "u", Password: conf.Secret{Env: "P"}, Token: conf.Secret{Env: "T"}}),
			[]string{"creds_file: give only one of creds_file, username/password and token"}},
		{"secret both", ok(Config{Token: conf.Secret{Env: "A", File: "b"}}), []string{"token: give either env or file, not both"}},
		{"tls block", ok(Config{TLS: tlsconf.Config{CertFile: "c"}}), []string{"tls.key_file: is required when cert_file is set"}},
		{"negative timeouts", ok(Config{ConnectTimeout: -1, AckTimeout: -1}),
			[]string{"connect_timeout: must not be negative", "ack_timeout: must not be negative"}},
		{"max pending", ok(Config{MaxPending: -1}), []string{"max_pending: must be between 1 and 65536"}},
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
			if got := strings.Split(err.Error(), "\n"); !equalStrings(got, tt.want) {
				t.Errorf("errors\n got %q\nwant %q", got, tt.want)
			}
			var fe *conf.FieldError
			if !errors.As(err, &fe) {
				t.Errorf("error is not a conf.FieldError: %T", err)
			}
			if _, nerr := New(tt.cfg, nil); nerr == nil {
				t.Error("New accepted an invalid config")
			}
		})
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestBadConfigFiles decodes testdata/*.bad.yaml strictly; the first line,
// "# want: <message>", is the expected error.
func TestBadConfigFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/*.bad.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad configs: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			first, _ := bufio.NewReader(bytes.NewReader(data)).ReadString('\n')
			want, ok := strings.CutPrefix(strings.TrimSpace(first), "# want: ")
			if !ok {
				t.Fatalf("first line %q is not '# want: …'", first)
			}
			c, err := decodeStrict(t, data)
			if err == nil {
				err = c.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("got %v, want %q", err, want)
			}
		})
	}
}

func TestSubjectMapping(t *testing.T) {
	tests := []struct {
		name, prefix, path, subject, err string
	}{
		{"plain", "weir.v1", "plant/line1/temp", "weir.v1.plant.line1.temp", ""},
		{"dot in level", "weir", "plant/temp.1", "weir.plant.temp%2E1", ""},
		{"wildcards", "weir", "a*/b>", "weir.a%2A.b%3E", ""},
		{"space and tab", "weir", "line 1/x\ty", "", "control character"},
		{"inner space", "weir", "line 1/temp", "weir.line%201.temp", ""},
		{"percent", "weir", "100%/x", "weir.100%25.x", ""},
		{"utf8 kept", "weir", "Halle Süd/Temperatur", "weir.Halle%20Süd.Temperatur", ""},
		{"single level", "weir", "temp", "weir.temp", ""},
		{"empty path is the prefix", "weir", "", "weir", ""},
		{"empty level refused", "weir", "a//b", "", "empty level"},
		{"mqtt wildcard refused", "weir", "a/#", "", "MQTT wildcard"},
		{"leading dollar refused", "weir", "$SYS/x", "", "starts with '$'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Subject(tt.prefix, tt.path)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Subject(%q) = %q, %v; want error with %q", tt.path, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.subject {
				t.Fatalf("Subject(%q) = %q, %v; want %q", tt.path, got, err, tt.subject)
			}
			back, err := PathOf(tt.prefix, got)
			if err != nil || back != tt.path {
				t.Errorf("PathOf(%q) = %q, %v; want %q", got, back, err, tt.path)
			}
		})
	}
}

func TestPathOfErrors(t *testing.T) {
	tests := []struct{ name, subject, err string }{
		{"other prefix", "other.a", "is not under prefix"},
		{"truncated escape", "weir.a%2", "truncated escape"},
		{"bad escape", "weir.a%zz", "invalid escape"},
		{"empty token", "weir.a..b", "empty level"},
		{"escaped slash makes a level", "weir.a%2Fb", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := PathOf("weir", tt.subject)
			if tt.err == "" {
				if err != nil {
					t.Fatalf("PathOf(%q): %v", tt.subject, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("PathOf(%q) = %v; want error with %q", tt.subject, err, tt.err)
			}
		})
	}
}

// FuzzPathOf: decoding any subject never panics, and every path Subject
// accepts comes back unchanged.
func FuzzPathOf(f *testing.F) {
	for _, s := range []string{"weir.a.b", "weir.a%2Eb", "weir.%", "weir..x", "weir", "x.y", "weir.a%2Fb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, subject string) {
		p, err := PathOf("weir", subject)
		if err != nil {
			return
		}
		if p == "" {
			return
		}
		subj, err := Subject("weir", p)
		if err != nil {
			t.Fatalf("PathOf(%q) = %q, which Subject refuses: %v", subject, p, err)
		}
		if back, err := PathOf("weir", subj); err != nil || back != p {
			t.Fatalf("round trip of %q: %q, %v", p, back, err)
		}
	})
}

func TestEncoderBatchSplitsAndGroups(t *testing.T) {
	e := newEncoder("weir", true)
	e.maxPayload = 400 // a few samples per message
	var batch []model.Sample
	for i := range 30 {
		batch = append(batch, model.Sample{Path: fmt.Sprintf("a%d/t%d", i%3, i%5), Value: model.Int(int64(i)), Seq: uint64(i + 1)})
	}
	batch[7].Path = "bad//path"
	batch[11].Path = "a1/bad\xffname"
	batch[12].Value = model.String(strings.Repeat("x", 500)) // alone over max_payload
	msgs, rej := e.encode(batch)
	if rej == nil || len(rej.Rejected) != 3 {
		t.Fatalf("rejected %v, want 3", rej)
	}
	causes := map[int]string{}
	for _, r := range rej.Rejected {
		causes[r.Index] = r.Cause
	}
	if causes[7] != pipeline.CauseInvalidName || causes[11] != pipeline.CauseInvalidName || causes[12] != pipeline.CauseOversize {
		t.Errorf("rejections %+v", rej.Rejected)
	}
	seen := map[uint64]bool{}
	lastPerSubject := map[string]uint64{}
	for _, m := range msgs {
		if n := m.end - m.start; n > e.maxPayload {
			t.Errorf("message of %d bytes over the limit", n)
		}
		if m.firstSeq < lastPerSubject[m.subject] {
			t.Errorf("subject %s out of order", m.subject)
		}
		lastPerSubject[m.subject] = m.lastSeq
		seen[m.firstSeq] = true
	}
	if len(msgs) <= 3 {
		t.Errorf("got %d messages; want the 3 assets split further", len(msgs))
	}
	total := 0
	for _, m := range msgs {
		total += m.samples
	}
	if total != 27 {
		t.Errorf("messages carry %d samples, want 27 (30 less 3 rejected)", total)
	}
}

// TestSink runs the conformance suite against the machine's JetStream in
// both modes, and the outage test against a server of the test's own.
func TestSink(t *testing.T) {
	for _, mode := range []string{ModeSample, ModeBatch} {
		t.Run(mode, func(t *testing.T) {
			requirePeer(t, "127.0.0.1:4222")
			var rd *reader
			var cfg Config
			sinktest.Run(t, sinktest.Harness{
				New: func(t *testing.T) pipeline.Sink {
					cfg = testConfig(t, peerURL, mode)
					rd = newReader(t, peerURL, cfg.Stream, cfg.SubjectPrefix, mode == ModeBatch)
					s, err := New(cfg, discard())
					if err != nil {
						t.Fatal(err)
					}
					return s
				},
				Received:     func(t *testing.T) []model.Sample { return rd.samples(t) },
				MinWireBytes: func(b []model.Sample) uint64 { return encodedBytes(cfg, b) },
			})
		})
	}
}

func TestOutage(t *testing.T) {
	srv := startOwnServer(t)
	var rd *reader
	sinktest.Run(t, sinktest.Harness{
		New: func(t *testing.T) pipeline.Sink {
			cfg := testConfig(t, srv.url(), ModeSample)
			rd = newReader(t, srv.url(), cfg.Stream, cfg.SubjectPrefix, false)
			s, err := New(cfg, discard())
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Received: func(t *testing.T) []model.Sample { return rd.samples(t) },
		Outage: func(t *testing.T) func() {
			srv.stop()
			return func() { srv.start(t) }
		},
	})
}

// encodedBytes is the sink's own encoding of b: subjects and payloads,
// the least wire_bytes must grow by when b is written.
func encodedBytes(cfg Config, b []model.Sample) uint64 {
	enc := newEncoder(cfg.SubjectPrefix, cfg.Mode == ModeBatch)
	msgs, _ := enc.encode(b)
	var n uint64
	for i := range msgs {
		n += uint64(len(msgs[i].subject) + len(enc.payload(&msgs[i])))
	}
	return n
}

func connected(t *testing.T, cfg Config) *Sink {
	t.Helper()
	s, err := New(cfg, discard())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func write(t *testing.T, s *Sink, batch []model.Sample) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.Write(ctx, batch)
}

// TestDuplicatesDropped: writing the same sequence ids twice (a replay
// after a lost PubAck) stores each message once.
func TestDuplicatesDropped(t *testing.T) {
	requirePeer(t, "127.0.0.1:4222")
	for _, mode := range []string{ModeSample, ModeBatch} {
		t.Run(mode, func(t *testing.T) {
			cfg := testConfig(t, peerURL, mode)
			s := connected(t, cfg)
			batch := sinktest.Batch("dup", 4, 20, 1)
			batch[3].Historical = true
			for i := range 2 {
				if err := write(t, s, batch); err != nil {
					t.Fatalf("Write %d: %v", i, err)
				}
			}
			wantMsgs := uint64(20)
			if mode == ModeBatch {
				wantMsgs = 1 // one asset
			}
			if n := countStored(t, peerURL, cfg.Stream); n != wantMsgs {
				t.Errorf("stream holds %d messages, want %d", n, wantMsgs)
			}
			st := s.Status()
			if st.Counters["duplicates"] != wantMsgs || st.Counters["messages"] != 2*wantMsgs {
				t.Errorf("counters %v", st.Counters)
			}
			raw := newReader(t, peerURL, cfg.Stream, cfg.SubjectPrefix, mode == ModeBatch).raw(t)
			if len(raw) == 0 {
				t.Fatal("nothing stored")
			}
			id := header(raw[0], jetstream.MsgIDHeader)
			if !strings.HasPrefix(id, s.idBase) || !strings.HasSuffix(id, map[string]string{ModeSample: "-1", ModeBatch: "-1-20"}[mode]) {
				t.Errorf("message id %q", id)
			}
			hist := 0
			for _, m := range raw {
				if header(m, HeaderHistorical) == "true" {
					hist++
				}
			}
			if hist != 1 {
				t.Errorf("%d messages marked historical, want 1", hist)
			}
		})
	}
}

// TestPartialWrite: a stream that refuses new messages beyond a limit
// confirms a prefix; Write reports exactly that prefix.
func TestPartialWrite(t *testing.T) {
	requirePeer(t, "127.0.0.1:4222")
	cfg := testConfig(t, peerURL, ModeSample)
	cfg.CreateStream = false
	nc, err := natsgo.Connect(peerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{
		Name: cfg.Stream, Subjects: []string{cfg.SubjectPrefix + ".>"}, Storage: jetstream.MemoryStorage,
		MaxMsgs: 7, Discard: jetstream.DiscardNew,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := connected(t, cfg)
	err = write(t, s, sinktest.Batch("partial", 3, 20, 1))
	var pe *pipeline.PartialWriteError
	if !errors.As(err, &pe) || pe.Delivered != 7 {
		t.Fatalf("Write = %v; want PartialWriteError{Delivered: 7}", err)
	}
	if errors.Is(err, pipeline.ErrDisconnected) {
		t.Errorf("a refused message is not a lost connection: %v", err)
	}
	if got := s.Status().Counters["publish_errors"]; got != 1 {
		t.Errorf("publish_errors = %d", got)
	}
}

func TestMissingStream(t *testing.T) {
	requirePeer(t, "127.0.0.1:4222")
	cfg := testConfig(t, peerURL, ModeSample)
	cfg.CreateStream = false
	s, err := New(cfg, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	err = s.Connect(context.Background())
	if err == nil || !strings.Contains(err.Error(), "stream "+cfg.Stream) {
		t.Fatalf("Connect = %v; want a missing stream error", err)
	}
	if err := s.Write(context.Background(), sinktest.Batch("x", 1, 1, 1)); !errors.Is(err, pipeline.ErrDisconnected) {
		t.Errorf("Write before Connect = %v; want ErrDisconnected", err)
	}
}

func TestConnectRefused(t *testing.T) {
	s, err := New(Config{URL: "nats://127.0.0.1:1", SubjectPrefix: "weir", ConnectTimeout: time.Second}, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	if err := s.Connect(context.Background()); err == nil {
		t.Fatal("Connect to a closed port succeeded")
	}
	if st := s.Status(); st.State != pipeline.StateRetrying || st.LastError == "" {
		t.Errorf("status %+v", st)
	}
}

func BenchmarkWriteBatchMode(b *testing.B) {
	requirePeer(b, "127.0.0.1:4222")
	cfg := testConfig(b, peerURL, ModeBatch)
	cfg.CreateStream = false
	nc, err := natsgo.Connect(peerURL)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: cfg.Stream, Subjects: []string{cfg.SubjectPrefix, cfg.SubjectPrefix + ".>"},
		Storage: jetstream.MemoryStorage, MaxBytes: 256 << 20,
	}); err != nil {
		b.Fatal(err)
	}
	s, err := New(cfg, discard())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(ctx)
	if err := s.Connect(ctx); err != nil {
		b.Fatal(err)
	}
	batch := make([]model.Sample, 1000)
	for i := range batch {
		batch[i] = model.Sample{Path: fmt.Sprintf("plant/area/asset%d/tag%d", i%20, i%50), Value: model.Float(float64(i) + 0.5),
			SourceTime: time.Now().UnixNano(), EdgeTime: time.Now().UnixNano()}
	}
	b.ReportAllocs()
	b.ResetTimer()
	seq := uint64(0)
	for b.Loop() {
		for i := range batch {
			seq++
			batch[i].Seq = seq
		}
		if err := s.Write(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "samples/s")
}

// TestOutageKeepsStream: a Write while the server is down fails with
// ErrDisconnected; after a restart on the same store the stream still holds
// what was confirmed before, and the retried batch completes it.
func TestOutageKeepsStream(t *testing.T) {
	srv := startOwnServer(t)
	cfg := testConfig(t, srv.url(), ModeSample)
	s := connected(t, cfg)
	if err := write(t, s, sinktest.Batch("o", 2, 10, 1)); err != nil {
		t.Fatal(err)
	}
	srv.stop()
	second := sinktest.Batch("o", 2, 10, 11)
	err := write(t, s, second)
	if !errors.Is(err, pipeline.ErrDisconnected) {
		t.Fatalf("Write during outage = %v; want ErrDisconnected", err)
	}
	srv.start(t)
	deadline := time.Now().Add(2 * time.Minute)
	tick := time.NewTicker(50 * time.Millisecond) // retry pacing, as the engine's backoff
	defer tick.Stop()
	for {
		err = s.Connect(context.Background())
		if err == nil {
			if err = write(t, s, second); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery: %v", err)
		}
		<-tick.C
	}
	if n := countStored(t, srv.url(), cfg.Stream); n != 20 {
		t.Errorf("stream holds %d messages after the restart, want 20", n)
	}
	st := s.Status().Counters
	if st["connects"] != 2 || st["disconnects"] != 1 || st["messages"] != 20 {
		t.Errorf("counters %v", st)
	}
}
