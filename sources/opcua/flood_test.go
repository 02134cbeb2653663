package opcua

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-edge/weir/internal/rsstest"
	simopcua "github.com/weir-edge/weir/sim/opcua"
)

// floodChunks is how many 64 KiB intermediate chunks the hostile server
// sends: more than the 1,024 chunks (64 MiB) the patched gopcua allowed
// any server before max_message_size.
const floodChunks = 1100

// floodProxy forwards OPC UA binary between a client and the simulator and
// turns it hostile: its ACK announces ~4 GiB buffers, message size and
// chunk count, and the first MSG response is replaced by floodChunks
// intermediate chunks (MSGC) of that response, a message that never ends.
// Every later connection passes unchanged, so the source can recover.
type floodProxy struct {
	*chunkProxy
	flooded atomic.Bool
	sent    atomic.Int64
}

func newFloodProxy(t *testing.T, endpoint string) *floodProxy {
	t.Helper()
	p := &floodProxy{}
	p.chunkProxy = newChunkProxy(t, endpoint, p.serverToClient)
	return p
}

func (p *floodProxy) serverToClient(client io.Writer, server io.Reader) error {
	hdr := make([]byte, 8)
	for {
		if _, err := io.ReadFull(server, hdr); err != nil {
			return err
		}
		size := binary.LittleEndian.Uint32(hdr[4:])
		if size < 8 || size > 1<<24 {
			return errors.New("bad chunk size")
		}
		c := make([]byte, size)
		copy(c, hdr)
		if _, err := io.ReadFull(server, c[8:]); err != nil {
			return err
		}
		switch {
		case string(c[:4]) == "ACKF" && len(c) >= 28:
			for off := 12; off < 28; off += 4 {
				binary.LittleEndian.PutUint32(c[off:], 0xFFFFFFF0)
			}
		case string(c[:4]) == "MSGF" && len(c) >= 24 && p.flooded.CompareAndSwap(false, true):
			if err := p.flood(client, c[8:24]); err != nil {
				return err
			}
			// The server's own chunks no longer reach this client.
			_, err := io.Copy(io.Discard, server)
			return err
		}
		if _, err := client.Write(c); err != nil {
			return err
		}
	}
}

// flood writes floodChunks chunks of 65,535 bytes continuing the request
// whose channel, token, sequence and request ids are in ids.
func (p *floodProxy) flood(w io.Writer, ids []byte) error {
	chunk := make([]byte, 0xffff)
	copy(chunk, "MSGC")
	binary.LittleEndian.PutUint32(chunk[4:], uint32(len(chunk)))
	copy(chunk[8:24], ids)
	seq := binary.LittleEndian.Uint32(ids[8:])
	for range floodChunks {
		binary.LittleEndian.PutUint32(chunk[16:], seq)
		seq++
		if _, err := w.Write(chunk); err != nil {
			return err // the client gave up on the connection
		}
		p.sent.Add(1)
	}
	return nil
}

const floodChildEnv = "WEIR_OPCUA_FLOOD_CHILD"

// TestHostileChunkFlood: a server that answers with a message that never
// ends — 1,100 intermediate chunks of 64 KiB after an ACK announcing no
// limits — costs the session, not the gateway's memory. The source runs in
// a child process (so that its peak RSS is its own) with max_message_size
// 1 MiB: the session fails once the chunks pass 1 MiB, and the source
// reconnects and delivers. Before, gopcua took the server's limits
// (capped at 1,024 chunks, 64 MiB by the earlier patch): +90 MB peak RSS,
// against +2.3 MB now (measured on the development machine).
func TestHostileChunkFlood(t *testing.T) {
	if ep := os.Getenv(floodChildEnv); ep != "" {
		floodChild(t, ep)
		return
	}
	if testing.Short() {
		t.Skip("streams 70 MB")
	}
	srv := serveSim(t, simopcua.Options{Refresh: 20 * time.Millisecond})
	proxy := newFloodProxy(t, srv.Endpoint())
	cmd := exec.Command(os.Args[0], "-test.run=^TestHostileChunkFlood$", "-test.v")
	cmd.Env = append(os.Environ(), floodChildEnv+"="+proxy.endpoint())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("child: %v\n%s", err, out)
	}
	var lastErr string
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "session error: "); ok {
			lastErr = rest
		}
	}
	before, after, ok := rsstest.Parse(string(out))
	if !ok {
		t.Fatalf("child printed no VmHWM:\n%s", out)
	}
	growth := after - before
	t.Logf("hostile chunk flood: %d chunks sent, peak RSS %d kB -> %d kB (+%d kB); session error %q",
		proxy.sent.Load(), before, after, growth, lastErr)
	if !proxy.flooded.Load() {
		t.Fatal("the proxy never flooded")
	}
	if growth > 32<<10 {
		t.Errorf("peak RSS grew by %d kB under a chunk flood, want < 32 MB with max_message_size 1 MiB", growth)
	}
	if !strings.Contains(lastErr, "too large") && !strings.Contains(lastErr, "too many") {
		t.Errorf("session error %q does not name the limit", lastErr)
	}
}

func floodChild(t *testing.T, endpoint string) {
	before := rsstest.PeakKB(t)
	cfg := insecure(endpoint)
	cfg.MaxMessageSize = 1 << 20
	cfg.ReconnectMax = 200 * time.Millisecond
	cfg.Subscriptions = []SubscriptionConfig{{PublishingInterval: 50 * time.Millisecond,
		Items: []ItemConfig{{Name: "counter", NodeID: "ns=1;s=types.counter"}}}}
	src, rec := mustNew(t, cfg), newRecorder()
	startSource(t, src, rec)
	var lastErr string
	waitUntil(t, hangBound, "the flooded session to fail", func() bool {
		lastErr = src.Status().LastError
		return lastErr != ""
	})
	// After the flood the source reconnects and delivers.
	rec.waitFor(t, hangBound, "a counter value after the flood", func() bool { return rec.count("plant/counter") > 0 })
	fmt.Printf("session error: %s\n", lastErr)
	rsstest.Report(t, before)
}
