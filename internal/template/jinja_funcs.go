package template

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/builtin"

	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/internal/shell"
	"github.com/ferrydeploy/ferry/internal/value"
	"gopkg.in/yaml.v3"
)

// kwargs are a Jinja call's keyword arguments (`map(attribute='name')`).
type kwargs map[string]any

// jfunc is one filter or test: the value, the positional arguments, the keywords.
type jfunc func(args []any, kw kwargs) (any, error)

// jinjaFilters maps a Jinja filter name to the expr function it becomes.
var jinjaFilters = map[string]string{}

// jinjaTests maps a Jinja test name to the expr function it becomes.
var jinjaTests = map[string]string{}

// jinjaGlobals are Jinja's global functions (`range(3)`, `lookup('env', 'HOME')`).
var jinjaGlobals = map[string]string{"range": "$j_range", "lookup": "$j_lookup", "query": "$j_query", "q": "$j_query", "dict": "$j_dict"}

var filterImpls = map[string]jfunc{}
var testImpls = map[string]jfunc{}

// lenientFuncs take an argument that may be undefined (a `default` covers it).
var lenientFuncs = map[string]bool{"default": true, "$j_default": true, "$j_defined": true, "$j_undefined": true,
	"$j_mandatory": true, "$j_none": true}

func init() {
	filterImpls = map[string]jfunc{
		"default": fDefault, "d": fDefault, "mandatory": fMandatory,
		"bool": one(func(v any) (any, error) { return toBool(v), nil }),
		"int":  fInt, "float": fFloat,
		"string": one(func(v any) (any, error) { return Text(v), nil }),
		"lower":  str1(strings.ToLower), "upper": str1(strings.ToUpper), "trim": str1(strings.TrimSpace),
		"capitalize": str1(func(s string) string {
			if s == "" {
				return s
			}
			return strings.ToUpper(s[:1]) + strings.ToLower(s[1:])
		}),
		"title":  str1(title),
		"length": fLength, "count": fLength,
		"join": fJoin, "split": fSplit, "replace": fReplace,
		"regex_replace": fRegexReplace, "regex_search": fRegexSearch, "regex_findall": fRegexFindall,
		"regex_escape": str1(regexp.QuoteMeta),
		"first":        fFirst, "last": fLast, "unique": fUnique, "sort": fSort, "reverse": fReverse,
		"list": fList, "flatten": fFlatten,
		"to_json": fToJSON, "to_nice_json": fToNiceJSON, "from_json": fFromJSON,
		"to_yaml": fToYAML, "to_nice_yaml": fToYAML, "from_yaml": fFromYAML,
		"basename": str1(path.Base), "dirname": str1(path.Dir),
		"b64encode": str1(func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }),
		"b64decode": fB64decode,
		"quote":     str1(shell.Quote),
		"ternary":   fTernary, "combine": fCombine, "dict2items": fDict2items, "items2dict": fItems2dict,
		"map": fMap, "select": fSelect(false), "reject": fSelect(true),
		"selectattr": fSelectAttr(false), "rejectattr": fSelectAttr(true),
		"min": fMinMax(-1), "max": fMinMax(1), "sum": fSum, "abs": fAbs, "round": fRound,
		"difference": fSetOp("difference"), "intersect": fSetOp("intersect"), "union": fSetOp("union"),
		"zip": fZip, "version_compare": tVersion,
		// tests used as filters, as old playbooks do (`when: result|changed`)
		"changed": resultTest("changed", true), "failed": resultTest("failed", true),
		"success": resultTest("failed", false), "succeeded": resultTest("failed", false), "skipped": resultTest("skipped", true),
	}
	testImpls = map[string]jfunc{
		"defined":   one(func(v any) (any, error) { return v != nil, nil }),
		"undefined": one(func(v any) (any, error) { return v == nil, nil }),
		"none":      one(func(v any) (any, error) { return v == nil, nil }),
		"failed":    resultTest("failed", true), "failure": resultTest("failed", true),
		"succeeded": resultTest("failed", false), "success": resultTest("failed", false), "successful": resultTest("failed", false),
		"changed": resultTest("changed", true), "change": resultTest("changed", true),
		"skipped": resultTest("skipped", true), "skip": resultTest("skipped", true),
		"match": tRegex("match"), "search": tRegex("search"), "regex": tRegex("search"),
		"version": tVersion, "version_compare": tVersion,
		"string":  kindTest(func(v any) bool { _, ok := v.(string); return ok }),
		"number":  kindTest(func(v any) bool { _, ok := toNumber(v); return ok && !isString(v) }),
		"integer": kindTest(func(v any) bool { k := reflect.ValueOf(v).Kind(); return k >= reflect.Int && k <= reflect.Uint64 }),
		"float":   kindTest(func(v any) bool { _, ok := v.(float64); return ok }),
		"boolean": kindTest(func(v any) bool { _, ok := v.(bool); return ok }),
		"mapping": kindTest(func(v any) bool { return reflect.ValueOf(v).Kind() == reflect.Map }),
		"sequence": kindTest(func(v any) bool {
			k := reflect.ValueOf(v).Kind()
			return k == reflect.Slice || k == reflect.String
		}),
		"iterable": kindTest(func(v any) bool {
			k := reflect.ValueOf(v).Kind()
			return k == reflect.Slice || k == reflect.Map || k == reflect.String
		}),
		"true":   kindTest(func(v any) bool { return v == true }),
		"false":  kindTest(func(v any) bool { return v == false }),
		"truthy": kindTest(truthy), "falsy": kindTest(func(v any) bool { return !truthy(v) }),
		"equalto": tEq, "eq": tEq, "sameas": tEq,
		"in":       func(a []any, _ kwargs) (any, error) { return inOp(arg(a, 0), arg(a, 1)), nil },
		"contains": func(a []any, _ kwargs) (any, error) { return inOp(arg(a, 1), arg(a, 0)), nil },
		"lower":    kindTest(func(v any) bool { s, ok := v.(string); return ok && s == strings.ToLower(s) }),
		"upper":    kindTest(func(v any) bool { s, ok := v.(string); return ok && s == strings.ToUpper(s) }),
		"even":     kindTest(func(v any) bool { n, ok := toNumber(v); return ok && math.Mod(n, 2) == 0 }),
		"odd":      kindTest(func(v any) bool { n, ok := toNumber(v); return ok && math.Abs(math.Mod(n, 2)) == 1 }),
		"divisibleby": func(a []any, _ kwargs) (any, error) {
			x, _ := toNumber(arg(a, 0))
			y, _ := toNumber(arg(a, 1))
			return y != 0 && math.Mod(x, y) == 0, nil
		},
		"gt": cmpTest(">"), "ge": cmpTest(">="), "lt": cmpTest("<"), "le": cmpTest("<="), "ne": cmpTest("!="),
	}
	for name := range filterImpls {
		jinjaFilters[name] = "$j_" + name
	}
	for name := range testImpls {
		jinjaTests[name] = "$j_is_" + name
	}
	jinjaTests["defined"], jinjaTests["undefined"], jinjaTests["none"] = "$j_defined", "$j_undefined", "$j_none"
	add := func(name string, fn func(params ...any) (any, error)) {
		functions = append(functions, expr.Function(name, fn))
		funcNames = append(funcNames, name)
	}
	for name, impl := range filterImpls {
		add("$j_"+name, wrap(impl))
	}
	for name, impl := range testImpls {
		add("$j_is_"+name, wrap(impl))
	}
	add("$j_defined", wrap(testImpls["defined"]))
	add("$j_undefined", wrap(testImpls["undefined"]))
	add("$j_none", wrap(testImpls["none"]))
	add("$j_truthy", func(p ...any) (any, error) { return truthy(arg(p, 0)), nil })
	add("$j_in", func(p ...any) (any, error) { return inOp(arg(p, 0), arg(p, 1)), nil })
	add("$j_cat", func(p ...any) (any, error) { return Text(arg(p, 0)) + Text(arg(p, 1)), nil })
	add("$j_add", func(p ...any) (any, error) { return jAdd(arg(p, 0), arg(p, 1)) })
	add("$j_mod", func(p ...any) (any, error) { return jMod(arg(p, 0), arg(p, 1)) })
	add("$j_floordiv", func(p ...any) (any, error) {
		x, ok1 := toNumber(arg(p, 0))
		y, ok2 := toNumber(arg(p, 1))
		if !ok1 || !ok2 || y == 0 {
			return nil, errors.New("//: want two numbers, the second not 0")
		}
		return numResult(math.Floor(x / y)), nil
	})
	add("$j_kw", func(p ...any) (any, error) {
		m, _ := arg(p, 0).(map[string]any)
		return kwargs(m), nil
	})
	add("$j_method", jMethod)
	add("$j_range", wrap(jRange))
	add("$j_lookup", wrap(jLookup))
	add("$j_query", wrap(func(a []any, kw kwargs) (any, error) {
		v, err := jLookup(a, kw)
		if err != nil {
			return nil, err
		}
		if l, ok := v.([]any); ok {
			return l, nil
		}
		return []any{v}, nil
	}))
	add("$j_dict", func(p ...any) (any, error) {
		out := map[string]any{}
		for _, x := range p {
			if kw, ok := x.(kwargs); ok {
				for k, v := range kw {
					out[k] = v
				}
			} else if l, ok := x.([]any); ok {
				for _, pair := range l {
					if pl, ok := pair.([]any); ok && len(pl) == 2 {
						out[Text(pl[0])] = pl[1]
					}
				}
			}
		}
		return out, nil
	})
}

func isExprBuiltin(name string) bool {
	for _, b := range builtin.Names {
		if b == name {
			return true
		}
	}
	return false
}

func suggestFilter(name string) string {
	names := make([]string, 0, len(filterImpls))
	for n := range filterImpls {
		names = append(names, n)
	}
	sort.Strings(names)
	if s := diag.Suggest(name, names); s != "" {
		return s
	}
	return "filters ferry knows: " + strings.Join(names, ", ")
}

func suggestTest(name string) string {
	names := make([]string, 0, len(testImpls))
	for n := range testImpls {
		names = append(names, n)
	}
	sort.Strings(names)
	if s := diag.Suggest(name, names); s != "" {
		return s
	}
	return "tests ferry knows: " + strings.Join(names, ", ")
}

// wrap turns a jfunc into an expr function: a trailing kwargs argument is split off.
func wrap(f jfunc) func(params ...any) (any, error) {
	return func(params ...any) (any, error) {
		var kw kwargs
		if n := len(params); n > 0 {
			if k, ok := params[n-1].(kwargs); ok {
				kw, params = k, params[:n-1]
			}
		}
		return f(params, kw)
	}
}

func arg(a []any, i int) any {
	if i < len(a) {
		return a[i]
	}
	return nil
}

// opt is the i-th positional argument, else the keyword, else def.
func opt(a []any, kw kwargs, i int, name string, def any) any {
	if i < len(a) {
		return a[i]
	}
	if v, ok := kw[name]; ok {
		return v
	}
	return def
}

func one(f func(any) (any, error)) jfunc {
	return func(a []any, _ kwargs) (any, error) { return f(arg(a, 0)) }
}

func str1(f func(string) string) jfunc {
	return func(a []any, _ kwargs) (any, error) { return f(Text(arg(a, 0))), nil }
}

// title is Jinja's: each word (after a space, '-', '(', '{', '[' or '<')
// starts upper case, the rest of it is lower case.
func title(s string) string {
	var b strings.Builder
	start := true
	for _, r := range s {
		if start {
			b.WriteRune(unicode.ToUpper(r))
		} else {
			b.WriteRune(unicode.ToLower(r))
		}
		start = unicode.IsSpace(r) || strings.ContainsRune("-({[<", r)
	}
	return b.String()
}

func kindTest(f func(any) bool) jfunc {
	return func(a []any, _ kwargs) (any, error) { return f(arg(a, 0)), nil }
}

func isString(v any) bool { _, ok := v.(string); return ok }

// truthy is Python's truth value (value.Truthy).
var truthy = value.Truthy

// toBool is Ansible's `bool` filter: what value.Bool accepts, else false.
func toBool(v any) bool {
	b, _ := value.Bool(v)
	return b
}

func toNumber(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	case uint64:
		return float64(x), true
	case float64:
		return x, true
	case float32:
		return float64(x), true
	}
	return 0, false
}

func numResult(f float64) any {
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return int(f)
	}
	return f
}

func fDefault(a []any, kw kwargs) (any, error) {
	v := arg(a, 0)
	d := opt(a, kw, 1, "default_value", "")
	if v == nil || toBool(opt(a, kw, 2, "boolean", false)) && !truthy(v) {
		return d, nil
	}
	return v, nil
}

func fMandatory(a []any, kw kwargs) (any, error) {
	if arg(a, 0) == nil {
		msg := Text(opt(a, kw, 1, "msg", "mandatory variable not defined"))
		return nil, errors.New(msg)
	}
	return a[0], nil
}

func fInt(a []any, kw kwargs) (any, error) {
	def := opt(a, kw, 1, "default", 0)
	switch x := arg(a, 0).(type) {
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	case string:
		s := strings.TrimSpace(x)
		base := 10
		if b, ok := toNumber(opt(a, kw, 2, "base", 10)); ok {
			base = int(b)
		}
		if i, err := strconv.ParseInt(s, base, 64); err == nil {
			return int(i), nil
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return int(f), nil
		}
		return def, nil
	}
	if n, ok := toNumber(arg(a, 0)); ok {
		return int(n), nil
	}
	return def, nil
}

func fFloat(a []any, kw kwargs) (any, error) {
	if s, ok := arg(a, 0).(string); ok {
		if f, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil {
			return f, nil
		}
		return opt(a, kw, 1, "default", 0.0), nil
	}
	if n, ok := toNumber(arg(a, 0)); ok {
		return n, nil
	}
	return opt(a, kw, 1, "default", 0.0), nil
}

func fLength(a []any, _ kwargs) (any, error) {
	v := arg(a, 0)
	if s, ok := v.(string); ok {
		return len([]rune(s)), nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Map, reflect.Array:
		return rv.Len(), nil
	}
	if v == nil {
		return 0, nil
	}
	return nil, fmt.Errorf("length: want a string, list or mapping, got %s", Describe(v))
}

// toList turns lists of any element type (and maps: their sorted keys) into []any.
func toList(v any) ([]any, error) {
	switch x := v.(type) {
	case []any:
		return x, nil
	case nil:
		return nil, nil
	case string:
		out := make([]any, 0, len(x))
		for _, r := range x {
			out = append(out, string(r))
		}
		return out, nil
	case map[string]any:
		keys := slices.Sorted(maps.Keys(x))
		out := make([]any, len(keys))
		for i, k := range keys {
			out[i] = k
		}
		return out, nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice || rv.Kind() == reflect.Array {
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = rv.Index(i).Interface()
		}
		return out, nil
	}
	return nil, fmt.Errorf("want a list, got %s", Describe(v))
}

func fList(a []any, _ kwargs) (any, error) { return toList(arg(a, 0)) }

func fJoin(a []any, kw kwargs) (any, error) {
	l, err := toList(arg(a, 0))
	if err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	parts := make([]string, len(l))
	for i, x := range l {
		parts[i] = Text(x)
	}
	return strings.Join(parts, Text(opt(a, kw, 1, "d", ""))), nil
}

func fSplit(a []any, _ kwargs) (any, error) {
	s := Text(arg(a, 0))
	var parts []string
	if sep := arg(a, 1); sep == nil {
		parts = strings.Fields(s)
	} else if n, ok := toNumber(arg(a, 2)); ok {
		parts = strings.SplitN(s, Text(sep), int(n)+1)
	} else {
		parts = strings.Split(s, Text(sep))
	}
	out := make([]any, len(parts))
	for i, p := range parts {
		out[i] = p
	}
	return out, nil
}

func fReplace(a []any, _ kwargs) (any, error) {
	n := -1
	if c, ok := toNumber(arg(a, 3)); ok {
		n = int(c)
	}
	return strings.Replace(Text(arg(a, 0)), Text(arg(a, 1)), Text(arg(a, 2)), n), nil
}

var (
	regexMu    sync.Mutex
	regexCache = map[string]*regexp.Regexp{}
)

// pyRegex compiles a Python regular expression (the RE2 subset Go has).
func pyRegex(pat string, ignoreCase, multiline bool) (*regexp.Regexp, error) {
	if !multiline {
		pat = pyDollar(pat)
	}
	flags := ""
	if ignoreCase {
		flags += "i"
	}
	if multiline {
		flags += "m"
	}
	if flags != "" {
		pat = "(?" + flags + ")" + pat
	}
	regexMu.Lock()
	defer regexMu.Unlock()
	if re, ok := regexCache[pat]; ok {
		return re, nil
	}
	re, err := regexp.Compile(pat)
	if err != nil {
		return nil, fmt.Errorf("regular expression %q: %w (Go's RE2 has no lookaround or backreferences)", pat, err)
	}
	if len(regexCache) > 1000 {
		regexCache = map[string]*regexp.Regexp{}
	}
	regexCache[pat] = re
	return re, nil
}

// pyDollar gives `$` Python's meaning without MULTILINE (end of text, or
// before a newline that ends it) and turns Python's \Z into Go's \z.
func pyDollar(pat string) string {
	var b strings.Builder
	inClass := false
	for i := 0; i < len(pat); i++ {
		c := pat[i]
		switch {
		case c == '\\' && i+1 < len(pat):
			if pat[i+1] == 'Z' && !inClass {
				b.WriteString(`\z`)
			} else {
				b.WriteByte(c)
				b.WriteByte(pat[i+1])
			}
			i++
			continue
		case c == '[' && !inClass:
			inClass = true
		case c == ']' && inClass:
			inClass = false
		case c == '$' && !inClass:
			b.WriteString(`(?:\n?\z)`)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

var pyGroupRe = regexp.MustCompile(`\\(\d+)|\\g<(\w+)>`)

// pyReplacement turns Python's \1 and \g<name> into Go's ${1} and ${name}.
func pyReplacement(s string) string {
	s = strings.ReplaceAll(s, "$", "$$")
	return pyGroupRe.ReplaceAllStringFunc(s, func(m string) string {
		g := pyGroupRe.FindStringSubmatch(m)
		if g[1] != "" {
			return "${" + g[1] + "}"
		}
		return "${" + g[2] + "}"
	})
}

func fRegexReplace(a []any, kw kwargs) (any, error) {
	re, err := pyRegex(Text(arg(a, 1)), toBool(kw["ignorecase"]), toBool(kw["multiline"]))
	if err != nil {
		return nil, fmt.Errorf("regex_replace: %w", err)
	}
	return re.ReplaceAllString(Text(arg(a, 0)), pyReplacement(Text(opt(a, kw, 2, "replacement", "")))), nil
}

func fRegexSearch(a []any, kw kwargs) (any, error) {
	re, err := pyRegex(Text(arg(a, 1)), toBool(kw["ignorecase"]), toBool(kw["multiline"]))
	if err != nil {
		return nil, fmt.Errorf("regex_search: %w", err)
	}
	s := Text(arg(a, 0))
	m := re.FindStringSubmatch(s)
	if m == nil {
		return "", nil // Ansible gives None: falsy, and printable here
	}
	if len(a) <= 2 {
		return m[0], nil
	}
	var out []any
	for _, g := range a[2:] {
		ref := Text(g)
		if n, err := strconv.Atoi(strings.TrimPrefix(ref, `\`)); err == nil && n < len(m) {
			out = append(out, m[n])
		} else if name := strings.TrimSuffix(strings.TrimPrefix(ref, `\g<`), ">"); re.SubexpIndex(name) >= 0 {
			out = append(out, m[re.SubexpIndex(name)])
		}
	}
	return out, nil
}

func fRegexFindall(a []any, kw kwargs) (any, error) {
	re, err := pyRegex(Text(arg(a, 1)), toBool(kw["ignorecase"]), toBool(kw["multiline"]))
	if err != nil {
		return nil, fmt.Errorf("regex_findall: %w", err)
	}
	out := []any{}
	for _, m := range re.FindAllStringSubmatch(Text(arg(a, 0)), -1) {
		switch len(m) {
		case 1:
			out = append(out, m[0])
		case 2:
			out = append(out, m[1])
		default:
			g := make([]any, len(m)-1)
			for i, x := range m[1:] {
				g[i] = x
			}
			out = append(out, g)
		}
	}
	return out, nil
}

func fFirst(a []any, _ kwargs) (any, error) {
	if s, ok := arg(a, 0).(string); ok {
		if s == "" {
			return "", nil
		}
		return string([]rune(s)[0]), nil
	}
	l, err := toList(arg(a, 0))
	if err != nil || len(l) == 0 {
		return nil, errors.New("first: want a non-empty list")
	}
	return l[0], nil
}

func fLast(a []any, _ kwargs) (any, error) {
	if s, ok := arg(a, 0).(string); ok {
		r := []rune(s)
		if len(r) == 0 {
			return "", nil
		}
		return string(r[len(r)-1]), nil
	}
	l, err := toList(arg(a, 0))
	if err != nil || len(l) == 0 {
		return nil, errors.New("last: want a non-empty list")
	}
	return l[len(l)-1], nil
}

func fUnique(a []any, _ kwargs) (any, error) {
	l, err := toList(arg(a, 0))
	if err != nil {
		return nil, fmt.Errorf("unique: %w", err)
	}
	out := []any{}
	for _, x := range l {
		if !inOp(x, out) {
			out = append(out, x)
		}
	}
	return out, nil
}

func fReverse(a []any, _ kwargs) (any, error) {
	if s, ok := arg(a, 0).(string); ok {
		r := []rune(s)
		for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
			r[i], r[j] = r[j], r[i]
		}
		return string(r), nil
	}
	l, err := toList(arg(a, 0))
	if err != nil {
		return nil, fmt.Errorf("reverse: %w", err)
	}
	out := make([]any, len(l))
	for i, x := range l {
		out[len(l)-1-i] = x
	}
	return out, nil
}

// attr reads a dotted attribute (`a.b`) of a mapping.
func attr(v any, name string) any {
	for _, part := range strings.Split(name, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			if l, ok := v.([]any); ok {
				if i, err := strconv.Atoi(part); err == nil && i >= 0 && i < len(l) {
					v = l[i]
					continue
				}
			}
			return nil
		}
		v = m[part]
	}
	return v
}

func less(x, y any) bool {
	if a, ok := toNumber(x); ok {
		if b, ok := toNumber(y); ok {
			return a < b
		}
	}
	return Text(x) < Text(y)
}

func fSort(a []any, kw kwargs) (any, error) {
	l, err := toList(arg(a, 0))
	if err != nil {
		return nil, fmt.Errorf("sort: %w", err)
	}
	out := append([]any(nil), l...)
	by := Text(kw["attribute"])
	key := func(x any) any {
		if by != "" {
			return attr(x, by)
		}
		return x
	}
	rev := toBool(opt(a, kw, 1, "reverse", false))
	sort.SliceStable(out, func(i, j int) bool {
		if rev {
			return less(key(out[j]), key(out[i]))
		}
		return less(key(out[i]), key(out[j]))
	})
	return out, nil
}

func fFlatten(a []any, kw kwargs) (any, error) {
	levels := -1
	if n, ok := toNumber(opt(a, kw, 1, "levels", nil)); ok {
		levels = int(n)
	}
	var walk func(l []any, depth int) []any
	walk = func(l []any, depth int) []any {
		var out []any
		for _, x := range l {
			if sub, ok := x.([]any); ok && (levels < 0 || depth < levels) {
				out = append(out, walk(sub, depth+1)...)
			} else if x != nil {
				out = append(out, x)
			}
		}
		return out
	}
	l, err := toList(arg(a, 0))
	if err != nil {
		return nil, fmt.Errorf("flatten: %w", err)
	}
	out := walk(l, 0)
	if out == nil {
		out = []any{}
	}
	return out, nil
}

func fToJSON(a []any, _ kwargs) (any, error) {
	b, err := json.Marshal(arg(a, 0))
	return string(b), err
}

func fToNiceJSON(a []any, kw kwargs) (any, error) {
	indent := 4
	if n, ok := toNumber(kw["indent"]); ok {
		indent = int(n)
	}
	b, err := json.MarshalIndent(arg(a, 0), "", strings.Repeat(" ", indent))
	return string(b), err
}

func fFromJSON(a []any, _ kwargs) (any, error) {
	var v any
	if err := json.Unmarshal([]byte(Text(arg(a, 0))), &v); err != nil {
		return nil, fmt.Errorf("from_json: %w", err)
	}
	return v, nil
}

func fToYAML(a []any, _ kwargs) (any, error) {
	b, err := yaml.Marshal(arg(a, 0))
	return string(b), err
}

func fFromYAML(a []any, _ kwargs) (any, error) {
	var v any
	if err := yaml.Unmarshal([]byte(Text(arg(a, 0))), &v); err != nil {
		return nil, fmt.Errorf("from_yaml: %w", err)
	}
	return v, nil
}

func fB64decode(a []any, _ kwargs) (any, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(Text(arg(a, 0))))
	if err != nil {
		return nil, fmt.Errorf("b64decode: %w", err)
	}
	return string(b), nil
}

func fTernary(a []any, kw kwargs) (any, error) {
	v := arg(a, 0)
	if v == nil && len(a) > 3 {
		return a[3], nil
	}
	if truthy(v) {
		return opt(a, kw, 1, "true_val", nil), nil
	}
	return opt(a, kw, 2, "false_val", nil), nil
}

func fCombine(a []any, kw kwargs) (any, error) {
	recursive := toBool(kw["recursive"])
	out := map[string]any{}
	var merge func(dst, src map[string]any)
	merge = func(dst, src map[string]any) {
		for k, v := range src {
			if sm, ok := v.(map[string]any); ok && recursive {
				if dm, ok := dst[k].(map[string]any); ok {
					c := map[string]any{}
					merge(c, dm)
					merge(c, sm)
					dst[k] = c
					continue
				}
			}
			dst[k] = v
		}
	}
	for i, x := range a {
		if l, ok := x.([]any); ok && i > 0 {
			for _, y := range l {
				if m, ok := y.(map[string]any); ok {
					merge(out, m)
				}
			}
			continue
		}
		m, ok := x.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("combine: want mappings, got %s", Describe(x))
		}
		merge(out, m)
	}
	return out, nil
}

func fDict2items(a []any, kw kwargs) (any, error) {
	m, ok := arg(a, 0).(map[string]any)
	if !ok {
		return nil, fmt.Errorf("dict2items: want a mapping, got %s", Describe(arg(a, 0)))
	}
	kn, vn := Text(opt(a, kw, 1, "key_name", "key")), Text(opt(a, kw, 2, "value_name", "value"))
	out := make([]any, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, map[string]any{kn: k, vn: m[k]})
	}
	return out, nil
}

func fItems2dict(a []any, kw kwargs) (any, error) {
	l, err := toList(arg(a, 0))
	if err != nil {
		return nil, fmt.Errorf("items2dict: %w", err)
	}
	kn, vn := Text(opt(a, kw, 1, "key_name", "key")), Text(opt(a, kw, 2, "value_name", "value"))
	out := map[string]any{}
	for _, x := range l {
		m, ok := x.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("items2dict: want mappings with %s and %s", kn, vn)
		}
		out[Text(m[kn])] = m[vn]
	}
	return out, nil
}

// fMap: map(attribute='x', default=?) or map('filter', args...).
func fMap(a []any, kw kwargs) (any, error) {
	l, err := toList(arg(a, 0))
	if err != nil {
		return nil, fmt.Errorf("map: %w", err)
	}
	out := make([]any, 0, len(l))
	if at, ok := kw["attribute"]; ok {
		for _, x := range l {
			v := attr(x, Text(at))
			if v == nil {
				if d, ok := kw["default"]; ok {
					v = d
				}
			}
			out = append(out, v)
		}
		return out, nil
	}
	name := Text(arg(a, 1))
	f, ok := filterImpls[name]
	if !ok {
		return nil, fmt.Errorf("map: unknown filter %q", name)
	}
	for _, x := range l {
		v, err := f(append([]any{x}, a[2:]...), nil)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func runTest(name string, v any, args []any) (bool, error) {
	if name == "" {
		return truthy(v), nil
	}
	switch name {
	case "==", "!=", "<", ">", "<=", ">=":
		return cmpOp(name, v, arg(args, 0)), nil
	}
	t, ok := testImpls[name]
	if !ok {
		return false, fmt.Errorf("unknown test %q", name)
	}
	r, err := t(append([]any{v}, args...), nil)
	return truthy(r), err
}

func fSelect(reject bool) jfunc {
	return func(a []any, _ kwargs) (any, error) {
		l, err := toList(arg(a, 0))
		if err != nil {
			return nil, fmt.Errorf("select: %w", err)
		}
		name := ""
		if len(a) > 1 {
			name = Text(a[1])
		}
		var rest []any
		if len(a) > 2 {
			rest = a[2:]
		}
		out := []any{}
		for _, x := range l {
			ok, err := runTest(name, x, rest)
			if err != nil {
				return nil, err
			}
			if ok != reject {
				out = append(out, x)
			}
		}
		return out, nil
	}
}

func fSelectAttr(reject bool) jfunc {
	return func(a []any, _ kwargs) (any, error) {
		l, err := toList(arg(a, 0))
		if err != nil {
			return nil, fmt.Errorf("selectattr: %w", err)
		}
		at := Text(arg(a, 1))
		name := ""
		if len(a) > 2 {
			name = Text(a[2])
		}
		var rest []any
		if len(a) > 3 {
			rest = a[3:]
		}
		out := []any{}
		for _, x := range l {
			ok, err := runTest(name, attr(x, at), rest)
			if err != nil {
				return nil, err
			}
			if ok != reject {
				out = append(out, x)
			}
		}
		return out, nil
	}
}

func fMinMax(sign int) jfunc {
	return func(a []any, kw kwargs) (any, error) {
		l, err := toList(arg(a, 0))
		if err != nil || len(l) == 0 {
			return nil, errors.New("min/max: want a non-empty list")
		}
		by := Text(kw["attribute"])
		key := func(x any) any {
			if by != "" {
				return attr(x, by)
			}
			return x
		}
		best := l[0]
		for _, x := range l[1:] {
			if sign < 0 && less(key(x), key(best)) || sign > 0 && less(key(best), key(x)) {
				best = x
			}
		}
		return best, nil
	}
}

func fSum(a []any, kw kwargs) (any, error) {
	l, err := toList(arg(a, 0))
	if err != nil {
		return nil, fmt.Errorf("sum: %w", err)
	}
	total, _ := toNumber(opt(a, kw, 2, "start", 0))
	by := Text(opt(a, kw, 1, "attribute", ""))
	for _, x := range l {
		if by != "" {
			x = attr(x, by)
		}
		n, ok := toNumber(x)
		if !ok {
			return nil, fmt.Errorf("sum: %s is not a number", Describe(x))
		}
		total += n
	}
	return numResult(total), nil
}

func fAbs(a []any, _ kwargs) (any, error) {
	n, ok := toNumber(arg(a, 0))
	if !ok {
		return nil, errors.New("abs: want a number")
	}
	return numResult(math.Abs(n)), nil
}

func fRound(a []any, kw kwargs) (any, error) {
	n, ok := toNumber(arg(a, 0))
	if !ok {
		return nil, errors.New("round: want a number")
	}
	prec, _ := toNumber(opt(a, kw, 1, "precision", 0))
	p := math.Pow(10, prec)
	switch Text(opt(a, kw, 2, "method", "common")) {
	case "floor":
		return math.Floor(n*p) / p, nil
	case "ceil":
		return math.Ceil(n*p) / p, nil
	}
	return math.Round(n*p) / p, nil
}

func fSetOp(op string) jfunc {
	return func(a []any, _ kwargs) (any, error) {
		x, err := toList(arg(a, 0))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		y, err := toList(arg(a, 1))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		out := []any{}
		add := func(v any) {
			if !inOp(v, out) {
				out = append(out, v)
			}
		}
		for _, v := range x {
			switch op {
			case "difference":
				if !inOp(v, y) {
					add(v)
				}
			case "intersect":
				if inOp(v, y) {
					add(v)
				}
			default:
				add(v)
			}
		}
		if op == "union" {
			for _, v := range y {
				add(v)
			}
		}
		return out, nil
	}
}

func fZip(a []any, _ kwargs) (any, error) {
	var lists [][]any
	for _, x := range a {
		l, err := toList(x)
		if err != nil {
			return nil, fmt.Errorf("zip: %w", err)
		}
		lists = append(lists, l)
	}
	out := []any{}
	for i := 0; len(lists) > 0; i++ {
		row := make([]any, len(lists))
		for j, l := range lists {
			if i >= len(l) {
				return out, nil
			}
			row[j] = l[i]
		}
		out = append(out, row)
	}
	return out, nil
}

func resultTest(key string, want bool) jfunc {
	return func(a []any, _ kwargs) (any, error) {
		m, ok := arg(a, 0).(map[string]any)
		if !ok {
			return nil, fmt.Errorf("is %s: want a registered result, got %s", key, Describe(arg(a, 0)))
		}
		v := toBool(m[key])
		if key == "failed" && !want {
			return !v, nil
		}
		return v == want, nil
	}
}

func tRegex(kind string) jfunc {
	return func(a []any, kw kwargs) (any, error) {
		re, err := pyRegex(Text(arg(a, 1)), toBool(kw["ignorecase"]), toBool(kw["multiline"]))
		if err != nil {
			return nil, err
		}
		s := Text(arg(a, 0))
		if kind == "match" {
			loc := re.FindStringIndex(s)
			return loc != nil && loc[0] == 0, nil
		}
		return re.MatchString(s), nil
	}
}

func tEq(a []any, _ kwargs) (any, error) { return cmpOp("==", arg(a, 0), arg(a, 1)), nil }

func cmpTest(op string) jfunc {
	return func(a []any, _ kwargs) (any, error) { return cmpOp(op, arg(a, 0), arg(a, 1)), nil }
}

func cmpOp(op string, x, y any) bool {
	switch op {
	case "==":
		return equal(x, y)
	case "!=":
		return !equal(x, y)
	case "<":
		return less(x, y)
	case ">":
		return less(y, x)
	case "<=":
		return !less(y, x)
	case ">=":
		return !less(x, y)
	}
	return false
}

func equal(x, y any) bool {
	if a, ok := toNumber(x); ok {
		if b, ok := toNumber(y); ok {
			return a == b
		}
	}
	return reflect.DeepEqual(x, y)
}

// tVersion is Ansible's version test: version('1.2', '>=').
func tVersion(a []any, kw kwargs) (any, error) {
	op := Text(opt(a, kw, 2, "operator", "=="))
	c := compareVersions(Text(arg(a, 0)), Text(arg(a, 1)))
	switch op {
	case "<", "lt":
		return c < 0, nil
	case "<=", "le":
		return c <= 0, nil
	case ">", "gt":
		return c > 0, nil
	case ">=", "ge":
		return c >= 0, nil
	case "==", "=", "eq":
		return c == 0, nil
	case "!=", "<>", "ne":
		return c != 0, nil
	}
	return nil, fmt.Errorf("version: unknown operator %q", op)
}

// compareVersions compares dotted versions part by part, numbers as numbers.
func compareVersions(x, y string) int {
	split := func(s string) []string {
		return strings.FieldsFunc(strings.TrimPrefix(s, "v"), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	}
	a, b := split(x), split(y)
	for i := 0; i < len(a) || i < len(b); i++ {
		var p, q string
		if i < len(a) {
			p = a[i]
		}
		if i < len(b) {
			q = b[i]
		}
		pn, e1 := strconv.Atoi(p)
		qn, e2 := strconv.Atoi(q)
		if p == "" {
			e1, pn = nil, 0
		}
		if q == "" {
			e2, qn = nil, 0
		}
		switch {
		case e1 == nil && e2 == nil:
			if pn != qn {
				if pn < qn {
					return -1
				}
				return 1
			}
		case p != q:
			if p < q {
				return -1
			}
			return 1
		}
	}
	return 0
}

func inOp(x, container any) bool {
	switch c := container.(type) {
	case string:
		return strings.Contains(c, Text(x))
	case map[string]any:
		_, ok := c[Text(x)]
		return ok
	case nil:
		return false
	}
	l, err := toList(container)
	if err != nil {
		return false
	}
	for _, y := range l {
		if equal(x, y) {
			return true
		}
	}
	return false
}

func jAdd(x, y any) (any, error) {
	if a, ok := toNumber(x); ok {
		if b, ok := toNumber(y); ok {
			if _, fa := x.(float64); !fa {
				if _, fb := y.(float64); !fb {
					return numResult(a + b), nil
				}
			}
			return a + b, nil
		}
	}
	if a, ok := x.(string); ok {
		if b, ok := y.(string); ok {
			return a + b, nil
		}
	}
	if a, err := toList(x); err == nil && !isString(x) && x != nil {
		if b, err := toList(y); err == nil && !isString(y) && y != nil {
			return append(append([]any{}, a...), b...), nil
		}
	}
	return nil, fmt.Errorf("+: cannot add %s and %s (use ~ to join as text)", Describe(x), Describe(y))
}

var pyFmtRe = regexp.MustCompile(`%[-+ 0#]*\d*(?:\.\d+)?[sdifrxXoeEgG%]`)

// jMod is `%`: numbers modulo, or Python's printf-style string formatting.
func jMod(x, y any) (any, error) {
	if f, ok := x.(string); ok {
		args, err := toList(y)
		if err != nil || isString(y) {
			args = []any{y}
		}
		i := 0
		var ferr error
		out := pyFmtRe.ReplaceAllStringFunc(f, func(spec string) string {
			if spec == "%%" {
				return "%"
			}
			if i >= len(args) {
				ferr = errors.New("%: not enough arguments for format string")
				return spec
			}
			v := args[i]
			i++
			verb := spec[len(spec)-1]
			switch verb {
			case 's', 'r':
				return fmt.Sprintf(spec[:len(spec)-1]+"s", Text(v))
			case 'd', 'i':
				n, _ := toNumber(v)
				return fmt.Sprintf(spec[:len(spec)-1]+"d", int64(n))
			case 'x', 'X', 'o':
				n, _ := toNumber(v)
				return fmt.Sprintf(spec, int64(n))
			default:
				n, _ := toNumber(v)
				return fmt.Sprintf(spec, n)
			}
		})
		return out, ferr
	}
	a, ok1 := toNumber(x)
	b, ok2 := toNumber(y)
	if !ok1 || !ok2 || b == 0 {
		return nil, errors.New("%: want two numbers, the second not 0")
	}
	return numResult(a - b*math.Floor(a/b)), nil
}

// jMethod is a Python method call on a value: 'a,b'.split(','), d.get('k', 0), d.items().
func jMethod(p ...any) (any, error) {
	if len(p) < 2 {
		return nil, errors.New("internal: bad method call")
	}
	recv, name, args := p[0], Text(p[1]), p[2:]
	switch r := recv.(type) {
	case string:
		switch name {
		case "split":
			return fSplit(append([]any{r}, args...), nil)
		case "strip":
			if len(args) > 0 {
				return strings.Trim(r, Text(args[0])), nil
			}
			return strings.TrimSpace(r), nil
		case "lstrip":
			return strings.TrimLeft(r, " \t\n"), nil
		case "rstrip":
			return strings.TrimRight(r, " \t\n"), nil
		case "lower":
			return strings.ToLower(r), nil
		case "upper":
			return strings.ToUpper(r), nil
		case "startswith":
			return strings.HasPrefix(r, Text(arg(args, 0))), nil
		case "endswith":
			return strings.HasSuffix(r, Text(arg(args, 0))), nil
		case "replace":
			return strings.ReplaceAll(r, Text(arg(args, 0)), Text(arg(args, 1))), nil
		case "find":
			return strings.Index(r, Text(arg(args, 0))), nil
		case "splitlines":
			return fSplit([]any{strings.TrimRight(r, "\n"), "\n"}, nil)
		case "join":
			return fJoin([]any{arg(args, 0), r}, nil)
		case "format":
			out := r
			for _, x := range args {
				out = strings.Replace(out, "{}", Text(x), 1)
			}
			return out, nil
		}
	case map[string]any:
		switch name {
		case "get":
			if v, ok := r[Text(arg(args, 0))]; ok {
				return v, nil
			}
			return arg(args, 1), nil
		case "keys":
			return toList(r)
		case "values":
			out := []any{}
			for _, k := range slices.Sorted(maps.Keys(r)) {
				out = append(out, r[k])
			}
			return out, nil
		case "items":
			out := []any{}
			for _, k := range slices.Sorted(maps.Keys(r)) {
				out = append(out, []any{k, r[k]})
			}
			return out, nil
		}
	case []any:
		switch name {
		case "index":
			for i, x := range r {
				if equal(x, arg(args, 0)) {
					return i, nil
				}
			}
			return nil, fmt.Errorf("index: %s is not in the list", Describe(arg(args, 0)))
		case "count":
			n := 0
			for _, x := range r {
				if equal(x, arg(args, 0)) {
					n++
				}
			}
			return n, nil
		}
	}
	return nil, fmt.Errorf("%s has no method %s()", Describe(recv), name)
}

func jRange(a []any, _ kwargs) (any, error) {
	nums := make([]int, len(a))
	for i, x := range a {
		n, ok := toNumber(x)
		if !ok {
			return nil, errors.New("range: want whole numbers")
		}
		nums[i] = int(n)
	}
	start, stop, step := 0, 0, 1
	switch len(nums) {
	case 1:
		stop = nums[0]
	case 2:
		start, stop = nums[0], nums[1]
	case 3:
		start, stop, step = nums[0], nums[1], nums[2]
	default:
		return nil, errors.New("range: 1 to 3 arguments")
	}
	if step == 0 || (stop-start)/step > 100000 {
		return nil, errors.New("range: step 0, or over 100000 items")
	}
	out := []any{}
	for i := start; (step > 0 && i < stop) || (step < 0 && i > stop); i += step {
		out = append(out, i)
	}
	return out, nil
}

// jLookup supports the lookups a deploy playbook uses on the controller: env,
// file. Its first argument is the variables (envArg puts them there): env
// reads their env_vars, the environment the runner chose to show playbooks,
// never the process's own (which holds credentials a play did not name).
func jLookup(a []any, kw kwargs) (any, error) {
	env, _ := arg(a, 0).(map[string]any) // envArg puts the variables first
	environ, _ := env["env_vars"].(map[string]any)
	a = a[min(1, len(a)):]
	kind := Text(arg(a, 0))
	var out []any
	for _, x := range a[min(1, len(a)):] {
		switch kind {
		case "env", "ansible.builtin.env":
			// The same rule as env_vars: the controller's credentials are
			// not for playbooks to read unless a play names them (and so
			// masks them); ferry's own never are.
			if name := Text(x); CredentialEnv(name) {
				return nil, fmt.Errorf("lookup('env', %q): it holds a credential; name it in the play's secrets: as env_vars.%s and use {{ env_vars.%s }} (masked in output); ferry's own SSH key, passphrase and become password are never exposed", name, name, name)
			}
			v, ok := environ[Text(x)]
			if !ok {
				v = kw["default"]
			}
			out = append(out, Text(v))
		case "file", "ansible.builtin.file":
			b, err := os.ReadFile(Text(x))
			if err != nil {
				return nil, fmt.Errorf("lookup('file'): %w", err)
			}
			out = append(out, strings.TrimRight(string(b), "\n"))
		default:
			v, err := moreLookup(kind, x, kw, env)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
	}
	if len(out) == 1 {
		return out[0], nil
	}
	return out, nil
}
