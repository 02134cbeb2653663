package cli

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/internal/broker"
	"github.com/weir-edge/weir/internal/payload"
	"github.com/weir-edge/weir/internal/tlsconf/tlstest"
)

// The gateway's security event stream is wired in: an event (here the
// one the stream reports itself, a syslog collector whose certificate
// does not verify) reaches the configured sink as a sample on
// weir/_security/<kind>, through the engine and the sink's disk buffer.
func TestSecurityEventsReachTheSinks(t *testing.T) {
	log := testLogger(t)
	b, err := broker.Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	// A "collector" with a certificate from a CA the gateway does not trust.
	pki := tlstest.Generate(t, t.TempDir())
	cert, err := tls.LoadX509KeyPair(pki.ServerCert, pki.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake() // fails: the client refuses the certificate
			c.Close()
		}
	}()

	prefix := fmt.Sprintf("weir-sec/%d/%d", os.Getpid(), time.Now().UnixNano())
	text, err := demoConfig("127.0.0.1:1", b.Addr(), "", prefix, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	text += fmt.Sprintf("security_events:\n  syslog:\n    address: %q\n    protocol: tls\n    tls: {ca_file: %q}\n", ln.Addr().String(), pki.OtherCA)
	cfg, err := config.Parse("sec.yaml", []byte(text), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}

	got := make(chan string, 10)
	sub := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + b.Addr()).SetClientID("weir-sec-sub"))
	if tok := sub.Connect(); !tok.WaitTimeout(secEventsHang) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v", tok.Error())
	}
	defer sub.Disconnect(100)
	tok := sub.Subscribe(prefix+"/weir/_security/#", 1, func(_ paho.Client, m paho.Message) {
		smp, err := payload.DecodeSample(m.Payload())
		if err != nil {
			t.Errorf("%s: %v", m.Topic(), err)
			return
		}
		select {
		case got <- m.Topic() + " " + smp.Value.AsString():
		default: // never block paho's callback once the test stopped reading
		}
	})
	if !tok.WaitTimeout(secEventsHang) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runGateway(ctx, cfg, nil, log) }()
	var msg string
	hang := time.After(secEventsHang)
	// Other events (the audit trail's checkpoint at start) may come first.
	for !strings.HasPrefix(msg, prefix+"/weir/_security/tls.cert_rejected ") {
		select {
		case msg = <-got:
		case <-hang:
			t.Fatalf("no tls.cert_rejected event reached the sink (last: %q)", msg)
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("gateway: %v", err)
	}
	if !strings.HasPrefix(msg, prefix+"/weir/_security/tls.cert_rejected ") ||
		!strings.Contains(msg, `"component":"security_events"`) || !strings.Contains(msg, `"node":"weir-demo"`) {
		t.Errorf("got %s", msg)
	}
}

// secEventsHang bounds a wait that only guards against a secEventsHang.
const secEventsHang = 2 * time.Minute
