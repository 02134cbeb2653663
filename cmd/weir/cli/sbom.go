package cli

import (
	"fmt"
	"io"
	"net/url"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/uuid"
)

// sbomSpec is the CycloneDX version weir version -sbom writes: 1.6, which
// the scanners in use in 2026 (Trivy, Grype, Dependency-Track) all read;
// the library defaults to 1.7.
const sbomSpec = cdx.SpecVersion1_6

// module is one Go module linked into the binary, as the toolchain recorded
// it: the replacement when go.mod replaces it, since that is the code that
// was compiled.
type module struct {
	path, version, sum string
	replaces           string // the module path@version replaced, if any
}

// modulesOf lists the binary's dependencies from its build info, sorted by
// path.
func modulesOf(bi *debug.BuildInfo) []module {
	var mods []module
	for _, d := range bi.Deps {
		m := module{path: d.Path, version: d.Version, sum: d.Sum}
		if r := d.Replace; r != nil {
			m = module{path: r.Path, version: r.Version, sum: r.Sum, replaces: d.Path + "@" + d.Version}
			if r.Version == "" { // a local directory: keep the name scanners know
				m.path, m.version = d.Path, d.Version
				m.replaces = ""
				m.sum = ""
			}
		}
		mods = append(mods, m)
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].path < mods[j].path })
	return mods
}

// writeVerbose prints what `go version -m` would, in Weir's words: the
// toolchain, the main module, the VCS stamp and build settings, and every
// module with its go.sum hash, so that an operator can answer "is this box
// running the vulnerable version of X" without the source.
func writeVerbose(w io.Writer, v buildInfo, bi *debug.BuildInfo, ok bool) {
	if !ok || bi == nil {
		fmt.Fprintf(w, "%s %s %s/%s\n", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		fmt.Fprintln(w, "no build information in this binary")
		return
	}
	goos, goarch := runtime.GOOS, runtime.GOARCH // of this binary; another one says its own
	for _, s := range bi.Settings {
		switch s.Key {
		case "GOOS":
			goos = s.Value
		case "GOARCH":
			goarch = s.Value
		}
	}
	fmt.Fprintf(w, "%s %s %s/%s\n", v, bi.GoVersion, goos, goarch)
	fmt.Fprintf(w, "go        %s\n", bi.GoVersion)
	if bi.Path != "" {
		fmt.Fprintf(w, "path      %s\n", bi.Path)
	}
	fmt.Fprintf(w, "module    %s %s\n", bi.Main.Path, bi.Main.Version)
	for _, s := range bi.Settings {
		fmt.Fprintf(w, "build     %s=%s\n", s.Key, s.Value)
	}
	mods := modulesOf(bi)
	fmt.Fprintf(w, "modules   %d\n", len(mods))
	for _, m := range mods {
		line := fmt.Sprintf("  %s %s", m.path, m.version)
		if m.sum != "" {
			line += " " + m.sum
		}
		if m.replaces != "" {
			line += " (replaces " + m.replaces + ")"
		}
		fmt.Fprintln(w, line)
	}
}

// purl is the package URL of a Go module, pkg:golang/PATH@VERSION, the
// form scanners match vulnerability databases on. A module path is made of
// characters a purl namespace may hold as they are; the version is
// escaped ('+incompatible' holds a '+').
func purl(path, version string) string {
	p := "pkg:golang/" + path
	if version != "" {
		// PathEscape leaves '+' alone; in a purl it is a reserved character.
		p += "@" + strings.ReplaceAll(url.PathEscape(version), "+", "%2B")
	}
	return p
}

// buildSBOM describes the binary as a CycloneDX BOM: the weir module as
// metadata.component, one library component per linked module and one for
// the Go standard library (named stdlib, as Syft names it, so that Grype
// and Trivy match Go's own advisories), all direct dependencies of weir
// (the build info records no graph).
//
// The go.sum h1: hash is kept as a property, not as a component hash: it
// is a SHA-256 over a list of the module's file hashes, not the digest of
// any artifact a scanner could fetch and compare, so calling it SHA-256
// would mislead.
//
// now and serial are parameters so that tests can pin them.
func buildSBOM(v buildInfo, bi *debug.BuildInfo, now time.Time, serial uuid.UUID) *cdx.BOM {
	bom := cdx.NewBOM()
	bom.SerialNumber = serial.URN()
	mainPath := bi.Main.Path
	if mainPath == "" {
		mainPath = "github.com/weir-edge/weir"
	}
	mainRef := purl(mainPath, v.version)
	props := []cdx.Property{{Name: "weir:go:version", Value: bi.GoVersion}}
	for _, s := range bi.Settings {
		switch s.Key {
		case "GOOS", "GOARCH", "CGO_ENABLED", "-tags", "vcs", "vcs.revision", "vcs.time", "vcs.modified":
			props = append(props, cdx.Property{Name: "weir:build:" + s.Key, Value: s.Value})
		}
	}
	app := cdx.Component{
		BOMRef:     mainRef,
		Type:       cdx.ComponentTypeApplication,
		Name:       "weir",
		Version:    v.version,
		PackageURL: mainRef,
		Properties: &props,
	}
	tool := cdx.Component{Type: cdx.ComponentTypeApplication, Name: "weir version -sbom", Version: v.version}
	bom.Metadata = &cdx.Metadata{
		Timestamp: now.UTC().Format(time.RFC3339),
		Tools:     &cdx.ToolsChoice{Components: &[]cdx.Component{tool}},
		Component: &app,
	}
	goVer := strings.TrimPrefix(bi.GoVersion, "go")
	comps := []cdx.Component{{
		BOMRef:     purl("stdlib", goVer),
		Type:       cdx.ComponentTypeLibrary,
		Name:       "stdlib",
		Version:    bi.GoVersion,
		PackageURL: purl("stdlib", goVer),
	}}
	for _, m := range modulesOf(bi) {
		c := cdx.Component{
			BOMRef:     purl(m.path, m.version),
			Type:       cdx.ComponentTypeLibrary,
			Name:       m.path,
			Version:    m.version,
			PackageURL: purl(m.path, m.version),
			Scope:      cdx.ScopeRequired,
		}
		var p []cdx.Property
		if m.sum != "" {
			p = append(p, cdx.Property{Name: "weir:go:sum", Value: m.sum})
		}
		if m.replaces != "" {
			p = append(p, cdx.Property{Name: "weir:go:replaces", Value: m.replaces})
		}
		if len(p) > 0 {
			c.Properties = &p
		}
		comps = append(comps, c)
	}
	refs := make([]string, 0, len(comps))
	deps := make([]cdx.Dependency, 0, len(comps)+1)
	for _, c := range comps {
		refs = append(refs, c.BOMRef)
		deps = append(deps, cdx.Dependency{Ref: c.BOMRef})
	}
	deps = append([]cdx.Dependency{{Ref: mainRef, Dependencies: &refs}}, deps...)
	bom.Components = &comps
	bom.Dependencies = &deps
	return bom
}

// writeSBOM encodes bom as CycloneDX JSON of version sbomSpec.
func writeSBOM(w io.Writer, bom *cdx.BOM) error {
	enc := cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	if err := enc.EncodeVersion(bom, sbomSpec); err != nil {
		return fmt.Errorf("sbom: %w", err)
	}
	return nil
}
