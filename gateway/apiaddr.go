package gateway

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// APIAddrFile, in the data dir, holds the base URL of the running
// gateway's HTTP API, so that clients on the same machine (weir alarms)
// need no -api: the port may be anything, and the demo falls back to a
// free one when 8080 is taken.
const APIAddrFile = "api.url"

// WriteAPIAddr writes url to dir/api.url atomically (a reader sees the
// old file or the new one, never half of one) and returns the function
// that removes it at stop — unless another gateway has replaced it since.
func WriteAPIAddr(dir, url string) (remove func(), err error) {
	path := filepath.Join(dir, APIAddrFile)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("api address file: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+APIAddrFile+"-*")
	if err != nil {
		return nil, fmt.Errorf("api address file: %w", err)
	}
	content := []byte(url + "\n")
	_, err = tmp.Write(content)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o600)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("api address file: %w", err)
	}
	return func() {
		if cur, err := os.ReadFile(path); err == nil && bytes.Equal(cur, content) {
			os.Remove(path)
		}
	}, nil
}
