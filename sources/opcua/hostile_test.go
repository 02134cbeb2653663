package opcua

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/weir-edge/weir/pipeline"
	simopcua "github.com/weir-edge/weir/sim/opcua"
)

// A hostile server's Variants cost the session that received them, never
// the process: gopcua v0.9.1 allocated ~3 GiB for the first and panicked
// in its own connection goroutine on the second (internal/third_party/
// gopcua/README.md). The hostile server is the simulator behind a proxy
// that swaps the Double 2.25 of types.double, in the PublishResponse that
// carries it, for a Variant of the same length that lies about its sizes
// (security None: the body is neither signed nor encrypted). A second
// source, connected to the same simulator directly, keeps delivering.
func TestHostileServer(t *testing.T) {
	for _, c := range []struct {
		name    string
		variant []byte // 9 bytes, the length of the Double it replaces
	}{
		{"array dimensions 0x30303030", []byte("\xc6\x00\x00\x00\x000000")},
		{"negative array length", []byte("\x91000\xdc0000")},
		// A String and a ByteString claiming 2 GiB in a 9-byte Variant.
		{"string length 2^31-1", []byte("\x0c\xff\xff\xff\x7f0000")},
		{"bytestring length 2^31-1", []byte("\x0f\xff\xff\xff\x7f0000")},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := serveSim(t, simopcua.Options{Refresh: 20 * time.Millisecond})
			proxy := newVariantProxy(t, srv.Endpoint(), c.variant)

			var before runtime.MemStats
			runtime.ReadMemStats(&before)

			bad := insecure(proxy.endpoint())
			bad.Namespace = "bad"
			bad.Subscriptions = []SubscriptionConfig{{PublishingInterval: 50 * time.Millisecond,
				Items: []ItemConfig{{Name: "double", NodeID: "ns=1;s=types.double"}}}}
			good := insecure(srv.Endpoint())
			good.Namespace = "good"
			good.Subscriptions = []SubscriptionConfig{{PublishingInterval: 50 * time.Millisecond,
				Items: []ItemConfig{{Name: "counter", NodeID: "ns=1;s=types.counter"}}}}
			badSrc, goodSrc := mustNew(t, bad), mustNew(t, good)
			badRec, goodRec := newRecorder(), newRecorder()
			startSource(t, goodSrc, goodRec)
			startSource(t, badSrc, badRec)

			select {
			case <-proxy.swapped:
			case <-time.After(hangBound):
				t.Fatal("the proxy never saw the Double to swap")
			}
			// The session that read the hostile Variant ends with its error
			// and is retried; the failure shows in the source's status.
			waitUntil(t, 15*time.Second, "the bad session to fail", func() bool {
				st := badSrc.Status()
				return st.Counters["session_failures"] >= 1 && st.LastError != ""
			})
			st := badSrc.Status()
			if st.State == pipeline.StateRunning && st.LastError == "" {
				t.Errorf("bad source status %+v", st)
			}
			t.Logf("bad source: state %s, last error %q", st.State, st.LastError)
			if n := badRec.count("bad/double"); n != 0 {
				t.Errorf("%d samples delivered from the hostile Variant", n)
			}
			// The other source goes on: three more counter values after the
			// hostile session failed.
			n := goodRec.count("good/counter")
			goodRec.waitFor(t, 15*time.Second, "three more counter values", func() bool { return goodRec.count("good/counter") >= n+3 })
			if gs := goodSrc.Status(); gs.State != pipeline.StateRunning || gs.Counters["session_failures"] != 0 {
				t.Errorf("good source status %+v", gs)
			}
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if got := after.TotalAlloc - before.TotalAlloc; got > 512<<20 {
				t.Errorf("allocated %d MiB while the hostile server was connected", got>>20)
			}
		})
	}
}

// waitUntil polls cond: the source reports its state by Status only.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	timeout = max(timeout, hangBound) // fail only on a hang, never on a slow machine
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// variantProxy forwards OPC UA binary between a client and upstream,
// reading the server's side chunk by chunk (8-byte header: type, chunk
// kind, little-endian size) and replacing, in MSG chunks, the encoding of
// the Double 2.25 with a hostile Variant of the same length.
type variantProxy struct {
	*chunkProxy
	hostile []byte
	swapped chan struct{}
	once    sync.Once
}

// double225 is the binary Variant of the Double 2.25: encoding byte 11,
// then the IEEE 754 value little-endian.
var double225 = binary.LittleEndian.AppendUint64([]byte{11}, math.Float64bits(2.25))

func newVariantProxy(t *testing.T, endpoint string, hostile []byte) *variantProxy {
	t.Helper()
	if len(hostile) != len(double225) {
		t.Fatalf("hostile variant of %d bytes, want %d", len(hostile), len(double225))
	}
	p := &variantProxy{hostile: hostile, swapped: make(chan struct{})}
	p.chunkProxy = newChunkProxy(t, endpoint, func(client io.Writer, server io.Reader) error {
		return copyChunks(client, server, p.swap)
	})
	return p
}

// chunkProxy forwards OPC UA binary between clients and upstream: client
// to server unchanged but for the endpoint URL (the simulator answers
// GetEndpoints only for its own URL, so the URL the client names is
// rewritten on the way in), server to client through toClient — where a
// test turns the server hostile.
type chunkProxy struct {
	ln       net.Listener
	upstream string
	toClient func(client io.Writer, server io.Reader) error
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
}

func newChunkProxy(t *testing.T, endpoint string, toClient func(client io.Writer, server io.Reader) error) *chunkProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &chunkProxy{ln: ln, upstream: endpoint[len("opc.tcp://"):], toClient: toClient}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *chunkProxy) endpoint() string { return "opc.tcp://" + p.ln.Addr().String() }

func (p *chunkProxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.upstream)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		p.wg.Add(2)
		from, to := lenPrefixed("opc.tcp://"+p.ln.Addr().String()), lenPrefixed("opc.tcp://"+p.upstream)
		go func() {
			defer p.wg.Done()
			_ = copyChunks(server, client, func(c []byte) []byte { return bytes.ReplaceAll(c, from, to) })
			server.Close()
		}()
		go func() {
			defer p.wg.Done()
			_ = p.toClient(client, server)
			client.Close()
		}()
	}
}

func (p *chunkProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// swap replaces the Double in a MSG chunk by the hostile Variant.
func (p *variantProxy) swap(chunk []byte) []byte {
	if string(chunk[:3]) == "MSG" {
		if i := bytes.Index(chunk, double225); i >= 0 {
			copy(chunk[i:], p.hostile)
			p.once.Do(func() { close(p.swapped) })
		}
	}
	return chunk
}

// lenPrefixed is an OPC UA String: its length, then its bytes.
func lenPrefixed(s string) []byte {
	return append(binary.LittleEndian.AppendUint32(nil, uint32(len(s))), s...)
}

// copyChunks copies OPC UA chunks from src to dst through edit, fixing the
// chunk's size when edit changed its length.
func copyChunks(dst io.Writer, src io.Reader, edit func([]byte) []byte) error {
	hdr := make([]byte, 8)
	for {
		if _, err := io.ReadFull(src, hdr); err != nil {
			return err
		}
		size := binary.LittleEndian.Uint32(hdr[4:])
		if size < 8 || size > 1<<24 {
			return errors.New("bad chunk size")
		}
		chunk := make([]byte, size)
		copy(chunk, hdr)
		if _, err := io.ReadFull(src, chunk[8:]); err != nil {
			return err
		}
		chunk = edit(chunk)
		binary.LittleEndian.PutUint32(chunk[4:], uint32(len(chunk)))
		if _, err := dst.Write(chunk); err != nil {
			return err
		}
	}
}
