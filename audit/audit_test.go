package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"gopkg.in/yaml.v3"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/model"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSampleConfig(t *testing.T) {
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(SampleConfig))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.File == "" || c.Key.Env == "" || c.MaxBytes != DefaultMaxBytes || c.MaxFiles != DefaultMaxFiles {
		t.Fatalf("sample not fully decoded: %+v", c)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"ok", Config{File: "/x"}, nil},
		{"no file", Config{}, []string{"file: is required"}},
		{"two key sources", Config{File: "/x", Key: conf.Secret{Env: "A", File: "/k"}}, []string{"key: give either env or file"}},
		{"rotation bounds", Config{File: "/x", MaxBytes: MinMaxBytes, MaxFiles: -1}, nil},
		{"negative max_bytes", Config{File: "/x", MaxBytes: -1}, []string{"max_bytes: must not be negative"}},
		{"tiny max_bytes", Config{File: "/x", MaxBytes: 100}, []string{"max_bytes: 100 is below the minimum of 4 KiB (4096)"}},
		{"max_files below -1", Config{File: "/x", MaxFiles: -2}, []string{"max_files: -2: want a count"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Fatalf("err = %v, want %q", err, w)
				}
			}
		})
	}
}

func openLog(t *testing.T, cfg Config) *Log {
	t.Helper()
	l, err := Open(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

var t0 = time.Date(2025, 5, 1, 10, 0, 0, 500, time.UTC)

func entry(i int) Entry {
	return Entry{Time: t0.Add(time.Duration(i) * time.Second), Caller: "api:alice", Path: "acme/plant1/speed_setpoint",
		Old: model.Int(int64(100 + i)), New: model.Float(200.5), Result: Allowed, Note: fmt.Sprintf("step \"%d\"\n", i)}
}

// writeTrail creates a trail of n entries and returns its path.
func writeTrail(t *testing.T, n int, key string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sub", "audit.jsonl")
	cfg := Config{File: path}
	if key != "" {
		t.Setenv("TEST_AUDIT_KEY", key)
		cfg.Key = conf.Secret{Env: "TEST_AUDIT_KEY"}
	}
	appendN(t, cfg, nil, 0, n)
	return path
}

func TestAppendVerifyAndParse(t *testing.T) {
	path := writeTrail(t, 5, "")
	n, err := Verify(path)
	if err != nil || n != 5 {
		t.Fatalf("Verify = %d, %v", n, err)
	}
	raw, _ := os.ReadFile(path)
	lines := bytes.Split(bytes.TrimSuffix(raw, []byte("\n")), []byte("\n"))
	first, err := ParseLine(lines[0])
	if err != nil {
		t.Fatal(err)
	}
	if first.PrevHash != Genesis || first.Seq != 1 || !first.Old.Equal(model.Int(100)) || !first.New.Equal(model.Float(200.5)) ||
		first.Note != "step \"0\"\n" || !first.Time.Equal(t0) {
		t.Fatalf("first entry %+v", first)
	}
	if !json.Valid(lines[0]) {
		t.Fatalf("line is not valid JSON: %s", lines[0])
	}
	// MarshalJSON gives back the stored line.
	out, _ := json.Marshal(first)
	if !bytes.Equal(out, lines[0]) {
		t.Fatalf("MarshalJSON\n%s\nstored\n%s", out, lines[0])
	}
}

func TestReopenContinuesChain(t *testing.T) {
	path := writeTrail(t, 3, "")
	l := openLog(t, Config{File: path})
	e, err := l.Append(entry(3))
	if err != nil {
		t.Fatal(err)
	}
	if e.Seq != 4 {
		t.Fatalf("seq after reopen = %d, want 4", e.Seq)
	}
	tail, err := l.Tail(10)
	if err != nil || len(tail) != 4 || tail[3].PrevHash != tail[2].Hash {
		t.Fatalf("tail %v %v", tail, err)
	}
	l.Close()
	if n, err := Verify(path); err != nil || n != 4 {
		t.Fatalf("Verify = %d, %v", n, err)
	}
}

// editLines rewrites the trail's lines with f.
func editLines(t *testing.T, path string, f func([]string) []string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	lines = f(lines)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	tests := []struct {
		name     string
		edit     func([]string) []string
		raw      func([]byte) []byte // instead of edit
		wantLine int
		want     string
	}{
		{name: "changed value", edit: func(l []string) []string {
			l[2] = strings.Replace(l[2], `"new":200.5`, `"new":900.5`, 1)
			return l
		}, wantLine: 3, want: "hash mismatch"},
		{name: "changed caller", edit: func(l []string) []string {
			l[1] = strings.Replace(l[1], "api:alice", "api:bobby", 1)
			return l
		}, wantLine: 2, want: "hash mismatch"},
		{name: "removed line", edit: func(l []string) []string {
			return append(l[:2:2], l[3:]...)
		}, wantLine: 3, want: "seq 4 follows 2"},
		{name: "removed first line", edit: func(l []string) []string { return l[1:] }, wantLine: 1, want: "first entry must be 1"},
		{name: "inserted copy", edit: func(l []string) []string {
			return append(l[:3:3], append([]string{l[1]}, l[3:]...)...)
		}, wantLine: 4, want: "seq 2 follows 3"},
		{name: "duplicated line", edit: func(l []string) []string {
			return append(l[:3:3], append([]string{l[2]}, l[3:]...)...)
		}, wantLine: 4, want: "seq 3 repeats"},
		{name: "reordered pair", edit: func(l []string) []string {
			l[1], l[2] = l[2], l[1]
			return l
		}, wantLine: 2, want: "seq 3 follows 1"},
		{name: "hash moved", edit: func(l []string) []string {
			// The same members, the hash first: bytes no longer canonical.
			e, _ := ParseLine([]byte(l[0]))
			l[0] = `{"hash":"` + e.Hash + `",` + strings.Replace(l[0][1:], `,"hash":"`+e.Hash+`"`, "", 1)
			return l
		}, wantLine: 1, want: "not the last member"},
		{name: "garbage", edit: func(l []string) []string {
			l[4] = "not json"
			return l
		}, wantLine: 5, want: "not a JSON entry"},
		{name: "unknown member", edit: func(l []string) []string {
			l[0] = strings.Replace(l[0], `{"seq"`, `{"x":1,"seq"`, 1)
			return l
		}, wantLine: 1, want: "unknown field"},
		{name: "truncated", raw: func(b []byte) []byte { return b[:len(b)-10] }, wantLine: 5, want: "incomplete last line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTrail(t, 5, "")
			if tt.raw != nil {
				b, _ := os.ReadFile(path)
				os.WriteFile(path, tt.raw(b), 0o600)
			} else {
				editLines(t, path, tt.edit)
			}
			_, err := Verify(path)
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want a VerifyError", err)
			}
			if ve.Line != tt.wantLine || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want line %d mentioning %q", err, tt.wantLine, tt.want)
			}
		})
	}
}

func TestKeyedChain(t *testing.T) {
	path := writeTrail(t, 3, "s3cret")
	if n, err := VerifyKey(path, []byte("s3cret")); err != nil || n != 3 {
		t.Fatalf("VerifyKey = %d, %v", n, err)
	}
	for name, key := range map[string][]byte{"wrong key": []byte("other"), "no key": nil} {
		t.Run(name, func(t *testing.T) {
			_, err := VerifyKey(path, key)
			var ve *VerifyError
			if !errors.As(err, &ve) || ve.Line != 1 || !strings.Contains(err.Error(), "hash mismatch") {
				t.Fatalf("err = %v", err)
			}
		})
	}
	// Reopening without the key refuses: the chain cannot continue.
	if _, err := Open(Config{File: path}, nil); err == nil || !strings.Contains(err.Error(), "newest entry") {
		t.Fatalf("Open without key: %v", err)
	}
}

func TestOpenRefusesTamperedNewest(t *testing.T) {
	path := writeTrail(t, 2, "")
	editLines(t, path, func(l []string) []string {
		l[1] = strings.Replace(l[1], `"allowed"`, `"denied"`, 1)
		return l
	})
	_, err := Open(Config{File: path}, nil)
	if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "hash mismatch") {
		t.Fatalf("Open = %v", err)
	}
}

func TestOpenCutsTornLine(t *testing.T) {
	path := writeTrail(t, 2, "")
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"seq":3,"time":"2025-`)
	f.Close()
	l := openLog(t, Config{File: path})
	if e, err := l.Append(entry(9)); err != nil || e.Seq != 3 {
		t.Fatalf("Append = %+v, %v", e, err)
	}
	l.Close()
	if n, err := Verify(path); err != nil || n != 3 {
		t.Fatalf("Verify = %d, %v", n, err)
	}
	torn, _ := filepath.Glob(path + ".torn-*")
	if len(torn) != 1 {
		t.Fatalf("torn side files: %v", torn)
	}
	if b, _ := os.ReadFile(torn[0]); string(b) != `{"seq":3,"time":"2025-` {
		t.Fatalf("side file holds %q", b)
	}
}

func TestTailAndClose(t *testing.T) {
	l := openLog(t, Config{File: filepath.Join(t.TempDir(), "a.jsonl")})
	if tail, err := l.Tail(5); err != nil || len(tail) != 0 {
		t.Fatalf("empty tail %v %v", tail, err)
	}
	for i := range TailSize + 5 {
		if _, err := l.Append(entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	tail, err := l.Tail(3)
	if err != nil || len(tail) != 3 || tail[2].Seq != TailSize+5 || tail[0].Seq != TailSize+3 {
		t.Fatalf("tail(3) = %v, %v", tail, err)
	}
	all, _ := l.Tail(1 << 20)
	if len(all) != TailSize || all[0].Seq != 6 {
		t.Fatalf("full tail: %d entries from seq %d", len(all), all[0].Seq)
	}
	if l.Err() != nil {
		t.Fatal(l.Err())
	}
	l.Close()
	if _, err := l.Append(entry(0)); err == nil {
		t.Fatal("Append after Close succeeded")
	}
	if l.Err() == nil {
		t.Fatal("Err after Close is nil")
	}
}

func TestConcurrentAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.jsonl")
	l := openLog(t, Config{File: path})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				if _, err := l.Append(entry(g*100 + i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	l.Close()
	if n, err := Verify(path); err != nil || n != 160 {
		t.Fatalf("Verify = %d, %v", n, err)
	}
}

func TestDecodeValue(t *testing.T) {
	tests := []struct {
		in      string
		want    model.Value
		wantErr string
	}{
		{"null", model.Value{}, ""},
		{"true", model.Bool(true), ""},
		{"-12", model.Int(-12), ""},
		{"18446744073709551615", model.Uint(18446744073709551615), ""},
		{"1.5", model.Float(1.5), ""},
		{"1e400", model.Value{}, "out of range"},
		{`"x"`, model.String("x"), ""},
		{"[1,2]", model.Array([]model.Value{model.Int(1), model.Int(2)}), ""},
		{`{"a":1}`, model.Value{}, "not a tag value"},
		{"1 2", model.Value{}, "data after"},
		{strings.Repeat("[", 20) + strings.Repeat("]", 20), model.Value{}, "nested deeper"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			v, err := DecodeValue([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !v.Equal(tt.want) {
				t.Fatalf("got %#v, %v", v, err)
			}
		})
	}
}

// FuzzParseLine feeds arbitrary lines to the parser: it must not panic,
// and what it accepts must have a canonical encoding that is a fixpoint.
func FuzzParseLine(f *testing.F) {
	path := filepath.Join(f.TempDir(), "seed.jsonl")
	l, err := Open(Config{File: path}, nil)
	if err != nil {
		f.Fatal(err)
	}
	for i := range 3 {
		l.Append(entry(i))
	}
	l.Append(Entry{Caller: "rule:x", Path: "a/b", New: model.Array([]model.Value{model.Bool(true)}), Result: Denied, Reason: "no policy"})
	l.Close()
	raw, _ := os.ReadFile(path)
	for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		f.Add(line)
	}
	f.Add([]byte(`{"seq":1}`))
	f.Add([]byte(`{"seq":-1,"old":{"a":1}}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := ParseLine(line)
		if err != nil {
			return
		}
		enc1 := appendLine(nil, &e)
		e2, err := ParseLine(enc1)
		if err != nil {
			t.Fatalf("re-encoded entry does not parse: %v\n%s", err, enc1)
		}
		enc2 := appendLine(nil, &e2)
		e3, err := ParseLine(enc2)
		if err != nil {
			t.Fatalf("second encoding does not parse: %v", err)
		}
		if enc3 := appendLine(nil, &e3); !bytes.Equal(enc2, enc3) {
			t.Fatalf("encoding is not a fixpoint:\n%s\n%s", enc2, enc3)
		}
		if _, err := canonicalOf(enc1, e.Hash); err != nil {
			t.Fatalf("canonicalOf(own encoding): %v", err)
		}
	})
}

func BenchmarkAppend(b *testing.B) {
	l, err := Open(Config{File: filepath.Join(b.TempDir(), "a.jsonl")}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	e := entry(1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Append(e); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzDecodeValue: arbitrary JSON values decode or fail cleanly, and what
// decodes re-encodes to a value that decodes to the same encoding.
func FuzzDecodeValue(f *testing.F) {
	for _, s := range []string{"null", "true", "-1", "1.5e3", `"x\u0000"`, "[1,[2,\"a\"]]", "18446744073709551616"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		v, err := DecodeValue(raw)
		if err != nil {
			return
		}
		enc := v.AppendJSON(nil)
		v2, err := DecodeValue(enc)
		if err != nil {
			t.Fatalf("%s re-encoded as %s, which does not decode: %v", raw, enc, err)
		}
		if enc2 := v2.AppendJSON(nil); string(enc2) != string(enc) && !strings.Contains(string(enc), "-0") {
			t.Fatalf("%s → %s → %s", raw, enc, enc2)
		}
	})
}

// TestGoldenTrail verifies a committed trail, so a change of the line
// format or the hash that breaks existing trails fails here.
// testdata/keyed.jsonl is chained under the key "weir-test-key".
func TestGoldenTrail(t *testing.T) {
	tests := []struct {
		file string
		key  []byte
		n    int
	}{
		{"testdata/trail.jsonl", nil, 3},
		{"testdata/keyed.jsonl", []byte("weir-test-key"), 2},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			if os.Getenv("WEIR_UPDATE_GOLDEN") != "" {
				os.Remove(tt.file)
				t.Setenv("GOLDEN_KEY", string(tt.key))
				cfg := Config{File: tt.file}
				if tt.key != nil {
					cfg.Key = conf.Secret{Env: "GOLDEN_KEY"}
				}
				l, err := Open(cfg, nil)
				if err != nil {
					t.Fatal(err)
				}
				for i := range tt.n {
					e := entry(i)
					if i == 1 {
						e.Result, e.Reason, e.Old = Denied, "value 700 outside 60..600", model.Value{}
					}
					if _, err := l.Append(e); err != nil {
						t.Fatal(err)
					}
				}
				l.Close()
			}
			if n, err := VerifyKey(tt.file, tt.key); err != nil || n != tt.n {
				t.Fatalf("VerifyKey = %d, %v", n, err)
			}
		})
	}
}
