package backoff

import (
	"context"
	"testing"
	"time"
)

func TestDelaysGrowWithinBoundsAndJitter(t *testing.T) {
	p := Policy{Initial: 100 * time.Millisecond, Max: 2 * time.Second}
	tests := []struct {
		attempt int
		ceiling time.Duration
	}{
		{0, 100 * time.Millisecond}, {1, 200 * time.Millisecond}, {3, 800 * time.Millisecond},
		{4, 1600 * time.Millisecond}, {5, 2 * time.Second}, {60, 2 * time.Second},
	}
	for _, tt := range tests {
		if got := p.Ceiling(tt.attempt); got != tt.ceiling {
			t.Errorf("Ceiling(%d) = %v, want %v", tt.attempt, got, tt.ceiling)
		}
		seen := map[time.Duration]bool{}
		for i := 0; i < 200; i++ {
			d := p.Delay(tt.attempt)
			if d < tt.ceiling/2 || d > tt.ceiling {
				t.Fatalf("Delay(%d) = %v outside [%v, %v]", tt.attempt, d, tt.ceiling/2, tt.ceiling)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("Delay(%d) is not jittered: %d distinct values in 200", tt.attempt, len(seen))
		}
	}
}

func TestZeroPolicyUsesDefaults(t *testing.T) {
	var p Policy
	if p.Ceiling(0) != 100*time.Millisecond || p.Ceiling(100) != 30*time.Second {
		t.Fatalf("defaults: %v %v", p.Ceiling(0), p.Ceiling(100))
	}
}

func TestBackoffResetAndAttempts(t *testing.T) {
	b := Backoff{Policy: Policy{Initial: time.Millisecond, Max: time.Second}}
	for i := 0; i < 5; i++ {
		b.Next()
	}
	if b.Attempt() != 5 {
		t.Fatalf("Attempt = %d", b.Attempt())
	}
	b.Reset()
	if d := b.Next(); d > time.Millisecond {
		t.Fatalf("after Reset the delay is %v", d)
	}
}

func TestSleepStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Fatal("Sleep reported a full delay on a cancelled context")
	}
	if !Sleep(context.Background(), time.Microsecond) {
		t.Fatal("Sleep did not complete")
	}
}

func TestLoopRetriesUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls, retries := 0, 0
	Loop(ctx, Policy{Initial: time.Microsecond, Max: time.Microsecond}, func(context.Context, *Backoff) error {
		calls++
		if calls == 3 {
			cancel()
		}
		return context.DeadlineExceeded
	}, func(error, time.Duration) { retries++ })
	if calls != 3 || retries != 2 {
		t.Fatalf("calls %d retries %d, want 3 and 2", calls, retries)
	}
}
