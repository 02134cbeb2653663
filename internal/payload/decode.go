package payload

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/weir-edge/weir/model"
)

// wireSample is the decoder's view of one sample object. Pointers tell a
// missing member from a zero one. Unknown members are ignored so that a
// reader keeps working when a newer writer adds fields.
type wireSample struct {
	Tag        *string         `json:"tag"`
	Value      json.RawMessage `json:"value"`
	Quality    *string         `json:"quality"`
	Reason     string          `json:"reason"`
	TS         int64           `json:"ts"`
	EdgeTS     int64           `json:"edge_ts"`
	Seq        uint64          `json:"seq"`
	Historical bool            `json:"historical"`
}

type wireBatch struct {
	Samples *[]wireSample `json:"samples"`
}

// DecodeSample parses a single-sample payload (see AppendSample). The
// returned Sample has an empty Path: the topic names the tag. "value" and
// "quality" are required; "ts", "edge_ts" and "seq" default to 0 and
// "historical" to false. Timestamps come back at millisecond precision.
//
// A JSON number without a fraction or exponent decodes as an Int (or a Uint
// when it exceeds int64), one with them as a Float, matching what
// AppendSample writes for each kind.
func DecodeSample(data []byte) (model.Sample, error) {
	var w wireSample
	if err := json.Unmarshal(data, &w); err != nil {
		return model.Sample{}, fmt.Errorf("payload: decode sample: %w", err)
	}
	s, err := w.sample()
	if err != nil {
		return model.Sample{}, fmt.Errorf("payload: decode sample: %w", err)
	}
	return s, nil
}

// DecodeBatch parses a batch payload (see AppendBatch) published for asset.
// Each sample's Path is asset/tag (just tag when asset is empty). Every
// element needs "tag", "value" and "quality".
func DecodeBatch(data []byte, asset string) ([]model.Sample, error) {
	var w wireBatch
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("payload: decode batch: %w", err)
	}
	if w.Samples == nil {
		return nil, errors.New(`payload: decode batch: missing "samples"`)
	}
	out := make([]model.Sample, 0, len(*w.Samples))
	for i, ws := range *w.Samples {
		if ws.Tag == nil || *ws.Tag == "" {
			return nil, fmt.Errorf(`payload: decode batch: samples[%d]: missing "tag"`, i)
		}
		s, err := ws.sample()
		if err != nil {
			return nil, fmt.Errorf("payload: decode batch: samples[%d]: %w", i, err)
		}
		s.Path = model.JoinPath(asset, *ws.Tag)
		out = append(out, s)
	}
	return out, nil
}

func (w *wireSample) sample() (model.Sample, error) {
	var s model.Sample
	if w.Value == nil {
		return s, errors.New(`missing "value"`)
	}
	v, err := decodeValue(w.Value)
	if err != nil {
		return s, fmt.Errorf("value: %w", err)
	}
	s.Value = v
	if w.Quality == nil {
		return s, errors.New(`missing "quality"`)
	}
	switch *w.Quality {
	case "good":
		s.Quality.Code = model.Good
	case "uncertain":
		s.Quality.Code = model.Uncertain
	case "bad":
		s.Quality.Code = model.Bad
	default:
		return s, fmt.Errorf("quality %q is not good, uncertain or bad", *w.Quality)
	}
	if !s.Quality.IsGood() {
		s.Quality.Reason = w.Reason
	}
	if s.SourceTime, err = milliToNano(w.TS); err != nil {
		return s, fmt.Errorf("ts: %w", err)
	}
	if s.EdgeTime, err = milliToNano(w.EdgeTS); err != nil {
		return s, fmt.Errorf("edge_ts: %w", err)
	}
	s.Seq = w.Seq
	s.Historical = w.Historical
	return s, nil
}

func milliToNano(ms int64) (int64, error) {
	const nsPerMs = int64(1e6)
	if ms > math.MaxInt64/nsPerMs || ms < math.MinInt64/nsPerMs {
		return 0, fmt.Errorf("%d ms is out of range", ms)
	}
	return ms * nsPerMs, nil
}

// decodeValue maps one JSON value onto a model.Value. Objects have no Value
// form and are refused, as are arrays mixing kinds (nulls aside: a NaN
// element is written as null).
func decodeValue(raw json.RawMessage) (model.Value, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return model.Value{}, errors.New("empty")
	}
	switch raw[0] {
	case 'n':
		return model.Value{}, nil
	case 't':
		return model.Bool(true), nil
	case 'f':
		return model.Bool(false), nil
	case '"':
		var str string
		if err := json.Unmarshal(raw, &str); err != nil {
			return model.Value{}, err
		}
		return model.String(str), nil
	case '[':
		var elems []json.RawMessage
		if err := json.Unmarshal(raw, &elems); err != nil {
			return model.Value{}, err
		}
		out := make([]model.Value, len(elems))
		kind := model.KindInvalid
		for i, e := range elems {
			v, err := decodeValue(e)
			if err != nil {
				return model.Value{}, fmt.Errorf("[%d]: %w", i, err)
			}
			if k := v.Kind(); k != model.KindInvalid {
				if kind != model.KindInvalid && k != kind {
					return model.Value{}, fmt.Errorf("[%d]: array mixes %s and %s", i, kind, k)
				}
				kind = k
			}
			out[i] = v
		}
		return model.Array(out), nil
	case '{':
		return model.Value{}, errors.New("objects are not supported")
	}
	return decodeNumber(raw)
}

func decodeNumber(raw []byte) (model.Value, error) {
	if !json.Valid(raw) {
		return model.Value{}, fmt.Errorf("invalid number %q", raw)
	}
	str := string(raw)
	if bytes.ContainsAny(raw, ".eE") {
		return decodeFloat(str)
	}
	if i, err := strconv.ParseInt(str, 10, 64); err == nil {
		return model.Int(i), nil
	}
	if u, err := strconv.ParseUint(str, 10, 64); err == nil {
		return model.Uint(u), nil
	}
	// An integer literal too large for 64 bits: keep its magnitude.
	return decodeFloat(str)
}

// decodeFloat refuses numbers beyond float64's range rather than turning
// them into ±Inf, which the encoder would write back as null.
func decodeFloat(str string) (model.Value, error) {
	f, err := strconv.ParseFloat(str, 64)
	if err != nil && (!errors.Is(err, strconv.ErrRange) || math.IsInf(f, 0)) {
		return model.Value{}, fmt.Errorf("number %s: %w", str, err)
	}
	return model.Float(f), nil
}
