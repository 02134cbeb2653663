package mqttclient_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-edge/weir/internal/mqttclient"
	"github.com/weir-edge/weir/internal/rsstest"
)

// fakeBroker is a raw MQTT broker on 127.0.0.1:0 that speaks just enough
// of both versions for one client: CONNACK, SUBACK, PINGRESP, and then
// sends what the test scripted, including PUBLISH packets far larger than
// any real broker would pass on. It records the CONNECT's Maximum Packet
// Size and the packet ids the client acknowledges.
type fakeBroker struct {
	ln net.Listener
	// connack replaces the CONNACK when set.
	connack []byte
	// afterSub runs, on the connection's goroutine, once SUBACK is sent.
	afterSub func(w io.Writer, v5 bool) error

	mu       sync.Mutex
	maxPkt   uint32 // from CONNECT (MQTT 5); 0 when absent
	accepts  int
	pubacks  []uint16
	acked    chan uint16
	serveErr error
	wg       sync.WaitGroup
}

func startFakeBroker(t *testing.T, fb *fakeBroker) *fakeBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fb.ln, fb.acked = ln, make(chan uint16, 16)
	fb.wg.Add(1)
	go func() {
		defer fb.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fb.mu.Lock()
			fb.accepts++
			fb.mu.Unlock()
			fb.wg.Add(1)
			go func() {
				defer fb.wg.Done()
				defer c.Close()
				if err := fb.serve(c); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
					fb.mu.Lock()
					fb.serveErr = err
					fb.mu.Unlock()
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); fb.wg.Wait() })
	return fb
}

func (fb *fakeBroker) addr() string { return fb.ln.Addr().String() }

func (fb *fakeBroker) serve(c net.Conn) error {
	r := bufio.NewReader(c)
	v5 := false
	for {
		typ, body, err := readPacket(r)
		if err != nil {
			return err
		}
		switch typ >> 4 {
		case 1: // CONNECT
			v5 = body[6] == 5
			if v5 {
				fb.mu.Lock()
				fb.maxPkt = connectMaxPacket(body)
				fb.mu.Unlock()
			}
			ack := fb.connack
			if ack == nil {
				ack = []byte{0x20, 0x02, 0, 0}
				if v5 {
					ack = []byte{0x20, 0x03, 0, 0, 0}
				}
			}
			if _, err := c.Write(ack); err != nil {
				return err
			}
		case 8: // SUBSCRIBE: grant QoS 1 to its one filter
			ack := []byte{0x90, 0x03, body[0], body[1], 1}
			if v5 {
				ack = []byte{0x90, 0x04, body[0], body[1], 0, 1}
			}
			if _, err := c.Write(ack); err != nil {
				return err
			}
			if fb.afterSub != nil {
				if err := fb.afterSub(c, v5); err != nil {
					return err
				}
			}
		case 4: // PUBACK
			id := binary.BigEndian.Uint16(body)
			fb.mu.Lock()
			fb.pubacks = append(fb.pubacks, id)
			fb.mu.Unlock()
			fb.acked <- id
		case 12: // PINGREQ
			if _, err := c.Write([]byte{0xd0, 0}); err != nil {
				return err
			}
		case 14: // DISCONNECT
			return nil
		}
	}
}

// readPacket reads one (small) packet the client sent.
func readPacket(r *bufio.Reader) (byte, []byte, error) {
	typ, err := r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, err := binary.ReadUvarint(r) // MQTT's Remaining Length is a uvarint
	if err != nil {
		return 0, nil, err
	}
	if n > 1<<16 {
		return 0, nil, fmt.Errorf("client packet of %d bytes", n)
	}
	body := make([]byte, n)
	_, err = io.ReadFull(r, body)
	return typ, body, err
}

// connectMaxPacket finds Maximum Packet Size (0x27) in an MQTT 5 CONNECT's
// properties.
func connectMaxPacket(body []byte) uint32 {
	p := body[10:] // "\0\4MQTT", level, flags, keep alive
	n, k := binary.Uvarint(p)
	props := p[k : k+int(n)]
	size := map[byte]int{0x11: 4, 0x27: 4, 0x21: 2, 0x22: 2, 0x17: 1, 0x19: 1}
	for len(props) > 0 {
		id := props[0]
		l, ok := size[id]
		if !ok {
			return 0
		}
		if id == 0x27 {
			return binary.BigEndian.Uint32(props[1:5])
		}
		props = props[1+l:]
	}
	return 0
}

// writePublish writes a QoS 1 PUBLISH whose payload is size bytes, streamed
// in 64 KiB pieces so that the broker side stays small.
func writePublish(w io.Writer, v5 bool, id uint16, topic string, size int) error {
	head := []byte{byte(len(topic) >> 8), byte(len(topic))}
	head = append(head, topic...)
	head = append(head, byte(id>>8), byte(id))
	if v5 {
		head = append(head, 0)
	}
	rl := len(head) + size
	fh := []byte{0x32}
	for {
		b := byte(rl & 0x7f)
		rl >>= 7
		if rl > 0 {
			b |= 0x80
		}
		fh = append(fh, b)
		if rl == 0 {
			break
		}
	}
	if _, err := w.Write(append(fh, head...)); err != nil {
		return err
	}
	chunk := bytes.Repeat([]byte{'x'}, 64<<10)
	for size > 0 {
		n := min(size, len(chunk))
		if _, err := w.Write(chunk[:n]); err != nil {
			return err
		}
		size -= n
	}
	return nil
}

// bigThenSmall is the script of the oversize tests: a PUBLISH of size
// bytes (id 7, topic "big"), then a small one (id 8, "small").
func bigThenSmall(size int) func(io.Writer, bool) error {
	return func(w io.Writer, v5 bool) error {
		if err := writePublish(w, v5, 7, "big", size); err != nil {
			return err
		}
		return writePublish(w, v5, 8, "small", 2)
	}
}

// oversizeClient connects to addr with a 1 MiB payload limit, subscribes,
// and returns the two messages of bigThenSmall.
func oversizeClient(ctx context.Context, addr, version string) (big, small mqttclient.Message, c mqttclient.Conn, err error) {
	got := make(chan mqttclient.Message, 2)
	o := mqttclient.Options{Version: version, Addr: addr, ClientID: "oversize",
		KeepAlive: 30 * time.Second, AckTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second,
		MaxPacketSize: mqttclient.MaxPacketFor(1 << 20), Ordered: true,
		OnMessage: func(m mqttclient.Message) { got <- m }}
	c, err = mqttclient.Dial(ctx, o)
	if err != nil {
		return big, small, nil, err
	}
	if err := c.Subscribe(ctx, []mqttclient.Subscription{{Topic: "#", QoS: 1}}); err != nil {
		c.Close()
		return big, small, nil, err
	}
	for _, m := range []*mqttclient.Message{&big, &small} {
		select {
		case *m = <-got:
		case <-c.Done():
			return big, small, c, fmt.Errorf("connection ended: %w", c.Cause())
		case <-ctx.Done():
			return big, small, c, ctx.Err()
		}
	}
	return big, small, c, nil
}

// TestOversizePublishSkipped: a PUBLISH beyond the limit reaches the
// handler as an empty message with Oversize set, is acknowledged (so the
// broker does not send it again on the next connection: no poison loop),
// and the connection carries on with the next message. MQTT 5 also
// announces the limit on CONNECT.
func TestOversizePublishSkipped(t *testing.T) {
	const size = 8 << 20
	for _, v := range versions {
		t.Run("v"+v, func(t *testing.T) {
			fb := startFakeBroker(t, &fakeBroker{afterSub: bigThenSmall(size)})
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			big, small, c, err := oversizeClient(ctx, fb.addr(), v)
			if c != nil {
				defer c.Close()
			}
			if err != nil {
				t.Fatal(err)
			}
			if big.Topic != "big" || len(big.Payload) != 0 || big.Oversize < size {
				t.Errorf("big message %q, %d bytes, oversize %d", big.Topic, len(big.Payload), big.Oversize)
			}
			if small.Topic != "small" || string(small.Payload) != "xx" || small.Oversize != 0 {
				t.Errorf("small message %+v", small)
			}
			for _, want := range []uint16{7, 8} {
				select {
				case id := <-fb.acked:
					if id != want {
						t.Errorf("PUBACK %d, want %d", id, want)
					}
				case <-ctx.Done():
					t.Fatalf("no PUBACK for %d", want)
				}
			}
			select {
			case <-c.Done():
				t.Errorf("connection ended: %v", c.Cause())
			default:
			}
			fb.mu.Lock()
			defer fb.mu.Unlock()
			if fb.accepts != 1 {
				t.Errorf("%d connections, want 1", fb.accepts)
			}
			if v == mqttclient.Version5 && fb.maxPkt != mqttclient.MaxPacketFor(1<<20) {
				t.Errorf("CONNECT Maximum Packet Size %d, want %d", fb.maxPkt, mqttclient.MaxPacketFor(1<<20))
			}
			if fb.serveErr != nil {
				t.Errorf("fake broker: %v", fb.serveErr)
			}
		})
	}
}

// TestOversizeControlPacketCloses: any other packet beyond the limit ends
// the connection before it is read, with a PacketTooLargeError.
func TestOversizeControlPacketCloses(t *testing.T) {
	for _, v := range versions {
		t.Run("v"+v, func(t *testing.T) {
			// A CONNACK claiming 200 MB.
			fb := startFakeBroker(t, &fakeBroker{connack: []byte{0x20, 0x80, 0x80, 0x80, 0x64}})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := mqttclient.Dial(ctx, mqttclient.Options{Version: v, Addr: fb.addr(), ClientID: "x",
				KeepAlive: 30 * time.Second, AckTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second})
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded")
			}
			var tl *mqttclient.PacketTooLargeError
			if !errors.As(err, &tl) && !strings.Contains(err.Error(), "over the limit") {
				t.Fatalf("Dial: %v, want a PacketTooLargeError", err)
			}
			t.Logf("Dial: %v", err)
		})
	}
}

const rssChildEnv = "WEIR_MQTT_RSS_CHILD"

// TestOversizeBoundedRSS measures it: a client in a child process (so that
// its peak RSS is its own) receives a 200 MB PUBLISH from the fake broker.
// Without the limit, paho.mqtt.golang allocates the whole packet before
// reading it and paho.golang grows a buffer to its size (the issue: RSS
// from 50 to 675 MB); with it the peak grows by a few MB at most.
func TestOversizeBoundedRSS(t *testing.T) {
	if addr := os.Getenv(rssChildEnv); addr != "" {
		rssChild(t, addr)
		return
	}
	if testing.Short() {
		t.Skip("streams 200 MB per protocol version")
	}
	const size = 200 << 20
	for _, v := range versions {
		t.Run("v"+v, func(t *testing.T) {
			fb := startFakeBroker(t, &fakeBroker{afterSub: bigThenSmall(size)})
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestOversizeBoundedRSS$", "-test.v")
			cmd.Env = append(os.Environ(), rssChildEnv+"="+fb.addr(), "WEIR_MQTT_RSS_VERSION="+v)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("child: %v\n%s", err, out)
			}
			before, after, ok := rsstest.Parse(string(out))
			if !ok {
				t.Fatalf("child printed no VmHWM:\n%s", out)
			}
			growth := after - before
			t.Logf("MQTT %s, %d MB PUBLISH: peak RSS %d kB -> %d kB (+%d kB)", v, size>>20, before, after, growth)
			if growth > 64<<10 {
				t.Errorf("peak RSS grew by %d kB receiving a %d MB PUBLISH, want < 64 MB", growth, size>>20)
			}
		})
	}
}

func rssChild(t *testing.T, addr string) {
	before := rsstest.PeakKB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	big, small, c, err := oversizeClient(ctx, addr, os.Getenv("WEIR_MQTT_RSS_VERSION"))
	if c != nil {
		defer c.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	rsstest.Report(t, before)
	if big.Oversize == 0 || small.Topic != "small" {
		t.Fatalf("big %q oversize %d, small %q", big.Topic, big.Oversize, small.Topic)
	}
}
