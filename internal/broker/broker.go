// Package broker embeds an MQTT broker (mochi-mqtt) for the demo and the
// load harness, so `weir run` works on a machine with nothing installed.
// It is not meant as the plant's production broker: it allows anonymous
// clients and so refuses to listen on anything but a loopback address.
package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// Listener serves mochi on a net.Listener and, unlike listeners.Net,
// closes its connections and waits for the broker to let go of each
// before mochi closes its clients: mochi v2.7.9 races (and can deadlock)
// when a connection is still being established while the server closes.
// Tests that embed mochi use it too.
type Listener struct {
	id     string
	ln     net.Listener
	served chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
}

var _ listeners.Listener = (*Listener)(nil)

// NewListener wraps ln (plain or TLS) for mochi's AddListener.
func NewListener(id string, ln net.Listener) *Listener { return &Listener{id: id, ln: ln} }

func (l *Listener) Init(*slog.Logger) error {
	l.served, l.conns = make(chan struct{}), map[net.Conn]struct{}{}
	return nil
}

func (l *Listener) Serve(establish listeners.EstablishFn) {
	defer close(l.served)
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		l.conns[c] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go func() {
			defer l.wg.Done()
			_ = establish(l.id, c)
			l.mu.Lock()
			delete(l.conns, c)
			l.mu.Unlock()
		}()
	}
}

func (l *Listener) ID() string       { return l.id }
func (l *Listener) Address() string  { return l.ln.Addr().String() }
func (l *Listener) Protocol() string { return "tcp" }

// DropAll cuts every client connection at once, as a network failure
// would: the broker sees sockets close without DISCONNECT (wills fire).
func (l *Listener) DropAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		_ = c.Close()
	}
}

func (l *Listener) Close(closeClients listeners.CloseFn) {
	_ = l.ln.Close()
	<-l.served // no Accept, hence no wg.Add, after this
	l.mu.Lock()
	for c := range l.conns {
		_ = c.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
	closeClients(l.id)
}

// MaxPacketSize is the largest packet the embedded broker accepts (and
// announces to MQTT 5 clients in CONNACK, so that publishers split or
// refuse larger messages themselves). mochi allocates a packet's whole
// Remaining Length before reading it: without a limit, one client claiming
// 200 MB in a PUBLISH header made the broker allocate 200 MB. 4 MiB holds
// the demo's and the load harness's largest batch messages many times.
const MaxPacketSize = 4 << 20

// Broker is a running embedded broker.
type Broker struct {
	srv  *mqtt.Server
	addr string
}

// Start listens on addr (host:port, port 0 for any free port) and serves
// MQTT 3.1.1 and 5. The host must be a loopback address.
func Start(addr string, log *slog.Logger) (*Broker, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("broker: listen address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("broker: the embedded demo broker allows anonymous clients and only listens on loopback, not %q", host)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = MaxPacketSize
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: log, Capabilities: caps})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		ln.Close()
		return nil, fmt.Errorf("broker: %w", err)
	}
	if err := srv.AddListener(NewListener("tcp", ln)); err != nil {
		ln.Close()
		return nil, fmt.Errorf("broker: %w", err)
	}
	if err := srv.Serve(); err != nil {
		ln.Close()
		return nil, fmt.Errorf("broker: %w", err)
	}
	return &Broker{srv: srv, addr: ln.Addr().String()}, nil
}

// Addr is the address the broker listens on, with the real port.
func (b *Broker) Addr() string { return b.addr }

// Server gives access to the embedded server, e.g. to subscribe inline.
func (b *Broker) Server() *mqtt.Server { return b.srv }

// Close stops the broker and disconnects every client.
func (b *Broker) Close() error {
	if b == nil || b.srv == nil {
		return errors.New("broker: not started")
	}
	return b.srv.Close()
}
