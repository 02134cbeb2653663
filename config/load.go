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

	"gopkg.in/yaml.v3"

	"github.com/weir-edge/weir/internal/conf"
)

// MaxFileSize bounds a configuration file; anything larger is a mistake.
const MaxFileSize = 16 << 20

// Load reads, expands, decodes and validates the file at path.
func Load(path string) (*Config, error) {
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
		return nil, fmt.Errorf("config: %s is larger than %d bytes", path, MaxFileSize)
	}
	return Parse(path, data, os.LookupEnv)
}

// Problem is one configuration error located in the file.
type Problem struct {
	File string
	Line int    // 0 when unknown
	Key  string // dotted key path, may be empty
	Msg  string
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

// Parse expands, decodes and validates a configuration held in memory; file
// names it in errors and lookup reads the environment.
func Parse(file string, data []byte, lookup func(string) (string, bool)) (*Config, error) {
	expanded, err := expandEnv(file, data, lookup)
	if err != nil {
		return nil, err
	}
	var root yaml.Node
	if err := yaml.Unmarshal(expanded, &root); err != nil {
		return nil, syntaxProblems(file, err)
	}
	idx := newIndex(&root)

	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(expanded))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return nil, typeProblems(file, te, idx)
		}
		return nil, syntaxProblems(file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, Problems{{File: file, Line: extra.Line, Msg: "only one YAML document is allowed"}}
	}
	if err := c.Validate(); err != nil {
		return nil, validationProblems(file, err, idx)
	}
	return &c, nil
}

var envRef = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// expandEnv replaces ${NAME} and ${NAME:-default} line by line so line
// numbers stay true. A value with a newline would shift every later line
// and could inject structure, so it is refused.
func expandEnv(file string, data []byte, lookup func(string) (string, bool)) ([]byte, error) {
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
			v, ok := lookup(name)
			if !ok {
				if sub[2] != nil {
					return sub[3]
				}
				problems = append(problems, Problem{File: file, Line: i + 1,
					Msg: fmt.Sprintf("environment variable %s is not set (use ${%s:-default} for a default)", name, name)})
				return m
			}
			if strings.ContainsAny(v, "\r\n") {
				problems = append(problems, Problem{File: file, Line: i + 1,
					Msg: fmt.Sprintf("environment variable %s contains a line break; use a secret file instead", name)})
				return m
			}
			return []byte(v)
		})
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return bytes.Join(lines, []byte("\n")), nil
}

var lineRef = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

func syntaxProblems(file string, err error) error {
	msg := err.Error()
	if m := lineRef.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Problems{{File: file, Line: line, Msg: m[2]}}
	}
	return Problems{{File: file, Msg: strings.TrimPrefix(msg, "yaml: ")}}
}

var unknownField = regexp.MustCompile(`^field (\S+) not found in type \S+$`)

func typeProblems(file string, te *yaml.TypeError, idx *index) error {
	var ps Problems
	for _, e := range te.Errors {
		m := lineRef.FindStringSubmatch(e)
		if m == nil {
			ps = append(ps, Problem{File: file, Msg: e})
			continue
		}
		line, _ := strconv.Atoi(m[1])
		p := Problem{File: file, Line: line, Msg: m[2]}
		if u := unknownField.FindStringSubmatch(m[2]); u != nil {
			p.Key = idx.keyAt(line, u[1])
			p.Msg = fmt.Sprintf("unknown key %q", u[1])
		} else {
			p.Key = idx.keyAt(line, "")
			p.Msg = strings.TrimPrefix(p.Msg, "cannot unmarshal ")
			p.Msg = "invalid value: cannot decode " + p.Msg
		}
		ps = append(ps, p)
	}
	sortProblems(ps)
	return ps
}

func validationProblems(file string, err error, idx *index) error {
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
			ps = append(ps, Problem{File: file, Line: idx.lineOf(fe.Path), Key: fe.Path, Msg: fe.Err.Error()})
			continue
		}
		ps = append(ps, Problem{File: file, Msg: e.Error()})
	}
	sortProblems(ps)
	return ps
}

func sortProblems(ps Problems) {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
}
