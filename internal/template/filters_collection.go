// Jinja's filters over lists and mappings: default, length, first/last, unique, sort, flatten, combine, map, select, set operations, zip, product, subelements.

package template

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
)

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

// productOf is the cartesian product of lists (Ansible's product filter,
// with_nested): [[a, x], [a, y], [b, x], ...].
func productOf(lists []any) ([]any, error) {
	out := []any{[]any{}}
	for i, l := range lists {
		items, ok := l.([]any)
		if !ok {
			return nil, fmt.Errorf("product: argument %d is not a list: %s", i+1, Describe(l))
		}
		var next []any
		for _, prefix := range out {
			for _, x := range items {
				next = append(next, append(append([]any{}, prefix.([]any)...), x))
			}
		}
		out = next
	}
	return out, nil
}

// subelementsOf pairs each element of list with each item of its key
// (Ansible's subelements filter, with_subelements).
func subelementsOf(list any, key string, skipMissing bool) ([]any, error) {
	l, ok := list.([]any)
	if !ok {
		return nil, fmt.Errorf("subelements: want a list, got %s", Describe(list))
	}
	var out []any
	for _, e := range l {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("subelements: want a list of mappings, got %s", Describe(e))
		}
		var sub any = m
		for _, k := range strings.Split(key, ".") {
			mm, _ := sub.(map[string]any)
			sub = mm[k]
		}
		items, ok := sub.([]any)
		if !ok {
			if sub == nil && skipMissing {
				continue
			}
			return nil, fmt.Errorf("subelements: %q is not a list in %s (skip_missing=True leaves such elements out)", key, Describe(e))
		}
		for _, x := range items {
			out = append(out, []any{e, x})
		}
	}
	if out == nil {
		out = []any{}
	}
	return out, nil
}
