//go:build !unix

package cli

// privateUmask does nothing where files have no Unix mode bits (Windows:
// the data dir's ACL, inherited from its parent, decides who reads it).
func privateUmask() (restore func()) { return func() {} }
