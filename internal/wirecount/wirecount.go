package wirecount

import (
	"context"
	"net"
	"sync/atomic"
)

// Counter is a running total of bytes sent; the zero value is ready and
// safe for concurrent use. Sinks keep one for their lifetime and wrap each
// new connection with it.
type Counter struct{ n atomic.Uint64 }

// Add counts n bytes sent by other means than a wrapped connection (a
// library hook that reports bytes written, rows stored).
func (c *Counter) Add(n int) {
	if n > 0 {
		c.n.Add(uint64(n))
	}
}

// Load is the total so far.
func (c *Counter) Load() uint64 { return c.n.Load() }

// Conn wraps c so that every byte written to it is added to the counter.
// Reads are not counted: wire_bytes is what leaves the site. A nil
// counter returns c unchanged.
func (c *Counter) Conn(nc net.Conn) net.Conn {
	if c == nil || nc == nil {
		return nc
	}
	return &conn{Conn: nc, c: c}
}

// DialContext returns a dial function (the shape net/http's Transport,
// pgconn and franz-go take) that dials with d and wraps the result.
func (c *Counter) DialContext(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return c.Conn(nc), nil
	}
}

// conn counts what is written through it. It embeds net.Conn, so
// deadlines, Close and addresses pass straight through.
type conn struct {
	net.Conn
	c *Counter
}

// Write counts p before writing it: the peer may answer (an ack the sink
// is waiting for) before Write returns here, and a Status read after that
// ack must already include the bytes it acknowledges. What a failed write
// did not send is taken back.
func (w *conn) Write(p []byte) (int, error) {
	w.c.n.Add(uint64(len(p)))
	n, err := w.Conn.Write(p)
	if n < len(p) {
		w.c.n.Add(^uint64(len(p) - n - 1)) // subtract the unsent part
	}
	return n, err
}

// NetConn returns the wrapped connection, as crypto/tls.Conn does, for
// code that needs the underlying TCP connection.
func (w *conn) NetConn() net.Conn { return w.Conn }
