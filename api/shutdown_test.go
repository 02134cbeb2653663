package api

import (
	"context"
	"net"
	"testing"
	"time"
)

// A browser opens sockets ahead and sends nothing on them; net/http counts
// such a connection as idle only after 5 s, as long as Serve's shutdown
// grace. Serve closes it and stops cleanly instead of failing the stop.
func TestServeStopsWithASilentConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	srv := New(Options{Status: &fakeStatus{}})
	go func() { done <- srv.Serve(ctx, ln) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Wait until the server holds it as a new connection.
	g := srv.guard.g
	for deadline := time.Now().Add(2 * time.Minute); ; {
		g.freshMu.Lock()
		n := len(g.fresh)
		g.freshMu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the connection was never accepted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve = %v, want nil", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("Serve did not stop")
	}
}
