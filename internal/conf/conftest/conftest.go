// Package conftest has helpers for tests of component configurations.
package conftest

import (
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
