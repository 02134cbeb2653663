package cli

import (
	"context"
	"fmt"

	"github.com/weir-edge/weir/api"
	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/sinks/historian"
)

// historyStore is the query side of the first historian sink, for
// GET /api/v1/history; nil (no route) without one.
func historyStore(sinks []engine.SinkSpec) api.HistoryStore {
	for _, s := range sinks {
		if h, ok := s.Sink.(*historian.Sink); ok {
			return sinkHistory{h}
		}
	}
	return nil
}

// sinkHistory asks the sink for its store on every query: the engine
// opens it on Connect, after the API may already answer.
type sinkHistory struct{ s *historian.Sink }

func (h sinkHistory) store() (*historian.Store, error) {
	st := h.s.Store()
	if st == nil {
		return nil, fmt.Errorf("historian not open yet: %w", api.ErrHistoryUnavailable)
	}
	return st, nil
}

func (h sinkHistory) Raw(ctx context.Context, path string, from, to int64, limit int) ([]model.Sample, error) {
	st, err := h.store()
	if err != nil {
		return nil, err
	}
	return st.Raw(ctx, path, from, to, limit)
}

func (h sinkHistory) Aggregate(ctx context.Context, path string, from, to, interval int64) ([]historian.Bucket, error) {
	st, err := h.store()
	if err != nil {
		return nil, err
	}
	return st.Aggregate(ctx, path, from, to, interval)
}
