package mqttclient

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// publish encodes a PUBLISH: fixed header, topic, packet id (QoS > 0),
// MQTT 5 property length 0 (v5), payload.
func publish(qos byte, id uint16, topic string, payload []byte, v5 bool) []byte {
	body := []byte{byte(len(topic) >> 8), byte(len(topic))}
	body = append(body, topic...)
	if qos > 0 {
		body = append(body, byte(id>>8), byte(id))
	}
	if v5 {
		body = append(body, 0)
	}
	body = append(body, payload...)
	out := appendVarint([]byte{0x30 | qos<<1}, len(body))
	return append(out, body...)
}

func TestLimitReader(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 300)
	connack := []byte{0x20, 0x02, 0x00, 0x00}
	puback := []byte{0x40, 0x02, 0x00, 0x07}
	for _, c := range []struct {
		name  string
		v5    bool
		in    []byte
		want  []byte // what the library reads
		err   error  // after want; nil: io.EOF
		marks []mark
	}{
		{name: "within the limit, unchanged",
			in:   cat(connack, publish(1, 7, "a/b", []byte("hello"), false), puback),
			want: cat(connack, publish(1, 7, "a/b", []byte("hello"), false), puback)},
		{name: "exactly the limit",
			in:   publish(0, 0, "t", make([]byte, 100-2-3), false),
			want: publish(0, 0, "t", make([]byte, 100-2-3), false)},
		{name: "oversized QoS 1 PUBLISH skipped, the next one passes",
			in:    cat(publish(1, 7, "big", big, false), publish(1, 8, "s", []byte("ok"), false)),
			want:  cat(publish(1, 7, "big", nil, false), publish(1, 8, "s", []byte("ok"), false)),
			marks: []mark{{topic: "big", id: 7, size: int64(len(publish(1, 7, "big", big, false)))}}},
		{name: "oversized QoS 0 PUBLISH, MQTT 5",
			v5:    true,
			in:    cat(publish(0, 0, "big", big, true), connack),
			want:  cat(publish(0, 0, "big", nil, true), connack),
			marks: []mark{{topic: "big", size: int64(len(publish(0, 0, "big", big, true)))}}},
		{name: "oversized QoS 2 PUBLISH with retain and dup flags kept",
			in:    func() []byte { p := publish(2, 9, "r", big, false); p[0] |= 0x09; return p }(),
			want:  func() []byte { p := publish(2, 9, "r", nil, false); p[0] |= 0x09; return p }(),
			marks: []mark{{topic: "r", id: 9, size: int64(len(publish(2, 9, "r", big, false)))}}},
		{name: "oversized CONNACK closes",
			in:  []byte{0x20, 0xff, 0xff, 0xff, 0x7f},
			err: &PacketTooLargeError{Type: 2, Size: 5 + maxRemainingLength, Limit: 100}},
		{name: "Remaining Length of 5 bytes",
			in:  []byte{0x30, 0x80, 0x80, 0x80, 0x80, 0x01},
			err: errMalformed},
		{name: "oversized PUBLISH shorter than its topic",
			in:  cat([]byte{0x30, 0x80, 0x01, 0xff, 0xff}, big),
			err: errMalformed},
		{name: "cut inside a header",
			in:  []byte{0x30, 0x80},
			err: io.ErrUnexpectedEOF},
		{name: "cut inside a skipped payload",
			in:    publish(1, 7, "big", big, false)[:200],
			err:   io.ErrUnexpectedEOF,
			marks: nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, one := range []bool{false, true} {
				var src io.Reader = bytes.NewReader(c.in)
				if one {
					src = iotest.OneByteReader(src)
				}
				lr := newLimitReader(src, 100, c.v5)
				var got []byte
				var err error
				buf := make([]byte, 7)
				for {
					var n int
					n, err = lr.Read(buf)
					got = append(got, buf[:n]...)
					if err != nil {
						break
					}
				}
				if !bytes.Equal(got, c.want) {
					t.Errorf("one byte %v: read\n%q\nwant\n%q", one, got, c.want)
				}
				want := c.err
				if want == nil {
					want = io.EOF
				}
				var tl *PacketTooLargeError
				switch {
				case errors.As(want, &tl):
					var gotTL *PacketTooLargeError
					if !errors.As(err, &gotTL) || *gotTL != *tl {
						t.Errorf("error %v, want %v", err, want)
					}
				case !errors.Is(err, want):
					t.Errorf("error %v, want %v", err, want)
				}
				if len(lr.marks) != len(c.marks) {
					t.Fatalf("marks %+v, want %+v", lr.marks, c.marks)
				}
				for i := range c.marks {
					if lr.marks[i] != c.marks[i] {
						t.Errorf("mark %+v, want %+v", lr.marks[i], c.marks[i])
					}
				}
			}
		})
	}
}

func TestOversizeMarks(t *testing.T) {
	lr := newLimitReader(nil, 100, false)
	if n := lr.oversize("t", 1, nil); n != 0 {
		t.Fatalf("unmarked message: %d", n)
	}
	for i := range maxMarks + 1 {
		lr.remember(mark{topic: "t", id: uint16(i), size: 1000 + int64(i)})
	}
	if len(lr.marks) != maxMarks {
		t.Fatalf("%d marks kept, want %d", len(lr.marks), maxMarks)
	}
	if n := lr.oversize("t", 0, nil); n != 0 {
		t.Errorf("the oldest mark was not dropped: %d", n)
	}
	if n := lr.oversize("t", 5, []byte("x")); n != 0 {
		t.Errorf("a message with a payload is never a stand-in: %d", n)
	}
	if n := lr.oversize("t", 5, nil); n != 1005 {
		t.Errorf("oversize %d, want 1005", n)
	}
	if n := lr.oversize("t", 5, nil); n != 0 {
		t.Errorf("a mark is taken once: %d", n)
	}
}

func TestMaxPacketFor(t *testing.T) {
	for _, c := range []struct {
		payload int
		want    uint32
	}{
		{0, DefaultMaxPacketSize},
		{-1, DefaultMaxPacketSize},
		{1 << 20, 1<<20 + PacketOverhead},
		{1 << 30, maxRemainingLength + 5},
	} {
		if got := MaxPacketFor(c.payload); got != c.want {
			t.Errorf("MaxPacketFor(%d) = %d, want %d", c.payload, got, c.want)
		}
	}
}

// FuzzLimitReader feeds arbitrary broker bytes through the reader: it
// never panics, never hands out a packet beyond the limit, and leaves a
// stream of packets within the limit unchanged.
func FuzzLimitReader(f *testing.F) {
	f.Add(cat([]byte{0x20, 0x02, 0, 0}, publish(1, 7, "a", []byte("x"), false)), false)
	f.Add(publish(1, 7, "big", bytes.Repeat([]byte("x"), 200), true), true)
	f.Add([]byte{0x30, 0xff, 0xff, 0xff, 0x7f, 0, 1, 'a'}, false)
	f.Add([]byte{0x90, 0x80, 0x80, 0x80, 0x80, 0x01}, true)
	f.Fuzz(func(t *testing.T, in []byte, v5 bool) {
		const limit = 128
		lr := newLimitReader(bytes.NewReader(in), limit, v5)
		// Errors (malformed, cut off, too large) are expected; what was
		// handed out before them is checked.
		out, _ := io.ReadAll(io.LimitReader(lr, int64(len(in))+limit))
		// Every complete packet handed out is within the limit.
		rest := out
		for len(rest) > 0 {
			rl, n, ok := varint(rest[1:])
			if !ok || int64(len(rest)) < 1+int64(n)+rl {
				break // a cut-off tail
			}
			if size := 1 + int64(n) + rl; size > limit {
				t.Fatalf("handed out a packet of %d bytes", size)
			}
			rest = rest[1+n+int(rl):]
		}
		if lr.err == io.EOF && len(lr.marks) == 0 && !bytes.Equal(out, in) {
			t.Fatalf("a stream within the limit changed:\n%q\n%q", in, out)
		}
	})
}

// varint decodes a Remaining Length; ok is false when b ends first or it
// is longer than 4 bytes.
func varint(b []byte) (v int64, n int, ok bool) {
	for shift := 0; n < len(b) && n < 4; shift += 7 {
		c := b[n]
		n++
		v |= int64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v, n, true
		}
	}
	return 0, n, false
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

// BenchmarkLimitReader is the cost of the header check per packet: a
// stream of 100-byte QoS 1 PUBLISH packets read as paho.mqtt.golang reads
// them (type byte, Remaining Length byte by byte, then the body).
func BenchmarkLimitReader(b *testing.B) {
	pkt := publish(1, 7, "plant/line1/temp", bytes.Repeat([]byte("x"), 100), false)
	stream := bytes.Repeat(pkt, 1000)
	for _, c := range []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"direct", func(r io.Reader) io.Reader { return r }},
		{"limited", func(r io.Reader) io.Reader { return newLimitReader(r, DefaultMaxPacketSize, false) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(stream)))
			body := make([]byte, len(pkt))
			one := make([]byte, 1)
			for b.Loop() {
				r := c.wrap(bytes.NewReader(stream))
				for {
					if _, err := io.ReadFull(r, one); err != nil {
						break
					}
					var rl int
					for shift := 0; ; shift += 7 {
						if _, err := io.ReadFull(r, one); err != nil {
							b.Fatal(err)
						}
						rl |= int(one[0]&0x7f) << shift
						if one[0]&0x80 == 0 {
							break
						}
					}
					if _, err := io.ReadFull(r, body[:rl]); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
