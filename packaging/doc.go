// Package packaging holds what installs Weir as a hardened system service:
// the systemd unit, its sysusers.d and tmpfiles.d snippets (systemd/), and
// the tests that keep them hardened. It has no Go code to import; it is a
// package so that `go test ./packaging/` checks the unit with the same
// tool an auditor runs (systemd-analyze security) and fails when a change
// weakens it past the exposure score the security case promises.
package packaging
