package durable

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/weir-edge/weir/model"
)

func sameSample(a, b model.Sample) bool {
	return a.Path == b.Path && a.Value.Equal(b.Value) && a.Value.Kind() == b.Value.Kind() && a.Quality == b.Quality &&
		a.SourceTime == b.SourceTime && a.EdgeTime == b.EdgeTime && a.Seq == b.Seq && a.Historical == b.Historical
}

func TestRecordRoundTrip(t *testing.T) {
	long := strings.Repeat("é", 200) // length prefixes over one byte
	tests := []struct {
		name string
		s    model.Sample
	}{
		{"zero", model.Sample{}},
		{"float", model.Sample{Path: "a/b", Value: model.Float(21.5), SourceTime: 1, EdgeTime: 2, Seq: 3}},
		{"nan and negative times", model.Sample{Path: "x", Value: model.Float(math.NaN()), SourceTime: -5, EdgeTime: math.MinInt64}},
		{"bool false", model.Sample{Path: "b", Value: model.Bool(false)}},
		{"int min", model.Sample{Value: model.Int(math.MinInt64), Seq: math.MaxUint64}},
		{"uint max", model.Sample{Value: model.Uint(math.MaxUint64)}},
		{"long string", model.Sample{Path: long, Value: model.String(long)}},
		{"bad quality", model.Sample{Path: "q", Quality: model.Quality{Code: model.Bad, Reason: model.ReasonUnreachable}}},
		{"historical", model.Sample{Path: "h", Value: model.Int(1), Historical: true}},
		{"arrays", model.Sample{Path: "arr", Value: model.Array([]model.Value{
			model.Array([]model.Value{model.Int(1), model.Int(-2)}), model.Array(nil), model.Array([]model.Value{model.String(long)}),
		})}},
	}
	var d decoder
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := appendRecord(nil, &tt.s)
			got, err := d.decode(rec)
			if err != nil {
				t.Fatalf("decode = %v", err)
			}
			if tt.s.Value.Kind() == model.KindFloat && math.IsNaN(tt.s.Value.AsFloat()) {
				if !math.IsNaN(got.Value.AsFloat()) {
					t.Fatalf("NaN came back as %v", got.Value)
				}
				got.Value, tt.s.Value = model.Value{}, model.Value{}
			}
			if !sameSample(got, tt.s) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, tt.s)
			}
			if e := edgeTimeOf(rec); e != tt.s.EdgeTime {
				t.Fatalf("edgeTimeOf = %d, want %d", e, tt.s.EdgeTime)
			}
		})
	}
}

func TestRecordDecodeErrors(t *testing.T) {
	good := appendRecord(nil, &model.Sample{Path: "a", Value: model.Int(7), Seq: 1})
	flip := func(i int) []byte { b := append([]byte(nil), good...); b[i] ^= 1; return b }
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"short header", good[:3]},
		{"unknown version", append([]byte{2}, good[1:]...)},
		{"checksum", flip(len(good) - 1)},
		{"truncated body", good[:len(good)-1]},
	}
	var d decoder
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := d.decode(tt.data); !errors.Is(err, errCorrupt) {
				t.Fatalf("decode = %v, want errCorrupt", err)
			}
		})
	}
}

// withCRC wraps a raw message in a valid header, so that the fuzzer
// reaches the protobuf parser.
func withCRC(msg []byte) []byte {
	out := append([]byte{recordVersion, 0, 0, 0, 0}, msg...)
	c := crc32Of(msg)
	out[1], out[2], out[3], out[4] = byte(c), byte(c>>8), byte(c>>16), byte(c>>24)
	return out
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(appendRecord(nil, &model.Sample{Path: "a/b", Value: model.Float(1.5), Seq: 9, EdgeTime: 5})[headerLen:])
	f.Add(appendRecord(nil, &model.Sample{Value: model.Array([]model.Value{model.Array([]model.Value{model.Bool(true)})})})[headerLen:])
	f.Add([]byte{0x12, 0x02, 0x32, 0x00})
	f.Fuzz(func(t *testing.T, msg []byte) {
		var d decoder
		s, err := d.decode(withCRC(msg))
		_ = edgeTimeOf(withCRC(msg))
		if err != nil {
			return
		}
		// What decodes must encode and decode to the same sample.
		again, err := d.decode(appendRecord(nil, &s))
		if err != nil {
			t.Fatalf("re-decode = %v", err)
		}
		if s.Value.Kind() == model.KindFloat || strings.Contains(s.Value.String(), "NaN") {
			return // NaN != NaN
		}
		if !sameSample(again, s) {
			t.Fatalf("re-encode changed %#v to %#v", s, again)
		}
	})
}

func BenchmarkEncodeDecode(b *testing.B) {
	s := model.Sample{Path: "site/line1/press/temperature", Value: model.Float(21.5), SourceTime: 1.7e18, EdgeTime: 1.7e18, Seq: 123456}
	var buf []byte
	var d decoder
	b.ReportAllocs()
	for b.Loop() {
		buf = appendRecord(buf[:0], &s)
		if _, err := d.decode(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(buf)), "bytes/record")
}

// FuzzChunk: a chunk value read from disk never panics the parser, the
// scan's checks or the record decoder, and what parses re-encodes to the
// same records. Seeds with a valid header CRC let it reach the framing.
func FuzzChunk(f *testing.F) {
	samples := mk(time.Unix(1_700_000_000, 0), span(1, 5)...)
	f.Add(uint64(4), encodeChunk(4, samples))
	f.Add(uint64(0), encodeChunk(0, samples[:1]))
	f.Add(uint64(9), appendRecord(nil, &samples[0])) // format 1
	f.Add(uint64(2), appendChunkHeader(nil, []int{0, 5, 10, 15}))
	f.Add(uint64(1), []byte{chunkVersion, 2, 5})
	f.Fuzz(func(t *testing.T, last uint64, v []byte) {
		_ = claimedCount(last, v, last/2)
		c, err := parseChunk(last, v, nil)
		if err != nil {
			return
		}
		if c.n() < 1 || c.n() > maxChunkSamples || c.first > c.last || c.last-c.first != uint64(c.n()-1) {
			t.Fatalf("parsed %d samples at %d..%d", c.n(), c.first, c.last)
		}
		var d decoder
		for i := range c.n() {
			_, _ = d.decode(c.rec(i))
			_ = edgeTimeOf(c.rec(i))
		}
		// What the scan keeps of it re-encodes to the same records.
		runs := 0
		good, bad, _, _ := fixChunk(&c, c.first+uint64(c.n()/2), func(lo, hi int) {
			if lo >= hi || hi > c.n() {
				t.Fatalf("run %d..%d of %d", lo, hi, c.n())
			}
			runs++
			again, err := parseChunk(c.pos(hi-1), appendRun(nil, &c, lo, hi), nil)
			if err != nil {
				t.Fatalf("re-encoded run: %v", err)
			}
			if again.n() != hi-lo || again.first != c.pos(lo) {
				t.Fatalf("re-encoded %d samples from %d, was %d from %d", again.n(), again.first, hi-lo, c.pos(lo))
			}
			for i := lo; i < hi; i++ {
				if !bytes.Equal(again.rec(i-lo), c.rec(i)) {
					t.Fatalf("record %d changed by re-encoding", i)
				}
			}
		})
		if good+bad > c.n() || (good > 0) != (runs > 0) {
			t.Fatalf("%d good, %d bad in %d runs of %d samples", good, bad, runs, c.n())
		}
	})
}
