package mqttclient

import (
	"net"
	"syscall"
	"testing"
)

// The wrapper re-arms TCP_QUICKACK after each read (the kernel clears it
// on its own), so the broker's PUBACKs are acknowledged at once.
func TestQuickAckRearmedAfterRead(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := withQuickAck(nc)
	defer c.Close()
	peer := <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	defer peer.Close()

	q, ok := c.(*quickAckConn)
	if !ok {
		t.Fatalf("withQuickAck returned %T", c)
	}
	quickAck := func() int {
		var v int
		var gerr error
		if err := q.raw.Control(func(fd uintptr) {
			v, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK)
		}); err != nil {
			t.Fatal(err)
		}
		if gerr != nil {
			t.Fatal(gerr)
		}
		return v
	}
	for i := range 3 {
		// Clear it as the kernel would, then read: Read must set it again.
		_ = q.raw.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 0)
		})
		if _, err := peer.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1)
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
		if v := quickAck(); v != 1 {
			t.Fatalf("read %d: TCP_QUICKACK = %d after Read, want 1", i, v)
		}
	}
}
