package kafka

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-edge/weir/internal/payload"
	"github.com/weir-edge/weir/model"
)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func uniqueName(t testing.TB) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// cluster is a kfake cluster that can be stopped and started again on the
// same port, keeping its data in a directory.
type cluster struct {
	t      testing.TB
	opts   []kfake.Opt
	port   int
	mu     sync.Mutex
	c      *kfake.Cluster
	topics []string
}

func startCluster(t testing.TB, partitions int32, topics []string, opts ...kfake.Opt) *cluster {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	base := []kfake.Opt{
		kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(t.TempDir()),
		kfake.SeedTopics(partitions, topics...),
	}
	c := &cluster{t: t, opts: append(base, opts...), port: port, topics: topics}
	c.start()
	t.Cleanup(c.stop)
	return c
}

func (c *cluster) start() {
	c.t.Helper()
	kc, err := kfake.NewCluster(c.opts...)
	if err != nil {
		c.t.Fatalf("kfake: %v", err)
	}
	c.mu.Lock()
	c.c = kc
	c.mu.Unlock()
}

func (c *cluster) stop() {
	c.mu.Lock()
	kc := c.c
	c.c = nil
	c.mu.Unlock()
	if kc != nil {
		kc.Close()
	}
}

func (c *cluster) addr() string { return "127.0.0.1:" + strconv.Itoa(c.port) }

func (c *cluster) kfake() *kfake.Cluster {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.c
}

// record is one consumed record, decoded.
type record struct {
	partition int32
	offset    int64
	key       string
	seqHeader string
	hist      string
	samples   []model.Sample
}

// reader consumes a topic from the start and keeps everything it saw.
type reader struct {
	batch bool
	cl    *kgo.Client

	mu   sync.Mutex
	recs []record
	got  []model.Sample
}

func newReader(t testing.TB, addr, topic string, batch bool, opts ...kgo.Opt) *reader {
	t.Helper()
	opts = append([]kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(50 * time.Millisecond),
	}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &reader{batch: batch, cl: cl}
}

// poll reads what has arrived; it returns when a poll brings nothing new.
func (r *reader) poll(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		fs := r.cl.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Logf("reader: %s[%d]: %v", topic, p, err)
			}
		})
		fs.EachRecord(func(kr *kgo.Record) {
			n++
			rec := record{partition: kr.Partition, offset: kr.Offset, key: string(kr.Key)}
			for _, h := range kr.Headers {
				switch h.Key {
				case HeaderSeq:
					rec.seqHeader = string(h.Value)
				case HeaderHistorical:
					rec.hist = string(h.Value)
				}
			}
			if r.batch {
				ss, err := payload.DecodeBatch(kr.Value, rec.key)
				if err != nil {
					t.Errorf("record %d@%d: %v", kr.Partition, kr.Offset, err)
					return
				}
				rec.samples = ss
			} else {
				s, err := payload.DecodeSample(kr.Value)
				if err != nil {
					t.Errorf("record %d@%d: %v", kr.Partition, kr.Offset, err)
					return
				}
				s.Path = rec.key
				rec.samples = []model.Sample{s}
			}
			r.recs = append(r.recs, rec)
			r.got = append(r.got, rec.samples...)
		})
		if n == 0 {
			return
		}
	}
}

func (r *reader) samples(t testing.TB) []model.Sample {
	r.poll(t)
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]model.Sample(nil), r.got...)
}

func (r *reader) records(t testing.TB) []record {
	r.poll(t)
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]record(nil), r.recs...)
}

func testConfig(addr, topic, mode string) Config {
	return Config{
		Brokers:        []string{addr},
		Topic:          topic,
		Mode:           mode,
		ProduceTimeout: time.Second,
		ConnectTimeout: 2 * time.Second,
	}
}
