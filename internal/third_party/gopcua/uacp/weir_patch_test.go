package uacp

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"runtime"
	"testing"
	"time"
)

// A forged ACK (it arrives before any secure channel) cannot make the
// client allocate what it announces (weir patch; see ../README.md): a 28-byte
// ACK with a 4 GiB receive buffer used to make every Receive allocate 4 GiB.
func TestForgedACKIsBounded(t *testing.T) {
	for _, tc := range []struct {
		name                                string
		recvBuf, sendBuf, maxMsg, maxChunks uint32
	}{
		{"huge buffers and limits", 0xFFFFFFF0, 0xFFFFFFF0, 0xFFFFFFF0, 0xFFFFFFF0},
		{"tiny buffers", 1, 1, 1, 1},
		{"ordinary", 65535, 65535, 2 << 20, 512},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			served := make(chan error, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					served <- err
					return
				}
				defer c.Close()
				hdr := make([]byte, 8)
				if _, err := io.ReadFull(c, hdr); err != nil {
					served <- err
					return
				}
				if _, err := io.CopyN(io.Discard, c, int64(binary.LittleEndian.Uint32(hdr[4:]))-8); err != nil {
					served <- err
					return
				}
				ack := make([]byte, 28)
				copy(ack, "ACKF")
				binary.LittleEndian.PutUint32(ack[4:], 28)
				binary.LittleEndian.PutUint32(ack[12:], tc.recvBuf)
				binary.LittleEndian.PutUint32(ack[16:], tc.sendBuf)
				binary.LittleEndian.PutUint32(ack[20:], tc.maxMsg)
				binary.LittleEndian.PutUint32(ack[24:], tc.maxChunks)
				// A small message after the ACK, for one Receive.
				msg := append([]byte("MSGF\x0c\x00\x00\x00"), 1, 2, 3, 4)
				_, err = c.Write(append(ack, msg...))
				served <- err
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			c, err := Dial(ctx, "opc.tcp://"+ln.Addr().String())
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer c.Close()
			if err := <-served; err != nil {
				t.Fatal(err)
			}
			if got := c.ReceiveBufSize(); got < minChunkSize || got > DefaultReceiveBufSize {
				t.Errorf("ReceiveBufSize = %d, want %d..%d", got, minChunkSize, DefaultReceiveBufSize)
			}
			if got := c.SendBufSize(); got < minChunkSize || got > DefaultSendBufSize {
				t.Errorf("SendBufSize = %d, want %d..%d", got, minChunkSize, DefaultSendBufSize)
			}
			if c.MaxChunkCount() > MaxACKChunkCount || c.MaxMessageSize() > MaxACKMessageSize {
				t.Errorf("MaxChunkCount %d, MaxMessageSize %d: above the client's bounds", c.MaxChunkCount(), c.MaxMessageSize())
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			b, err := c.Receive()
			runtime.ReadMemStats(&after)
			if err != nil || string(b[:4]) != "MSGF" {
				t.Fatalf("Receive = %q, %v", b, err)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
				t.Errorf("one Receive allocated %d bytes", n)
			}
		})
	}
}

// The client's own limits (its HEL, set by the MaxChunkCount and
// MaxMessageSize options) bound what it receives, whatever the ACK says
// (weir patch): upstream kept the server's values, so a client could not
// lower them.
func TestHelloLimitsBoundACK(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		helChunks, helMsg      uint32
		ackChunks, ackMsg      uint32
		wantChunks, wantMaxMsg uint32
	}{
		{"client limits below the server's", 128, 4 << 20, 0xFFFFFFF0, 0xFFFFFFF0, 128, 4 << 20},
		{"server limits below the client's", 1000, 16 << 20, 64, 1 << 20, 64, 1 << 20},
		{"no client limits", 0, 0, 0xFFFFFFF0, 0xFFFFFFF0, MaxACKChunkCount, MaxACKMessageSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ack := &Acknowledge{ReceiveBufSize: 65535, SendBufSize: 65535, MaxChunkCount: tc.ackChunks, MaxMessageSize: tc.ackMsg}
			hel := &Hello{ReceiveBufSize: 65535, SendBufSize: 65535, MaxChunkCount: tc.helChunks, MaxMessageSize: tc.helMsg}
			boundACK(ack, hel)
			if ack.MaxChunkCount != tc.wantChunks || ack.MaxMessageSize != tc.wantMaxMsg {
				t.Errorf("MaxChunkCount %d, MaxMessageSize %d; want %d, %d", ack.MaxChunkCount, ack.MaxMessageSize, tc.wantChunks, tc.wantMaxMsg)
			}
		})
	}
}

// A chunk header claiming more than the receive buffer is refused before
// anything is allocated for it (Receive sizes its buffer from the header
// only after that check; weir patch).
func TestHugeChunkRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		hdr := make([]byte, 8)
		if _, err := io.ReadFull(c, hdr); err != nil {
			return
		}
		if _, err := io.CopyN(io.Discard, c, int64(binary.LittleEndian.Uint32(hdr[4:]))-8); err != nil {
			return
		}
		ack := make([]byte, 28)
		copy(ack, "ACKF")
		binary.LittleEndian.PutUint32(ack[4:], 28)
		for off := 12; off < 28; off += 4 {
			binary.LittleEndian.PutUint32(ack[off:], 0xFFFFFFF0)
		}
		// Then a MSG chunk claiming 4 GiB.
		_, _ = c.Write(append(ack, "MSGF\xf0\xff\xff\xff"...))
		_, _ = io.Copy(io.Discard, c)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := Dial(ctx, "opc.tcp://"+ln.Addr().String())
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b, err := c.Receive()
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatalf("Receive accepted a 4 GiB chunk (%d bytes)", len(b))
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Errorf("refusing the chunk allocated %d bytes", n)
	}
	t.Logf("Receive: %v", err)
}
