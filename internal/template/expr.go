package template

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"

	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/internal/shell"
)

// varFunc is the function every strict variable reference is rewritten to, so
// that an undefined name fails when (and only when) it is evaluated. The `$`
// keeps it out of reach of playbook authors: expr identifiers typed by users
// cannot start with "$ferry".
const varFunc = "$ferry_var"

// UndefinedError is returned when an expression reads a variable that does not exist.
type UndefinedError struct{ Name string }

func (e *UndefinedError) Error() string { return fmt.Sprintf("undefined variable %q", e.Name) }

// EvalError is an expression that failed while being evaluated (not a syntax
// error: those are found at load time). It names the expression and where it
// is in the playbook.
type EvalError struct {
	Pos  diag.Pos
	Expr string // the expression's source, without {{ }}
	Name string // the undefined variable, when that is the problem
	Msg  string
	Hint string
	Err  error
}

func (e *EvalError) Error() string {
	var b strings.Builder
	if e.Pos.File != "" || e.Pos.Line > 0 {
		b.WriteString(e.Pos.String())
		b.WriteString(": ")
	}
	fmt.Fprintf(&b, "%s in %q", e.Msg, e.Expr)
	if e.Hint != "" {
		b.WriteString(" (")
		b.WriteString(e.Hint)
		b.WriteString(")")
	}
	return b.String()
}

func (e *EvalError) Unwrap() error { return e.Err }

// program is one compiled expression, shared by every place that uses the same source.
type program struct {
	src      string
	prog     *vm.Program
	refs     []Ref    // every variable the expression reads, in source order
	guards   []string // variables the expression being true says are defined
	optional bool     // the top node is `??` or nil: a nil result is intended
	// jinja: src was Jinja, translated (jinja.go); offsets inside the
	// translation do not match src, so positions fall on its start.
	jinja bool
}

// Ref is a top-level variable an expression reads.
type Ref struct {
	Name   string
	Offset int  // rune offset in the expression source
	Strict bool // false when read on the left of ?? (a default covers it)
	Pos    diag.Pos
}

var (
	cacheMu sync.RWMutex
	cache   = map[string]*program{}
)

// maxCache bounds the cache: a long-running worker renders many templates;
// when full, the cache starts over rather than growing without end.
const maxCache = 10000

// compileProgram compiles src (an expression, without {{ }}), once per source.
func compileProgram(src string) (*program, error) {
	cacheMu.RLock()
	p, ok := cache[src]
	cacheMu.RUnlock()
	if ok {
		return p, nil
	}
	p, err := buildProgram(src)
	if err != nil {
		return nil, err
	}
	cacheMu.Lock()
	if len(cache) >= maxCache {
		cache = map[string]*program{}
	}
	cache[src] = p
	cacheMu.Unlock()
	return p, nil
}

// cacheLen is for tests.
func cacheLen() int {
	cacheMu.RLock()
	defer cacheMu.RUnlock()
	return len(cache)
}

func buildProgram(src string) (*program, error) {
	if strings.TrimSpace(src) == "" {
		return nil, &file.Error{Message: "empty expression"}
	}
	code, jinja := src, false
	translated, jerr := translateJinja(src)
	if jerr == nil {
		code, jinja = translated, true
	}
	tree, err := parser.Parse(code)
	if err != nil {
		var je *jinjaError
		if errors.As(jerr, &je) && je.hint != "" {
			return nil, je // unknown filter or test: the Jinja reading is the one meant
		}
		return nil, err
	}
	if err := checkCalls(tree.Node); err != nil {
		var je *jinjaError
		if errors.As(jerr, &je) && je.hint != "" {
			return nil, je
		}
		if jinja {
			var uf *unknownFuncError
			if errors.As(err, &uf) {
				uf.offset = sourceOffsets(src)(uf.name)
			}
		}
		return nil, err
	}
	p := &program{src: src, jinja: jinja}
	a := &analyzer{}
	a.walk(tree.Node, nil, false)
	p.refs = a.refs
	// a true condition proves what it guards, as in the analyzer's reading
	for _, g := range guardNames(tree.Node, true) {
		if !strings.HasPrefix(g, "$") { // ferry's own names, not variables
			p.guards = append(p.guards, g)
		}
	}
	if jinja {
		at := sourceOffsets(src)
		for i := range p.refs {
			p.refs[i].Offset = at(p.refs[i].Name)
		}
	}
	switch n := tree.Node.(type) {
	case *ast.BinaryNode:
		p.optional = n.Operator == "??"
	case *ast.NilNode:
		p.optional = true
	}
	opts := append([]expr.Option{
		expr.Env(map[string]any{}),
		expr.AllowUndefinedVariables(),
		expr.Patch(&marker{}),
		expr.Patch(&rewriter{}),
		expr.Function(varFunc, lookupVar),
		expr.MaxNodes(5000),
	}, functions...)
	prog, err := expr.Compile(code, opts...)
	if err != nil {
		if jinja {
			var fe *file.Error
			if errors.As(err, &fe) {
				fe.From = 0
			}
		}
		return nil, err
	}
	p.prog = prog
	return p, nil
}

// funcNames are ferry's functions (see functions).
var funcNames = []string{"basename", "dirname", "to_json", "from_json", "quote", "default"}

// unknownFuncError is a call of a function that does not exist.
type unknownFuncError struct {
	name   string
	offset int
}

func (e *unknownFuncError) Error() string { return fmt.Sprintf("unknown function %s()", e.name) }

// checkCalls rejects calls of unknown functions at compile time (expr would
// only fail when the call runs, with "cannot call nil").
func checkCalls(root ast.Node) error {
	v := &callChecker{}
	ast.Walk(&root, v)
	return v.err
}

type callChecker struct{ err error }

func (c *callChecker) Visit(node *ast.Node) {
	call, ok := (*node).(*ast.CallNode)
	if !ok || c.err != nil {
		return
	}
	id, ok := call.Callee.(*ast.IdentifierNode)
	if !ok {
		return
	}
	if c.err = checkLookup(id.Value, call.Arguments); c.err != nil {
		return
	}
	for _, f := range funcNames {
		if f == id.Value {
			return
		}
	}
	c.err = &unknownFuncError{name: id.Value, offset: id.Location().From}
}

// lookupVar is $ferry_var($env, "name"): the value, or an UndefinedError.
func lookupVar(params ...any) (any, error) {
	if len(params) != 2 {
		return nil, errors.New("internal: bad variable lookup")
	}
	name, _ := params[1].(string)
	env, _ := params[0].(map[string]any)
	v, ok := env[name]
	if !ok {
		return nil, &UndefinedError{Name: name}
	}
	return v, nil
}

// analyzer collects the top-level variables an expression reads, with scope:
// names bound by `let` are not variables of the playbook.
type analyzer struct{ refs []Ref }

func (a *analyzer) walk(n ast.Node, bound []string, optional bool) {
	if n == nil {
		return
	}
	switch n := n.(type) {
	case *ast.IdentifierNode:
		if strings.HasPrefix(n.Value, "$") {
			return
		}
		for _, b := range bound {
			if b == n.Value {
				return
			}
		}
		a.refs = append(a.refs, Ref{Name: n.Value, Offset: n.Location().From, Strict: !optional})
	case *ast.BinaryNode:
		switch n.Operator {
		case "??":
			a.walk(n.Left, bound, true)
			a.walk(n.Right, bound, optional)
		case "and", "&&":
			// `x is defined and x.y`: the right side is read only with x
			a.walk(n.Left, bound, false)
			a.walk(n.Right, append(append([]string(nil), bound...), guardNames(n.Left, true)...), false)
		case "or", "||":
			// `x is not defined or not x`: the right side only with x
			a.walk(n.Left, bound, false)
			a.walk(n.Right, append(append([]string(nil), bound...), guardNames(n.Left, false)...), false)
		default:
			a.walk(n.Left, bound, false)
			a.walk(n.Right, bound, false)
		}
	case *ast.ChainNode:
		a.walk(n.Node, bound, optional)
	case *ast.MemberNode:
		a.walk(n.Node, bound, optional)
		a.walk(n.Property, bound, false)
	case *ast.SliceNode:
		a.walk(n.Node, bound, false)
		a.walk(n.From, bound, false)
		a.walk(n.To, bound, false)
	case *ast.CallNode:
		if _, ok := n.Callee.(*ast.IdentifierNode); !ok {
			a.walk(n.Callee, bound, false)
		}
		isDefault, fallback := false, false
		if id, ok := n.Callee.(*ast.IdentifierNode); ok && isLenientCall(id.Value, len(n.Arguments)) {
			isDefault = true
			// default's fallback is read only when the value is missing, and
			// `a | default(b) | default('z')` is 'z' with a and b undefined
			fallback = isDefaultCall(id.Value)
		}
		for i, arg := range n.Arguments {
			a.walk(arg, bound, isDefault && (i == 0 || fallback))
		}
	case *ast.BuiltinNode:
		for _, arg := range n.Arguments {
			a.walk(arg, bound, false)
		}
	case *ast.PredicateNode:
		a.walk(n.Node, bound, false)
	case *ast.UnaryNode:
		a.walk(n.Node, bound, false)
	case *ast.ConditionalNode:
		// `x if x is defined else y`: each branch is read only when the
		// condition says so
		a.walk(n.Cond, bound, false)
		a.walk(n.Exp1, append(append([]string(nil), bound...), guardNames(n.Cond, true)...), false)
		a.walk(n.Exp2, append(append([]string(nil), bound...), guardNames(n.Cond, false)...), false)
	case *ast.VariableDeclaratorNode:
		a.walk(n.Value, bound, false)
		a.walk(n.Expr, append(append([]string(nil), bound...), n.Name), false)
	case *ast.SequenceNode:
		for _, x := range n.Nodes {
			a.walk(x, bound, false)
		}
	case *ast.ArrayNode:
		for _, x := range n.Nodes {
			a.walk(x, bound, false)
		}
	case *ast.MapNode:
		for _, x := range n.Pairs {
			a.walk(x, bound, false)
		}
	case *ast.PairNode:
		a.walk(n.Key, bound, false)
		a.walk(n.Value, bound, false)
	}
}

// guardNames are the variables a condition being true (when) or false
// (!when) proves defined: `x is defined` (x.y's root too), `x is not
// defined` negated, and the parts of an `and` (true) or an `or` (false).
func guardNames(n ast.Node, when bool) []string {
	switch n := n.(type) {
	case *ast.CallNode:
		id, ok := n.Callee.(*ast.IdentifierNode)
		if !ok || len(n.Arguments) != 1 {
			return nil
		}
		if id.Value == "$j_truthy" { // Jinja's truth of a condition
			return guardNames(n.Arguments[0], when)
		}
		if (id.Value == "$j_defined" && when) || (id.Value == "$j_undefined" && !when) {
			if root := chainRoot(n.Arguments[0]); root != "" {
				return []string{root}
			}
		}
	case *ast.UnaryNode:
		if n.Operator == "not" || n.Operator == "!" {
			return guardNames(n.Node, !when)
		}
	case *ast.BinaryNode:
		if (when && (n.Operator == "and" || n.Operator == "&&")) || (!when && (n.Operator == "or" || n.Operator == "||")) {
			return append(guardNames(n.Left, when), guardNames(n.Right, when)...)
		}
	case *ast.ConditionalNode:
		// Jinja's `A and B` is (!truthy(A) ? A : B), `A or B` (truthy(A) ? A : B)
		cond, neg := n.Cond, false
		if u, ok := cond.(*ast.UnaryNode); ok && (u.Operator == "!" || u.Operator == "not") {
			cond, neg = u.Node, true
		}
		c, ok := cond.(*ast.CallNode)
		if !ok || len(c.Arguments) != 1 || c.Arguments[0].String() != n.Exp1.String() {
			return nil
		}
		if id, ok := c.Callee.(*ast.IdentifierNode); !ok || id.Value != "$j_truthy" {
			return nil
		}
		if neg == when { // and, true / or, false: both sides hold
			return append(guardNames(n.Exp1, when), guardNames(n.Exp2, when)...)
		}
	}
	return nil
}

// chainRoot is the variable a member chain starts from (a in a.b[0].c).
func chainRoot(n ast.Node) string {
	for {
		switch x := n.(type) {
		case *ast.IdentifierNode:
			return x.Value
		case *ast.MemberNode:
			n = x.Node
		case *ast.ChainNode:
			n = x.Node
		default:
			return ""
		}
	}
}

// marker runs first (patchers walk children before parents). On each `??` it
// makes the member chain on its left nil-safe (`a.b.c ?? d` is d when a, a.b
// or a.b.c is missing) and tags the chain's root so that rewriter leaves it
// lenient; it tags let-bound names and function names as not variables.
type marker struct{}

func (m *marker) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.BinaryNode:
		if n.Operator == "??" {
			lenient(&n.Left)
		}
	case *ast.VariableDeclaratorNode:
		ast.Walk(&n.Expr, &bindVisitor{name: n.Name})
	case *ast.CallNode:
		if id, ok := n.Callee.(*ast.IdentifierNode); ok {
			if isLenientCall(id.Value, len(n.Arguments)) {
				lenient(&n.Arguments[0])
				if isDefaultCall(id.Value) {
					for i := range n.Arguments[1:] {
						lenient(&n.Arguments[1+i])
					}
				}
			}
			id.Value = boundPrefix + id.Value
		}
	}
}

// isDefaultCall: default(x, d) or Jinja's `| default(d)`, whose fallback d
// is read only when x is missing.
func isDefaultCall(name string) bool {
	name = strings.TrimPrefix(name, boundPrefix)
	return name == "default" || name == "$j_default" || name == "$j_d"
}

// isLenientCall: the call's first argument may be undefined (default(x, d),
// and Jinja's `| default`, `is defined`, `| mandatory`).
func isLenientCall(name string, args int) bool {
	if name == "default" {
		return args == 2
	}
	return args >= 1 && lenientFuncs[name]
}

// lenient makes the value at n nil-safe: a chain's members become optional
// and its root may be undefined. In `a ?? b ?? c`, b is lenient too.
func lenient(n *ast.Node) {
	switch x := (*n).(type) {
	case *ast.ChainNode:
		lenientChain(x.Node)
	case *ast.MemberNode:
		lenientChain(x)
		chain := &ast.ChainNode{Node: x}
		chain.SetLocation(x.Location())
		*n = chain
	case *ast.IdentifierNode:
		lenientChain(x)
	case *ast.BinaryNode:
		if x.Operator == "??" {
			lenient(&x.Right)
		}
	case *ast.CallNode:
		// default(default(a, b), 'z'): the inner default's values are lenient too
		if id, ok := x.Callee.(*ast.IdentifierNode); ok && isDefaultCall(id.Value) {
			for i := range x.Arguments {
				lenient(&x.Arguments[i])
			}
		}
	}
}

func lenientChain(n ast.Node) {
	for {
		switch x := n.(type) {
		case *ast.MemberNode:
			x.Optional = true
			n = x.Node
		case *ast.ChainNode:
			n = x.Node
		case *ast.IdentifierNode:
			if !strings.HasPrefix(x.Value, "$") {
				x.Value = lenientPrefix + x.Value
			}
			return
		default:
			return
		}
	}
}

// Tags on identifiers between marker and rewriter (users cannot type `$x:`).
const (
	lenientPrefix = "$lenient:"
	boundPrefix   = "$bound:"
)

type bindVisitor struct{ name string }

func (b *bindVisitor) Visit(node *ast.Node) {
	if id, ok := (*node).(*ast.IdentifierNode); ok && id.Value == b.name {
		id.Value = boundPrefix + id.Value
	}
}

// rewriter turns each strict variable read `x` into `$ferry_var($env, "x")`.
type rewriter struct{}

func (r *rewriter) Visit(node *ast.Node) {
	if c, ok := (*node).(*ast.CallNode); ok {
		envArg(c)
		return
	}
	n, ok := (*node).(*ast.IdentifierNode)
	if !ok {
		return
	}
	switch {
	case strings.HasPrefix(n.Value, lenientPrefix):
		n.Value = strings.TrimPrefix(n.Value, lenientPrefix)
	case strings.HasPrefix(n.Value, boundPrefix):
		n.Value = strings.TrimPrefix(n.Value, boundPrefix)
	case strings.HasPrefix(n.Value, "$"):
	default:
		env := &ast.IdentifierNode{Value: "$env"}
		name := &ast.StringNode{Value: n.Value}
		callee := &ast.IdentifierNode{Value: varFunc}
		call := &ast.CallNode{Callee: callee, Arguments: []ast.Node{env, name}}
		loc := n.Location()
		for _, x := range []ast.Node{env, name, callee} {
			x.SetLocation(loc)
		}
		ast.Patch(node, call)
	}
}

// functions are ferry's additions to expr's builtins; see the package doc.
var functions = []expr.Option{
	expr.Function("basename", func(p ...any) (any, error) { return path.Base(fmt.Sprint(p[0])), nil }, new(func(string) string)),
	expr.Function("dirname", func(p ...any) (any, error) { return path.Dir(fmt.Sprint(p[0])), nil }, new(func(string) string)),
	expr.Function("to_json", func(p ...any) (any, error) {
		b, err := json.Marshal(p[0])
		return string(b), err
	}),
	expr.Function("from_json", func(p ...any) (any, error) {
		s, ok := p[0].(string)
		if !ok {
			return nil, fmt.Errorf("from_json: want a string, got %T", p[0])
		}
		var v any
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			return nil, fmt.Errorf("from_json: %w", err)
		}
		return v, nil
	}, new(func(string) any)),
	expr.Function("quote", func(p ...any) (any, error) { return shell.Quote(Text(p[0])), nil }),
	expr.Function("default", func(p ...any) (any, error) {
		if p[0] == nil {
			return p[1], nil
		}
		return p[0], nil
	}, new(func(any, any) any)),
}

// Text renders a value for string interpolation: strings as they are, numbers
// without exponent noise, lists and maps as JSON.
func Text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32)
	case time.Duration:
		return x.String()
	case fmt.Stringer:
		return x.String()
	case []any, map[string]any, []string, map[string]string:
		b, err := json.Marshal(x)
		if err != nil {
			return fmt.Sprint(x)
		}
		return string(b)
	default:
		return fmt.Sprint(x)
	}
}

// run evaluates p against vars; errors come back as *EvalError at pos (the
// position of the expression's first character).
func (p *program) run(vars map[string]any, pos func(offset int) diag.Pos) (any, error) {
	if vars == nil {
		vars = map[string]any{}
	}
	out, err := expr.Run(p.prog, vars)
	if err != nil {
		return nil, p.evalError(err, vars, pos)
	}
	return out, nil
}

func (p *program) evalError(err error, vars map[string]any, pos func(int) diag.Pos) *EvalError {
	e := &EvalError{Expr: strings.TrimSpace(p.src), Err: err, Pos: pos(0)}
	var fe *file.Error
	if errors.As(err, &fe) {
		e.Msg = fe.Message
		if !p.jinja {
			e.Pos = pos(fe.From)
		}
	} else {
		e.Msg = err.Error()
	}
	var ue *UndefinedError
	if errors.As(err, &ue) {
		if p.jinja {
			e.Pos = pos(sourceOffsets(p.src)(ue.Name))
		}
		e.Name = ue.Name
		e.Msg = ue.Error()
		e.Err = ue
		names := make([]string, 0, len(vars))
		for k := range vars {
			names = append(names, k)
		}
		sort.Strings(names)
		e.Hint = diag.Suggest(ue.Name, names)
		if e.Hint == "" {
			e.Hint = fmt.Sprintf("define it, or give a default: %s | default(...)", ue.Name)
		}
	}
	return e
}

// Expr is a compiled bare expression (`when`, `until`, `changed_when`,
// `failed_when`, assert's `that`). It is safe for concurrent use.
type Expr struct {
	Src string
	Pos diag.Pos // where the expression starts in the playbook
	p   *program
	// colOf maps a rune offset in Src to a column, when Src sits on one line of the file.
	posAt func(offset int) diag.Pos
}

// CompileExpr compiles a bare expression found at pos. Syntax errors come back
// as *diag.Error pointing into the expression.
func CompileExpr(s string, pos diag.Pos) (*Expr, error) {
	return CompileExprAt(s, pos, nil)
}

// CompileExprAt is CompileExpr with a map from rune offsets in s to positions.
func CompileExprAt(s string, pos diag.Pos, posAt func(int) diag.Pos) (*Expr, error) {
	if posAt == nil {
		posAt = func(int) diag.Pos { return pos }
	}
	p, err := compileProgram(s)
	if err != nil {
		return nil, syntaxError(err, s, posAt)
	}
	return &Expr{Src: s, Pos: pos, p: p, posAt: posAt}, nil
}

func syntaxError(err error, src string, posAt func(int) diag.Pos) *diag.Error {
	var uf *unknownFuncError
	if errors.As(err, &uf) {
		hint := diag.Suggest(uf.name, append(append([]string(nil), funcNames...), builtin.Names...))
		if hint == "" {
			hint = "see https://expr-lang.org/docs/language-definition for the functions"
		}
		return &diag.Error{Pos: posAt(uf.offset), Msg: fmt.Sprintf("expression %q: %v", strings.TrimSpace(src), uf), Hint: hint}
	}
	var je *jinjaError
	if errors.As(err, &je) {
		return &diag.Error{Pos: posAt(je.offset), Msg: fmt.Sprintf("expression %q: %s", strings.TrimSpace(src), je.msg), Hint: je.hint}
	}
	var fe *file.Error
	if errors.As(err, &fe) {
		return &diag.Error{Pos: posAt(fe.From), Msg: fmt.Sprintf("expression %q: %s", strings.TrimSpace(src), fe.Message),
			Hint: "expressions use expr syntax: https://expr-lang.org/docs/language-definition"}
	}
	return &diag.Error{Pos: posAt(0), Msg: fmt.Sprintf("expression %q: %v", strings.TrimSpace(src), err)}
}

// Eval evaluates the expression against vars.
func (e *Expr) Eval(vars map[string]any) (any, error) {
	return e.p.run(vars, e.posAt)
}

// Bool evaluates the expression and requires true or false.
func (e *Expr) Bool(vars map[string]any) (bool, error) {
	v, err := e.Eval(vars)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, &EvalError{Pos: e.Pos, Expr: strings.TrimSpace(e.Src),
			Msg:  fmt.Sprintf("want true or false, got %s", Describe(v)),
			Hint: "compare explicitly, e.g. x == \"yes\" or len(x) > 0"}
	}
	return b, nil
}

// Refs lists the top-level variables the expression reads, and whether each is
// strict (an error when undefined) or covered by `??`.
func (e *Expr) Refs() []Ref {
	out := make([]Ref, len(e.p.refs))
	for i, r := range e.p.refs {
		r.Pos = e.posAt(r.Offset)
		out[i] = r
	}
	return out
}

// DefinedGuards lists the variables that the expression, when true, says
// are defined: `x is defined`, `x is not undefined`, and those of both sides
// of `and`. A task whose `when:` holds one may read the variable.
func (e *Expr) DefinedGuards() []string { return e.p.guards }

// Describe names a value for an error message: its Go type and its text, cut at 40 bytes.
func Describe(v any) string {
	if v == nil {
		return "nil"
	}
	s := Text(v)
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return fmt.Sprintf("%T %s", v, s)
}

// Template is a compiled string that may hold `{{ expr }}` parts. It is safe
// for concurrent use.
type Template struct {
	Src   string
	Pos   diag.Pos
	parts []part
	// single: the string is exactly one {{ }}, so Render returns the value's own type.
	single bool
}

type part struct {
	text   string
	p      *program
	offset int // rune offset of the expression source in the template
	posAt  func(int) diag.Pos
}

// HasTemplate reports whether s holds a `{{`, i.e. needs rendering.
func HasTemplate(s string) bool { return strings.Contains(s, "{{") || HasStatement(s) }

// CompileTemplate compiles s, found at pos. Syntax errors come back as
// *diag.Error at the `{{` of the bad part (or at the bad token when it can be placed).
func CompileTemplate(s string, pos diag.Pos) (*Template, error) {
	return CompileTemplateAt(s, pos, nil)
}

// CompileTemplateAt is CompileTemplate with a map from rune offsets in s to positions.
func CompileTemplateAt(s string, pos diag.Pos, posAt func(int) diag.Pos) (*Template, error) {
	if posAt == nil {
		posAt = func(int) diag.Pos { return pos }
	}
	t := &Template{Src: s, Pos: pos}
	if HasStatement(s) {
		// offsets in the rewritten expression do not map back: errors
		// point at the string
		x, err := translateStatements(s)
		if err != nil {
			return nil, &diag.Error{Pos: pos, Msg: err.Error(), Hint: "Jinja statements in a playbook string: {% if %}/{% elif %}/{% else %}/{% endif %} and {% raw %}; {% for %} and the others belong in a template file"}
		}
		s = x
		posAt = func(int) diag.Pos { return pos }
	}
	segs, err := splitTemplate(s)
	if err != nil {
		var se *segmentError
		if errors.As(err, &se) {
			return nil, &diag.Error{Pos: posAt(se.offset), Msg: se.msg, Hint: se.hint}
		}
		return nil, err
	}
	var errs diag.List
	for _, sg := range segs {
		if !sg.expr {
			t.parts = append(t.parts, part{text: sg.text})
			continue
		}
		off := sg.offset
		at := func(o int) diag.Pos { return posAt(off + o) }
		p, err := compileProgram(sg.text)
		if err != nil {
			errs = append(errs, syntaxError(err, sg.text, at))
			continue
		}
		t.parts = append(t.parts, part{p: p, offset: off, posAt: at})
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	if len(errs) > 1 {
		return nil, errs
	}
	t.single = len(t.parts) == 1 && t.parts[0].p != nil && len(segs) == 1 && segs[0].whole
	return t, nil
}

// Render evaluates the template. A template that is exactly one `{{ expr }}`
// returns the value with its type (a list stays a list); otherwise the parts
// are joined as text. A nil result is an error unless the expression asked for
// it with `??` (a missing map key is nil in expr, and "" in a command line is
// rarely what was meant).
func (t *Template) Render(vars map[string]any) (any, error) {
	if t.single {
		pt := t.parts[0]
		v, err := pt.p.run(vars, pt.posAt)
		if err != nil {
			return nil, err
		}
		if v == nil && !pt.p.optional {
			return nil, nilError(pt)
		}
		return v, nil
	}
	var b strings.Builder
	for _, pt := range t.parts {
		if pt.p == nil {
			b.WriteString(pt.text)
			continue
		}
		v, err := pt.p.run(vars, pt.posAt)
		if err != nil {
			return nil, err
		}
		if v == nil && !pt.p.optional {
			return nil, nilError(pt)
		}
		b.WriteString(Text(v))
	}
	return b.String(), nil
}

// RenderString renders the template and formats the result as text.
func (t *Template) RenderString(vars map[string]any) (string, error) {
	v, err := t.Render(vars)
	if err != nil {
		return "", err
	}
	return Text(v), nil
}

func (t *Template) Refs() []Ref {
	var out []Ref
	for _, pt := range t.parts {
		if pt.p != nil {
			for _, r := range pt.p.refs {
				r.Pos = pt.posAt(r.Offset)
				r.Offset += pt.offset
				out = append(out, r)
			}
		}
	}
	return out
}

func nilError(pt part) *EvalError {
	src := strings.TrimSpace(pt.p.src)
	return &EvalError{Pos: pt.posAt(0), Expr: src, Msg: "value is nil (a missing key?)",
		Hint: fmt.Sprintf("give a default: %s | default('')", src)}
}

type segment struct {
	text   string
	expr   bool
	offset int  // rune offset of text in the template
	whole  bool // the template is exactly this one {{ }}
}

type segmentError struct {
	offset int
	msg    string
	hint   string
}

func (e *segmentError) Error() string { return e.msg }

// splitTemplate cuts s into text and {{ expression }} segments. The end of an
// expression is the first `}}` outside string literals and braces, so
// `{{ {a: {b: 1}} }}` and `{{ "}}" }}` work. It scans bytes (the delimiters
// are ASCII) so text is kept byte for byte; offsets are in runes, as columns are.
func splitTemplate(s string) ([]segment, error) {
	runeOff := func(i int) int { return utf8.RuneCountInString(s[:i]) }
	var segs []segment
	textStart := 0
	for i := 0; i+1 < len(s); i++ {
		if s[i] != '{' || s[i+1] != '{' {
			continue
		}
		open := i
		j, err := scanExpr(s, i+2)
		if err != nil {
			return nil, &segmentError{offset: runeOff(open), msg: err.Error(), hint: "close it with }}, or write a literal {{ as {{ '{{' }}"}
		}
		if open > textStart {
			segs = append(segs, segment{text: s[textStart:open], offset: runeOff(textStart)})
		}
		body := s[open+2 : j]
		if strings.TrimSpace(body) == "" {
			return nil, &segmentError{offset: runeOff(open), msg: "empty {{ }}", hint: "put an expression inside, e.g. {{ version }}"}
		}
		segs = append(segs, segment{text: body, expr: true, offset: runeOff(open + 2)})
		i = j + 1
		textStart = j + 2
	}
	if textStart < len(s) {
		segs = append(segs, segment{text: s[textStart:], offset: runeOff(textStart)})
	}
	if len(segs) == 1 && segs[0].expr && strings.HasPrefix(s, "{{") && strings.HasSuffix(s, "}}") {
		segs[0].whole = true
	}
	return segs, nil
}

// scanExpr returns the index of the `}}` that closes an expression starting at i.
func scanExpr(s string, i int) (int, error) {
	depth := 0
	for ; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\'', '`':
			k := i + 1
			for ; k < len(s) && s[k] != c; k++ {
				if s[k] == '\\' && c != '`' {
					k++
				}
			}
			if k >= len(s) {
				return 0, errors.New("unterminated string in {{ }}")
			}
			i = k
		case '{':
			depth++
		case '}':
			if depth == 0 {
				if i+1 < len(s) && s[i+1] == '}' {
					return i, nil
				}
				return 0, errors.New("unbalanced } in {{ }}")
			}
			depth--
		}
	}
	return 0, errors.New("unclosed {{")
}

// RenderValue renders every string with `{{ }}` inside v (maps and lists are
// walked; other values are returned as they are). Templates are compiled once
// per distinct source and cached. Errors are *EvalError (or *diag.Error for a
// syntax error, which Load reports first).
func RenderValue(v any, vars map[string]any) (any, error) {
	return RenderValueAt(v, vars, "", nil)
}

// RenderValueAt walks v; at names where a string sits ("json.version") so
// that posOf can say where it came from in the playbook.
func RenderValueAt(v any, vars map[string]any, at string, posOf func(path string) (diag.Pos, func(int) diag.Pos)) (any, error) {
	switch x := v.(type) {
	case string:
		if !HasTemplate(x) {
			return x, nil
		}
		var pos diag.Pos
		var posAt func(int) diag.Pos
		if posOf != nil {
			pos, posAt = posOf(at)
		}
		t, err := CompileTemplateAt(x, pos, posAt)
		if err != nil {
			return nil, err
		}
		return t.Render(vars)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			r, err := RenderValueAt(e, vars, JoinPath(at, k), posOf)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			r, err := RenderValueAt(e, vars, fmt.Sprintf("%s[%d]", at, i), posOf)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	default:
		return v, nil
	}
}

// JoinPath names key k inside the value at path at ("vars" + "port" is "vars.port"),
// as RenderValueAt names the places it asks positions for.
func JoinPath(at, k string) string {
	if at == "" {
		return k
	}
	return at + "." + k
}
