// Package conf holds the pieces every component's configuration shares:
// field-addressed validation errors, durations, and secrets.
//
// Components validate without knowing about YAML or line numbers: they
// report the dotted path of the offending key ("devices[2].tags[0].address")
// and the config loader maps the path back to file:line.
package conf

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// FieldError is a validation problem at one key of the configuration.
type FieldError struct {
	// Path is the dotted key path, relative to the struct that produced it
	// until a parent prefixes it: "devices[2].tags[0].address".
	Path string
	Err  error
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Err.Error()
	}
	return e.Path + ": " + e.Err.Error()
}

func (e *FieldError) Unwrap() error { return e.Err }

// Errorf builds a FieldError for the key at path.
func Errorf(path string, format string, args ...any) error {
	return &FieldError{Path: path, Err: fmt.Errorf(format, args...)}
}

// Errors collects validation problems so that a user sees all of them at
// once rather than one per run.
type Errors struct {
	list []error
}

// Add records err (nil is ignored). Joined errors are flattened.
func (e *Errors) Add(err error) {
	if err == nil {
		return
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, inner := range j.Unwrap() {
			e.Add(inner)
		}
		return
	}
	e.list = append(e.list, err)
}

// Addf records a FieldError.
func (e *Errors) Addf(path string, format string, args ...any) {
	e.list = append(e.list, Errorf(path, format, args...))
}

// AddPrefixed records err with every FieldError path in it prefixed, so a
// parent can place a child's errors: AddPrefixed("devices[2]", dev.Validate()).
func (e *Errors) AddPrefixed(prefix string, err error) {
	if err == nil {
		return
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, inner := range j.Unwrap() {
			e.AddPrefixed(prefix, inner)
		}
		return
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		e.list = append(e.list, &FieldError{Path: JoinPath(prefix, fe.Path), Err: fe.Err})
		return
	}
	e.list = append(e.list, &FieldError{Path: prefix, Err: err})
}

// Err returns the collected errors joined, or nil.
func (e *Errors) Err() error { return errors.Join(e.list...) }

// JoinPath joins key path parts with dots; an index part ("[3]") attaches
// without a dot.
func JoinPath(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		if p == "" {
			continue
		}
		if b.Len() > 0 && !strings.HasPrefix(p, "[") {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

// Index formats a list element's key: Index("tags", 3) = "tags[3]".
func Index(key string, i int) string { return key + "[" + strconv.Itoa(i) + "]" }

// Validator is implemented by every configuration struct. Validate does no
// I/O: it checks the configuration as written, so it can run in `weir
// validate` on another machine and on a fleet manager.
type Validator interface {
	Validate() error
}
