package buffer

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/weir-edge/weir/model"
)

func edgeTime(id int) int64 { return 1_000_000 + int64(id) }

// mk builds samples whose Seq is their id, so tests can follow them.
func mk(ids ...int) []model.Sample {
	out := make([]model.Sample, len(ids))
	for i, id := range ids {
		out[i] = model.Sample{Path: "t/x", Value: model.Int(int64(id)), EdgeTime: edgeTime(id), Seq: uint64(id)}
	}
	return out
}

// span is from..to inclusive.
func span(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func ids(b Batch) []int {
	out := make([]int, len(b.Samples))
	for i, s := range b.Samples {
		out[i] = int(s.Seq)
	}
	return out
}

func push(t *testing.T, b Buffer, s []model.Sample) {
	t.Helper()
	if err := b.Push(context.Background(), s); err != nil {
		t.Fatalf("Push = %v", err)
	}
}

// next fails the test rather than hang when nothing arrives.
func next(t *testing.T, b Buffer, max int) Batch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	batch, err := b.Next(ctx, max)
	if err != nil {
		t.Fatalf("Next = %v", err)
	}
	return batch
}

func ack(t *testing.T, b Buffer, batch Batch) {
	t.Helper()
	if err := b.Ack(batch); err != nil {
		t.Fatalf("Ack = %v", err)
	}
}

// drain acks everything held and returns the ids in order.
func drain(t *testing.T, b Buffer) []int {
	t.Helper()
	var out []int
	for b.Stats().Depth > 0 {
		batch := next(t, b, 100)
		out = append(out, ids(batch)...)
		ack(t, b, batch)
	}
	return out
}

// stillBlocked asserts that nothing arrives on done for a short while. Only
// the absence of an event is measured here, so a real timeout is the point.
func stillBlocked(t *testing.T, done <-chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("%s returned early: %v", what, err)
	case <-time.After(20 * time.Millisecond):
	}
}

func waitErr(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(2 * time.Minute):
		t.Fatal("call still blocked after 2 min")
		return fmt.Errorf("unreachable")
	}
}
