// Package buffer holds samples between the processor chain and one sink.
// Every sink has its own Buffer, so a dead or slow sink never stalls the
// others.
//
// Delivery is at-least-once: Next hands out a batch that stays in the buffer
// until the sink confirmed it (Ack) or failed (Nack, and it is handed out
// again). When the buffer is full, the configured Policy decides, and every
// sample dropped is counted.
//
// This package has the in-memory implementation. A durable implementation
// (store-and-forward on an embedded engine) plugs into the same interface.
package buffer

import (
	"context"
	"errors"
	"fmt"

	"github.com/weir-edge/weir/model"
)

// Policy says what happens when a Push finds the buffer full.
type Policy string

// The overflow policies.
const (
	// DropOldest discards the oldest buffered samples to make room: the
	// freshest data wins. The default for the memory buffer.
	DropOldest Policy = "drop_oldest"
	// DropNewest discards the incoming samples that do not fit.
	DropNewest Policy = "drop_newest"
	// Block makes Push wait for room: back-pressure to the sources.
	Block Policy = "block"
)

// Validate checks p ("" means the default).
func (p Policy) Validate() error {
	switch p {
	case "", DropOldest, DropNewest, Block:
		return nil
	}
	return fmt.Errorf("unknown overflow policy %q (want drop_oldest, drop_newest or block)", string(p))
}

// ErrClosed is returned by a Buffer used after Close.
var ErrClosed = errors.New("buffer closed")

// Batch is a run of consecutive samples handed out by Next. Samples is only
// valid until the next call to Next.
type Batch struct {
	Samples []model.Sample
	first   uint64 // position of Samples[0]
	end     uint64 // position after the last sample
}

// Prefix is the batch of the first n samples of b, for acknowledging what a
// sink confirmed of a partially delivered batch (then Nack b for the rest).
func (b Batch) Prefix(n int) Batch {
	n = max(0, min(n, len(b.Samples)))
	return Batch{Samples: b.Samples[:n], first: b.first, end: b.first + uint64(n)}
}

// NewBatch is for Buffer implementations outside this package: samples
// held at the consecutive positions first, first+1, …. Positions are the
// implementation's own; Ack, Nack and Prefix only compare them.
func NewBatch(samples []model.Sample, first uint64) Batch {
	return Batch{Samples: samples, first: first, end: first + uint64(len(samples))}
}

// Span returns the positions of b: first and one past the last.
func (b Batch) Span() (first, end uint64) { return b.first, b.end }

// Len is the number of samples in the batch.
func (b Batch) Len() int { return len(b.Samples) }

// Stats is a snapshot of a buffer's counters.
type Stats struct {
	Depth       int    `json:"depth"`       // samples held, including the batch in flight
	Capacity    int    `json:"capacity"`    // samples it can hold
	Pushed      uint64 `json:"pushed"`      // samples accepted
	Acked       uint64 `json:"acked"`       // samples confirmed by the sink
	Dropped     uint64 `json:"dropped"`     // samples lost to the overflow policy
	Redelivered uint64 `json:"redelivered"` // samples handed out again after a Nack
	// OldestEdgeTime is the EdgeTime (Unix ns) of the oldest held sample, 0
	// when empty.
	OldestEdgeTime int64 `json:"oldest_edge_time"`

	// Dropped by cause; they sum to Dropped.
	DroppedFull     uint64 `json:"dropped_full,omitempty"`      // overflow policy (capacity or max_bytes)
	DroppedAge      uint64 `json:"dropped_age,omitempty"`       // older than max_age
	DroppedDiskFull uint64 `json:"dropped_disk_full,omitempty"` // no room left on the disk
	DroppedCorrupt  uint64 `json:"dropped_corrupt,omitempty"`   // unreadable in the store

	// Durable buffers only (zero for Memory).
	Bytes    int64 `json:"bytes,omitempty"`     // encoded bytes held
	MaxBytes int64 `json:"max_bytes,omitempty"` // bound on Bytes, 0 = none
	// Backlog is the part of Depth replayed as Historical: held from before
	// a restart, or from a sink outage when a drain rate is set.
	Backlog int `json:"backlog,omitempty"`
	// Quarantine is where a corrupt store was moved aside at open, if it was.
	Quarantine string `json:"quarantine,omitempty"`
}

// Buffer is the seam between the pipeline and a sink.
//
// Push may be called from many goroutines. Next, Ack and Nack are called by
// one consumer goroutine (the sink's worker) with at most one batch in
// flight: Next, then Ack or Nack of that batch, then Next again. Close
// wakes a blocked Push with ErrClosed and refuses later Pushes; Next keeps
// handing out what is held (a Nacked batch included) and returns ErrClosed
// only once the buffer is empty, which is how the engine drains a sink at
// shutdown.
type Buffer interface {
	// Push appends copies of samples, applying the overflow policy when full.
	// It returns ctx's error if it blocked and ctx ended first.
	Push(ctx context.Context, samples []model.Sample) error
	// Next waits until at least one sample is available and returns up to
	// max of them, oldest first.
	Next(ctx context.Context, max int) (Batch, error)
	// Ack removes a delivered batch.
	Ack(b Batch) error
	// Nack returns a batch for redelivery by the next Next.
	Nack(b Batch)
	Stats() Stats
	Close() error
}
