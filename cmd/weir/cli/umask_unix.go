//go:build unix

package cli

import "syscall"

// privateUmask makes every file and directory the gateway creates from now
// on private to its user (umask 0077), including those made by libraries
// that choose their own modes, such as Pebble's 0644 files and 0755
// directories: the data dir holds the audit trail, buffered plant data,
// private keys and tokens. It returns the function that restores the
// previous mask, for tests that run the gateway inside a longer process.
// The umask is per process: set it before any goroutine creates files.
func privateUmask() (restore func()) {
	old := syscall.Umask(0o077)
	return func() { syscall.Umask(old) }
}
