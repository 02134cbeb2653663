package postgres

import (
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/weir-edge/weir/model"
)

// columns are the table's columns in COPY order.
var columns = []string{
	"time", "path", "value_double", "value_int", "value_text", "value_bool",
	"quality", "reason", "edge_time", "seq", "historical", "node",
}

// columnDefs is the column list of both the table and the staging table.
const columnDefs = `time timestamptz NOT NULL,
	path text NOT NULL,
	value_double double precision,
	value_int bigint,
	value_text text,
	value_bool boolean,
	quality smallint NOT NULL,
	reason text,
	edge_time timestamptz NOT NULL,
	seq bigint NOT NULL,
	historical boolean NOT NULL DEFAULT false,
	node text NOT NULL`

// rowSource feeds one batch to CopyFrom without copying it: Values maps
// the current sample into a reused slice. (Handing pgx pointers into a
// reused row instead of boxed values was measured: pgx's pointer plans
// allocate more than the boxing they would save.)
type rowSource struct {
	batch []model.Sample
	node  string
	i     int
	vals  []any
	buf   []byte // JSON of array values, reused
}

var _ pgx.CopyFromSource = (*rowSource)(nil)

func (r *rowSource) reset(batch []model.Sample, node string) {
	r.batch, r.node, r.i = batch, clean(node), -1
	if r.vals == nil {
		r.vals = make([]any, len(columns))
	}
}

func (r *rowSource) Next() bool {
	r.i++
	return r.i < len(r.batch)
}

func (r *rowSource) Err() error { return nil }

// Values maps the current sample onto the columns. The slice is reused:
// pgx encodes each row before asking for the next.
func (r *rowSource) Values() ([]any, error) {
	s := &r.batch[r.i]
	v := r.vals
	v[0] = time.Unix(0, s.SourceTime)
	v[1] = clean(s.Path)
	v[2], v[3], v[4], v[5] = r.value(s.Value)
	v[6] = int16(s.Quality.Code)
	v[7] = nil
	if !s.Quality.IsGood() {
		v[7] = clean(s.Quality.Reason)
	}
	v[8] = time.Unix(0, s.EdgeTime)
	// Seq is a per-process counter far below 2^63; above it the bigint
	// shows the same 64 bits as a negative number.
	v[9] = int64(s.Seq)
	v[10] = s.Historical
	v[11] = r.node
	return v, nil
}

// value spreads a value over value_double, value_int, value_text and
// value_bool; the unused columns are NULL. A uint64 above the bigint range
// goes to value_double (approximate, for arithmetic) and value_text (exact
// decimal); an array goes to value_text as JSON.
func (r *rowSource) value(val model.Value) (dbl, i64, text, b any) {
	switch val.Kind() {
	case model.KindBool:
		return nil, nil, nil, val.AsBool()
	case model.KindInt:
		return nil, val.AsInt(), nil, nil
	case model.KindUint:
		u := val.AsUint()
		if u <= math.MaxInt64 {
			return nil, int64(u), nil, nil
		}
		return float64(u), nil, strconv.FormatUint(u, 10), nil
	case model.KindFloat:
		return val.AsFloat(), nil, nil, nil
	case model.KindString:
		return nil, nil, clean(val.AsString()), nil
	case model.KindArray:
		r.buf = val.AppendJSON(r.buf[:0])
		return nil, nil, clean(string(r.buf)), nil
	}
	return nil, nil, nil, nil
}

// clean makes s storable in a text column: PostgreSQL refuses NUL bytes
// and invalid UTF-8, and one such value would fail its batch forever. It
// returns s itself (no allocation) in the usual case.
func clean(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}
