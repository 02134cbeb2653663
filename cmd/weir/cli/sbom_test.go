package cli

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/xeipuuv/gojsonschema"
)

// fakeBuild is a build info with a plain, a replaced, a locally replaced
// and a +incompatible module.
var fakeBuild = &debug.BuildInfo{
	GoVersion: "go1.26.8",
	Path:      "github.com/weir-edge/weir/cmd/weir",
	Main:      debug.Module{Path: "github.com/weir-edge/weir", Version: "v1.4.0"},
	Deps: []*debug.Module{
		{Path: "gopkg.in/yaml.v3", Version: "v3.0.1", Sum: "h1:fxVm/GzAzEWqLHuvctI91KS9hhNmmWOoWu0XTYJS7CA="},
		{Path: "github.com/old/lib", Version: "v1.0.0", Sum: "h1:old=",
			Replace: &debug.Module{Path: "github.com/fork/lib", Version: "v1.0.1", Sum: "h1:fork="}},
		{Path: "github.com/gopcua/opcua", Version: "v0.9.1", Replace: &debug.Module{Path: "./third_party/opcua"}},
		{Path: "github.com/docker/docker", Version: "v20.10.7+incompatible", Sum: "h1:dock="},
	},
	Settings: []debug.BuildSetting{{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "arm"}, {Key: "vcs.revision", Value: "abc123"}},
}

// sbomJSON builds and encodes the SBOM of bi.
func sbomJSON(t *testing.T, bi *debug.BuildInfo) []byte {
	t.Helper()
	var buf bytes.Buffer
	v := versionInfo(buildInfo{"dev", "", ""}, bi, true)
	if err := writeSBOM(&buf, buildSBOM(v, bi, time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC), uuid.New())); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// validateSchema checks doc against the CycloneDX 1.6 JSON schema shipped
// with cyclonedx-go (copied to testdata with the two schemas it refers to,
// which are registered under their $id so that nothing is fetched).
func validateSchema(t *testing.T, doc []byte) {
	t.Helper()
	file := func(name string) gojsonschema.JSONLoader {
		abs, err := filepath.Abs(filepath.Join("testdata", "cyclonedx", name))
		if err != nil {
			t.Fatal(err)
		}
		return gojsonschema.NewReferenceLoader("file://" + filepath.ToSlash(abs))
	}
	sl := gojsonschema.NewSchemaLoader()
	if err := sl.AddSchemas(file("spdx.schema.json"), file("jsf-0.82.schema.json")); err != nil {
		t.Fatalf("schema: %v", err)
	}
	schema, err := sl.Compile(file("bom-1.6.schema.json"))
	if err != nil {
		t.Fatalf("schema: %v", err)
	}
	res, err := schema.Validate(gojsonschema.NewBytesLoader(doc))
	if err != nil {
		t.Fatalf("schema: %v", err)
	}
	for _, e := range res.Errors() {
		t.Errorf("not CycloneDX 1.6: %s", e)
	}
}

// The JSON a scanner reads: only the fields checked here.
type sbomDoc struct {
	BOMFormat    string `json:"bomFormat"`
	SpecVersion  string `json:"specVersion"`
	SerialNumber string `json:"serialNumber"`
	Version      int    `json:"version"`
	Metadata     struct {
		Timestamp string      `json:"timestamp"`
		Component sbomComp    `json:"component"`
		Tools     interface{} `json:"tools"`
	} `json:"metadata"`
	Components   []sbomComp `json:"components"`
	Dependencies []struct {
		Ref       string   `json:"ref"`
		DependsOn []string `json:"dependsOn"`
	} `json:"dependencies"`
}

type sbomComp struct {
	BOMRef     string `json:"bom-ref"`
	Type       string `json:"type"`
	Name       string `json:"name"`
	Version    string `json:"version"`
	PURL       string `json:"purl"`
	Properties []struct {
		Name, Value string
	} `json:"properties"`
}

func (c sbomComp) prop(name string) string {
	for _, p := range c.Properties {
		if p.Name == name {
			return p.Value
		}
	}
	return ""
}

var (
	serialRE = regexp.MustCompile(`^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	// purl spec: pkg:TYPE/NAMESPACE/NAME@VERSION, version percent-encoded.
	purlRE = regexp.MustCompile(`^pkg:golang/[A-Za-z0-9.~_/-]+@[A-Za-z0-9.~_%-]+$`)
)

// checkSBOM asserts the rules scanners rely on and that the components are
// exactly the build info's modules (plus the standard library).
func checkSBOM(t *testing.T, doc []byte, bi *debug.BuildInfo) sbomDoc {
	t.Helper()
	validateSchema(t, doc)
	var d sbomDoc
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	if d.BOMFormat != "CycloneDX" || d.SpecVersion != "1.6" || d.Version < 1 || !serialRE.MatchString(d.SerialNumber) {
		t.Errorf("header: bomFormat %q specVersion %q version %d serialNumber %q", d.BOMFormat, d.SpecVersion, d.Version, d.SerialNumber)
	}
	if _, err := time.Parse(time.RFC3339, d.Metadata.Timestamp); err != nil {
		t.Errorf("metadata.timestamp: %v", err)
	}
	mc := d.Metadata.Component
	if mc.Type != "application" || mc.Name != "weir" || mc.Version == "" || !purlRE.MatchString(mc.PURL) ||
		!strings.HasPrefix(mc.PURL, "pkg:golang/"+bi.Main.Path+"@") {
		t.Errorf("metadata.component = %+v", mc)
	}
	refs := map[string]bool{mc.BOMRef: true}
	byName := map[string]sbomComp{}
	for _, c := range d.Components {
		if c.Type != "library" || c.Name == "" || c.Version == "" {
			t.Errorf("component %+v: type, name or version missing", c)
		}
		if !purlRE.MatchString(c.PURL) {
			t.Errorf("component %s: purl %q is not pkg:golang/PATH@VERSION", c.Name, c.PURL)
		}
		if refs[c.BOMRef] {
			t.Errorf("bom-ref %q twice", c.BOMRef)
		}
		refs[c.BOMRef] = true
		byName[c.Name] = c
	}
	if std := byName["stdlib"]; std.Version != bi.GoVersion {
		t.Errorf("stdlib component %+v, want version %s", std, bi.GoVersion)
	}
	if len(d.Components) != len(bi.Deps)+1 {
		t.Errorf("%d components for %d modules (+ stdlib)", len(d.Components), len(bi.Deps))
	}
	for _, m := range bi.Deps {
		want := m
		if m.Replace != nil && m.Replace.Version != "" {
			want = m.Replace
		}
		c, ok := byName[want.Path]
		if !ok {
			t.Errorf("module %s is not in the SBOM", want.Path)
			continue
		}
		if c.Version != want.Version || c.prop("weir:go:sum") != want.Sum {
			t.Errorf("module %s: version %q sum %q in the SBOM, %q %q in the build info", want.Path, c.Version, c.prop("weir:go:sum"), want.Version, want.Sum)
		}
	}
	for _, dep := range d.Dependencies {
		for _, r := range append([]string{dep.Ref}, dep.DependsOn...) {
			if !refs[r] {
				t.Errorf("dependency names %q, which no component has", r)
			}
		}
	}
	return d
}

func TestSBOMFake(t *testing.T) {
	d := checkSBOM(t, sbomJSON(t, fakeBuild), fakeBuild)
	purls := map[string]string{}
	for _, c := range d.Components {
		purls[c.Name] = c.PURL
	}
	for _, tt := range []struct{ name, purl, replaces string }{
		{"gopkg.in/yaml.v3", "pkg:golang/gopkg.in/yaml.v3@v3.0.1", ""},
		{"github.com/fork/lib", "pkg:golang/github.com/fork/lib@v1.0.1", "github.com/old/lib@v1.0.0"},
		{"github.com/gopcua/opcua", "pkg:golang/github.com/gopcua/opcua@v0.9.1", ""},
		{"github.com/docker/docker", "pkg:golang/github.com/docker/docker@v20.10.7%2Bincompatible", ""},
		{"stdlib", "pkg:golang/stdlib@1.26.8", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if purls[tt.name] != tt.purl {
				t.Errorf("purl %q, want %q", purls[tt.name], tt.purl)
			}
		})
	}
	if mc := d.Metadata.Component; mc.Version != "v1.4.0" || mc.PURL != "pkg:golang/github.com/weir-edge/weir@v1.4.0" {
		t.Errorf("metadata.component %+v", mc)
	}
}

// buildWeir builds cmd/weir into a temporary directory and returns its
// path and the build info the toolchain wrote into it: the test binary
// records no modules, a real build does. The version is stamped with
// -ldflags -X as make release does (without -trimpath, which would
// recompile every package: TestStampOf covers what it changes).
func buildWeir(t *testing.T) (string, *debug.BuildInfo) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: not building cmd/weir")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build cmd/weir with")
	}
	bin := filepath.Join(t.TempDir(), "weir")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ldflags := "-X " + cliPackage + ".Version=v9.8.7 -X " + cliPackage + ".Commit=0123456789ab"
	args := append(append([]string{"build"}, raceFlags...), "-ldflags", ldflags, "-o", bin, "..")
	if out, err := exec.CommandContext(ctx, goTool, args...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	return bin, bi
}

// weirOut runs the built binary.
func weirOut(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).Output()
	if err != nil {
		t.Fatalf("weir %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// A real weir binary's SBOM and -v list every module the toolchain linked
// in, as debug/buildinfo reads them from the executable.
func TestVersionOfBuiltBinary(t *testing.T) {
	bin, bi := buildWeir(t)
	if len(bi.Deps) == 0 {
		t.Fatal("the built binary records no modules")
	}
	t.Run("sbom", func(t *testing.T) {
		d := checkSBOM(t, weirOut(t, bin, "version", "-sbom"), bi)
		if mc := d.Metadata.Component; mc.Version != "v9.8.7" || mc.PURL != "pkg:golang/github.com/weir-edge/weir@v9.8.7" {
			t.Errorf("metadata.component %+v, want the stamped version v9.8.7", mc)
		}
	})
	// The same SBOM, written by this (test) binary about the built one, as
	// make release does for binaries of other architectures.
	t.Run("sbom of another binary", func(t *testing.T) {
		code, out, errOut := run("version", "-sbom", bin)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		d := checkSBOM(t, []byte(out), bi)
		if mc := d.Metadata.Component; mc.Version != "v9.8.7" {
			t.Errorf("metadata.component %+v, want the stamped version v9.8.7", mc)
		}
	})
	t.Run("verbose", func(t *testing.T) {
		out := string(weirOut(t, bin, "version", "-v"))
		for _, want := range []string{"go        " + bi.GoVersion, "module    " + bi.Main.Path} {
			if !strings.Contains(out, want) {
				t.Errorf("no %q in:\n%s", want, out)
			}
		}
		for _, m := range modulesOf(bi) {
			if !strings.Contains(out, "  "+m.path+" "+m.version) || (m.sum != "" && !strings.Contains(out, m.sum)) {
				t.Errorf("module %s %s %s not listed", m.path, m.version, m.sum)
			}
		}
	})
}

func TestStampedIn(t *testing.T) {
	for _, tt := range []struct {
		name, ldflags string
		want          buildInfo
	}{
		{"make release", "-s -w -X " + cliPackage + ".Version=v1.4.0 -X " + cliPackage + ".Commit=abc -X " + cliPackage + ".Date=2026-12-07T00:00:00Z",
			buildInfo{"v1.4.0", "abc", "2026-12-07T00:00:00Z"}},
		{"-X=", "-X=" + cliPackage + ".Version=v2", buildInfo{version: "v2"}},
		{"other package", "-X main.Version=v3", buildInfo{}},
		{"none", "", buildInfo{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bi := &debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "-ldflags", Value: tt.ldflags}}}
			if got := stampedIn(bi); got != tt.want {
				t.Errorf("stampedIn = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestStampOf(t *testing.T) {
	own := buildInfo{"v5.0.0", "own", ""}
	stamped := &debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "-ldflags", Value: "-X " + cliPackage + ".Version=v1.0.0"}}}
	unstamped := &debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "-ldflags", Value: "-s -w"}}}
	trimmed := &debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "-trimpath", Value: "true"}}}
	for _, tt := range []struct {
		name string
		bi   *debug.BuildInfo
		want buildInfo
	}{
		{"stamped", stamped, buildInfo{version: "v1.0.0"}},
		{"ldflags without a stamp", unstamped, buildInfo{}},
		{"-trimpath: the describing weir's own", trimmed, own},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := stampOf(tt.bi, own); got != tt.want {
				t.Errorf("stampOf = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestVersionFlags(t *testing.T) {
	if code, out, _ := run("version", "-v"); code != 0 || !strings.HasPrefix(out, "weir ") {
		t.Errorf("-v: exit %d:\n%s", code, out)
	}
	if code, _, _ := run("version", "-v", "-sbom"); code != 2 {
		t.Errorf("-v with -sbom: exit %d, want 2", code)
	}
	if code, _, _ := run("version", "some-binary"); code != 2 {
		t.Errorf("a BINARY without -v or -sbom: exit %d, want 2", code)
	}
	if code, _, errOut := run("version", "-sbom", "testdata/cyclonedx/spdx.schema.json"); code != 1 || !strings.Contains(errOut, "spdx.schema.json") {
		t.Errorf("-sbom of a file that is no Go binary: exit %d, %s", code, errOut)
	}
}
