package mqttclient

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/eclipse/paho.golang/paho/session/state"
	"github.com/eclipse/paho.golang/paho/store/memory"
)

// Bounds of the packet store's buffer reuse.
const (
	// storeFreeBuffers caps the buffers kept for reuse: enough for the
	// largest in-flight window a sink allows.
	storeFreeBuffers = 1024
	// storeFreeBytes caps the memory the kept buffers hold, so that one
	// burst of large messages does not pin that much memory for the rest
	// of the connection (a 256-message window of 10 KB batch messages
	// needs 2.5 MiB).
	storeFreeBytes = 8 << 20
	// storeMaxReused is the largest buffer kept for reuse; bigger packets
	// (a rare huge batch message) get a buffer of their own each time.
	storeMaxReused = 1 << 20
)

// NewSession is the MQTT 5 session state Weir's connections use: paho's
// own, with the outgoing packets kept in a packetStore. Pass it as
// Options.Session to share it across the connections of one session; Dial
// makes one per connection otherwise. Close it when done.
func NewSession() *state.State {
	return state.New(newPacketStore(), memory.New())
}

// packetStore keeps the client's unacknowledged QoS 1/2 packets, which
// paho resends after a reconnect that resumes the session. It does what
// paho's memory store does, with two differences that matter at 100,000
// samples/s: the copy of each packet is written into a buffer reused from
// packets already acknowledged (the memory store grows a new bytes.Buffer
// per publish, ~3× the packet in garbage), and the copy is made outside
// the store's lock, so concurrent publishers do not queue behind it.
//
// All methods are safe for concurrent use.
type packetStore struct {
	mu        sync.Mutex
	data      map[uint16]storedPacket
	seq       uint64   // Put order, for List
	free      [][]byte // buffers for reuse, each at most storeMaxReused
	freeBytes int      // their total capacity, at most storeFreeBytes
}

type storedPacket struct {
	seq uint64
	b   []byte
}

func newPacketStore() *packetStore {
	return &packetStore{data: make(map[uint16]storedPacket)}
}

// appendWriter is an io.Writer appending to b. (It is deliberately not a
// sync.Locker: paho locks writers that are.)
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// Put stores the packet under id, replacing any packet stored under it.
func (s *packetStore) Put(id uint16, _ byte, p io.WriterTo) error {
	s.mu.Lock()
	var buf []byte
	if n := len(s.free); n > 0 {
		buf, s.free = s.free[n-1], s.free[:n-1]
		s.freeBytes -= cap(buf)
	}
	s.mu.Unlock()
	w := appendWriter{b: buf[:0]}
	if _, err := p.WriteTo(&w); err != nil {
		s.recycle(w.b)
		return fmt.Errorf("mqtt session store: packet %d: %w", id, err)
	}
	s.mu.Lock()
	old, replaced := s.data[id]
	s.data[id] = storedPacket{seq: s.seq, b: w.b}
	s.seq++
	if replaced {
		s.recycleLocked(old.b)
	}
	s.mu.Unlock()
	return nil
}

// Get returns a copy of the packet stored under id: the stored buffer may
// be reused as soon as the packet is deleted.
func (s *packetStore) Get(id uint16) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.data[id]
	if !ok {
		return nil, memory.ErrNotInStore
	}
	return io.NopCloser(bytes.NewReader(bytes.Clone(p.b))), nil
}

// Delete removes the packet stored under id; an id not stored is an error,
// as in paho's memory store (it points at a bookkeeping fault).
func (s *packetStore) Delete(id uint16) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.data[id]
	if !ok {
		return fmt.Errorf("mqtt session store: delete packet %d: not stored", id)
	}
	delete(s.data, id)
	s.recycleLocked(p.b)
	return nil
}

// Quarantine drops a packet paho found corrupt; there is nowhere better
// to keep it.
func (s *packetStore) Quarantine(id uint16) error { return s.Delete(id) }

// List returns the stored ids in the order they were put.
func (s *packetStore) List() ([]uint16, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]uint16, 0, len(s.data))
	for id := range s.data {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b uint16) int {
		sa, sb := s.data[a].seq, s.data[b].seq
		switch {
		case sa < sb:
			return -1
		case sa > sb:
			return 1
		}
		return 0
	})
	return ids, nil
}

// Reset deletes every packet.
func (s *packetStore) Reset() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, p := range s.data {
		delete(s.data, id)
		s.recycleLocked(p.b)
	}
	return nil
}

func (s *packetStore) recycle(b []byte) {
	s.mu.Lock()
	s.recycleLocked(b)
	s.mu.Unlock()
}

func (s *packetStore) recycleLocked(b []byte) {
	if cap(b) == 0 || cap(b) > storeMaxReused || len(s.free) >= storeFreeBuffers || s.freeBytes+cap(b) > storeFreeBytes {
		return
	}
	s.free = append(s.free, b[:0])
	s.freeBytes += cap(b)
}
