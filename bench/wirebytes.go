package bench

import (
	"bytes"
	"sort"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// WireBytes is a mochi-mqtt hook that counts, per client id, every packet
// the broker reads from a client and writes to it, framing included (fixed
// header, remaining length, variable header, payload). The bandwidth
// figures are measured here, at the broker, rather than trusted from the
// sinks' own counters: what a destination pays for is what arrives.
//
// Reads are counted from the decoded packet's fixed header (1 byte of
// type and flags, the remaining-length varint, then Remaining bytes), which
// is exactly what mochi read off the socket; writes are the encoded bytes
// mochi hands to OnPacketSent. Safe for concurrent use.
type WireBytes struct {
	mqtt.HookBase
	mu      sync.Mutex
	clients map[string]*ClientBytes
}

// ClientBytes are one client's totals as the broker saw them.
type ClientBytes struct {
	Client string `json:"client"`
	// Up: client → broker (PUBLISH, CONNECT, PINGREQ, …).
	UpPackets uint64 `json:"up_packets"`
	UpBytes   uint64 `json:"up_bytes"`
	// Publishes is how many of UpPackets were PUBLISH, PublishBytes their
	// bytes: the data messages.
	Publishes    uint64 `json:"publishes"`
	PublishBytes uint64 `json:"publish_bytes"`
	// Down: broker → client (CONNACK, PUBACK, PINGRESP, …).
	DownPackets uint64 `json:"down_packets"`
	DownBytes   uint64 `json:"down_bytes"`
}

var _ mqtt.Hook = (*WireBytes)(nil)

// NewWireBytes returns an empty counter, to pass to the broker's AddHook.
func NewWireBytes() *WireBytes { return &WireBytes{clients: map[string]*ClientBytes{}} }

// ID names the hook for mochi.
func (w *WireBytes) ID() string { return "weir-bench-wire-bytes" }

// Provides says which events the hook handles.
func (w *WireBytes) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnPacketRead, mqtt.OnPacketSent}, []byte{b})
}

// OnPacketRead counts a packet read from cl. The CONNECT packet is read
// before mochi sets the client's id, so it is taken from the packet.
func (w *WireBytes) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	id := cl.ID
	if pk.FixedHeader.Type == packets.Connect {
		id = pk.Connect.ClientIdentifier
	}
	n := uint64(1 + varintLen(pk.FixedHeader.Remaining) + pk.FixedHeader.Remaining)
	w.mu.Lock()
	c := w.client(id)
	c.UpPackets++
	c.UpBytes += n
	if pk.FixedHeader.Type == packets.Publish {
		c.Publishes++
		c.PublishBytes += n
	}
	w.mu.Unlock()
	return pk, nil
}

// OnPacketSent counts a packet written to cl. mochi passes the encoded
// bytes, but after writing them straight to the socket from the same
// buffer (bytes.Buffer.WriteTo empties it), so b is often empty: the
// packet is then encoded again here to learn its size.
func (w *WireBytes) OnPacketSent(cl *mqtt.Client, pk packets.Packet, b []byte) {
	n := len(b)
	if n == 0 {
		n = encodedLen(pk)
	}
	w.mu.Lock()
	c := w.client(cl.ID)
	c.DownPackets++
	c.DownBytes += uint64(n)
	w.mu.Unlock()
}

// encodedLen is the size of pk as mochi encodes it (0 for a kind it
// cannot encode, which mochi would not have sent either).
func encodedLen(pk packets.Packet) int {
	var buf bytes.Buffer
	var err error
	switch pk.FixedHeader.Type {
	case packets.Connack:
		err = pk.ConnackEncode(&buf)
	case packets.Publish:
		err = pk.PublishEncode(&buf)
	case packets.Puback:
		err = pk.PubackEncode(&buf)
	case packets.Pubrec:
		err = pk.PubrecEncode(&buf)
	case packets.Pubrel:
		err = pk.PubrelEncode(&buf)
	case packets.Pubcomp:
		err = pk.PubcompEncode(&buf)
	case packets.Suback:
		err = pk.SubackEncode(&buf)
	case packets.Unsuback:
		err = pk.UnsubackEncode(&buf)
	case packets.Pingresp:
		err = pk.PingrespEncode(&buf)
	case packets.Disconnect:
		err = pk.DisconnectEncode(&buf)
	case packets.Auth:
		err = pk.AuthEncode(&buf)
	}
	if err != nil {
		return 0
	}
	return buf.Len()
}

// client returns id's totals; w.mu is held.
func (w *WireBytes) client(id string) *ClientBytes {
	c := w.clients[id]
	if c == nil {
		c = &ClientBytes{Client: id}
		w.clients[id] = c
	}
	return c
}

// Snapshot copies every client's totals, sorted by client id.
func (w *WireBytes) Snapshot() []ClientBytes {
	w.mu.Lock()
	out := make([]ClientBytes, 0, len(w.clients))
	for _, c := range w.clients {
		out = append(out, *c)
	}
	w.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Client < out[j].Client })
	return out
}

// Get returns one client's totals (zero when it never spoke).
func (w *WireBytes) Get(id string) ClientBytes {
	w.mu.Lock()
	defer w.mu.Unlock()
	if c := w.clients[id]; c != nil {
		return *c
	}
	return ClientBytes{Client: id}
}

// varintLen is the length of MQTT's remaining-length encoding of n.
func varintLen(n int) int {
	switch {
	case n < 128:
		return 1
	case n < 16_384:
		return 2
	case n < 2_097_152:
		return 3
	default:
		return 4
	}
}
