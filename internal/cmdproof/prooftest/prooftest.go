// Package prooftest helps tests of signed MQTT commands: a client of the
// Mosquitto broker this machine runs, keys, and a recorder and a log
// handler that capture what a test must grep for secrets.
package prooftest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/security"
)

// MosquittoAddr is the real broker of the end-to-end tests.
const MosquittoAddr = "127.0.0.1:1883"

// Wait bounds every wait of a test: it only catches a hang.
const Wait = 2 * time.Minute

// Keys for tests: hex and base64, both long enough.
const (
	AliceKeyHex = "a11ce0a11ce0a11ce0a11ce0a11ce0a11ce0a11ce0a11ce0a11ce0a11ce0a11c"
	BobKeyB64   = "Ym9iLXNlY3JldC1ib2Itc2VjcmV0LWJvYi1zZWNyZXQtMTIzNDU2Nzg5MA=="
	// WrongKeyHex is what a forger guesses.
	WrongKeyHex = "0badbad00badbad00badbad00badbad00badbad00badbad00badbad00badbad0"
)

// RequireMosquitto skips the test when the broker does not answer, unless
// WEIR_REQUIRE_PEERS=1 says it must be there.
func RequireMosquitto(t testing.TB) {
	t.Helper()
	c, err := net.DialTimeout("tcp", MosquittoAddr, 2*time.Second)
	if err == nil {
		_ = c.Close()
		return
	}
	if os.Getenv("WEIR_REQUIRE_PEERS") == "1" {
		t.Fatalf("Mosquitto at %s does not answer and WEIR_REQUIRE_PEERS=1: %v", MosquittoAddr, err)
	}
	t.Skipf("Mosquitto at %s does not answer (%v)", MosquittoAddr, err)
}

// Prefix is a topic prefix no other test run uses.
func Prefix(t testing.TB) string {
	return "weirtest/" + strconv.FormatInt(time.Now().UnixNano(), 36) + "/" + strconv.Itoa(os.Getpid())
}

// Client is an MQTT 3.1.1 client of Mosquitto that records what arrives
// on its subscriptions.
type Client struct {
	conn mqttclient.Conn
	Msgs chan mqttclient.Message
}

// Dial connects anonymously to the shared Mosquitto and subscribes to
// filters; the connection closes at the end of the test.
func Dial(t testing.TB, filters ...string) *Client {
	t.Helper()
	return DialAs(t, MosquittoAddr, "", "", filters...)
}

// DialAs connects to addr as user (none when empty) and subscribes to
// filters.
func DialAs(t testing.TB, addr, user, password string, filters ...string) *Client {
	t.Helper()
	c := &Client{Msgs: make(chan mqttclient.Message, 256)}
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	conn, err := mqttclient.Dial(ctx, mqttclient.Options{
		Version: mqttclient.Version311, Addr: addr, Username: user, Password: password,
		ClientID:  "weir-prooftest-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		KeepAlive: 30 * time.Second, AckTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, Ordered: true,
		OnMessage: func(m mqttclient.Message) {
			select {
			case c.Msgs <- m:
			default:
			}
		},
	})
	if err != nil {
		t.Fatalf("dial %s as %q: %v", addr, user, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	c.conn = conn
	var subs []mqttclient.Subscription
	for _, f := range filters {
		subs = append(subs, mqttclient.Subscription{Topic: f, QoS: 1})
	}
	if len(subs) > 0 {
		if err := conn.Subscribe(ctx, subs); err != nil {
			t.Fatalf("subscribe: %v", err)
		}
	}
	return c
}

// Publish sends payload at QoS 1.
func (c *Client) Publish(t testing.TB, topic string, payload []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	if err := c.conn.Publish(ctx, topic, payload, 1, false); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

// Next waits for the next message.
func (c *Client) Next(t testing.TB) mqttclient.Message {
	t.Helper()
	select {
	case m := <-c.Msgs:
		return m
	case <-time.After(Wait):
		t.Fatal("no message")
		return mqttclient.Message{}
	}
}

// Events is a security.Recorder that keeps every event.
type Events struct {
	mu  sync.Mutex
	evs []security.Event
}

var _ security.Recorder = (*Events)(nil)

// Record keeps ev.
func (e *Events) Record(_ context.Context, ev security.Event) {
	e.mu.Lock()
	e.evs = append(e.evs, ev)
	e.mu.Unlock()
}

// All returns the events so far.
func (e *Events) All() []security.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]security.Event(nil), e.evs...)
}

// Log is a concurrency-safe buffer behind a JSON slog handler.
type Log struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String is everything logged.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Logger logs at debug level into l.
func (l *Log) Logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// StartMosquitto runs a private Mosquitto on a free loopback port with
// password authentication for users (name → password) and the given ACL
// file text; it stops at the end of the test. Skipped when the mosquitto
// binary is not installed (unless WEIR_REQUIRE_PEERS=1).
func StartMosquitto(t testing.TB, users map[string]string, acl string) (addr string) {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
			if _, serr := os.Stat(p); serr == nil {
				bin, err = p, nil
				break
			}
		}
	}
	passwd, perr := exec.LookPath("mosquitto_passwd")
	if err != nil || perr != nil {
		if os.Getenv("WEIR_REQUIRE_PEERS") == "1" {
			t.Fatal("mosquitto or mosquitto_passwd not installed and WEIR_REQUIRE_PEERS=1")
		}
		t.Skip("mosquitto or mosquitto_passwd not installed")
	}
	dir := t.TempDir()
	pwFile, aclFile := filepath.Join(dir, "passwd"), filepath.Join(dir, "acl")
	if err := os.WriteFile(pwFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for u, p := range users {
		if out, err := exec.Command(passwd, "-b", pwFile, u, p).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v: %s", err, out)
		}
	}
	if err := os.WriteFile(aclFile, []byte(acl), 0o600); err != nil {
		t.Fatal(err)
	}
	// A free port: bind :0, release, hand it to Mosquitto. Another process
	// could take it in between; then the start fails loudly.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = ln.Addr().String()
	_ = ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	cur, _ := user.Current()
	cfg := "listener " + port + " 127.0.0.1\nallow_anonymous false\npassword_file " + pwFile + "\nacl_file " + aclFile + "\n"
	if cur != nil && cur.Uid == "0" {
		cfg += "user root\n" // else it drops to user mosquitto, who cannot read the temp dir
	}
	cfgFile := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", cfgFile)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	running := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		var log strings.Builder
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), " running") {
				running <- nil
				_, _ = io.Copy(io.Discard, stderr)
				return
			}
		}
		running <- fmt.Errorf("mosquitto exited before running:\n%s", log.String())
	}()
	select {
	case err := <-running:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(Wait):
		t.Fatal("mosquitto did not start")
	}
	return addr
}
