package auth

import (
	"io/fs"
	"os"
)

func statPerm(p string) (fs.FileMode, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return 0, err
	}
	return fi.Mode().Perm(), nil
}

func readFile(p string) ([]byte, error) { return os.ReadFile(p) }
