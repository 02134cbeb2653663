package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/pipeline"
)

// rejectNames rejects the samples whose path is not UTF-8 or holds a NUL
// (a text column refuses both, and replacing the bytes would store a
// different tag) and returns the rest with their batch indexes; idx is
// nil when nothing was rejected (rows is batch then).
func (s *Sink) rejectNames(batch []model.Sample, rej **pipeline.RejectedError) (rows []model.Sample, idx []int) {
	for i := range batch {
		p := batch[i].Path
		if utf8.ValidString(p) && strings.IndexByte(p, 0) < 0 {
			if idx != nil {
				rows = append(rows, batch[i])
				idx = append(idx, i)
			}
			continue
		}
		if idx == nil {
			rows = make([]model.Sample, 0, len(batch))
			idx = make([]int, 0, len(batch))
			for k := range i {
				rows = append(rows, batch[k])
				idx = append(idx, k)
			}
		}
		pipeline.Reject(rej, i, pipeline.CauseInvalidName, fmt.Errorf("tag path %q is not valid UTF-8 or holds a NUL", p))
	}
	if idx == nil {
		return batch, nil
	}
	return rows, idx
}

// dataError reports whether err is the server refusing the data itself
// (SQLSTATE class 22 data exception, 23 integrity constraint violation):
// the same rows fail again on every retry, other rows do not.
func dataError(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "23"))
}

// rejectRow rejects rows[k], whose batch index idx maps (nil: the same).
func (s *Sink) rejectRow(rej **pipeline.RejectedError, idx []int, k int, err error) {
	i := k
	if idx != nil {
		i = idx[k]
	}
	pipeline.Reject(rej, i, pipeline.CauseRefused, err)
}

// isolate finds the rows of rows[lo:hi] the server refuses, after the
// transaction carrying them all failed with a data error (refused): each
// half is written in a transaction of its own, recursively, so that the
// good rows are committed and a single row the server still refuses is
// rejected. When both halves fail too, the server refuses everything (a
// constraint the table gained, say): isolate returns refused and the
// batch is retried as before, for the operator to fix the table, rather
// than dead-lettering the whole stream. It returns the rows inserted.
func (s *Sink) isolate(ctx context.Context, rows []model.Sample, idx []int, lo, hi int, refused error, rej **pipeline.RejectedError) (int64, error) {
	if hi-lo == 1 {
		s.rejectRow(rej, idx, lo, refused)
		return 0, nil
	}
	mid := lo + (hi-lo)/2
	var inserted int64
	var errs [2]error
	for k, r := range [][2]int{{lo, mid}, {mid, hi}} {
		n, err := s.writeTx(ctx, rows[r[0]:r[1]])
		switch {
		case err == nil:
			inserted += n
		case dataError(err):
			if k == 1 && errs[0] != nil && hi-lo > 2 {
				return inserted, refused // both halves refused: not one poison row
			}
			errs[k] = err
		default:
			return inserted, err
		}
	}
	for k, r := range [][2]int{{lo, mid}, {mid, hi}} {
		if errs[k] != nil {
			n, err := s.isolate(ctx, rows, idx, r[0], r[1], errs[k], rej)
			inserted += n
			if err != nil {
				return inserted, err
			}
		}
	}
	return inserted, nil
}
