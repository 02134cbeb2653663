package sparkplug

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// nextBdSeq reads the last bdSeq used from path, computes the next one
// (0 when the file does not exist yet; 255 wraps to 0) and persists it
// before returning: written to a temporary file, fsync'd, renamed over
// path, and the directory fsync'd, so a crash never leaves a torn file and
// a restart never reuses a bdSeq a host has already seen with another
// birth.
func nextBdSeq(path string) (uint64, error) {
	next := uint64(0)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		last, perr := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 8)
		if perr != nil {
			return 0, fmt.Errorf("bdseq file %s: %q is not a number 0..255", path, strings.TrimSpace(string(b)))
		}
		next = (last + 1) % 256
	case errors.Is(err, fs.ErrNotExist):
	default:
		return 0, fmt.Errorf("bdseq file: %w", err)
	}
	if err := writeFileSync(path, []byte(strconv.FormatUint(next, 10)+"\n")); err != nil {
		return 0, fmt.Errorf("bdseq file: %w", err)
	}
	return next, nil
}

func writeFileSync(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
