package kafka

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"go.uber.org/goleak"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/conf/conftest"
	"github.com/weir-edge/weir/internal/tlsconf"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/sinks/sinktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func decodeStrict(data []byte) (Config, error) {
	return conftest.DecodeErr[Config](string(data))
}

func TestSampleConfig(t *testing.T) {
	c, err := decodeStrict([]byte(SampleConfig))
	if err != nil {
		t.Fatalf("decode sample.yaml: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("sample.yaml does not validate: %v", err)
	}
	if c.SASL.Password.Env != "WEIR_KAFKA_PASSWORD" || c.Partitions != 12 || c.Compression != "zstd" || len(c.Brokers) != 2 {
		t.Errorf("sample.yaml decoded to %+v", c)
	}
	if _, err := New(c, nil); err != nil {
		t.Fatalf("New(sample): %v", err)
	}
}

func TestDefaults(t *testing.T) {
	s, err := New(Config{Brokers: []string{"k:9092"}, Topic: "t"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := s.cfg
	if c.Mode != ModeSample || c.ClientID != "weir" || c.Compression != "none" || c.Linger != 5*time.Millisecond ||
		c.MaxBufferedRecords != 10000 || c.ProduceTimeout != 30*time.Second || c.ConnectTimeout != 10*time.Second {
		t.Errorf("defaults: %+v", c)
	}
}

func TestValidate(t *testing.T) {
	ok := func(c Config) Config {
		if c.Brokers == nil {
			c.Brokers = []string{"kafka:9092"}
		}
		if c.Topic == "" {
			c.Topic = "weir.samples"
		}
		return c
	}
	pw := conf.Secret{Env: "P"}
	tests := []struct {
		name string
		cfg  Config
		want []string // exact messages; nil: valid
	}{
		{"minimal", ok(Config{}), nil},
		{"create with sizes", ok(Config{CreateTopic: true, Partitions: 6, ReplicationFactor: 3}), nil},
		{"sasl scram", ok(Config{SASL: SASL{Mechanism: "scram-sha-256", Username: "u", Password: pw}}), nil},
		{"ipv6 broker", ok(Config{Brokers: []string{"[::1]:9092"}}), nil},
		{"missing brokers and topic", Config{}, []string{"brokers: is required", "topic: is required"}},
		{"broker url", ok(Config{Brokers: []string{"kafka://k:9092"}}), []string{`brokers[0]: must be host:port, not a URL; did you mean k:9092?`}},
		{"broker without port", ok(Config{Brokers: []string{"k:9092", "k2"}}), []string{`brokers[1]: has no port; did you mean k2:9092?`}},
		{"broker bad port", ok(Config{Brokers: []string{"k:0"}}), []string{`brokers[0]: has an invalid port (want 1..65535)`}},
		{"broker no host", ok(Config{Brokers: []string{":9092"}}), []string{`brokers[0]: has no host (want host:port)`}},
		{"topic chars", ok(Config{Topic: "weir/samples"}), []string{`topic: "weir/samples" contains '/'; use letters, digits, '.', '_' and '-'`}},
		{"topic dot", ok(Config{Topic: ".."}), []string{`topic: ".." is not a valid topic name`}},
		{"partitions without create", ok(Config{Partitions: 3}), []string{"partitions: applies only with create_topic"}},
		{"negative partitions", ok(Config{CreateTopic: true, Partitions: -1}), []string{"partitions: must not be negative"}},
		{"replication", ok(Config{CreateTopic: true, ReplicationFactor: -2}), []string{"replication_factor: must be between 1 and 32767"}},
		{"mode", ok(Config{Mode: "bulk"}), []string{`mode: "bulk" is not supported (use "sample" or "batch")`}},
		{"sasl mechanism", ok(Config{SASL: SASL{Mechanism: "gssapi", Username: "u", Password: pw}}),
			[]string{`sasl.mechanism: "gssapi" is not supported (plain, scram-sha-256, scram-sha-512)`}},
		{"sasl incomplete", ok(Config{SASL: SASL{Mechanism: "plain"}}), []string{"sasl.username: is required", "sasl.password: is required"}},
		{"sasl without mechanism", ok(Config{SASL: SASL{Username: "u"}}), []string{"sasl.mechanism: is required with username or password"}},
		{"sasl secret both", ok(Config{SASL: SASL{Mechanism: "plain", Username: "u", Password: conf.Secret{Env: "A", File: "b"}}}),
			[]string{"sasl.password: give either env or file, not both"}},
		{"tls", ok(Config{TLS: tlsconf.Config{KeyFile: "k"}}), []string{"tls.cert_file: is required when key_file is set"}},
		{"compression", ok(Config{Compression: "brotli"}), []string{`compression: "brotli" is not supported (none, gzip, snappy, lz4, zstd)`}},
		{"negatives", ok(Config{Linger: -1, MaxBufferedRecords: -1, ConnectTimeout: -1}),
			[]string{"linger: must not be negative", "max_buffered_records: must not be negative", "connect_timeout: must not be negative"}},
		{"produce timeout", ok(Config{ProduceTimeout: time.Millisecond}), []string{"produce_timeout: must be at least 100ms"}},
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
			if got := strings.Split(err.Error(), "\n"); strings.Join(got, "|") != strings.Join(tt.want, "|") {
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
			c, err := decodeStrict(data)
			if err == nil {
				err = c.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("got %v, want %q", err, want)
			}
		})
	}
}

// TestSink runs the conformance suite against kfake in both modes; the
// outage stops the cluster and starts it again on the same port and data.
func TestSink(t *testing.T) {
	for _, mode := range []string{ModeSample, ModeBatch} {
		t.Run(mode, func(t *testing.T) {
			var (
				cl    *cluster
				rd    *reader
				topic string
			)
			sinktest.Run(t, sinktest.Harness{
				New: func(t *testing.T) pipeline.Sink {
					topic = "weir-test-" + uniqueName(t)
					cl = startCluster(t, 3, []string{topic})
					rd = newReader(t, cl.addr(), topic, mode == ModeBatch)
					s, err := New(testConfig(cl.addr(), topic, mode), discard())
					if err != nil {
						t.Fatal(err)
					}
					return s
				},
				Received: func(t *testing.T) []model.Sample { return rd.samples(t) },
				// The sink's own records (no compression in testConfig):
				// keys, values and headers.
				MinWireBytes: func(b []model.Sample) uint64 {
					cfg := testConfig("", topic, mode)
					cfg.setDefaults()
					enc := newEncoder(cfg.Mode == ModeBatch, cfg.ClientID)
					recs, _, _ := enc.encode(topic, b)
					var n uint64
					for _, r := range recs {
						n += uint64(len(r.Key) + len(r.Value))
						for _, h := range r.Headers {
							n += uint64(len(h.Key) + len(h.Value))
						}
					}
					return n
				},
				Outage: func(t *testing.T) func() {
					cl.stop()
					return cl.start
				},
			})
		})
	}
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

// TestKeyedOrderAcrossPartitions: with several partitions, every record
// of one tag lands in one partition, in sequence order, with its headers.
func TestKeyedOrderAcrossPartitions(t *testing.T) {
	for _, mode := range []string{ModeSample, ModeBatch} {
		t.Run(mode, func(t *testing.T) {
			cl := startCluster(t, 6, []string{"order"})
			s := connected(t, testConfig(cl.addr(), "order", mode))
			var batch []model.Sample
			for i := range 400 {
				batch = append(batch, model.Sample{
					Path: fmt.Sprintf("plant/asset%d/tag%d", i%8, i%24), Value: model.Int(int64(i)),
					Seq: uint64(i + 1), Historical: i%7 == 0,
				})
			}
			for i := 0; i < len(batch); i += 100 {
				if err := write(t, s, batch[i:i+100]); err != nil {
					t.Fatal(err)
				}
			}
			rd := newReader(t, cl.addr(), "order", mode == ModeBatch)
			var recs []record
			deadline := time.Now().Add(2 * time.Minute)
			for n := 0; n < len(batch) && time.Now().Before(deadline); {
				recs = rd.records(t)
				n = 0
				for _, r := range recs {
					n += len(r.samples)
				}
			}
			partOf := map[string]int32{}
			lastSeq := map[string]uint64{}
			parts := map[int32]bool{}
			total := 0
			for _, r := range recs {
				if p, ok := partOf[r.key]; ok && p != r.partition {
					t.Errorf("key %s in partitions %d and %d", r.key, p, r.partition)
				}
				partOf[r.key] = r.partition
				parts[r.partition] = true
				if r.seqHeader != strconv.FormatUint(r.samples[0].Seq, 10) {
					t.Errorf("weir-seq %q, first sample seq %d", r.seqHeader, r.samples[0].Seq)
				}
				if r.hist != "true" && r.hist != "false" {
					t.Errorf("weir-historical %q", r.hist)
				}
				for _, smp := range r.samples {
					total++
					if smp.Seq <= lastSeq[smp.Path] {
						t.Errorf("tag %s: seq %d after %d", smp.Path, smp.Seq, lastSeq[smp.Path])
					}
					lastSeq[smp.Path] = smp.Seq
				}
			}
			if total != len(batch) {
				t.Fatalf("consumed %d samples, want %d", total, len(batch))
			}
			if len(parts) < 2 {
				t.Errorf("all records in %d partition(s); the test needs several", len(parts))
			}
		})
	}
}

// produceError answers a produce request with err for every partition.
func produceError(req *kmsg.ProduceRequest, code int16) *kmsg.ProduceResponse {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// TestProduceFailures: while the broker refuses produce requests, Write
// reports an error or a PartialWriteError whose prefix really is stored —
// never success; once it accepts again, retrying the rest delivers all.
func TestProduceFailures(t *testing.T) {
	tests := []struct {
		name string
		code int16
	}{
		{"not enough replicas (retriable, times out)", kerr.NotEnoughReplicas.Code},
		{"policy violation (fatal, not about one record)", kerr.PolicyViolation.Code},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := startCluster(t, 4, []string{"fail"})
			s := connected(t, testConfig(cl.addr(), "fail", ModeSample))
			batch := sinktest.Batch("fail", 8, 40, 1)
			if err := write(t, s, batch[:10]); err != nil {
				t.Fatal(err)
			}
			// Fail every produce request from now until failing is cleared.
			failing := make(chan struct{})
			kc := cl.kfake()
			kc.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
				kc.KeepControl()
				select {
				case <-failing:
					kc.DropControl()
					return nil, nil, false
				default:
				}
				return produceError(req.(*kmsg.ProduceRequest), tt.code), nil, true
			})
			err := write(t, s, batch[10:])
			if err == nil {
				t.Fatal("Write succeeded while every produce request failed")
			}
			t.Logf("Write while failing: %v", err)
			delivered := 0
			var pe *pipeline.PartialWriteError
			if errors.As(err, &pe) {
				delivered = pe.Delivered
			}
			close(failing)
			rest := batch[10+delivered:]
			deadline := time.Now().Add(2 * time.Minute)
			for {
				if errors.Is(err, pipeline.ErrDisconnected) {
					if cerr := s.Connect(context.Background()); cerr != nil {
						err = cerr
					}
				}
				if err = write(t, s, rest); err == nil {
					break
				}
				t.Logf("retry: %v", err)
				if errors.As(err, &pe) {
					rest = rest[pe.Delivered:]
				}
				if time.Now().After(deadline) {
					t.Fatalf("no recovery: %v", err)
				}
			}
			rd := newReader(t, cl.addr(), "fail", false)
			seen := map[uint64]bool{}
			for end := time.Now().Add(2 * time.Minute); len(seen) < len(batch) && time.Now().Before(end); {
				for _, smp := range rd.samples(t) {
					seen[smp.Seq] = true
				}
			}
			for _, smp := range batch {
				if !seen[smp.Seq] {
					t.Errorf("seq %d lost", smp.Seq)
				}
			}
			if s.Status().Counters["produce_errors"] == 0 {
				t.Error("produce_errors not counted")
			}
		})
	}
}

func TestCreateTopic(t *testing.T) {
	cl := startCluster(t, 1, nil)
	cfg := testConfig(cl.addr(), "created", ModeSample)
	s, err := New(cfg, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	if err := s.Connect(context.Background()); err == nil || !strings.Contains(err.Error(), "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("Connect without create_topic = %v; want unknown topic", err)
	}
	cfg.CreateTopic, cfg.Partitions = true, 5
	s2 := connected(t, cfg)
	if err := write(t, s2, sinktest.Batch("c", 3, 10, 1)); err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr("created")
	req.Topics = append(req.Topics, rt)
	kcl, err := kgo.NewClient(kgo.SeedBrokers(cl.addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer kcl.Close()
	resp, err := req.RequestWith(context.Background(), kcl)
	if err != nil || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 5 {
		t.Fatalf("metadata %+v, %v; want 5 partitions", resp, err)
	}
}

func TestSASLPlain(t *testing.T) {
	cl := startCluster(t, 1, []string{"sasl"}, kfake.EnableSASL(), kfake.Superuser("PLAIN", "weir", "s3cret"))
	dir := t.TempDir()
	writeSecret := func(pw string) conf.Secret {
		f := filepath.Join(dir, "pw")
		if err := os.WriteFile(f, []byte(pw+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return conf.Secret{File: f}
	}
	cfg := testConfig(cl.addr(), "sasl", ModeSample)
	cfg.SASL = SASL{Mechanism: MechanismPlain, Username: "weir", Password: writeSecret("wrong")}
	s, err := New(cfg, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	if err := s.Connect(context.Background()); err == nil {
		t.Fatal("Connect with a wrong password succeeded")
	} else if strings.Contains(err.Error(), "wrong") {
		t.Errorf("error shows the password: %v", err)
	}
	writeSecret("s3cret") // rotated: read again at the next Connect
	if err := s.Connect(context.Background()); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if err := write(t, s, sinktest.Batch("sasl", 2, 10, 1)); err != nil {
		t.Fatal(err)
	}
	rd := newReader(t, cl.addr(), "sasl", false,
		kgo.SASL(plain.Auth{User: "weir", Pass: "s3cret"}.AsMechanism()))
	for end := time.Now().Add(2 * time.Minute); len(rd.samples(t)) < 10; {
		if time.Now().After(end) {
			t.Fatal("records not consumed")
		}
	}
}

func TestConnectUnreachable(t *testing.T) {
	s, err := New(Config{Brokers: []string{"127.0.0.1:1"}, Topic: "t", ConnectTimeout: 500 * time.Millisecond}, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	if err := s.Connect(context.Background()); err == nil {
		t.Fatal("Connect to a closed port succeeded")
	}
	if err := s.Write(context.Background(), sinktest.Batch("x", 1, 1, 1)); !errors.Is(err, pipeline.ErrDisconnected) {
		t.Errorf("Write before Connect = %v; want ErrDisconnected", err)
	}
	if st := s.Status(); st.State != pipeline.StateRetrying || st.LastError == "" {
		t.Errorf("status %+v", st)
	}
}

func TestEncoderSplitsLargeBatches(t *testing.T) {
	e := newEncoder(true, "weir")
	e.maxValue = 300
	var batch []model.Sample
	for i := range 40 {
		batch = append(batch, model.Sample{Path: fmt.Sprintf("a%d/t%d", i%2, i%6), Value: model.Int(int64(i)), Seq: uint64(i + 1)})
	}
	batch = append(batch, model.Sample{Path: "a0/huge", Value: model.String(strings.Repeat("x", 400)), Seq: 41})
	batch = append(batch, model.Sample{Path: "a1/bad\xffname", Value: model.Int(1), Seq: 42})
	recs, msgs, rej := e.encode("t", batch)
	causes := map[int]string{}
	if rej != nil {
		for _, r := range rej.Rejected {
			causes[r.Index] = r.Cause
		}
	}
	if len(causes) != 2 || causes[40] != pipeline.CauseOversize || causes[41] != pipeline.CauseInvalidName {
		t.Fatalf("rejected %v, want the huge sample (oversize) and the bad name", rej)
	}
	n := 0
	for i, r := range recs {
		if len(r.Value) > e.maxValue {
			t.Errorf("record %d: %d bytes", i, len(r.Value))
		}
		n += msgs[i].samples
		for _, k := range e.origin[msgs[i].olo:msgs[i].ohi] {
			if k >= 40 || !strings.HasPrefix(batch[k].Path, string(r.Key)+"/") {
				t.Errorf("record %d (key %s) maps back to batch index %d (%s)", i, r.Key, k, batch[k].Path)
			}
		}
		if string(r.Key) != "a0" && string(r.Key) != "a1" {
			t.Errorf("key %q", r.Key)
		}
	}
	if n != 40 || len(recs) <= 2 {
		t.Errorf("%d records carry %d samples", len(recs), n)
	}
}

func BenchmarkWriteBatchMode(b *testing.B) {
	cl := startCluster(b, 3, []string{"bench"}, kfake.BlackholeProduce())
	s, err := New(testConfig(cl.addr(), "bench", ModeBatch), discard())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	defer s.Close(ctx)
	if err := s.Connect(ctx); err != nil {
		b.Fatal(err)
	}
	batch := make([]model.Sample, 1000)
	for i := range batch {
		batch[i] = model.Sample{Path: fmt.Sprintf("plant/area/asset%d/tag%d", i%20, i%50), Value: model.Float(float64(i) + 0.5),
			SourceTime: time.Now().UnixNano(), EdgeTime: time.Now().UnixNano(), Seq: uint64(i + 1)}
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Write(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "samples/s")
}

// TestPartialWrite: with two brokers, one refusing produce requests, the
// records led by the other are confirmed; Write reports exactly the prefix
// before the first refused sample, and that prefix is stored.
func TestPartialWrite(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(2), kfake.SeedTopics(4, "partial"))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	addr := kc.ListenAddrs()[0]
	s := connected(t, testConfig(addr, "partial", ModeSample))
	batch := sinktest.Batch("partial", 8, 40, 1)
	// Find which partition each tag lands in, from a first write.
	if err := write(t, s, batch[:8]); err != nil {
		t.Fatal(err)
	}
	rd := newReader(t, addr, "partial", false)
	var first []record
	for end := time.Now().Add(2 * time.Minute); len(first) < 8 && time.Now().Before(end); {
		first = rd.records(t)
	}
	partOf := map[string]int32{}
	for _, r := range first {
		partOf[r.key] = r.partition
	}
	// Broker 0 leads the first sample's partition, broker 1 all others and
	// refuses every produce request.
	goodPart := partOf[batch[8].Path]
	const goodNode, badNode = int32(0), int32(1)
	for p := range int32(4) {
		node := badNode
		if p == goodPart {
			node = goodNode
		}
		if err := kc.MoveTopicPartition("partial", p, node); err != nil {
			t.Fatal(err)
		}
	}
	// Let the producer learn the new leaders before any broker refuses.
	if err := write(t, s, batch[:8]); err != nil {
		t.Fatal(err)
	}
	kc.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		if kc.CurrentNode() != badNode {
			return nil, nil, false
		}
		return produceError(req.(*kmsg.ProduceRequest), kerr.PolicyViolation.Code), nil, true
	})
	rest := batch[8:]
	err = write(t, s, rest)
	var pe *pipeline.PartialWriteError
	wantDelivered := 0
	for wantDelivered < len(rest) && kc.LeaderFor("partial", partOf[rest[wantDelivered].Path]) != badNode {
		wantDelivered++
	}
	if !errors.As(err, &pe) {
		t.Fatalf("Write = %v; want a PartialWriteError{Delivered: %d}", err, wantDelivered)
	}
	t.Logf("Write: %v", err)
	if pe.Delivered != wantDelivered {
		t.Errorf("Delivered = %d, want %d", pe.Delivered, wantDelivered)
	}
	seen := map[uint64]bool{}
	for end := time.Now().Add(2 * time.Minute); time.Now().Before(end); {
		for _, smp := range rd.samples(t) {
			seen[smp.Seq] = true
		}
		all := true
		for _, smp := range rest[:pe.Delivered] {
			all = all && seen[smp.Seq]
		}
		if all {
			return
		}
	}
	t.Errorf("the confirmed prefix of %d samples is not all stored", pe.Delivered)
}
