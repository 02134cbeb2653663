package derive

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/model"
)

// Config is the `derive:` block of a processor: tags computed from other
// tags.
type Config struct {
	Tags []Tag `yaml:"tags"`
}

// Tag is one derived tag: Expr evaluated over the latest values of Vars.
type Tag struct {
	// Path of the derived tag in the unified namespace.
	Path string `yaml:"path"`
	// Expr is an expression in the expr language (github.com/expr-lang/expr)
	// over the names in Vars.
	Expr string `yaml:"expr"`
	// Vars maps expression names to input tag paths.
	Vars map[string]string `yaml:"vars"`
	// VarTypes declares a var's type: float (default), int, uint, bool or
	// string. The expression is type-checked against these at validation.
	VarTypes map[string]string `yaml:"var_types"`
	// On is when to recompute: any (default: whenever an input updates,
	// once all have a value) or all (once every input updated since the
	// last computation).
	On string `yaml:"on"`
	// Type of the result: float (default), int, uint, bool or string.
	Type string `yaml:"type"`
}

var (
	types     = []string{"float", "int", "uint", "bool", "string"}
	onChoices = []string{"any", "all"}
)

func oneOf(v string, allowed []string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

func (c *Config) setDefaults() {
	for i := range c.Tags {
		t := &c.Tags[i]
		if t.On == "" {
			t.On = "any"
		}
		if t.Type == "" {
			t.Type = "float"
		}
	}
}

// ExprError is an expression that does not compile or type-check, with the
// derived tag it belongs to and the 1-based line and column in the
// expression. Validate returns it inside a conf.FieldError at tags[i].expr.
type ExprError struct {
	Tag          string
	Line, Column int
	Msg          string
}

func (e *ExprError) Error() string {
	return fmt.Sprintf("derived tag %q: expression error at %d:%d: %s", e.Tag, e.Line, e.Column, e.Msg)
}

// Validate checks the configuration as written and compiles every
// expression against the declared var types, so type errors show at
// `weir validate` with the tag and the position. It does no I/O.
func (c *Config) Validate() error {
	var errs conf.Errors
	if len(c.Tags) == 0 {
		errs.Addf("tags", "at least one derived tag is required")
	}
	seen := map[string]int{}
	for i, t := range c.Tags {
		p := conf.Index("tags", i)
		if err := model.ValidatePath(t.Path); err != nil {
			errs.Add(conf.Errorf(conf.JoinPath(p, "path"), "%w", err))
		} else if j, dup := seen[t.Path]; dup {
			errs.Addf(conf.JoinPath(p, "path"), "%q is already derived by tags[%d]", t.Path, j)
		} else {
			seen[t.Path] = i
		}
		if t.On != "" && !oneOf(t.On, onChoices) {
			errs.Addf(conf.JoinPath(p, "on"), "%q is not one of %s", t.On, strings.Join(onChoices, ", "))
		}
		if t.Type != "" && !oneOf(t.Type, types) {
			errs.Addf(conf.JoinPath(p, "type"), "%q is not one of %s", t.Type, strings.Join(types, ", "))
		}
		varsOK := true
		if len(t.Vars) == 0 {
			errs.Addf(conf.JoinPath(p, "vars"), "at least one input is required (a constant never updates)")
			varsOK = false
		}
		for _, name := range sortedKeys(t.Vars) {
			vp := conf.JoinPath(p, "vars", name)
			if !isIdent(name) {
				errs.Addf(vp, "%q is not a valid name (letters, digits, '_', not starting with a digit)", name)
				varsOK = false
			}
			if err := model.ValidatePath(t.Vars[name]); err != nil {
				errs.Add(conf.Errorf(vp, "%w", err))
			} else if t.Vars[name] == t.Path {
				errs.Addf(vp, "a derived tag cannot be its own input")
			}
		}
		for _, name := range sortedKeys(t.VarTypes) {
			vp := conf.JoinPath(p, "var_types", name)
			if _, ok := t.Vars[name]; !ok {
				errs.Addf(vp, "no var %q in vars", name)
			}
			if !oneOf(t.VarTypes[name], types) {
				errs.Addf(vp, "%q is not one of %s", t.VarTypes[name], strings.Join(types, ", "))
				varsOK = false
			}
		}
		if t.Expr == "" {
			errs.Addf(conf.JoinPath(p, "expr"), "is required")
			continue
		}
		if varsOK && (t.Type == "" || oneOf(t.Type, types)) {
			if _, err := compile(t); err != nil {
				errs.Add(&conf.FieldError{Path: conf.JoinPath(p, "expr"), Err: err})
			}
		}
	}
	return errs.Err()
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		letter := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func typeOf(t Tag, name string) string {
	if v := t.VarTypes[name]; v != "" {
		return v
	}
	return "float"
}

// zeroOf is the value whose Go type tells the checker a var's type.
func zeroOf(typ string) any {
	switch typ {
	case "int":
		return int64(0)
	case "uint":
		return uint64(0)
	case "bool":
		return false
	case "string":
		return ""
	}
	return 0.0
}

// compile compiles and type-checks t's expression. The result type is
// checked here rather than with expr.AsInt64 & co., which would silently
// truncate a float into an int.
func compile(t Tag) (*vm.Program, error) {
	env := make(map[string]any, len(t.Vars))
	for name := range t.Vars {
		env[name] = zeroOf(typeOf(t, name))
	}
	prog, err := expr.Compile(t.Expr, expr.Env(env), expr.MaxNodes(10000))
	if err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			return nil, &ExprError{Tag: t.Path, Line: fe.Line, Column: fe.Column + 1, Msg: fe.Message}
		}
		return nil, &ExprError{Tag: t.Path, Line: 1, Column: 1, Msg: err.Error()}
	}
	want := t.Type
	if want == "" {
		want = "float"
	}
	if got := prog.Node().Type(); got != nil && got.Kind() != reflect.Interface && !resultFits(got.Kind(), want) {
		return nil, &ExprError{Tag: t.Path, Line: 1, Column: 1,
			Msg: fmt.Sprintf("the expression yields %s but the tag's type is %s%s", got, want, hint(got.Kind(), want))}
	}
	return prog, nil
}

func isIntKind(k reflect.Kind) bool {
	return k >= reflect.Int && k <= reflect.Uint64
}

func resultFits(k reflect.Kind, want string) bool {
	switch want {
	case "float":
		return k == reflect.Float64 || k == reflect.Float32 || isIntKind(k)
	case "int", "uint":
		return isIntKind(k)
	case "bool":
		return k == reflect.Bool
	case "string":
		return k == reflect.String
	}
	return false
}

func hint(k reflect.Kind, want string) string {
	if (want == "int" || want == "uint") && (k == reflect.Float64 || k == reflect.Float32) {
		return " (wrap it in round(), floor() or ceil() and int(), or set type: float)"
	}
	return ""
}
