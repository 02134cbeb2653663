package cmdproof

import (
	"context"
	"testing"
)

func TestLanesProvenFirst(t *testing.T) {
	l := NewLanes[string](3)
	for i := 0; i < 3; i++ {
		if !l.Offer(false, "forged") {
			t.Fatalf("unproven lane refused message %d of 3", i+1)
		}
	}
	if l.Offer(false, "forged") {
		t.Fatal("a full unproven lane took a fourth message")
	}
	if !l.Offer(true, "signed") {
		t.Fatal("a flood of unproven messages refused a proven one")
	}
	ctx := context.Background()
	if m, ok := l.Next(ctx); !ok || m != "signed" {
		t.Fatalf("Next = %q, %v; want the proven message first", m, ok)
	}
	for i := 0; i < 3; i++ {
		if m, ok := l.Next(ctx); !ok || m != "forged" {
			t.Fatalf("Next = %q, %v; want the queued unproven messages", m, ok)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, ok := l.Next(cctx); ok {
		t.Fatal("Next on an empty queue with a done context returned a message")
	}
}
