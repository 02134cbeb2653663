// Package backoff computes retry delays: exponential growth with full
// jitter, capped, so that a fleet of gateways reconnecting after a broker
// restart does not arrive in lockstep.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy describes the delays. The zero Policy uses the defaults.
type Policy struct {
	Initial time.Duration // first delay ceiling; default 100ms
	Max     time.Duration // ceiling for every delay; default 30s
	// Multiplier grows the ceiling per attempt; default 2.
	Multiplier float64
}

func (p Policy) withDefaults() Policy {
	if p.Initial <= 0 {
		p.Initial = 100 * time.Millisecond
	}
	if p.Max <= 0 {
		p.Max = 30 * time.Second
	}
	if p.Max < p.Initial {
		p.Max = p.Initial
	}
	if p.Multiplier < 1 {
		p.Multiplier = 2
	}
	return p
}

// Ceiling is the upper bound of the delay before retry number attempt
// (0-based), without jitter.
func (p Policy) Ceiling(attempt int) time.Duration {
	p = p.withDefaults()
	d := float64(p.Initial)
	for i := 0; i < attempt && d < float64(p.Max); i++ {
		d *= p.Multiplier
	}
	if d > float64(p.Max) {
		d = float64(p.Max)
	}
	return time.Duration(d)
}

// Delay is the jittered delay before retry number attempt: uniformly drawn
// from [ceiling/2, ceiling] ("equal jitter"), so a retry never comes
// immediately but retries still spread.
func (p Policy) Delay(attempt int) time.Duration {
	c := p.Ceiling(attempt)
	half := c / 2
	if half <= 0 {
		return c
	}
	return half + time.Duration(rand.Int64N(int64(c-half)+1))
}

// Backoff tracks attempts for one retrying loop. Not safe for concurrent use.
type Backoff struct {
	Policy  Policy
	attempt int
}

// Next returns the next delay and counts an attempt.
func (b *Backoff) Next() time.Duration {
	d := b.Policy.Delay(b.attempt)
	if b.attempt < 64 {
		b.attempt++
	}
	return d
}

// Reset starts over after a success.
func (b *Backoff) Reset() { b.attempt = 0 }

// Attempt reports how many delays were handed out since the last Reset.
func (b *Backoff) Attempt() int { return b.attempt }

// Sleep waits for d or until ctx is done; it reports whether the full delay
// elapsed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Loop runs session again and again until ctx ends, waiting a jittered
// delay after each failure, and tells onRetry about each one. The session
// gets the Backoff to Reset once it has connected. This is the connect
// loop of every long-lived client (command subscribers, sessions).
func Loop(ctx context.Context, p Policy, session func(ctx context.Context, b *Backoff) error, onRetry func(err error, d time.Duration)) {
	b := Backoff{Policy: p}
	for {
		err := session(ctx, &b)
		if ctx.Err() != nil {
			return
		}
		d := b.Next()
		onRetry(err, d)
		if !Sleep(ctx, d) {
			return
		}
	}
}
