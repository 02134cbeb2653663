package mqttclient

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho/store/memory"
)

func publishPacket(id uint16, payload string) *packets.ControlPacket {
	cp := packets.NewControlPacket(packets.PUBLISH)
	p := cp.Content.(*packets.Publish)
	p.PacketID, p.QoS, p.Topic, p.Payload = id, 1, "weir/t", []byte(payload)
	return cp
}

func stored(t *testing.T, s *packetStore, id uint16) *packets.Publish {
	t.Helper()
	r, err := s.Get(id)
	if err != nil {
		t.Fatalf("Get(%d): %v", id, err)
	}
	defer r.Close()
	cp, err := packets.ReadPacket(r)
	if err != nil {
		t.Fatalf("Get(%d): stored bytes do not parse: %v", id, err)
	}
	return cp.Content.(*packets.Publish)
}

// The store behaves as paho's memory store: round trip, replace, ordered
// List, Delete of an unknown id an error, Reset.
func TestPacketStoreContract(t *testing.T) {
	s := newPacketStore()
	for i, id := range []uint16{7, 3, 9} {
		if err := s.Put(id, packets.PUBLISH, publishPacket(id, fmt.Sprint("payload-", i))); err != nil {
			t.Fatal(err)
		}
	}
	if got := string(stored(t, s, 3).Payload); got != "payload-1" {
		t.Errorf("packet 3 payload %q", got)
	}
	if err := s.Put(7, packets.PUBLISH, publishPacket(7, "replaced")); err != nil {
		t.Fatal(err)
	}
	if got := string(stored(t, s, 7).Payload); got != "replaced" {
		t.Errorf("replaced packet 7 payload %q", got)
	}
	ids, _ := s.List()
	if want := []uint16{3, 9, 7}; !slices.Equal(ids, want) {
		t.Errorf("List = %v, want Put order %v", ids, want)
	}
	if err := s.Delete(3); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(3); !errors.Is(err, memory.ErrNotInStore) {
		t.Errorf("Get after Delete: %v, want ErrNotInStore", err)
	}
	if err := s.Delete(3); err == nil {
		t.Error("Delete of an id not stored: no error")
	}
	if err := s.Quarantine(9); err != nil {
		t.Fatal(err)
	}
	if err := s.Reset(); err != nil {
		t.Fatal(err)
	}
	if ids, _ := s.List(); len(ids) != 0 {
		t.Errorf("List after Reset = %v", ids)
	}
}

// A buffer freed by Delete is reused by the next Put, and a packet handed
// out by Get stays intact when its buffer is reused.
func TestPacketStoreReusesBuffers(t *testing.T) {
	s := newPacketStore()
	if err := s.Put(1, packets.PUBLISH, publishPacket(1, "first, the longer one")); err != nil {
		t.Fatal(err)
	}
	r, err := s.Get(1)
	if err != nil {
		t.Fatal(err)
	}
	first := s.data[1].b
	if err := s.Delete(1); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(2, packets.PUBLISH, publishPacket(2, "second")); err != nil {
		t.Fatal(err)
	}
	if &s.data[2].b[:1][0] != &first[:1][0] {
		t.Error("the freed buffer was not reused")
	}
	cp, err := packets.ReadPacket(r)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(cp.Content.(*packets.Publish).Payload); got != "first, the longer one" {
		t.Errorf("packet read before reuse changed: %q", got)
	}
	// Steady state: Put+Delete of a 64 KiB packet allocates far less than
	// the packet (paho's memory store: ~3× the packet per Put).
	pkt := publishPacket(3, string(bytes.Repeat([]byte("p"), 64<<10)))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const rounds = 100
	for range rounds {
		_ = s.Put(3, packets.PUBLISH, pkt)
		_ = s.Delete(3)
	}
	runtime.ReadMemStats(&after)
	if perOp := (after.TotalAlloc - before.TotalAlloc) / rounds; perOp > 4<<10 {
		t.Errorf("Put+Delete of a 64 KiB packet allocates %d bytes: the buffer is not reused", perOp)
	}
}

// Oversized buffers are not kept, and the free list is bounded.
func TestPacketStoreBoundsReuse(t *testing.T) {
	s := newPacketStore()
	big := string(bytes.Repeat([]byte("x"), storeMaxReused+1))
	if err := s.Put(1, packets.PUBLISH, publishPacket(1, big)); err != nil {
		t.Fatal(err)
	}
	_ = s.Delete(1)
	if len(s.free) != 0 {
		t.Errorf("a %d-byte buffer was kept for reuse", storeMaxReused+1)
	}
	for id := range uint16(storeFreeBuffers + 10) {
		_ = s.Put(id+1, packets.PUBLISH, publishPacket(id+1, "x"))
	}
	_ = s.Reset()
	if len(s.free) != storeFreeBuffers {
		t.Errorf("free list holds %d buffers, want the bound %d", len(s.free), storeFreeBuffers)
	}

	// Large buffers: the kept total stays under storeFreeBytes.
	s = newPacketStore()
	half := string(bytes.Repeat([]byte("y"), storeMaxReused/2))
	for id := range uint16(64) {
		_ = s.Put(id+1, packets.PUBLISH, publishPacket(id+1, half))
	}
	_ = s.Reset()
	total := 0
	for _, b := range s.free {
		total += cap(b)
	}
	if total > storeFreeBytes || total != s.freeBytes {
		t.Errorf("free buffers hold %d bytes (accounted %d), bound %d", total, s.freeBytes, storeFreeBytes)
	}
	if total < storeFreeBytes/2 {
		t.Errorf("free buffers hold only %d bytes: large buffers are not reused at all", total)
	}
}

type failingPacket struct{}

func (failingPacket) WriteTo(io.Writer) (int64, error) { return 0, errors.New("boom") }

func TestPacketStorePutError(t *testing.T) {
	s := newPacketStore()
	if err := s.Put(1, packets.PUBLISH, failingPacket{}); err == nil {
		t.Fatal("Put of a packet that fails to serialise: no error")
	}
	if ids, _ := s.List(); len(ids) != 0 {
		t.Errorf("failed Put stored %v", ids)
	}
}

// Concurrent publishers and acknowledgements (run with -race).
func TestPacketStoreConcurrent(t *testing.T) {
	s := newPacketStore()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 500 {
				id := uint16(w*1000 + i + 1)
				payload := fmt.Sprintf("w%d-%d", w, i)
				if err := s.Put(id, packets.PUBLISH, publishPacket(id, payload)); err != nil {
					t.Error(err)
					return
				}
				if got := string(stored(t, s, id).Payload); got != payload {
					t.Errorf("packet %d: %q, want %q", id, got, payload)
				}
				if err := s.Delete(id); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if ids, _ := s.List(); len(ids) != 0 {
		t.Errorf("left over: %v", ids)
	}
}
