package gateway

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// checkWritable reports whether the configuration file at path can be
// replaced the way replaceFile does it (a temporary file in its directory
// renamed over it, and FILE.prev beside it). It creates and removes a
// probe file: only a write tells a read-only mount (ProtectSystem=strict)
// or a missing permission apart from a writable directory. A variable so
// that tests can stand in for a read-only file system (they run as root).
var checkWritable = func(path string) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".weir-write-check-*")
	if err != nil {
		return err
	}
	name := f.Name()
	_ = f.Close()
	return os.Remove(name)
}

// notPersistable is ErrNotPersistable in the user's words: the file, why
// (the cause, with the systemd sandbox named when it is a read-only file
// system) and the two ways out.
func notPersistable(path string, cause error) error {
	why := cause.Error()
	var pe *fs.PathError
	if errors.As(cause, &pe) {
		why = pe.Err.Error()
	}
	switch {
	case errors.Is(cause, syscall.EROFS):
		why += " (under the shipped systemd unit ProtectSystem=strict keeps /etc read-only)"
	case errors.Is(cause, fs.ErrPermission):
		why += " (the user weir runs as needs write access to " + filepath.Dir(path) + ")"
	}
	return fmt.Errorf("%w: %s cannot be written: %s; nothing was applied. Either let weir write it "+
		"(systemctl edit weir, add [Service] ReadWritePaths=%s, then restart weir) or apply with "+
		"?persist=false to run the change until the next restart without saving it",
		ErrNotPersistable, path, why, filepath.Dir(path))
}
