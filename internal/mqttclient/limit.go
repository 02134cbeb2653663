package mqttclient

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// PacketOverhead is what an inbound PUBLISH may need beside its payload: the
// fixed header (5 bytes), the topic (2 + up to 65,535 bytes), the packet id
// (2) and MQTT 5 properties (16 KiB is generous: Weir enables no topic
// aliases and needs no user properties on inbound messages).
const PacketOverhead = 5 + 2 + 65535 + 2 + 16<<10

// DefaultMaxPacketSize is the inbound limit of a connection whose owner
// sets none: a 1 MiB payload plus PacketOverhead.
const DefaultMaxPacketSize = 1<<20 + PacketOverhead

// maxRemainingLength is the largest Remaining Length MQTT can encode
// (4 bytes of 7 bits).
const maxRemainingLength = 1<<28 - 1

// MaxPacketFor is the inbound packet limit for messages of up to
// maxPayload bytes: maxPayload + PacketOverhead, at most what MQTT can
// encode; maxPayload <= 0 gives DefaultMaxPacketSize.
func MaxPacketFor(maxPayload int) uint32 {
	if maxPayload <= 0 {
		return DefaultMaxPacketSize
	}
	return uint32(min(int64(maxPayload)+PacketOverhead, maxRemainingLength+5))
}

// PacketTooLargeError is the Cause of a connection the client closed
// because the broker sent a packet other than PUBLISH beyond the limit
// (an oversized PUBLISH is skipped instead, see limitReader).
type PacketTooLargeError struct {
	Type  byte   // MQTT control packet type (2 CONNACK, 9 SUBACK, …)
	Size  int64  // the whole packet as announced by its fixed header
	Limit uint32 // Options.MaxPacketSize
}

func (e *PacketTooLargeError) Error() string {
	return fmt.Sprintf("broker sent a packet of type %d of %d bytes, over the limit of %d: connection closed before reading it", e.Type, e.Size, e.Limit)
}

// errMalformed marks a fixed header or PUBLISH variable header that cannot
// be parsed; the connection is closed.
var errMalformed = errors.New("malformed packet from broker")

// maxMarks bounds the skipped messages remembered until their stand-in is
// delivered; more than that in flight means the handler is far behind, and
// the oldest marks are forgotten (those stand-ins then arrive unmarked,
// with an empty payload).
const maxMarks = 64

// mark is a skipped PUBLISH whose stand-in (same topic and packet id, no
// payload) is on its way to the library.
type mark struct {
	topic string
	id    uint16
	size  int64
}

// limitReader reads the MQTT byte stream the broker sends and makes sure
// the library never allocates for a packet beyond limit: it parses each
// fixed header (type byte, Remaining Length of at most 4 bytes) before the
// library sees it and
//
//   - passes packets within the limit through unchanged, without copying
//     them into a buffer of their size;
//   - replaces an oversized PUBLISH by a stand-in with the same flags, topic
//     and packet id and an empty payload, and reads the payload away in
//     bufio-sized steps. The library then acknowledges it as usual (PUBACK
//     for QoS 1, PUBREC for QoS 2), so the broker drops it instead of
//     redelivering it on every reconnect (no poison loop), and the
//     connection and the messages behind it carry on. The stand-in reaches
//     OnMessage as a Message with Oversize set;
//   - fails the connection on any other oversized packet: a broker has no
//     business sending a large CONNACK, SUBACK or DISCONNECT.
//
// MQTT 5 CONNECT announces the same limit (Maximum Packet Size), so a
// broker that honours it discards such messages itself; MQTT 3.1.1 has no
// such property, and a broker may ignore it, hence the reader for both.
//
// Read is called by the library's one reading goroutine; marks are taken
// by the message handler, under mu.
type limitReader struct {
	r     *bufio.Reader
	limit uint32
	v5    bool

	hdr     [5]byte
	pending []byte // bytes to hand out before reading on
	left    int64  // body bytes of the current packet still to pass through
	err     error  // sticky

	mu    sync.Mutex
	marks []mark
}

func newLimitReader(r io.Reader, limit uint32, v5 bool) *limitReader {
	if limit == 0 {
		limit = DefaultMaxPacketSize
	}
	return &limitReader{r: bufio.NewReaderSize(r, 32<<10), limit: limit, v5: v5}
}

func (l *limitReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		switch {
		case len(l.pending) > 0:
			n := copy(p, l.pending)
			l.pending = l.pending[n:]
			return n, nil
		case l.left > 0:
			if int64(len(p)) > l.left {
				p = p[:l.left]
			}
			n, err := l.r.Read(p)
			l.left -= int64(n)
			return n, err
		case l.err != nil:
			return 0, l.err
		}
		l.err = l.next()
	}
}

// next reads the next fixed header and sets up what Read hands out.
func (l *limitReader) next() error {
	b0, err := l.r.ReadByte()
	if err != nil {
		return err
	}
	l.hdr[0] = b0
	var rl int64
	n := 1
	for shift := 0; ; shift += 7 {
		if n == 5 {
			return fmt.Errorf("%w: Remaining Length longer than 4 bytes", errMalformed)
		}
		b, err := l.r.ReadByte()
		if err != nil {
			return unexpected(err)
		}
		l.hdr[n] = b
		n++
		rl |= int64(b&0x7f) << shift
		if b&0x80 == 0 {
			break
		}
	}
	size := int64(n) + rl
	if size <= int64(l.limit) {
		l.pending, l.left = l.hdr[:n], rl
		return nil
	}
	if b0>>4 != 3 { // not PUBLISH
		return &PacketTooLargeError{Type: b0 >> 4, Size: size, Limit: l.limit}
	}
	return l.skipPublish(b0, rl, size)
}

// skipPublish reads the topic and packet id of an oversized PUBLISH, reads
// the rest away and queues the stand-in.
func (l *limitReader) skipPublish(b0 byte, rl, size int64) error {
	qos := (b0 >> 1) & 3
	var tl [2]byte
	if rl < 2 {
		return fmt.Errorf("%w: PUBLISH shorter than its topic length", errMalformed)
	}
	if _, err := io.ReadFull(l.r, tl[:]); err != nil {
		return unexpected(err)
	}
	topicLen := int64(tl[0])<<8 | int64(tl[1])
	head := 2 + topicLen
	if qos > 0 {
		head += 2
	}
	if head > rl {
		return fmt.Errorf("%w: PUBLISH shorter than its topic and packet id", errMalformed)
	}
	body := make([]byte, head, head+1) // at most 65,539 bytes
	copy(body, tl[:])
	if _, err := io.ReadFull(l.r, body[2:]); err != nil {
		return unexpected(err)
	}
	if _, err := l.r.Discard(int(rl - head)); err != nil {
		return unexpected(err)
	}
	if l.v5 {
		body = append(body, 0) // property length: none
	}
	var id uint16
	if qos > 0 {
		id = uint16(body[head-2])<<8 | uint16(body[head-1])
	}
	l.remember(mark{topic: string(body[2 : 2+topicLen]), id: id, size: size})
	out := append(make([]byte, 0, 5+len(body)), b0)
	out = appendVarint(out, len(body))
	l.pending = append(out, body...)
	return nil
}

func (l *limitReader) remember(m mark) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.marks) == maxMarks {
		l.marks = append(l.marks[:0], l.marks[1:]...)
	}
	l.marks = append(l.marks, m)
}

// oversize returns the announced size of the skipped PUBLISH whose
// stand-in this message is, or 0. Only empty payloads can be stand-ins.
func (l *limitReader) oversize(topic string, id uint16, payload []byte) int64 {
	if len(payload) != 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, m := range l.marks {
		if m.topic == topic && m.id == id {
			l.marks = append(l.marks[:i], l.marks[i+1:]...)
			return m.size
		}
	}
	return 0
}

func appendVarint(b []byte, n int) []byte {
	for {
		c := byte(n & 0x7f)
		n >>= 7
		if n > 0 {
			c |= 0x80
		}
		b = append(b, c)
		if n == 0 {
			return b
		}
	}
}

// unexpected turns an EOF inside a packet into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// limitConn is a net.Conn whose reads go through a limitReader. It sits
// above TLS (the limit applies to the plaintext MQTT stream) and below the
// library.
type limitConn struct {
	net.Conn
	lr *limitReader
}

func (c *limitConn) Read(p []byte) (int, error) { return c.lr.Read(p) }

func withLimit(nc net.Conn, limit uint32, v5 bool) *limitConn {
	return &limitConn{Conn: nc, lr: newLimitReader(nc, limit, v5)}
}
