// Package conftest has helpers for tests of component configurations.
package conftest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// DecodeErr decodes doc into a T as the gateway does: unknown keys are
// errors.
func DecodeErr[T any](doc string) (T, error) {
	var c T
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	err := dec.Decode(&c)
	return c, err
}

// Decode is DecodeErr that fails the test on an error.
func Decode[T any](t testing.TB, doc string) T {
	t.Helper()
	c, err := DecodeErr[T](doc)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return c
}

// Validator is a configuration block: Validate checks it without I/O.
type Validator interface{ Validate() error }

// BadConfigs checks every testdata/*.bad.yaml of the calling package:
// the file's first line announces the error ("# want: ..."), the rest is
// a block of type T, decoded strictly as the gateway does, whose Validate
// (or decoding) must fail with an error containing it. One runner for
// every component, so a new one adds files, not a copy of the loop.
func BadConfigs[T any, PT interface {
	*T
	Validator
}](t *testing.T) {
	t.Helper()
	files, err := filepath.Glob("testdata/*.bad.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad configs: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(b), "\n")
			want, ok := strings.CutPrefix(first, "# want: ")
			if !ok {
				t.Fatal("first line must be '# want: <error>'")
			}
			c := Decode[T](t, string(b))
			err = PT(&c).Validate()
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v\nwant %q", err, want)
			}
		})
	}
}
