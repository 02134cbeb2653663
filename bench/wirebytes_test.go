package bench

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/internal/broker"
)

// mqttString is MQTT's length-prefixed UTF-8 string.
func mqttString(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }

// packet frames a body with its fixed header byte and remaining length.
func packet(first byte, body []byte) []byte {
	out := []byte{first}
	n := len(body)
	for {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		out = append(out, b)
		if n == 0 {
			break
		}
	}
	return append(out, body...)
}

// The hook counts exactly the bytes a client put on the wire, framing
// included, and the bytes the broker sent back, per client id.
func TestWireBytesCountsEveryByte(t *testing.T) {
	b, err := broker.Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	wb := NewWireBytes()
	if err := b.Server().AddHook(wb, nil); err != nil {
		t.Fatal(err)
	}

	connect := packet(0x10, bytes.Join([][]byte{mqttString("MQTT"), {4, 2, 0, 60}, mqttString("counted")}, nil))
	tests := []struct {
		name      string
		pkt       []byte
		publishes uint64
		downBytes uint64 // what the broker answers
	}{
		{"qos0 small", packet(0x30, append(mqttString("t/a"), "21.5"...)), 1, 0},
		{"qos0 two-byte length", packet(0x30, append(mqttString("t/b"), strings.Repeat("x", 300)...)), 1, 0},
		{"qos1 acked", packet(0x32, append(append(mqttString("t/c"), 0, 1), "1"...)), 1, 4},
		{"pingreq", []byte{0xC0, 0}, 0, 2},
	}
	conn, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	wantUp, wantDown, wantPub, wantPubBytes := uint64(len(connect)), uint64(4), uint64(0), uint64(0) // CONNACK: 4 bytes
	sent := append([]byte{}, connect...)
	for _, tc := range tests {
		sent = append(sent, tc.pkt...)
		wantUp += uint64(len(tc.pkt))
		wantDown += tc.downBytes
		wantPub += tc.publishes
		if tc.publishes > 0 {
			wantPubBytes += uint64(len(tc.pkt))
		}
	}
	disconnect := []byte{0xE0, 0}
	sent = append(sent, disconnect...)
	wantUp += uint64(len(disconnect))
	if _, err := conn.Write(sent); err != nil {
		t.Fatal(err)
	}
	// The broker closes the connection after DISCONNECT, which it counted
	// before handling it; reading to EOF waits for that (bounded by the
	// deadline above).
	got, err := io.ReadAll(conn)
	if err != nil && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("reading the broker's answers: %v", err)
	}
	c := wb.Get("counted")
	if c.UpBytes != wantUp || c.UpPackets != uint64(len(tests)+2) {
		t.Errorf("up = %d bytes in %d packets, want %d in %d", c.UpBytes, c.UpPackets, wantUp, len(tests)+2)
	}
	if c.Publishes != wantPub || c.PublishBytes != wantPubBytes {
		t.Errorf("publishes = %d (%d bytes), want %d (%d bytes)", c.Publishes, c.PublishBytes, wantPub, wantPubBytes)
	}
	if c.DownBytes != wantDown || uint64(len(got)) != wantDown {
		t.Errorf("down = %d counted, %d received, want %d", c.DownBytes, len(got), wantDown)
	}
	if snap := wb.Snapshot(); len(snap) != 1 || snap[0] != c {
		t.Errorf("snapshot = %+v", snap)
	}
}

func TestVarintLen(t *testing.T) {
	for _, tc := range []struct{ n, want int }{{0, 1}, {127, 1}, {128, 2}, {16383, 2}, {16384, 3}, {2097151, 3}, {2097152, 4}} {
		if got := len(packet(0, make([]byte, tc.n))) - 1 - tc.n; got != tc.want || varintLen(tc.n) != tc.want {
			t.Errorf("varintLen(%d) = %d, framing %d, want %d", tc.n, varintLen(tc.n), got, tc.want)
		}
	}
}
