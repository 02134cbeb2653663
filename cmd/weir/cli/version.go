package cli

import (
	"context"
	"debug/buildinfo"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Version, Commit and Date are stamped by `make release` (and `make
// build`) with -ldflags "-X github.com/weir-edge/weir/cmd/weir/cli.Version=…".
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
// every linked module; -sbom writes a CycloneDX SBOM for vulnerability
// scanners. With -v or -sbom, BINARY names another weir executable to
// describe instead of this one: make release cross-builds binaries that
// cannot run on the build host, and writes their SBOMs this way.
func defineVersion(fs *flag.FlagSet) body {
	verbose := fs.Bool("v", false, "also print the Go version, VCS stamp, build settings and every module (path, version, go.sum hash)")
	sbom := fs.Bool("sbom", false, "print a CycloneDX 1.6 JSON software bill of materials of this binary (or of BINARY)")
	return func(_ context.Context, pos []string, stdout, stderr io.Writer) error {
		switch {
		case len(pos) > 1, len(pos) == 1 && !*sbom && !*verbose:
			fmt.Fprintf(stderr, "weir version: unexpected argument %q (a BINARY to describe goes with -v or -sbom)\n", pos[len(pos)-1])
			return errUsage
		case *sbom && *verbose:
			fmt.Fprintln(stderr, "weir version: -v and -sbom print different things; choose one")
			return errUsage
		}
		bi, ok := debug.ReadBuildInfo()
		v := versionInfo(buildInfo{Version, Commit, Date}, bi, ok)
		if len(pos) == 1 {
			var err error
			if bi, err = buildinfo.ReadFile(pos[0]); err != nil {
				return fmt.Errorf("%s: %w", pos[0], err)
			}
			ok = true
			v = versionInfo(stampOf(bi, buildInfo{Version, Commit, Date}), bi, true)
		}
		switch {
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

// stampOf is what another binary was stamped with: its -ldflags -X values,
// or, when it was built with -trimpath, which keeps -ldflags out of the
// build info, own (make release describes each binary with a host weir
// stamped with the same -ldflags).
func stampOf(bi *debug.BuildInfo, own buildInfo) buildInfo {
	for _, s := range bi.Settings {
		if s.Key == "-ldflags" {
			return stampedIn(bi)
		}
	}
	return own
}

// cliPackage is this package's import path, as -ldflags -X names it.
const cliPackage = "github.com/weir-edge/weir/cmd/weir/cli"

// stampedIn reads the version, commit and date another binary was stamped
// with from the -ldflags its build info records (make release:
// -X github.com/weir-edge/weir/cmd/weir/cli.Version=v1.4.0 …). Values are
// taken up to the next space: the Makefile's have none.
func stampedIn(bi *debug.BuildInfo) buildInfo {
	var v buildInfo
	for _, s := range bi.Settings {
		if s.Key != "-ldflags" {
			continue
		}
		f := strings.Fields(s.Value)
		for i := 0; i < len(f); i++ {
			arg := f[i]
			switch {
			case arg == "-X" && i+1 < len(f):
				i++
				arg = f[i]
			case strings.HasPrefix(arg, "-X="):
				arg = strings.TrimPrefix(arg, "-X=")
			default:
				continue
			}
			name, val, _ := strings.Cut(strings.Trim(arg, `'"`), "=")
			switch name {
			case cliPackage + ".Version":
				v.version = val
			case cliPackage + ".Commit":
				v.commit = val
			case cliPackage + ".Date":
				v.date = val
			}
		}
	}
	return v
}
