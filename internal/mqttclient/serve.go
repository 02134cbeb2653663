package mqttclient

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Serve runs one session of a long-lived subscriber (the alarm and write
// command listeners): it connects with b, calls start with the connection
// and a context that ends with the session to get the message handler,
// subscribes subs, calls up, and then waits until ctx ends or the
// connection is lost. Connecting and subscribing are bounded by b's connect
// timeout. It closes the connection and returns ctx.Err() or why the
// session ended; the caller retries with backoff.
//
// b must be validated, with defaults applied. Messages that arrive before
// start has returned wait for it.
func Serve(ctx context.Context, b *Broker, subs []Subscription, start func(ctx context.Context, c Conn) func(Message), up func()) error {
	o, err := b.Options()
	if err != nil {
		return err
	}
	var handle func(Message)
	ready := make(chan struct{})
	o.OnMessage = func(m Message) {
		<-ready // closed before SUBSCRIBE, so never for long
		handle(m)
	}
	cctx, cancel := context.WithTimeout(ctx, b.ConnectTimeout)
	defer cancel()
	c, err := Dial(cctx, o)
	if err != nil {
		return fmt.Errorf("connect %s: %w", b.URL, err)
	}
	defer func() { _ = c.Close() }()
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	handle = start(sctx, c)
	close(ready)
	if err := c.Subscribe(cctx, subs); err != nil {
		topics := make([]string, len(subs))
		for i, s := range subs {
			topics[i] = s.Topic
		}
		return fmt.Errorf("subscribe %s: %w", strings.Join(topics, ", "), err)
	}
	up()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-c.Done():
		cause := c.Cause()
		if cause == nil {
			cause = errors.New("connection closed")
		}
		return fmt.Errorf("connection lost: %w", cause)
	}
}
