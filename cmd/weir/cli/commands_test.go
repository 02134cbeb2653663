package cli

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/weir-edge/weir/config"
)

func TestBareWeirPrintsHelp(t *testing.T) {
	code, out, errOut := run()
	if code != 0 || !strings.Contains(out, "Usage: weir <command>") || !strings.Contains(out, "weir run") || errOut != "" {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
}

func TestVersionForms(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		if code, out, _ := run(args...); code != 0 || !strings.HasPrefix(out, "weir ") {
			t.Errorf("%v: exit %d, stdout %q", args, code, out)
		}
	}
}

func TestVersionInfo(t *testing.T) {
	vcs := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-12-07T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	installed := &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}
	tests := []struct {
		name    string
		stamped buildInfo
		bi      *debug.BuildInfo
		want    string
	}{
		{"stamped by make release", buildInfo{"v1.4.0", "abc1234", "2026-12-07T10:00:00Z"}, vcs, "weir v1.4.0 (commit abc1234, 2026-12-07T10:00:00Z)"},
		{"go build in a checkout", buildInfo{"dev", "", ""}, vcs, "weir dev (commit 0123456789ab-dirty, 2026-12-07T10:00:00Z)"},
		{"go install module@version", buildInfo{"dev", "", ""}, installed, "weir v1.4.0"},
		{"no build info", buildInfo{"dev", "", ""}, nil, "weir dev"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := versionInfo(tt.stamped, tt.bi, tt.bi != nil).String(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// Every command, and every verb, answers -h with its usage, flags and at
// least one example, on stdout, with exit 0.
func TestHelpHasExamples(t *testing.T) {
	for _, c := range commands() {
		forms := [][]string{{c.name, "-h"}, {"help", c.name}}
		for _, v := range c.verbs {
			forms = append(forms, []string{c.name, v.name, "-h"}, []string{c.name, v.name, "--help"})
		}
		for _, args := range forms {
			code, out, _ := run(args...)
			if code != 0 || !strings.Contains(out, "Examples:\n  weir "+c.name) {
				t.Errorf("%v: exit %d, no example:\n%s", args, code, out)
			}
			if len(args) == 3 && !strings.Contains(out, "Usage: weir "+c.name+" "+args[1]) {
				t.Errorf("%v: no usage line for the verb:\n%s", args, out)
			}
		}
	}
}

func TestParseArgsAnywhere(t *testing.T) {
	tests := []struct {
		args    []string
		wantPos []string
		wantN   int
	}{
		{[]string{"a.yaml"}, []string{"a.yaml"}, 0},
		{[]string{"-n", "3", "a.yaml"}, []string{"a.yaml"}, 3},
		{[]string{"a.yaml", "-n", "3"}, []string{"a.yaml"}, 3},
		{[]string{"a", "--n=2", "b"}, []string{"a", "b"}, 2},
		{[]string{"a", "--", "-n", "b"}, []string{"a", "-n", "b"}, 0},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		n := fs.Int("n", 0, "")
		pos, err := parseArgs(fs, tt.args)
		if err != nil || !reflect.DeepEqual(pos, tt.wantPos) || *n != tt.wantN {
			t.Errorf("%v: pos %v n %d err %v", tt.args, pos, *n, err)
		}
	}
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		t.Run(shell, func(t *testing.T) {
			code, out, errOut := run("completion", shell)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			for _, c := range commands() {
				if !strings.Contains(out, c.name) {
					t.Errorf("no command %s", c.name)
				}
			}
			for _, want := range []string{"data-dir", "print-config", "snippet", "export", "purge", "shelve"} {
				if !strings.Contains(out, want) {
					t.Errorf("no %s", want)
				}
			}
			if path, err := exec.LookPath(shell); err == nil {
				if b, err := exec.Command(path, "-n", "-c", out).CombinedOutput(); err != nil && shell != "fish" {
					t.Errorf("%s -n: %v\n%s", shell, err, b)
				}
			}
		})
	}
	if code, _, _ := run("completion", "powershell"); code != 2 {
		t.Errorf("unknown shell: exit %d, want 2", code)
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	_, script, _ := run("completion", "bash")
	for _, tt := range []struct{ words, want string }{
		{"weir bu", "buffer"},
		{"weir buffer ex", "export"},
		{"weir alarms sh", "shelve"},
		{"weir run -print", "-print-config"},
		{"weir browse -ser", "-server"},
	} {
		sh := script + "\nCOMP_WORDS=(" + tt.words + ")\nCOMP_CWORD=$((${#COMP_WORDS[@]}-1))\n_weir\necho \"${COMPREPLY[*]}\"\n"
		out, err := exec.Command(bash, "-c", sh).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != tt.want {
			t.Errorf("%q completes to %q (%v), want %q", tt.words, out, err, tt.want)
		}
	}
}

// writeConfig writes a valid gateway configuration (the demo's, with the
// given data dir) with a secret and an environment reference.
func writeConfig(t *testing.T, dataDir string) string {
	t.Helper()
	text, err := demoConfig("127.0.0.1:1", "127.0.0.1:1", "", demoPrefix, dataDir)
	if err != nil {
		t.Fatal(err)
	}
	text = strings.Replace(text, "      qos: 1\n", "      qos: 1\n      username: weir\n      password: {env: WEIR_TEST_MQTT_PASSWORD}\n", 1)
	text = strings.Replace(text, "node:\n  id: weir-demo", "node:\n  id: ${WEIR_TEST_NODE:-weir-demo}", 1)
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPrintConfig(t *testing.T) {
	t.Setenv("WEIR_TEST_MQTT_PASSWORD", "hunter2-secret")
	t.Setenv("WEIR_TEST_NODE", "node-from-env")
	path := writeConfig(t, "/srv/ignored")
	dataDir := t.TempDir()
	for _, args := range [][]string{
		{"run", "--print-config", "--data-dir", dataDir, "--http-listen", "127.0.0.1:9911", "--log-level", "debug", path},
		{"run", "-c", path, "-print-config", "-data-dir", dataDir, "-http-listen", "127.0.0.1:9911", "-log-level", "debug"},
	} {
		code, out, errOut := run(args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		if strings.Contains(out, "hunter2") {
			t.Errorf("a secret was printed:\n%s", out)
		}
		if !strings.Contains(out, "id: node-from-env") { // the value actually used
			t.Errorf("${WEIR_TEST_NODE} not expanded:\n%s", out)
		}
		if !strings.Contains(out, "{env: WEIR_TEST_MQTT_PASSWORD}") && !strings.Contains(out, "env: WEIR_TEST_MQTT_PASSWORD") {
			t.Errorf("the secret reference is missing:\n%s", out)
		}
		cfg, err := config.Parse("printed.yaml", []byte(out), os.LookupEnv)
		if err != nil {
			t.Fatalf("printed configuration does not load: %v\n%s", err, out)
		}
		if cfg.DataDir != dataDir || cfg.HTTP.Listen != "127.0.0.1:9911" || cfg.Log.Level != "debug" {
			t.Errorf("flags not applied: data_dir %q http %q log %q", cfg.DataDir, cfg.HTTP.Listen, cfg.Log.Level)
		}
	}
	if _, err := os.ReadDir(dataDir); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dataDir); len(entries) != 0 {
		t.Errorf("--print-config wrote into the data dir: %v", entries)
	}
}

func TestDemoDataDir(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	code, out, errOut := run("run", "--print-config")
	want := filepath.Join(cache, "weir", "demo")
	if code != 0 || !strings.Contains(out, "data_dir: \""+want+"\"") {
		t.Fatalf("exit %d: %s\n%s", code, errOut, out)
	}
	other := t.TempDir()
	if _, out, _ := run("run", "--print-config", "--data-dir", other, "--http-listen", "127.0.0.1:9912"); !strings.Contains(out, "data_dir: \""+other+"\"") || !strings.Contains(out, "127.0.0.1:9912") {
		t.Fatalf("--data-dir/--http-listen not in the demo's printed configuration:\n%s", out)
	}
	if _, err := os.Stat(want); err == nil {
		t.Error("--print-config created the demo data dir")
	}
}

// A first run as a user who cannot create the data dir gets told what
// to do, not a raw mkdir error.
func TestDataDirNotCreatable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, filepath.Join(file, "weir")) // cannot exist, even for root
	code, _, errOut := run("run", path)
	if code != 1 || !strings.Contains(errOut, "--data-dir ~/.local/share/weir") || !strings.Contains(errOut, "data directory "+filepath.Join(file, "weir")) {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
}

func TestAPIAddrFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := readAPIAddr(dir); err == nil || !strings.Contains(err.Error(), "no running gateway") {
		t.Fatalf("no file: %v", err)
	}
	remove, err := writeAPIAddr(dir, "http://127.0.0.1:43210")
	if err != nil {
		t.Fatal(err)
	}
	if u, err := readAPIAddr(dir); err != nil || u != "http://127.0.0.1:43210" {
		t.Fatalf("read = %q, %v", u, err)
	}
	if u, _ := apiURL("http://10.0.0.5:8080", dir); u != "http://10.0.0.5:8080" {
		t.Errorf("-api does not win: %q", u)
	}
	// A second gateway took the data dir over: the first one's stop
	// leaves its file alone.
	remove2, err := writeAPIAddr(dir, "http://127.0.0.1:43211")
	if err != nil {
		t.Fatal(err)
	}
	remove()
	if u, _ := readAPIAddr(dir); u != "http://127.0.0.1:43211" {
		t.Fatalf("after the first stop: %q", u)
	}
	remove2()
	if _, err := os.Stat(filepath.Join(dir, apiAddrFile)); !os.IsNotExist(err) {
		t.Fatalf("file left after stop: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("temporary files left: %v", entries)
	}
}

var _ = context.Background

// The file a command works on is positional, and the old flag still
// works, with the same result.
func TestFileArgumentOrOldFlag(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "plant.yaml")
	if err := os.WriteFile(bad, []byte("colour: red\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"sim", bad}, {"sim", "-c", bad}, {"run", bad}, {"run", "-c", bad}} {
		code, _, errOut := run(args...)
		if code != 1 || !strings.Contains(errOut, "plant.yaml") || !strings.Contains(errOut, "colour") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
	for _, args := range [][]string{{"run", "a.yaml", "b.yaml"}, {"run", "-c", "a.yaml", "b.yaml"}, {"sim", "a.yaml", "b.yaml"}, {"run", "-no-such-flag"}} {
		if code, _, _ := run(args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
