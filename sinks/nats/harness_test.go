package nats

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/weir-edge/weir/internal/payload"
	"github.com/weir-edge/weir/model"
)

// peerURL is the machine's JetStream server the normal cases run against.
const peerURL = "nats://127.0.0.1:4222"

// requirePeer skips the test when the server at addr is unreachable,
// unless WEIR_REQUIRE_PEERS=1 makes that a failure.
func requirePeer(t testing.TB, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		_ = c.Close()
		return
	}
	if os.Getenv("WEIR_REQUIRE_PEERS") == "1" {
		t.Fatalf("NATS peer %s is not reachable: %v", addr, err)
	}
	t.Skipf("NATS peer %s is not reachable (set WEIR_REQUIRE_PEERS=1 to fail instead): %v", addr, err)
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func uniqueName(t testing.TB) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// reader reads back everything stored in one stream, incrementally, and
// decodes it into samples. It tolerates a server that is briefly away
// (outage tests): it returns what it has and tries again on the next call.
type reader struct {
	url, stream, prefix string
	batch               bool

	mu   sync.Mutex
	nc   *natsgo.Conn
	js   jetstream.JetStream
	next uint64 // next stream sequence to read
	got  []model.Sample
	msgs []*jetstream.RawStreamMsg
}

func newReader(t testing.TB, url, stream, prefix string, batch bool) *reader {
	t.Helper()
	r := &reader{url: url, stream: stream, prefix: prefix, batch: batch, next: 1}
	t.Cleanup(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.nc != nil {
			r.nc.Close()
		}
	})
	return r
}

func (r *reader) conn() (jetstream.JetStream, error) {
	if r.nc != nil && r.nc.IsConnected() {
		return r.js, nil
	}
	if r.nc != nil {
		r.nc.Close()
		r.nc = nil
	}
	nc, err := natsgo.Connect(r.url, natsgo.NoReconnect(), natsgo.Timeout(2*time.Second))
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	r.nc, r.js = nc, js
	return js, nil
}

// read fetches the messages stored since the last call.
func (r *reader) read(t testing.TB) {
	t.Helper()
	js, err := r.conn()
	if err != nil {
		t.Logf("reader: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, r.stream)
	if err != nil {
		t.Logf("reader: stream: %v", err)
		return
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Logf("reader: stream info: %v", err)
		return
	}
	for ; r.next <= info.State.LastSeq; r.next++ {
		m, err := st.GetMsg(ctx, r.next)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Logf("reader: get %d: %v", r.next, err)
			return
		}
		r.msgs = append(r.msgs, m)
		path, err := PathOf(r.prefix, m.Subject)
		if err != nil {
			t.Errorf("stored subject %q: %v", m.Subject, err)
			continue
		}
		if r.batch {
			ss, err := payload.DecodeBatch(m.Data, path)
			if err != nil {
				t.Errorf("stored message %d: %v", r.next, err)
				continue
			}
			r.got = append(r.got, ss...)
			continue
		}
		s, err := payload.DecodeSample(m.Data)
		if err != nil {
			t.Errorf("stored message %d: %v", r.next, err)
			continue
		}
		s.Path = path
		r.got = append(r.got, s)
	}
}

// samples returns everything decoded so far.
func (r *reader) samples(t testing.TB) []model.Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.read(t)
	return append([]model.Sample(nil), r.got...)
}

// raw returns the stored messages read so far.
func (r *reader) raw(t testing.TB) []*jetstream.RawStreamMsg {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.read(t)
	return append([]*jetstream.RawStreamMsg(nil), r.msgs...)
}

// deleteStream removes a test stream from the server at url.
func deleteStream(t testing.TB, url, stream string) {
	t.Helper()
	nc, err := natsgo.Connect(url, natsgo.Timeout(2*time.Second))
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Logf("cleanup: delete stream %s: %v", stream, err)
	}
}

// testConfig is a config for a fresh stream and prefix on url; the stream
// is deleted when the test ends.
func testConfig(t testing.TB, url, mode string) Config {
	t.Helper()
	id := uniqueName(t)
	stream := "WEIRTEST_" + id
	t.Cleanup(func() { deleteStream(t, url, stream) })
	return Config{
		URL:            url,
		ClientID:       "test-" + id,
		SubjectPrefix:  "weirtest." + id,
		Stream:         stream,
		CreateStream:   true,
		Mode:           mode,
		ConnectTimeout: 5 * time.Second,
		AckTimeout:     2 * time.Second,
		MaxPending:     64,
	}
}

// server is a nats-server process of the test's own, on a free port with a
// store directory that survives restarts.
type server struct {
	bin, dir string
	port     int
	cmd      *exec.Cmd
}

func startOwnServer(t *testing.T) *server {
	t.Helper()
	bin := "/usr/sbin/nats-server"
	if p, err := exec.LookPath("nats-server"); err == nil {
		bin = p
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("WEIR_REQUIRE_PEERS") == "1" {
			t.Fatalf("nats-server binary: %v", err)
		}
		t.Skipf("nats-server binary not found: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	s := &server{bin: bin, dir: t.TempDir(), port: port}
	s.start(t)
	t.Cleanup(s.stop)
	return s
}

func (s *server) url() string { return "nats://127.0.0.1:" + strconv.Itoa(s.port) }

func (s *server) start(t *testing.T) {
	t.Helper()
	s.cmd = exec.Command(s.bin, "-js", "-sd", s.dir, "-a", "127.0.0.1", "-p", strconv.Itoa(s.port))
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start nats-server: %v", err)
	}
	// Wait until the server answers a client; polling the process is the
	// only way to observe it.
	deadline := time.Now().Add(2 * time.Minute)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		nc, err := natsgo.Connect(s.url(), natsgo.Timeout(200*time.Millisecond))
		if err == nil {
			nc.Close()
			return
		}
		if time.Now().After(deadline) {
			s.stop()
			t.Fatalf("nats-server on %d did not come up: %v", s.port, err)
		}
		<-tick.C
	}
}

func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// countStored returns the number of messages in the stream.
func countStored(t testing.TB, url, stream string) uint64 {
	t.Helper()
	nc, err := natsgo.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// header returns a header of a stored message.
func header(m *jetstream.RawStreamMsg, key string) string {
	if m.Header == nil {
		return ""
	}
	return strings.Join(m.Header.Values(key), ",")
}
