//go:build unix

package auth

import (
	"io/fs"
	"syscall"
)

// inode tells a replaced file (a rename, as every writer here does) from
// one changed within the file system's timestamp tick at the same size.
func inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino) //nolint:unconvert // Ino is uint32 on some platforms
	}
	return 0
}
