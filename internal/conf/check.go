package conf

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"

	"github.com/weir-edge/weir/pipeline"
)

// Validate checks a configuration as written; the checks in this file go
// further and read what it names (environment variables, secret and
// certificate files). They run in `weir validate` on the machine the file is
// for, never in Validate: a fleet manager validates files for other
// machines, whose environment it cannot see.

// Warning marks a problem that does not stop the configuration from
// working, such as a certificate that expires in a fortnight: `weir
// validate` prints it and still exits 0. Put it inside a FieldError
// (FieldError{Path, &Warning{err}}) so that AddPrefixed keeps it.
type Warning struct{ Err error }

func (w *Warning) Error() string { return w.Err.Error() }
func (w *Warning) Unwrap() error { return w.Err }

// Warnf builds a FieldError holding a Warning.
func Warnf(path string, format string, args ...any) error {
	return &FieldError{Path: path, Err: &Warning{Err: fmt.Errorf(format, args...)}}
}

// IsWarning reports whether err is (or wraps) a Warning.
func IsWarning(err error) bool {
	var w *Warning
	return errors.As(err, &w)
}

// Permanent marks err as pipeline.ErrPermanent without changing its text:
// a missing secret or an unreadable CA file will not fix itself, so the
// engine marks the component failed instead of retrying on a timer.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string   { return e.err.Error() }
func (e *permanentError) Unwrap() []error { return []error{e.err, pipeline.ErrPermanent} }

// MaxCheckedFile bounds what ReadFile reads: secrets and PEM files are
// small, and a path pointing at a disk image by mistake should not be read
// whole.
const MaxCheckedFile = 4 << 20

// ReadFile reads a file named in the configuration for a check and says
// what is wrong in the operator's words; what names the file in messages
// ("secret file", "CA file").
func ReadFile(what, path string) ([]byte, fs.FileInfo, error) {
	f, err := os.Open(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil, fmt.Errorf("%s %s does not exist", what, path)
	case errors.Is(err, fs.ErrPermission):
		return nil, nil, fmt.Errorf("%s %s cannot be read by this user (permission denied)", what, path)
	case err != nil:
		return nil, nil, fmt.Errorf("%s %s cannot be opened: %w", what, path, unwrapPath(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", what, path, unwrapPath(err))
	}
	if fi.IsDir() {
		return nil, nil, fmt.Errorf("%s %s is a directory", what, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxCheckedFile+1))
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s cannot be read: %w", what, path, unwrapPath(err))
	}
	if len(b) > MaxCheckedFile {
		return nil, nil, fmt.Errorf("%s %s is larger than %d MiB; is it the right file?", what, path, MaxCheckedFile>>20)
	}
	return b, fi, nil
}

// unwrapPath drops the *PathError's repetition of the operation and path.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// TooOpen reports a file holding a secret or a private key that users other
// than its owner may read or change, as ssh does for keys (ssh refuses
// them; Weir only warns, because container secret mounts are 0644 or 0444
// by default and the container is the boundary there). Nil on Windows,
// whose permissions are not mode bits.
func TooOpen(what, path string, fi fs.FileInfo) error {
	if runtime.GOOS == "windows" || fi == nil {
		return nil
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return &Warning{Err: fmt.Errorf("%s %s is accessible by other users (mode %04o); make it private with chmod 600", what, path, perm)}
	}
	return nil
}
