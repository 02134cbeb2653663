package cli

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/weir-edge/weir/config"
	"github.com/weir-edge/weir/gateway"
)

// apiAddrFile, in the data dir, holds the base URL of the running
// gateway's HTTP API (gateway.APIAddrFile).
const apiAddrFile = gateway.APIAddrFile

// writeAPIAddr publishes url as a running gateway's API address.
var writeAPIAddr = gateway.WriteAPIAddr

// errNoGateway says no running gateway left its address in a data dir.
var errNoGateway = errors.New("no running gateway found")

// readAPIAddr reads the API base URL a running gateway wrote in dir.
func readAPIAddr(dir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, apiAddrFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("%w in %s (no %s: is the gateway running, with an http listener?)", errNoGateway, dir, apiAddrFile)
	}
	if err != nil {
		return "", err
	}
	u := strings.TrimSpace(string(data))
	if p, err := url.Parse(u); err != nil || p.Host == "" {
		return "", fmt.Errorf("%s: not a URL: %q", filepath.Join(dir, apiAddrFile), u)
	}
	return u, nil
}

// apiURL is the base URL a client talks to: -api when given, else the
// address the gateway wrote in its data dir. Without -data-dir the
// default data dir is tried, then the demo's.
func apiURL(api, dataDir string) (string, error) {
	if api != "" {
		return api, nil
	}
	if dataDir != "" {
		return readAPIAddr(dataDir)
	}
	u, err := readAPIAddr(config.DefaultDataDir)
	if err == nil {
		return u, nil
	}
	if demo, derr := demoDataDir(); derr == nil {
		if u, derr := readAPIAddr(demo); derr == nil {
			return u, nil
		}
	}
	return "", fmt.Errorf("%w in %s or the demo's data dir: pass the gateway's --data-dir or -api URL", errNoGateway, config.DefaultDataDir)
}

// localDataDir is the data dir an offline tool (weir audit verify, weir
// buffer) looks at when none is given: the default one when it exists,
// else the demo's when that exists (a first try on a laptop), else the
// default, so the error names the usual place.
func localDataDir() string {
	if _, err := os.Stat(config.DefaultDataDir); err == nil {
		return config.DefaultDataDir
	}
	if demo, err := demoDataDir(); err == nil {
		if _, err := os.Stat(demo); err == nil {
			return demo
		}
	}
	return config.DefaultDataDir
}

// demoDataDir is where the demo keeps its state between runs, so that
// weir audit verify and weir buffer can be tried on it.
func demoDataDir() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("demo data dir: %w (choose one with --data-dir)", err)
	}
	return filepath.Join(cache, "weir", "demo"), nil
}

// ensureDataDir creates the data dir and checks that it is writable, so
// that a first run as a non-root user (the default /var/lib/weir belongs
// to root) says what to do instead of failing deep inside a component.
func ensureDataDir(dir, configPath string) error {
	err := os.MkdirAll(dir, 0o700)
	if err == nil {
		var f *os.File
		if f, err = os.CreateTemp(dir, ".weir-write-check-*"); err == nil {
			f.Close()
			os.Remove(f.Name())
		}
	}
	if err == nil {
		return nil
	}
	file := configPath
	if file == "" {
		file = "FILE"
	}
	return fmt.Errorf("data directory %s is not usable (%w).\n"+
		"  As a user who cannot write there, choose a directory of your own:\n"+
		"    weir run --data-dir ~/.local/share/weir %s\n"+
		"  or set data_dir: in the configuration file", dir, unwrapPath(err), file)
}

// unwrapPath keeps the reason of a *PathError (the path is said already).
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// printConfig prints the file given to weir run with what the command line
// changed written into it: data_dir (always, resolved), http.listen and
// log. It is the file's own YAML — ${…} references and secrets ({env: …},
// {file: …}) stay as written, never their values.
func printConfig(w io.Writer, f runFlags, dataDir string) error {
	data, err := os.ReadFile(f.configPath)
	if err != nil {
		return err
	}
	// The values actually used: ${NAME} as this environment expands it.
	if data, err = config.ExpandEnv(f.configPath, data, os.LookupEnv); err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("%s: %w", f.configPath, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return fmt.Errorf("%s: not a mapping", f.configPath)
	}
	root := doc.Content[0]
	setKey(root, []string{"data_dir"}, dataDir)
	if f.httpListen != "" {
		setKey(root, []string{"http", "listen"}, f.httpListen)
	}
	if f.logLevel != "" {
		setKey(root, []string{"log", "level"}, f.logLevel)
	}
	if f.logFormat != "" {
		setKey(root, []string{"log", "format"}, f.logFormat)
	}
	fmt.Fprintf(w, "# weir run --print-config: %s as used, with the command line applied.\n"+
		"# ${...} expanded from this environment; secrets ({env: …}, {file: …}) stay references.\n", f.configPath)
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return err
	}
	return enc.Close()
}

// setKey sets the scalar at path in the mapping m, creating mappings on
// the way.
func setKey(m *yaml.Node, path []string, value string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != path[0] {
			continue
		}
		v := m.Content[i+1]
		if len(path) == 1 {
			*v = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value}
			return
		}
		if v.Kind != yaml.MappingNode {
			*v = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		}
		setKey(v, path[1:], value)
		return
	}
	key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: path[0]}
	if len(path) == 1 {
		m.Content = append(m.Content, key, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value})
		return
	}
	v := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	m.Content = append(m.Content, key, v)
	setKey(v, path[1:], value)
}
