package model

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValueAccessors(t *testing.T) {
	tests := []struct {
		name  string
		v     Value
		kind  Kind
		json  string
		f     float64
		fOK   bool
		valid bool
	}{
		{"invalid", Value{}, KindInvalid, "null", 0, false, false},
		{"true", Bool(true), KindBool, "true", 1, true, true},
		{"false", Bool(false), KindBool, "false", 0, true, true},
		{"int min", Int(math.MinInt64), KindInt, "-9223372036854775808", math.MinInt64, true, true},
		{"uint max", Uint(math.MaxUint64), KindUint, "18446744073709551615", math.MaxUint64, true, true},
		{"float", Float(21.5), KindFloat, "21.5", 21.5, true, true},
		{"float NaN", Float(math.NaN()), KindFloat, "null", math.NaN(), true, true},
		{"float +Inf", Float(math.Inf(1)), KindFloat, "null", math.Inf(1), true, true},
		{"string", String("a\"b"), KindString, `"a\"b"`, 0, false, true},
		{"array", Array([]Value{Int(1), Int(-2)}), KindArray, "[1,-2]", 0, false, true},
		{"empty array", Array(nil), KindArray, "[]", 0, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.v.Kind() != tt.kind || tt.v.IsValid() != tt.valid {
				t.Fatalf("kind %v valid %v", tt.v.Kind(), tt.v.IsValid())
			}
			if got := string(tt.v.AppendJSON(nil)); got != tt.json {
				t.Fatalf("JSON %s, want %s", got, tt.json)
			}
			f, ok := tt.v.Float64()
			if ok != tt.fOK || (ok && !(f == tt.f || (math.IsNaN(f) && math.IsNaN(tt.f)))) {
				t.Fatalf("Float64 = %v %v", f, ok)
			}
			if !tt.v.Equal(tt.v) {
				t.Fatal("value not equal to itself")
			}
		})
	}
}

func TestValueEqualDistinguishesKinds(t *testing.T) {
	pairs := [][2]Value{
		{Int(1), Uint(1)}, {Int(1), Float(1)}, {Bool(true), Int(1)}, {String("1"), Int(1)},
		{Array([]Value{Int(1)}), Array([]Value{Int(2)})}, {Array([]Value{Int(1)}), Array(nil)},
	}
	for _, p := range pairs {
		if p[0].Equal(p[1]) {
			t.Errorf("%#v equals %#v", p[0], p[1])
		}
	}
}

func TestAppendJSONStringIsValidJSON(t *testing.T) {
	inputs := []string{"", "plain", "quote\"", `back\slash`, "nl\n cr\r tab\t", "\x00\x01\x1f\x7f",
		"ünïcödé ✓ 🏭", "bad utf8 \xff\xfe end", "<script>&"}
	for _, in := range inputs {
		out := AppendJSONString(nil, in)
		if !json.Valid(out) {
			t.Fatalf("%q → invalid JSON %s", in, out)
		}
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatal(err)
		}
		if replaceInvalid(in) != back {
			t.Fatalf("%q round-tripped to %q", in, back)
		}
	}
}

// replaceInvalid replaces every byte of invalid UTF-8 by U+FFFD, as
// encoding/json does.
func replaceInvalid(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add("hello \"world\"\n\xff")
	f.Fuzz(func(t *testing.T, s string) {
		out := AppendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("%q → %s: %v", s, out, err)
		}
		if back != replaceInvalid(s) {
			t.Fatalf("%q round-tripped to %q", s, back)
		}
	})
}

func TestValidatePath(t *testing.T) {
	tests := []struct {
		path    string
		wantErr string
	}{
		{"acme/plant1/filling/line1/filler/temperature", ""},
		{"a", ""},
		{"a b/c", ""},
		{"", "empty"},
		{"/a", "empty level at byte 0"},
		{"a//b", "empty level at byte 2"},
		{"a/b/", "empty level at byte 4"},
		{"a/+/b", "wildcard"},
		{"a/#", "wildcard"},
		{"$SYS/x", "reserve"},
		{"a/\x00", "control character"},
		{"plant/bad\xffname", "not valid UTF-8"},
		{"plant/temp\u00b0C", ""},
		{" a/b", "spaces"},
		{strings.Repeat("a/", 32) + "a", "levels"},
		{strings.Repeat("x", MaxPathLen+1), "bytes long"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			err := ValidatePath(tt.path)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestEscapePath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plant/line1/temp", "plant/line1/temp"},
		{"plant/bad\xffname", "plant/bad%FFname"},
		{"a+b/c#d", "a%2Bb/c%23d"},
		{"a/\x00nul\x7f/\tx", "a/%00nul%7F/%09x"},
		{"$SYS/x", "%24SYS/x"},
		{"a/$b", "a/$b"},
		{"  a b ", "%20%20a b%20"},
		{"temp\u00b0C/\xe2\x82", "temp\u00b0C/%E2%82"}, // a truncated sequence
		{"50%/x", "50%/x"},                             // '%' is kept: existing paths never change
		{"a//b", "a//b"},                               // not fixable: ValidatePath still refuses it
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := EscapePath(tt.in)
			if got != tt.want {
				t.Fatalf("EscapePath(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if tt.in != "a//b" {
				if err := ValidatePath(got); err != nil {
					t.Fatalf("escaped %q is not a valid path: %v", got, err)
				}
			}
		})
	}
	if n := testing.AllocsPerRun(100, func() { _ = EscapePath("plant/line1/temp") }); n != 0 {
		t.Fatalf("EscapePath of a clean path allocates %v times", n)
	}
}

// FuzzEscapePath: whatever a device sends, the escaped path is valid
// unless its shape (empty levels, length, levels) is the problem.
func FuzzEscapePath(f *testing.F) {
	f.Add("plant/bad\xffname")
	f.Add("$a/+/#/ x ")
	f.Fuzz(func(t *testing.T, p string) {
		e := EscapePath(p)
		if err := ValidatePath(e); err != nil && !strings.Contains(err.Error(), "empty") &&
			!strings.Contains(err.Error(), "long") && !strings.Contains(err.Error(), "levels") && !strings.Contains(err.Error(), "spaces") {
			t.Fatalf("EscapePath(%q) = %q: %v", p, e, err)
		}
	})
}

func FuzzValidatePath(f *testing.F) {
	f.Add("acme/plant1/x")
	f.Add("a//+")
	f.Fuzz(func(t *testing.T, p string) {
		if ValidatePath(p) != nil {
			return
		}
		for _, level := range strings.Split(p, "/") {
			if level == "" || strings.ContainsAny(level, "+#\x00") {
				t.Fatalf("accepted %q", p)
			}
		}
	})
}

func TestJoinPath(t *testing.T) {
	if got := JoinPath("/acme/", "", "plant1", "line/", "tag"); got != "acme/plant1/line/tag" {
		t.Fatalf("got %q", got)
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	vals := []Value{Float(21.53), Int(-12345), Bool(true), String("LOT-0042")}
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		buf = vals[i%len(vals)].AppendJSON(buf[:0])
	}
}

func TestToGo(t *testing.T) {
	tests := []struct {
		v    Value
		typ  string
		want any
		ok   bool
	}{
		{Int(3), "float", 3.0, true},
		{Float(2.0), "int", int64(2), true},
		{Float(2.5), "int", int64(2), false},
		{Int(-1), "uint", uint64(math.MaxUint64), false},
		{Uint(math.MaxUint64), "int", int64(-1), false},
		{Bool(true), "int", int64(1), true},
		{Float(math.NaN()), "bool", false, false},
		{Float(0.5), "bool", true, true},
		{String("x"), "string", "x", true},
		{Int(1), "string", nil, false},
		{Value{}, "float", 0.0, false},
	}
	for _, tt := range tests {
		got, ok := ToGo(tt.v, tt.typ)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("ToGo(%#v, %s) = %v %v, want %v %v", tt.v, tt.typ, got, ok, tt.want, tt.ok)
		}
	}
}
