package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/google/uuid"
)

// Version, Commit and Date are stamped by `make release` (and `make
// build`) with -ldflags "-X github.com/weir-edge/weir/internal/cli.Version=…".
// Unstamped (go install, go build), versionInfo falls back to what the Go
// toolchain recorded in the binary.
var (
	Version = "dev"
	Commit  = ""
	Date    = ""
)

// buildInfo is what weir version prints.
type buildInfo struct{ version, commit, date string }

// versionInfo merges the stamped values with the module and VCS data Go
// embeds: go install module@version records the module version, a build
// in a git checkout records vcs.revision, vcs.time and vcs.modified.
func versionInfo(stamped buildInfo, bi *debug.BuildInfo, ok bool) buildInfo {
	v := stamped
	if !ok || bi == nil {
		return v
	}
	if (v.version == "" || v.version == "dev") && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v.version = bi.Main.Version
	}
	var rev, at string
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if v.commit == "" && rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if dirty {
			rev += "-dirty"
		}
		v.commit = rev
	}
	if v.date == "" {
		v.date = at
	}
	if v.version == "" {
		v.version = "dev"
	}
	return v
}

// currentVersion is this binary's version information.
func currentVersion() buildInfo {
	bi, ok := debug.ReadBuildInfo()
	return versionInfo(buildInfo{Version, Commit, Date}, bi, ok)
}

func (v buildInfo) String() string {
	s := "weir " + v.version
	if v.commit != "" {
		s += " (commit " + v.commit
		if v.date != "" {
			s += ", " + v.date
		}
		s += ")"
	} else if v.date != "" {
		s += " (" + v.date + ")"
	}
	return s
}

// defineVersion: the one-line version; -v adds the build settings and
// every linked module; -sbom writes a CycloneDX SBOM of the binary for
// vulnerability scanners.
func defineVersion(fs *flag.FlagSet) body {
	verbose := fs.Bool("v", false, "also print the Go version, VCS stamp, build settings and every module (path, version, go.sum hash)")
	sbom := fs.Bool("sbom", false, "print a CycloneDX 1.6 JSON software bill of materials of this binary")
	return func(_ context.Context, pos []string, stdout, stderr io.Writer) error {
		if len(pos) > 0 {
			fmt.Fprintf(stderr, "weir version: unexpected argument %q\n", pos[0])
			return errUsage
		}
		bi, ok := debug.ReadBuildInfo()
		v := versionInfo(buildInfo{Version, Commit, Date}, bi, ok)
		switch {
		case *sbom && *verbose:
			fmt.Fprintln(stderr, "weir version: -v and -sbom print different things; choose one")
			return errUsage
		case *sbom:
			if !ok || bi == nil {
				return errors.New("this binary has no build information to describe (built without module support?)")
			}
			return writeSBOM(stdout, buildSBOM(v, bi, time.Now(), uuid.New()))
		case *verbose:
			writeVerbose(stdout, v, bi, ok)
			return nil
		}
		fmt.Fprintf(stdout, "%s %s %s/%s\n", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	}
}
