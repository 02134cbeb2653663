package wirecount

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

func TestConnCountsWrittenBytesAcrossConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_, _ = io.Copy(io.Discard, c)
			})
		}
	})
	var cnt Counter
	dial := cnt.DialContext(&net.Dialer{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tests := []struct {
		name   string
		writes []string
		want   uint64 // running total after this connection
	}{
		{"first connection", []string{"hello", " world"}, 11},
		{"after a reconnect the total goes on", []string{"abc"}, 14},
		{"empty write counts nothing", []string{""}, 14},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := dial(ctx, "tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.writes {
				if _, err := nc.Write([]byte(w)); err != nil {
					t.Fatal(err)
				}
			}
			nc.Close()
			if got := cnt.Load(); got != tt.want {
				t.Fatalf("counted %d bytes, want %d", got, tt.want)
			}
		})
	}
	ln.Close()
	wg.Wait()
}

func TestNilCounterLeavesConnUnchanged(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	var c *Counter
	if got := c.Conn(a); got != a {
		t.Fatal("nil counter wrapped the connection")
	}
}

// shortConn writes at most max bytes per call.
type shortConn struct {
	net.Conn
	max int
}

func (s shortConn) Write(p []byte) (int, error) {
	if len(p) > s.max {
		return s.max, io.ErrShortWrite
	}
	return len(p), nil
}

func TestShortWriteCountsOnlyWhatWasSent(t *testing.T) {
	var cnt Counter
	c := cnt.Conn(shortConn{max: 3})
	tests := []struct {
		write string
		want  uint64
	}{
		{"ab", 2},
		{"abcdef", 5}, // 3 of 6 sent
	}
	for _, tt := range tests {
		_, _ = c.Write([]byte(tt.write))
		if got := cnt.Load(); got != tt.want {
			t.Fatalf("after writing %q: counted %d, want %d", tt.write, got, tt.want)
		}
	}
}
