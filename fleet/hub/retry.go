package hub

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// opTimeout bounds one try of a NATS request. When a node dies, the
// connection moves to another and a request in flight is lost without
// an answer; a cluster electing a leader drops API requests. Each try is
// bounded, and retried while the caller's context allows.
const opTimeout = 5 * time.Second

// retry runs fn with a per-try timeout, again after a transient failure
// (no answer, no responders, a cluster briefly without a leader), until it
// succeeds, fails for good, or ctx ends. Only idempotent calls, or
// compare-and-set ones, go through it: a retried create or update whose
// first try was applied fails its revision check, and the caller's own
// compare-and-set loop reads what is there.
func retry[T any](ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	for {
		tctx, cancel := context.WithTimeout(ctx, opTimeout)
		v, err := fn(tctx)
		cancel()
		if err == nil || !transient(err) || ctx.Err() != nil {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func transient(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrDisconnected) || errors.Is(err, nats.ErrConnectionReconnecting) ||
		(errors.As(err, &apiErr) && apiErr.Code == 503) ||
		// The same 503 when it reaches us as text (a KV lister's watcher).
		strings.Contains(err.Error(), "temporarily unavailable")
}

func kvGet(ctx context.Context, kv jetstream.KeyValue, key string) (jetstream.KeyValueEntry, error) {
	return retry(ctx, func(c context.Context) (jetstream.KeyValueEntry, error) { return kv.Get(c, key) })
}

func kvCreate(ctx context.Context, kv jetstream.KeyValue, key string, v []byte) (uint64, error) {
	return retry(ctx, func(c context.Context) (uint64, error) { return kv.Create(c, key, v) })
}

func kvUpdate(ctx context.Context, kv jetstream.KeyValue, key string, v []byte, rev uint64) (uint64, error) {
	return retry(ctx, func(c context.Context) (uint64, error) { return kv.Update(c, key, v, rev) })
}

func kvDelete(ctx context.Context, kv jetstream.KeyValue, key string, rev uint64) error {
	_, err := retry(ctx, func(c context.Context) (struct{}, error) {
		return struct{}{}, kv.Delete(c, key, jetstream.LastRevision(rev))
	})
	return err
}

// kvKeys lists a bucket's keys (none: empty, not an error).
func kvKeys(ctx context.Context, kv jetstream.KeyValue) ([]string, error) {
	return retry(ctx, func(c context.Context) ([]string, error) {
		l, err := kv.ListKeys(c)
		if err != nil {
			return nil, err
		}
		var keys []string
		for k := range l.Keys() {
			keys = append(keys, k)
		}
		_ = l.Stop() // after the last key its subscription is gone already
		return keys, nil
	})
}
