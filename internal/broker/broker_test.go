package broker

import (
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "10.1.2.3:1883", ":1883"} {
		if _, err := Start(addr, nil); err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("Start(%q) = %v, want a loopback refusal", addr, err)
		}
	}
}

func TestStartsOnFreePortAndAcceptsClients(t *testing.T) {
	b, err := Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if strings.HasSuffix(b.Addr(), ":0") {
		t.Fatalf("Addr %q does not carry the bound port", b.Addr())
	}
	c, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// TestRefusesOversizedPacket: a client that announces a 200 MB PUBLISH is
// disconnected before the broker allocates for it. mochi sizes its read
// buffer from the Remaining Length, so without MaxPacketSize the header
// alone made it allocate 200 MB (TotalAlloc grew by that much).
func TestRefusesOversizedPacket(t *testing.T) {
	b, err := Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Bounds a hang only; the broker answers at once.
	_ = c.SetDeadline(time.Now().Add(2 * time.Minute))
	connect := []byte{0x10, 0x0e, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 30, 0, 2, 'o', 's'}
	if _, err := c.Write(connect); err != nil {
		t.Fatal(err)
	}
	ack := make([]byte, 4)
	if _, err := io.ReadFull(c, ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
		t.Fatalf("CONNACK %x, %v", ack, err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	// PUBLISH QoS 0, Remaining Length 200 MB, and no more: the broker must
	// refuse on the header. CloseWrite ends the wait of a broker that
	// does not.
	if _, err := c.Write([]byte{0x30, 0x80, 0x80, 0x80, 0x64}); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	if n, err := c.Read(make([]byte, 16)); err == nil {
		t.Fatalf("read %d bytes, want the connection closed", n)
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Errorf("broker allocated %d MB for a refused packet", grew>>20)
	}
	if got := b.Server().Options.Capabilities.MaximumPacketSize; got != MaxPacketSize {
		t.Errorf("MaximumPacketSize %d, want %d", got, MaxPacketSize)
	}
}
