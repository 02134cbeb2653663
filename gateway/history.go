package gateway

import (
	"context"
	"fmt"

	"github.com/weir-edge/weir/api"
	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/sinks/historian"
)

// historyStore is the query side of the first historian sink, for
// GET /api/v1/history; nil without one. (The running gateway mounts the
// route always, with sinkHistory{g.historian}, which follows reloads.)
func historyStore(sinks []engine.SinkSpec) api.HistoryStore {
	if h := firstHistorian(sinks); h != nil {
		return sinkHistory{func() *historian.Sink { return h }}
	}
	return nil
}

// firstHistorian is the first historian sink among sinks, or nil.
func firstHistorian(sinks []engine.SinkSpec) *historian.Sink {
	for _, s := range sinks {
		if h, ok := s.Sink.(*historian.Sink); ok {
			return h
		}
	}
	return nil
}

// sinkHistory asks for the sink, and the sink for its store, on every
// query: the engine opens the store on Connect, after the API may already
// answer, and a hot reload may replace the sink.
type sinkHistory struct{ sink func() *historian.Sink }

func (h sinkHistory) store() (*historian.Store, error) {
	s := h.sink()
	if s == nil {
		return nil, api.ErrNoHistorian
	}
	st := s.Store()
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

func (h sinkHistory) AggregateWith(ctx context.Context, path string, from, to, interval int64, opt historian.AggregateOptions) ([]historian.Bucket, error) {
	st, err := h.store()
	if err != nil {
		return nil, err
	}
	return st.AggregateWith(ctx, path, from, to, interval, opt)
}

var _ api.HistoryAnyQuality = sinkHistory{}
