package modbus

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/weir-edge/weir/model"
)

// recorder is a pipeline.Emitter that keeps copies of every batch and wakes
// waiters on each one.
type recorder struct {
	mu      sync.Mutex
	batches [][]model.Sample
	notify  chan struct{}
}

func newRecorder() *recorder { return &recorder{notify: make(chan struct{}, 1)} }

func (r *recorder) Emit(_ context.Context, batch []model.Sample) error {
	cp := slices.Clone(batch)
	r.mu.Lock()
	r.batches = append(r.batches, cp)
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
	return nil
}

func (r *recorder) snapshot() [][]model.Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.batches)
}

// waitFor blocks until cond holds for the recorded batches.
func (r *recorder) waitFor(t *testing.T, timeout time.Duration, what string, cond func([][]model.Sample) bool) [][]model.Sample {
	t.Helper()
	timeout = max(timeout, hangBound) // the caller's figure is how long it should take; fail only on a hang
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		snap := r.snapshot()
		if cond(snap) {
			return snap
		}
		select {
		case <-r.notify:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s; %d batches: %v", timeout, what, len(snap), snap)
		}
	}
}

// batchesFor returns the batches whose first sample's path has prefix p.
func batchesFor(all [][]model.Sample, prefix string) [][]model.Sample {
	var out [][]model.Sample
	for _, b := range all {
		if len(b) > 0 && len(b[0].Path) >= len(prefix) && b[0].Path[:len(prefix)] == prefix {
			out = append(out, b)
		}
	}
	return out
}

// eventually polls cond (for state that emits nothing, such as counters).
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	timeout = max(timeout, hangBound) // the caller's figure is how long it should take; fail only on a hang
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

// startSource runs src until the test ends (or stop is called) and checks
// that Run returns nil promptly.
func startSource(t *testing.T, src *Source, out *recorder) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, out) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v", err)
				}
			case <-time.After(2 * time.Minute):
				t.Fatal("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// mbapReq is a decoded Modbus TCP read request.
type mbapReq struct {
	txn        uint16
	unit, fc   byte
	addr, qty  uint16
	connection int // index of the accepted connection, from 0
}

// fakeServer is a hand-written Modbus TCP server for behaviour the real
// servers cannot be made to show (wrong transaction ids, silence, latency).
// handle writes whatever it likes to c; an error closes the connection.
type fakeServer struct {
	ln     net.Listener
	handle func(c net.Conn, r mbapReq) error
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

func startFake(t *testing.T, handle func(c net.Conn, r mbapReq) error) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{ln: ln, handle: handle}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.close)
	return s
}

func (s *fakeServer) addr() string { return s.ln.Addr().String() }

func (s *fakeServer) accept() {
	defer s.wg.Done()
	for n := 0; ; n++ {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns = append(s.conns, c)
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(c, n)
	}
}

func (s *fakeServer) serve(c net.Conn, n int) {
	defer s.wg.Done()
	defer c.Close()
	var hdr [7]byte
	for {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		pdu := make([]byte, int(binary.BigEndian.Uint16(hdr[4:]))-1)
		if _, err := io.ReadFull(c, pdu); err != nil || len(pdu) < 5 {
			return
		}
		r := mbapReq{txn: binary.BigEndian.Uint16(hdr[0:]), unit: hdr[6], fc: pdu[0],
			addr: binary.BigEndian.Uint16(pdu[1:]), qty: binary.BigEndian.Uint16(pdu[3:]), connection: n}
		if err := s.handle(c, r); err != nil {
			return
		}
	}
}

func (s *fakeServer) close() {
	s.mu.Lock()
	s.closed = true
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
	s.wg.Wait()
}

// frame builds an MBAP frame around pdu.
func frame(txn uint16, unit byte, pdu []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, txn)
	b = append(b, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(pdu)+1))
	b = append(b, unit)
	return append(b, pdu...)
}

// regsPDU is a read-registers response PDU.
func regsPDU(fc byte, regs ...uint16) []byte {
	p := []byte{fc, byte(2 * len(regs))}
	for _, r := range regs {
		p = binary.BigEndian.AppendUint16(p, r)
	}
	return p
}

// answerAddr answers every register read with register value = address.
func answerAddr(c net.Conn, r mbapReq) error {
	regs := make([]uint16, r.qty)
	for i := range regs {
		regs[i] = r.addr + uint16(i)
	}
	_, err := c.Write(frame(r.txn, r.unit, regsPDU(r.fc, regs...)))
	return err
}

var errHangUp = errors.New("hang up")

// oneDevice is a config for one device with one group of one uint16 tag at
// holding address 0, tuned by mod.
func oneDevice(name, addr string, interval time.Duration, mod func(*DeviceConfig)) Config {
	d := DeviceConfig{
		Name: name, Address: addr, Namespace: "test/" + name, Timeout: 200 * time.Millisecond,
		Groups: []GroupConfig{{Interval: interval, Tags: []TagConfig{{Name: "v", Table: "holding", Type: "uint16"}}}},
	}
	if mod != nil {
		mod(&d)
	}
	return Config{Devices: []DeviceConfig{d}}
}

func intp(i int) *int { return &i }

func mustNew(t *testing.T, c Config) *Source {
	t.Helper()
	s, err := New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// hangBound is the least a wait allows before it fails: on a loaded CI
// machine things take many times longer than here, and a wait bounds a
// hang, never a speed.
const hangBound = 2 * time.Minute
