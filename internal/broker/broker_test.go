package broker

import (
	"net"
	"strings"
	"testing"

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
