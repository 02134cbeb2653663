package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/weir-edge/weir/internal/conf"
)

// Load reads, expands, decodes and validates the file at path. It does not
// read what the file names (secrets, certificates): the components do that
// when they connect; Inspect does it for `weir validate`.
func Load(path string) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, os.LookupEnv)
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("config: %s: %w", path, errTooLarge)
	}
	return data, nil
}

// Problem is one configuration error, or warning, located in the file.
type Problem struct {
	File string
	Line int    // 0 when unknown
	Key  string // dotted key path, may be empty
	Msg  string
	// Warning marks a problem that does not stop the configuration from
	// working (a certificate expiring soon): it is reported, and `weir
	// validate` still succeeds.
	Warning bool
}

func (p Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(p.Line))
	}
	b.WriteString(": ")
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	if p.Warning {
		b.WriteString("warning: ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is every error found in one file, sorted by line. Its Error text
// has one problem per line.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Errors counts the problems that are not warnings.
func (ps Problems) Errors() int {
	n := 0
	for _, p := range ps {
		if !p.Warning {
			n++
		}
	}
	return n
}

// Parse expands, decodes and validates a configuration held in memory; file
// names it in errors and lookup reads the environment. Every problem is
// reported at once: unknown keys and values of the wrong kind together with
// what Validate finds in the rest of the file.
func Parse(file string, data []byte, lookup func(string) (string, bool)) (*Config, error) {
	c, _, ps := parse(file, data, lookup)
	if ps.Errors() > 0 {
		return nil, ps
	}
	// Warnings (an insecure setting the file allows explicitly) do not
	// stop a start: the gateway logs c.InsecureWarnings() every time.
	return c, nil
}

// Options say how far Inspect goes.
type Options struct {
	// Offline checks a file written for another machine: ${NAME} is not
	// looked up (without a default it is not an error, and the value
	// holding it is not judged), and nothing the file names is read.
	Offline bool
	// Lookup reads the environment; nil means os.LookupEnv.
	Lookup func(string) (string, bool)
	// Now is the time certificates must be valid at; nil means time.Now.
	Now func() time.Time
}

// Inspect is `weir validate`: Parse, then (unless opts.Offline) Check,
// every problem and warning placed at file:line and sorted by line. The
// Config is nil when any problem is an error.
func Inspect(file string, data []byte, opts Options) (*Config, Problems) {
	lookup := opts.Lookup
	if lookup == nil {
		lookup = os.LookupEnv
	}
	if opts.Offline {
		lookup = nil
	}
	c, idx, ps := parse(file, data, lookup)
	if c != nil && !opts.Offline {
		now := time.Now
		if opts.Now != nil {
			now = opts.Now
		}
		ps = append(ps, placeProblems(file, Check(c, now()), idx, nil)...)
		sortProblems(ps)
	}
	if ps.Errors() > 0 {
		return nil, ps
	}
	return c, ps
}

// InspectFile reads the file at path and inspects it.
func InspectFile(path string, opts Options) (*Config, Problems, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, nil, err
	}
	c, ps := Inspect(path, data, opts)
	return c, ps, nil
}

// unsetMark replaces, offline, a ${NAME} without a default: the value is
// unknown, so problems in the values holding it are not reported. It reads
// as a host name so that a URL around it stays well formed.
const unsetMark = "weir-unset-"

// parse returns the decoded Config (also when it has problems, for Check;
// nil when the file cannot be decoded at all), the key index and every
// problem. lookup nil means offline.
func parse(file string, data []byte, lookup func(string) (string, bool)) (*Config, *lazyIndex, Problems) {
	if len(data) > MaxFileSize {
		return nil, nil, Problems{{File: file, Msg: errTooLarge.Error()}}
	}
	// An unset ${NAME} is one problem among the others: the value holding
	// it is not judged (as offline), and the rest of the file still is.
	expanded, envProblems := expandEnv(file, data, lookup)
	if len(expanded) > MaxFileSize {
		return nil, nil, Problems{{File: file, Msg: errTooLarge.Error() + " once ${…} references are replaced"}}
	}
	root, ps := checkDocument(file, expanded)
	if len(ps) > 0 {
		return nil, nil, ps
	}
	fractions := findFractions(root)
	root = nil // one parsed tree at a time: the decoder builds its own
	// The key index costs as much memory as the parsed document again, so
	// it is built only when a problem has to be placed in the file.
	idx := &lazyIndex{data: expanded}
	var c Config
	decoded := newShadow() // paths whose validation would repeat a decode error
	dec := yaml.NewDecoder(bytes.NewReader(expanded))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, nil, syntaxProblems(file, err)
		}
		ps = decodeProblems(file, te, idx.get(), decoded)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, nil, Problems{{File: file, Line: extra.Line, Msg: "only one YAML document is allowed"}}
	}
	ps = append(ps, placeProblems(file, c.Validate(), idx, decoded)...)
	ps = append(ps, placeProblems(file, validateSecrets(&c), idx, decoded)...)
	ps = append(ps, placeProblems(file, insecureTransports(&c), idx, decoded)...)
	ps = append(ps, placeProblems(file, flowWarnings(&c), idx, decoded)...)
	ps = append(ps, fractionProblems(file, fractions, decoded)...)
	if len(ps) == 0 && len(envProblems) == 0 {
		return &c, idx, nil
	}
	unknown := newShadow() // values holding an unresolved ${NAME}
	for p, n := range idx.get().values {
		if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, unsetMark) || strings.Contains(p, unsetMark) {
			unknown.under[p] = true
			// A secret is judged as a whole ({env} or {file}, a name or a path).
			if t, _ := typeAt(configType, parentPath(p)); t == secretType {
				unknown.under[parentPath(p)] = true
			}
		}
	}
	kept := envProblems
	seen := map[Problem]bool{}
	for _, p := range ps {
		if seen[p] {
			continue
		}
		seen[p] = true
		if p.Key == "" || !unknown.hides(p.Key) && !strings.Contains(p.Key, unsetMark) {
			kept = append(kept, p)
		}
	}
	sortProblems(kept)
	return &c, idx, kept
}

var envRef = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// expandEnv replaces ${NAME} and ${NAME:-default} line by line so line
// numbers stay true. A value with a newline would shift every later line
// and could inject structure, so it is refused. With lookup nil (offline)
// a default is used and a reference without one becomes unsetMark+NAME;
// online, such a reference is a problem and becomes unsetMark+NAME too, so
// that the rest of the file is still checked.
func expandEnv(file string, data []byte, lookup func(string) (string, bool)) ([]byte, Problems) {
	var problems Problems
	lines := bytes.Split(data, []byte("\n"))
	for i, line := range lines {
		if !bytes.Contains(line, []byte("$")) {
			continue
		}
		trimmed := bytes.TrimLeft(line, " \t")
		if len(trimmed) > 0 && trimmed[0] == '#' {
			continue
		}
		lines[i] = envRef.ReplaceAllFunc(line, func(m []byte) []byte {
			if string(m) == "$$" {
				return []byte("$")
			}
			sub := envRef.FindSubmatch(m)
			name := string(sub[1])
			if lookup == nil { // offline: this machine's environment is not the target's
				if sub[2] != nil {
					return sub[3]
				}
				return []byte(unsetMark + name)
			}
			v, ok := lookup(name)
			if !ok {
				if sub[2] != nil {
					return sub[3]
				}
				problems = append(problems, Problem{File: file, Line: i + 1,
					Msg: fmt.Sprintf("environment variable %s is not set (use ${%s:-default} for a default)", name, name)})
				return []byte(unsetMark + name)
			}
			if strings.ContainsAny(v, "\r\n") {
				problems = append(problems, Problem{File: file, Line: i + 1,
					Msg: fmt.Sprintf("environment variable %s contains a line break; use a secret file instead", name)})
				return m
			}
			return []byte(v)
		})
	}
	return bytes.Join(lines, []byte("\n")), problems
}

func syntaxProblems(file string, err error) Problems {
	msg := err.Error()
	if m := lineRef.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Problems{{File: file, Line: line, Msg: m[2]}}
	}
	return Problems{{File: file, Msg: strings.TrimPrefix(msg, "yaml: ")}}
}

// placeProblems turns the conf.FieldErrors in err into Problems at the
// line of their key, dropping those hidden by sh (nil: none).
func placeProblems(file string, err error, idx *lazyIndex, sh *shadow) Problems {
	if err == nil {
		return nil
	}
	var ps Problems
	var flat []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		flat = j.Unwrap()
	} else {
		flat = []error{err}
	}
	for _, e := range flat {
		var fe *conf.FieldError
		if errors.As(e, &fe) {
			if sh != nil && sh.hides(fe.Path) {
				continue
			}
			line := 0
			if ix := idx.get(); ix != nil {
				line = ix.lineOf(fe.Path)
			}
			ps = append(ps, Problem{File: file, Line: line, Key: fe.Path, Msg: fe.Err.Error(), Warning: conf.IsWarning(fe.Err)})
			continue
		}
		ps = append(ps, Problem{File: file, Msg: e.Error(), Warning: conf.IsWarning(e)})
	}
	return ps
}

func sortProblems(ps Problems) {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
}
