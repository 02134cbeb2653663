package durable

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/weir-edge/weir/model"
)

// Record layout (see record.proto): version byte, CRC-32C of the message,
// protobuf Sample message. Chunks (chunk.go) hold runs of them.
const (
	recordVersion = 1
	headerLen     = 5
	// maxDepth bounds array nesting on decode, so a hostile record cannot
	// recurse the stack away.
	maxDepth = 16
)

// Sample message field numbers.
const (
	fPath          = 1
	fValue         = 2
	fQuality       = 3
	fQualityReason = 4
	fSourceTime    = 5
	fEdgeTime      = 6
	fSeq           = 7
	fHistorical    = 8
)

// Value message field numbers (one of).
const (
	vBool   = 1
	vInt    = 2
	vUint   = 3
	vFloat  = 4
	vString = 5
	vArray  = 6
	aElems  = 1 // Array.elems
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt marks a record that cannot be decoded.
var errCorrupt = errors.New("corrupt record")

// appendRecord appends the record of s to dst.
func appendRecord(dst []byte, s *model.Sample) []byte {
	start := len(dst)
	dst = append(dst, recordVersion, 0, 0, 0, 0)
	dst = appendSample(dst, s)
	sum := crc32.Checksum(dst[start+headerLen:], castagnoli)
	binary.LittleEndian.PutUint32(dst[start+1:], sum)
	return dst
}

func appendSample(b []byte, s *model.Sample) []byte {
	if s.Path != "" {
		b = protowire.AppendTag(b, fPath, protowire.BytesType)
		b = protowire.AppendString(b, s.Path)
	}
	if s.Value.IsValid() {
		b = protowire.AppendTag(b, fValue, protowire.BytesType)
		b = appendNested(b, s.Value, 0)
	}
	if s.Quality.Code != 0 {
		b = protowire.AppendTag(b, fQuality, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(s.Quality.Code))
	}
	if s.Quality.Reason != "" {
		b = protowire.AppendTag(b, fQualityReason, protowire.BytesType)
		b = protowire.AppendString(b, s.Quality.Reason)
	}
	if s.SourceTime != 0 {
		b = protowire.AppendTag(b, fSourceTime, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, uint64(s.SourceTime))
	}
	if s.EdgeTime != 0 {
		b = protowire.AppendTag(b, fEdgeTime, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, uint64(s.EdgeTime))
	}
	if s.Seq != 0 {
		b = protowire.AppendTag(b, fSeq, protowire.VarintType)
		b = protowire.AppendVarint(b, s.Seq)
	}
	if s.Historical {
		b = protowire.AppendTag(b, fHistorical, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	return b
}

// appendNested appends v as a length-prefixed Value message. The length is
// not known in advance: reserve one byte, and shift when it needs more.
func appendNested(b []byte, v model.Value, depth int) []byte {
	lenAt := len(b)
	b = append(b, 0)
	b = appendValue(b, v, depth)
	n := len(b) - lenAt - 1
	if n < 0x80 {
		b[lenAt] = byte(n)
		return b
	}
	size := protowire.SizeVarint(uint64(n))
	b = append(b, make([]byte, size-1)...)
	copy(b[lenAt+size:], b[lenAt+1:lenAt+1+n])
	protowire.AppendVarint(b[lenAt:lenAt], uint64(n))
	return b
}

func appendValue(b []byte, v model.Value, depth int) []byte {
	switch v.Kind() {
	case model.KindBool:
		b = protowire.AppendTag(b, vBool, protowire.VarintType)
		b = protowire.AppendVarint(b, protowire.EncodeBool(v.AsBool()))
	case model.KindInt:
		b = protowire.AppendTag(b, vInt, protowire.VarintType)
		b = protowire.AppendVarint(b, protowire.EncodeZigZag(v.AsInt()))
	case model.KindUint:
		b = protowire.AppendTag(b, vUint, protowire.VarintType)
		b = protowire.AppendVarint(b, v.AsUint())
	case model.KindFloat:
		b = protowire.AppendTag(b, vFloat, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, math.Float64bits(v.AsFloat()))
	case model.KindString:
		b = protowire.AppendTag(b, vString, protowire.BytesType)
		b = protowire.AppendString(b, v.AsString())
	case model.KindArray:
		b = protowire.AppendTag(b, vArray, protowire.BytesType)
		// An Array message: repeated Value elems. Deeper than maxDepth is
		// cut to an empty array rather than written undecodable.
		lenAt := len(b)
		b = append(b, 0)
		if depth < maxDepth {
			for _, e := range v.Elems() {
				b = protowire.AppendTag(b, aElems, protowire.BytesType)
				b = appendNested(b, e, depth+1)
			}
		}
		n := len(b) - lenAt - 1
		if n >= 0x80 {
			size := protowire.SizeVarint(uint64(n))
			b = append(b, make([]byte, size-1)...)
			copy(b[lenAt+size:], b[lenAt+1:lenAt+1+n])
		}
		protowire.AppendVarint(b[lenAt:lenAt], uint64(n))
	}
	return b
}

// decoder decodes records. It interns tag paths: a store holds many
// samples of few tags, and replay should not allocate a path per sample.
type decoder struct {
	paths map[string]string
}

// maxInterned bounds the path cache; it is reset when full.
const maxInterned = 4096

func (d *decoder) path(b []byte) string {
	if p, ok := d.paths[string(b)]; ok {
		return p
	}
	if d.paths == nil || len(d.paths) >= maxInterned {
		d.paths = make(map[string]string)
	}
	p := string(b)
	d.paths[p] = p
	return p
}

// decode parses one record. The result holds no reference to data.
func (d *decoder) decode(data []byte) (model.Sample, error) {
	var s model.Sample
	if len(data) < headerLen {
		return s, fmt.Errorf("%w: %d bytes, shorter than the header", errCorrupt, len(data))
	}
	if data[0] != recordVersion {
		return s, fmt.Errorf("%w: unknown record version %d", errCorrupt, data[0])
	}
	msg := data[headerLen:]
	if want, got := binary.LittleEndian.Uint32(data[1:]), crc32.Checksum(msg, castagnoli); want != got {
		return s, fmt.Errorf("%w: checksum %08x, want %08x", errCorrupt, got, want)
	}
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return s, fmt.Errorf("%w: %v", errCorrupt, protowire.ParseError(n))
		}
		msg = msg[n:]
		var err error
		switch {
		case num == fPath && typ == protowire.BytesType:
			var v []byte
			v, n = protowire.ConsumeBytes(msg)
			if n >= 0 {
				s.Path = d.path(v)
			}
		case num == fValue && typ == protowire.BytesType:
			var v []byte
			v, n = protowire.ConsumeBytes(msg)
			if n >= 0 {
				s.Value, err = decodeValue(v, 0)
			}
		case num == fQuality && typ == protowire.VarintType:
			var v uint64
			v, n = protowire.ConsumeVarint(msg)
			if v > math.MaxUint8 {
				err = fmt.Errorf("%w: quality %d", errCorrupt, v)
			}
			s.Quality.Code = model.QualityCode(v)
		case num == fQualityReason && typ == protowire.BytesType:
			var v []byte
			v, n = protowire.ConsumeBytes(msg)
			if n >= 0 {
				s.Quality.Reason = d.path(v) // reasons repeat too
			}
		case num == fSourceTime && typ == protowire.Fixed64Type:
			var v uint64
			v, n = protowire.ConsumeFixed64(msg)
			s.SourceTime = int64(v)
		case num == fEdgeTime && typ == protowire.Fixed64Type:
			var v uint64
			v, n = protowire.ConsumeFixed64(msg)
			s.EdgeTime = int64(v)
		case num == fSeq && typ == protowire.VarintType:
			s.Seq, n = protowire.ConsumeVarint(msg)
		case num == fHistorical && typ == protowire.VarintType:
			var v uint64
			v, n = protowire.ConsumeVarint(msg)
			s.Historical = v != 0
		case num >= fPath && num <= fHistorical:
			err = fmt.Errorf("%w: field %d has wire type %d", errCorrupt, num, typ)
		default: // a field from a newer writer
			n = protowire.ConsumeFieldValue(num, typ, msg)
		}
		if err != nil {
			return model.Sample{}, err
		}
		if n < 0 {
			return model.Sample{}, fmt.Errorf("%w: field %d: %v", errCorrupt, num, protowire.ParseError(n))
		}
		msg = msg[n:]
	}
	return s, nil
}

// decodeValue parses a Value message. An empty message is the invalid value.
func decodeValue(msg []byte, depth int) (model.Value, error) {
	var v model.Value
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return v, fmt.Errorf("%w: value: %v", errCorrupt, protowire.ParseError(n))
		}
		msg = msg[n:]
		switch {
		case num == vBool && typ == protowire.VarintType:
			var x uint64
			x, n = protowire.ConsumeVarint(msg)
			v = model.Bool(x != 0)
		case num == vInt && typ == protowire.VarintType:
			var x uint64
			x, n = protowire.ConsumeVarint(msg)
			v = model.Int(protowire.DecodeZigZag(x))
		case num == vUint && typ == protowire.VarintType:
			var x uint64
			x, n = protowire.ConsumeVarint(msg)
			v = model.Uint(x)
		case num == vFloat && typ == protowire.Fixed64Type:
			var x uint64
			x, n = protowire.ConsumeFixed64(msg)
			v = model.Float(math.Float64frombits(x))
		case num == vString && typ == protowire.BytesType:
			var x []byte
			x, n = protowire.ConsumeBytes(msg)
			v = model.String(string(x))
		case num == vArray && typ == protowire.BytesType:
			var x []byte
			x, n = protowire.ConsumeBytes(msg)
			if n >= 0 {
				var err error
				if v, err = decodeArray(x, depth); err != nil {
					return v, err
				}
			}
		case num >= vBool && num <= vArray:
			return v, fmt.Errorf("%w: value field %d has wire type %d", errCorrupt, num, typ)
		default:
			n = protowire.ConsumeFieldValue(num, typ, msg)
		}
		if n < 0 {
			return v, fmt.Errorf("%w: value field %d: %v", errCorrupt, num, protowire.ParseError(n))
		}
		msg = msg[n:]
	}
	return v, nil
}

func decodeArray(msg []byte, depth int) (model.Value, error) {
	if depth >= maxDepth {
		return model.Value{}, fmt.Errorf("%w: arrays nested deeper than %d", errCorrupt, maxDepth)
	}
	elems := []model.Value{}
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return model.Value{}, fmt.Errorf("%w: array: %v", errCorrupt, protowire.ParseError(n))
		}
		msg = msg[n:]
		if num != aElems || typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, msg)
		} else {
			var x []byte
			x, n = protowire.ConsumeBytes(msg)
			if n >= 0 {
				e, err := decodeValue(x, depth+1)
				if err != nil {
					return model.Value{}, err
				}
				elems = append(elems, e)
			}
		}
		if n < 0 {
			return model.Value{}, fmt.Errorf("%w: array element: %v", errCorrupt, protowire.ParseError(n))
		}
		msg = msg[n:]
	}
	return model.Array(elems), nil
}

// edgeTimeOf reads only the edge time of a record (0 if unreadable): what
// age checks and Stats need, without decoding the whole sample.
func edgeTimeOf(data []byte) int64 {
	if len(data) < headerLen {
		return 0
	}
	msg := data[headerLen:]
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return 0
		}
		msg = msg[n:]
		if num == fEdgeTime && typ == protowire.Fixed64Type {
			v, _ := protowire.ConsumeFixed64(msg)
			return int64(v)
		}
		if n = protowire.ConsumeFieldValue(num, typ, msg); n < 0 {
			return 0
		}
		msg = msg[n:]
	}
	return 0
}

func crc32Of(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
