package httpsink

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"unicode/utf8"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

// rejectNames rejects the samples whose path is not UTF-8 (JSON would
// carry a mangled name) and returns which batch indexes to skip, nil when
// none.
func (s *Sink) rejectNames(batch []model.Sample, rej **pipeline.RejectedError) []bool {
	var skip []bool
	for i := range batch {
		if utf8.ValidString(batch[i].Path) {
			continue
		}
		if skip == nil {
			skip = make([]bool, len(batch))
		}
		skip[i] = true
		pipeline.Reject(rej, i, pipeline.CauseInvalidName, fmt.Errorf("tag path %q is not valid UTF-8", batch[i].Path))
	}
	return skip
}

// isolate finds the samples of batch[lo:hi] the receiver refuses for good,
// after it refused the request carrying them all (refused): the range is
// sent again in halves, recursively, so that the good samples are
// delivered and a single sample the receiver still refuses is rejected —
// 2·log2(n) extra requests for one poison sample among n, within this
// Write. When both halves are refused too, the receiver refuses
// everything (a schema it no longer accepts, credentials it rejects):
// isolate then stops and returns refused, and the engine dead-letters the
// rest of the batch at once instead of this sink flooding the receiver
// with a request per sample. A failure that is not a refusal ends the
// search with that error (the range is then offered again whole).
func (s *Sink) isolate(ctx context.Context, c *client, batch []model.Sample, lo, hi int, refused error, rej **pipeline.RejectedError) error {
	if hi-lo == 1 {
		pipeline.Reject(rej, lo, refusalCause(refused), refused)
		return nil
	}
	mid := lo + (hi-lo)/2
	var errs [2]error
	for k, r := range [][2]int{{lo, mid}, {mid, hi}} {
		part := batch[r[0]:r[1]]
		s.encode(part) // a part of a body that fitted fits
		err := s.send(ctx, c, part)
		switch {
		case err == nil:
			s.requests.Add(1)
			s.samples.Add(uint64(len(part)))
		case errors.Is(err, ErrRejected):
			if k == 1 && errs[0] != nil && hi-lo > 2 {
				return refused // both halves refused: not one poison sample
			}
			errs[k] = err
		default:
			return err
		}
	}
	for k, r := range [][2]int{{lo, mid}, {mid, hi}} {
		if errs[k] != nil {
			if err := s.isolate(ctx, c, batch, r[0], r[1], errs[k], rej); err != nil {
				return err
			}
		}
	}
	return nil
}

// refusalCause names why the receiver refused a request of one sample.
func refusalCause(err error) string {
	var se *StatusError
	if errors.As(err, &se) && se.Code == http.StatusRequestEntityTooLarge {
		return pipeline.CauseOversize
	}
	return pipeline.CauseRefused
}
