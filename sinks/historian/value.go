package historian

import (
	"math"
	"unicode/utf8"

	"github.com/weir-edge/weir/model"
)

// encodeValue is the column value of v. Numbers stay numbers so SQL
// aggregates work: integers as INTEGER (exact), uint64 beyond int64 and
// floats as REAL, NaN as NULL (SQLite has no NaN; kind restores it),
// booleans as 0/1, strings as TEXT, arrays as their JSON text.
func encodeValue(v model.Value) any {
	switch v.Kind() {
	case model.KindBool:
		if v.AsBool() {
			return int64(1)
		}
		return int64(0)
	case model.KindInt:
		return v.AsInt()
	case model.KindUint:
		if u := v.AsUint(); u <= math.MaxInt64 {
			return int64(u)
		}
		return float64(v.AsUint())
	case model.KindFloat:
		if f := v.AsFloat(); !math.IsNaN(f) {
			return f
		}
		return nil
	case model.KindString:
		return v.AsString()
	case model.KindArray:
		return string(v.AppendJSON(nil))
	}
	return nil
}

// rowBytes estimates the bytes of the samples row a sample becomes, for
// wire_bytes (a local disk has no wire; this is what the historian puts
// on it): tag id, time and seq as 8 bytes each, kind and quality code one
// each, the value as encodeValue stores it (numbers 8, a boolean 1, a
// string or array its text) and the quality reason. SQLite's record
// headers, the index and the WAL are left out: the figure compares with
// what other sinks send, not with the file sizes (historian_disk_bytes).
func rowBytes(sm *model.Sample) int {
	n := 8 + 8 + 1 + 1 + 8 + len(sm.Quality.Reason)
	switch v := sm.Value; v.Kind() {
	case model.KindBool:
		n++
	case model.KindInt, model.KindUint, model.KindFloat:
		n += 8
	case model.KindString:
		n += len(v.AsString())
	case model.KindArray:
		n += len(v.AppendJSON(nil))
	}
	return n
}

// decodeValue is the inverse of encodeValue; an array comes back as its
// JSON text (a string).
func decodeValue(kind int64, col any) model.Value {
	num := func() (float64, int64, bool) {
		switch x := col.(type) {
		case int64:
			return float64(x), x, true
		case float64:
			return x, int64(x), true
		}
		return 0, 0, false
	}
	switch model.Kind(kind) {
	case model.KindBool:
		_, i, _ := num()
		return model.Bool(i != 0)
	case model.KindInt:
		_, i, _ := num()
		return model.Int(i)
	case model.KindUint:
		if f, ok := col.(float64); ok {
			return model.Uint(uint64(f))
		}
		_, i, _ := num()
		return model.Uint(uint64(i))
	case model.KindFloat:
		f, _, ok := num()
		if !ok {
			return model.Float(math.NaN())
		}
		return model.Float(f)
	case model.KindString, model.KindArray:
		switch x := col.(type) {
		case string:
			return model.String(x)
		case []byte:
			return model.String(string(x))
		}
	}
	return model.Value{}
}

// validPath: a tag path must be non-empty UTF-8 so that it can be queried
// and exported.
func validPath(p string) bool { return p != "" && utf8.ValidString(p) }
