package historian

import (
	"context"
	"slices"
	"testing"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
	"github.com/weir-edge/weir/sinks/sinktest"
)

func TestConformance(t *testing.T) {
	var dir string
	sinktest.Run(t, sinktest.Harness{
		New: func(t *testing.T) pipeline.Sink {
			dir = t.TempDir()
			s, err := New(Config{Dir: dir}, nil)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Received: func(t *testing.T) []model.Sample { return readAll(t, dir) },
		// No compression: every row is stored, and counted as rowBytes.
		MinWireBytes: func(b []model.Sample) uint64 {
			var n uint64
			for i := range b {
				n += uint64(rowBytes(&b[i]))
			}
			return n
		},
	})
}

// readAll reads every sample in dir through a second store, as a query
// client beside the sink would, ordered by Seq.
func readAll(t *testing.T, dir string) []model.Sample {
	t.Helper()
	st, err := OpenStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	tags, err := st.Tags(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []model.Sample
	for _, p := range tags {
		got, err := st.Raw(ctx, p, -1<<62, 1<<62, MaxRawLimit)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, got...)
	}
	slices.SortFunc(out, func(a, b model.Sample) int { return int(a.Seq) - int(b.Seq) })
	return out
}
