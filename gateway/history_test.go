package gateway

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/weir-edge/weir/api"
	"github.com/weir-edge/weir/engine"
	"github.com/weir-edge/weir/sinks/historian"
)

// The API finds the historian among the engine's sinks, answers 503 until
// the engine has connected it, then reads it.
func TestHistoryStoreFromSinks(t *testing.T) {
	if historyStore(nil) != nil {
		t.Fatal("a store without a historian sink")
	}
	sk, err := historian.New(historian.Config{Dir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hs := historyStore([]engine.SinkSpec{{Name: "hist", Sink: sk}})
	if hs == nil {
		t.Fatal("historian sink not found")
	}
	ctx := context.Background()
	if _, err := hs.Raw(ctx, "a", 0, 1, 1); !errors.Is(err, api.ErrHistoryUnavailable) {
		t.Fatalf("before connect: %v", err)
	}
	if err := sk.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer sk.Close(ctx)
	if _, err := hs.Aggregate(ctx, "a", 0, int64(time.Hour), int64(time.Minute)); err != nil {
		t.Fatalf("after connect: %v", err)
	}
}
