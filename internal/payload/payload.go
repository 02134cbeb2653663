package payload

import (
	"math"
	"strconv"
	"strings"

	"github.com/weir-edge/weir/model"
)

// Asset splits a tag path into its asset (the path without its last level)
// and the tag name (the last level). A single-level path has no asset:
// Asset("temperature") = ("", "temperature").
func Asset(path string) (asset, tag string) {
	i := strings.LastIndexByte(path, '/')
	if i < 0 {
		return "", path
	}
	return path[:i], path[i+1:]
}

// AppendSample appends the single-sample payload of s to dst and returns the
// extended slice:
//
//	{"value":21.5,"quality":"good","ts":1732567000123,"edge_ts":1732567000125,"seq":42}
//
// It does not allocate when dst has room. s.Path is not encoded: it is the
// topic.
func AppendSample(dst []byte, s model.Sample) []byte {
	dst = append(dst, '{')
	dst = appendFields(dst, s)
	return append(dst, '}')
}

// AppendBatch appends the batch payload of samples, which should all belong
// to one asset, to dst:
//
//	{"samples":[{"tag":"temperature","value":21.5,"quality":"good","ts":…,"edge_ts":…,"seq":42},…]}
//
// Each element names its tag by the last level of its path; the asset is the
// topic. Samples are written in the order given. It does not allocate when
// dst has room.
func AppendBatch(dst []byte, samples []model.Sample) []byte {
	dst = append(dst, `{"samples":[`...)
	for i := range samples {
		if i > 0 {
			dst = append(dst, ',')
		}
		_, tag := Asset(samples[i].Path)
		dst = append(dst, `{"tag":`...)
		dst = model.AppendJSONString(dst, tag)
		dst = append(dst, ',')
		dst = appendFields(dst, samples[i])
		dst = append(dst, '}')
	}
	return append(dst, "]}"...)
}

// appendFields writes the members every sample object has, without braces.
func appendFields(dst []byte, s model.Sample) []byte {
	dst = append(dst, `"value":`...)
	dst = appendValue(dst, s.Value)
	dst = append(dst, `,"quality":"`...)
	dst = append(dst, qualityName(s.Quality.Code)...)
	dst = append(dst, '"')
	if !s.Quality.IsGood() {
		dst = append(dst, `,"reason":`...)
		dst = model.AppendJSONString(dst, s.Quality.Reason)
	}
	dst = append(dst, `,"ts":`...)
	dst = strconv.AppendInt(dst, unixMilli(s.SourceTime), 10)
	dst = append(dst, `,"edge_ts":`...)
	dst = strconv.AppendInt(dst, unixMilli(s.EdgeTime), 10)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, s.Seq, 10)
	if s.Historical {
		dst = append(dst, `,"historical":true`...)
	}
	return dst
}

// appendValue is model.Value.AppendJSON except that a finite float with an
// integral value keeps a ".0" ("21.0", not "21"), so that a decoder can tell
// a float tag from an integer one and the kind survives a round trip.
func appendValue(dst []byte, v model.Value) []byte {
	switch v.Kind() {
	case model.KindFloat:
		f := v.AsFloat()
		start := len(dst)
		dst = v.AppendJSON(dst)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return dst
		}
		for _, c := range dst[start:] {
			if c == '.' || c == 'e' || c == 'E' {
				return dst
			}
		}
		return append(dst, ".0"...)
	case model.KindArray:
		dst = append(dst, '[')
		for i, e := range v.Elems() {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendValue(dst, e)
		}
		return append(dst, ']')
	}
	return v.AppendJSON(dst)
}

// qualityName is QualityCode.String without its allocating fallback: a code
// this version does not know is reported as "bad", the only safe reading of
// a quality nobody can interpret.
func qualityName(q model.QualityCode) string {
	switch q {
	case model.Good:
		return "good"
	case model.Uncertain:
		return "uncertain"
	}
	return "bad"
}

// unixMilli converts Unix ns to Unix ms, rounding towards minus infinity so
// that instants before 1970 land in the right millisecond.
func unixMilli(ns int64) int64 {
	ms := ns / 1e6
	if ns%1e6 < 0 {
		ms--
	}
	return ms
}
