package api

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/processors/latest"
)

// TestStreamLatency measures the time from Process of a sample to its
// event read by a client over loopback HTTP, with 10,000 tags in the
// store and the client subscribed to all of them, plus (-subs) idle
// subscribers on other tags. A figure, not a check: it runs only with
// WEIR_MEASURE=1 (README "Performance").
//
//	WEIR_MEASURE=1 go test -run TestStreamLatency -v ./api/
func TestStreamLatency(t *testing.T) {
	if os.Getenv("WEIR_MEASURE") != "1" {
		t.Skip("set WEIR_MEASURE=1 to measure")
	}
	for _, others := range []int{0, 100} {
		t.Run(fmt.Sprintf("other_subscribers=%d", others), func(t *testing.T) {
			const tags, n = 10_000, 1000
			store := latest.New(0)
			store.SetSubscriberLimit(others + 1)
			batch := make([]model.Sample, tags)
			for i := range batch {
				batch[i] = model.Sample{Path: fmt.Sprintf("plant/line%02d/tag%04d", i%20, i), Value: model.Int(0), SourceTime: 1}
			}
			store.Process(batch)
			for i := range others {
				sub, _, err := store.Subscribe(mustMatcher(t, fmt.Sprintf("other/%d/#", i)), 0)
				if err != nil {
					t.Fatal(err)
				}
				defer sub.Close()
			}
			base, _ := serve(t, Options{Status: &fakeStatus{}, Extra: (&Values{Store: store}).Mount})
			s, _ := openStream(t, context.Background(), base+"/api/v1/stream?tags=plant/%23")
			for range tags {
				s.nextSample(t)
			}
			lat := make([]time.Duration, 0, n)
			for i := 1; i <= n; i++ {
				path := batch[(i*7919)%tags].Path
				start := time.Now()
				store.Process([]model.Sample{{Path: path, Value: model.Int(int64(i)), SourceTime: int64(i + 1)}})
				v, _ := s.nextSample(t)
				lat = append(lat, time.Since(start))
				if v.Path != path || string(v.Value) != strconv.Itoa(i) {
					t.Fatalf("event %+v, want %s=%d", v, path, i)
				}
			}
			slices.Sort(lat)
			t.Logf("Process → SSE event read, %d samples, %d tags, %d other subscribers: p50 %v p99 %v max %v",
				n, tags, others, lat[n/2], lat[n*99/100], lat[n-1])
		})
	}
}
