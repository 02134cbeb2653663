package config

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-edge/weir/internal/broker"
	"github.com/weir-edge/weir/model"
)

// nodeTestSource is the one source a configuration needs; it is built but
// never connected.
const nodeTestSource = `
sources:
  - name: plc
    modbus:
      devices:
        - name: d
          address: 127.0.0.1:1
          namespace: plant
          groups:
            - interval: 1s
              tags:
                - {name: t, table: holding, address: 0, type: uint16}
`

const testNode = "line-7"

// TestNodeIDInEverySinkOutput builds each sink from a configuration that
// sets node.id and leaves the sink's own node name unset, writes one
// sample and looks for node.id where each protocol carries the node: the
// HTTP body's "node", the PostgreSQL node column, the NATS message id, the
// Kafka weir-node header, the MQTT status topic (client_id) and the
// Sparkplug topics (edge_node_id).
func TestNodeIDInEverySinkOutput(t *testing.T) {
	tests := []struct {
		name string
		// setup starts the peer and returns the sink block and a check
		// run after the sink wrote; it returns what was seen.
		setup func(t *testing.T) (block string, seen func(ctx context.Context) string)
	}{
		{"http", func(t *testing.T) (string, func(context.Context) string) {
			bodies := make(chan string, 4)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				bodies <- string(b)
			}))
			t.Cleanup(srv.Close)
			return "http: {url: " + srv.URL + "}", func(ctx context.Context) string { return recv(ctx, bodies) }
		}},
		{"mqtt", func(t *testing.T) (string, func(context.Context) string) {
			topics := embeddedBroker(t, "weir/_status/#")
			return "mqtt: {url: tcp://" + topics.addr + ", topic_prefix: weir}", func(ctx context.Context) string { return recv(ctx, topics.c) }
		}},
		{"sparkplug", func(t *testing.T) (string, func(context.Context) string) {
			topics := embeddedBroker(t, "spBv1.0/G/NBIRTH/#")
			return "sparkplug: {url: tcp://" + topics.addr + ", group_id: G}",
				func(ctx context.Context) string { return recv(ctx, topics.c) }
		}},
		{"kafka", func(t *testing.T) (string, func(context.Context) string) {
			kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "weir"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(kc.Close)
			addr := kc.ListenAddrs()[0]
			return "kafka: {brokers: [" + addr + "], topic: weir}", func(ctx context.Context) string {
				cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("weir"),
					kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
				if err != nil {
					t.Fatal(err)
				}
				defer cl.Close()
				for ctx.Err() == nil {
					var seen string
					cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
						for _, h := range r.Headers {
							seen += h.Key + "=" + string(h.Value) + " "
						}
					})
					if seen != "" {
						return seen
					}
				}
				return ""
			}
		}},
		{"nats", func(t *testing.T) (string, func(context.Context) string) {
			requireTCP(t, "127.0.0.1:4222")
			nc, err := natsgo.Connect("nats://127.0.0.1:4222")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(nc.Close)
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			name := "weirnode" + unique(t)
			t.Cleanup(func() { _ = js.DeleteStream(context.Background(), name) })
			return "nats: {url: nats://127.0.0.1:4222, subject_prefix: " + name + ", stream: " + name + ", create_stream: true}",
				func(ctx context.Context) string {
					st, err := js.Stream(ctx, name)
					if err != nil {
						t.Fatal(err)
					}
					m, err := st.GetMsg(ctx, 1)
					if err != nil {
						t.Fatal(err)
					}
					return m.Header.Get(natsgo.MsgIdHdr)
				}
		}},
		{"postgres", func(t *testing.T) (string, func(context.Context) string) {
			url := "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
			if u := os.Getenv("WEIR_TEST_POSTGRES_URL"); u != "" {
				url = u
			}
			requireTCP(t, "127.0.0.1:5432")
			table := "node_" + unique(t)
			return "postgres: {url: \"" + url + "\", table: " + table + "}", func(ctx context.Context) string {
				c, err := pgx.Connect(ctx, url)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close(context.Background())
				defer c.Exec(context.Background(), "DROP TABLE IF EXISTS public."+table)
				var node string
				if err := c.QueryRow(ctx, "SELECT node FROM public."+table).Scan(&node); err != nil {
					t.Fatal(err)
				}
				return node
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			block, seen := tt.setup(t)
			yaml := "node: {id: " + testNode + "}\ndata_dir: " + t.TempDir() + "\n" + nodeTestSource +
				"sinks:\n  - name: out\n    buffer: {type: memory}\n    " + block + "\n"
			cfg, err := Parse("node.yaml", []byte(yaml), noEnv)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			opts, err := cfg.Build(slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			sink := opts.Sinks[0].Sink
			if err := sink.Connect(ctx); err != nil {
				t.Fatalf("Connect: %v", err)
			}
			defer sink.Close(context.Background())
			now := time.Now().UnixNano()
			batch := []model.Sample{{Path: "plant/d/t", Value: model.Float(1.5), SourceTime: now, EdgeTime: now, Seq: 1}}
			if err := sink.Write(ctx, batch); err != nil {
				t.Fatalf("Write: %v", err)
			}
			if got := seen(ctx); !strings.Contains(got, testNode) {
				t.Errorf("output %q does not name node.id %q", got, testNode)
			}
		})
	}
}

// TestNodeIDDefaultsToHostName: without node.id the node is the host name.
func TestNodeIDDefaultsToHostName(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skip(err)
	}
	if got := (&Config{}).NodeID(); got != host {
		t.Errorf("NodeID() = %q, want the host name %q", got, host)
	}
	if got := (&Config{Node: Node{ID: "x"}}).NodeID(); got != "x" {
		t.Errorf("NodeID() = %q, want node.id", got)
	}
}

type brokerTopics struct {
	addr string
	c    chan string
}

// embeddedBroker starts the in-process broker and sends the topic of every
// message matching filter to the returned channel.
func embeddedBroker(t *testing.T, filter string) brokerTopics {
	b, err := broker.Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	c := make(chan string, 16)
	err = b.Server().Subscribe(filter, 1, func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		select {
		case c <- pk.TopicName:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return brokerTopics{addr: b.Addr(), c: c}
}

func recv(ctx context.Context, c <-chan string) string {
	select {
	case s := <-c:
		return s
	case <-ctx.Done():
		return ""
	}
}

// requireTCP skips when a local peer service is not running, unless
// WEIR_REQUIRE_PEERS=1 makes that a failure.
func requireTCP(t *testing.T, addr string) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		_ = c.Close()
		return
	}
	if os.Getenv("WEIR_REQUIRE_PEERS") == "1" {
		t.Fatalf("%s is required: %v", addr, err)
	}
	t.Skipf("%s is not reachable: %v", addr, err)
}

func unique(t *testing.T) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}
