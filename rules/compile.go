package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"

	"github.com/weir-edge/weir/model"
)

// ExprError is an expression that does not compile or type-check, with
// the rule it belongs to, which of its expressions (Key: "when",
// "hysteresis.clear_when", "write.expr", …) and the 1-based line and
// column in the expression. Validate returns it inside a conf.FieldError.
type ExprError struct {
	Rule         string
	Key          string
	Line, Column int
	Msg          string
}

func (e *ExprError) Error() string {
	return fmt.Sprintf("rule %q: expression error at %d:%d: %s", e.Rule, e.Line, e.Column, e.Msg)
}

func typeOf(r *Rule, name string) string {
	if v := r.VarTypes[name]; v != "" {
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

func compileIn(r *Rule, key, text string) (*vm.Program, error) {
	env := make(map[string]any, len(r.Vars))
	for name := range r.Vars {
		env[name] = zeroOf(typeOf(r, name))
	}
	prog, err := expr.Compile(text, expr.Env(env), expr.MaxNodes(10000))
	if err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			return nil, &ExprError{Rule: r.Name, Key: key, Line: fe.Line, Column: fe.Column + 1, Msg: fe.Message}
		}
		return nil, &ExprError{Rule: r.Name, Key: key, Line: 1, Column: 1, Msg: err.Error()}
	}
	return prog, nil
}

// compileBool compiles a condition; it must yield a bool.
func compileBool(r *Rule, key, text string) (*vm.Program, error) {
	prog, err := compileIn(r, key, text)
	if err != nil {
		return nil, err
	}
	if got := prog.Node().Type(); got != nil && got.Kind() != reflect.Interface && got.Kind() != reflect.Bool {
		return nil, &ExprError{Rule: r.Name, Key: key, Line: 1, Column: 1,
			Msg: fmt.Sprintf("a condition must yield bool, this one yields %s", got)}
	}
	return prog, nil
}

// compileValue compiles the value of a set or write action: any scalar.
func compileValue(r *Rule, key, text string) (*vm.Program, error) {
	prog, err := compileIn(r, key, text)
	if err != nil {
		return nil, err
	}
	if got := prog.Node().Type(); got != nil {
		switch k := got.Kind(); {
		case k == reflect.Interface, k == reflect.Bool, k == reflect.String, k == reflect.Float64, k == reflect.Float32,
			k >= reflect.Int && k <= reflect.Uint64:
		default:
			return nil, &ExprError{Rule: r.Name, Key: key, Line: 1, Column: 1,
				Msg: fmt.Sprintf("a value must be a number, a bool or a string, this one is %s", got)}
		}
	}
	return prog, nil
}

// deadbandClear builds the clear condition of a deadband: for `a > b` it
// is `!(a > b - d)`, for `a < b` `!(a < b + d)` (likewise >= and <=). When
// must be one numeric comparison.
func deadbandClear(r *Rule) (*vm.Program, error) {
	tree, err := parser.Parse(r.When)
	if err != nil {
		return nil, &ExprError{Rule: r.Name, Key: "when", Line: 1, Column: 1, Msg: err.Error()}
	}
	bin, ok := tree.Node.(*ast.BinaryNode)
	if !ok {
		return nil, fmt.Errorf("rule %q: a deadband needs a condition of the form a > b, a >= b, a < b or a <= b", r.Name)
	}
	d := strconv.FormatFloat(r.Hysteresis.Deadband, 'g', -1, 64)
	var text string
	switch bin.Operator {
	case ">", ">=":
		text = fmt.Sprintf("!((%s) %s (%s) - %s)", bin.Left, bin.Operator, bin.Right, d)
	case "<", "<=":
		text = fmt.Sprintf("!((%s) %s (%s) + %s)", bin.Left, bin.Operator, bin.Right, d)
	default:
		return nil, fmt.Errorf("rule %q: a deadband needs a condition of the form a > b, a >= b, a < b or a <= b, not %s", r.Name, bin.Operator)
	}
	prog, err := compileBool(r, "hysteresis.deadband", text)
	if err != nil {
		return nil, fmt.Errorf("rule %q: a deadband needs a numeric comparison (%s): %w", r.Name, text, err)
	}
	return prog, nil
}

// payloadString is an event payload as the sample's string value.
func payloadString(p any) (string, error) {
	switch x := p.(type) {
	case nil:
		return "", errors.New("is required")
	case string:
		return x, nil
	}
	b, err := json.Marshal(yamlToJSON(p))
	if err != nil {
		return "", fmt.Errorf("cannot be encoded as JSON: %w", err)
	}
	return string(b), nil
}

// yamlToJSON turns the map[any]any yaml.v3 may produce into
// map[string]any, so encoding/json can encode it.
func yamlToJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = yamlToJSON(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = yamlToJSON(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = yamlToJSON(e)
		}
		return out
	}
	return v
}

// convert turns an input value into the Go value of the declared type;
// false when it does not fit. Non-finite floats never fit: a NaN reading
// is a failed sensor, not a temperature.
func convert(v model.Value, typ string) (any, bool) {
	out, ok := model.ToGo(v, typ)
	if f, isFloat := out.(float64); ok && isFloat && (math.IsNaN(f) || math.IsInf(f, 0)) {
		return out, false
	}
	return out, ok
}

// toValue turns an expression's result into a Value; false for results
// that are not scalars or not finite.
func toValue(out any) (model.Value, bool) {
	switch x := out.(type) {
	case bool:
		return model.Bool(x), true
	case string:
		return model.String(x), true
	case int:
		return model.Int(int64(x)), true
	case int64:
		return model.Int(x), true
	case int32:
		return model.Int(int64(x)), true
	case uint:
		return model.Uint(uint64(x)), true
	case uint64:
		return model.Uint(x), true
	case float32:
		return toValue(float64(x))
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return model.Value{}, false
		}
		return model.Float(x), true
	}
	return model.Value{}, false
}
