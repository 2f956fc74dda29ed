package template

import (
	crand "crypto/rand"
	"errors"
	"fmt"
	"hash/fnv"
	"math/big"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr"

	"github.com/ferrydeploy/ferry/internal/value"
)

// More of Ansible's filters: product, subelements, dict, hash, to_datetime,
// urlsplit, random, indent, format, ipaddr. This file sorts after
// jinja_funcs.go, so its init runs after the one that builds the tables.
func init() {
	defer registerNewFilters(len(funcNames))
	filterImpls["product"] = func(a []any, _ kwargs) (any, error) { return productOf(a) }
	filterImpls["subelements"] = func(a []any, kw kwargs) (any, error) {
		return subelementsOf(arg(a, 0), Text(arg(a, 1)), toBool(opt(a, kw, 2, "skip_missing", false)))
	}
	filterImpls["dict"] = func(a []any, _ kwargs) (any, error) {
		l, ok := arg(a, 0).([]any)
		if !ok {
			return nil, fmt.Errorf("dict: want a list of pairs, got %s", Describe(arg(a, 0)))
		}
		out := map[string]any{}
		for _, p := range l {
			pair, ok := p.([]any)
			if !ok || len(pair) != 2 {
				return nil, fmt.Errorf("dict: want pairs [key, value], got %s", Describe(p))
			}
			out[Text(pair[0])] = pair[1]
		}
		return out, nil
	}
	filterImpls["hash"] = hashFilter
	filterImpls["json_query"] = jsonQuery
	filterImpls["checksum"] = func(a []any, kw kwargs) (any, error) { return hashFilter([]any{arg(a, 0), "sha1"}, kw) }
	filterImpls["to_datetime"] = func(a []any, kw kwargs) (any, error) {
		layout := pyTimeLayout(Text(opt(a, kw, 1, "format", "%Y-%m-%d %H:%M:%S")))
		tm, err := time.Parse(layout, Text(arg(a, 0)))
		if err != nil {
			return nil, fmt.Errorf("to_datetime: %w", err)
		}
		// Python's datetime attributes; epoch for arithmetic (b.epoch - a.epoch)
		return map[string]any{"year": tm.Year(), "month": int(tm.Month()), "day": tm.Day(), "hour": tm.Hour(),
			"minute": tm.Minute(), "second": tm.Second(), "epoch": tm.Unix(), "isoformat": tm.Format("2006-01-02T15:04:05")}, nil
	}
	filterImpls["urlsplit"] = func(a []any, kw kwargs) (any, error) {
		u, err := url.Parse(Text(arg(a, 0)))
		if err != nil {
			return nil, fmt.Errorf("urlsplit: %w", err)
		}
		var port any
		if p := u.Port(); p != "" {
			port, _ = strconv.Atoi(p)
		}
		pw, _ := u.User.Password()
		parts := map[string]any{"scheme": u.Scheme, "netloc": u.Host, "hostname": strings.ToLower(u.Hostname()), "port": port,
			"path": u.EscapedPath(), "query": u.RawQuery, "fragment": u.Fragment, "username": u.User.Username(), "password": pw}
		if u.User == nil {
			parts["username"], parts["password"] = nil, nil
		} else {
			parts["netloc"] = u.User.String() + "@" + u.Host
		}
		if q := Text(opt(a, kw, 1, "query", "")); q != "" {
			v, ok := parts[q]
			if !ok {
				return nil, fmt.Errorf("urlsplit: %q is not one of scheme, netloc, hostname, port, path, query, fragment, username, password", q)
			}
			return v, nil
		}
		return parts, nil
	}
	filterImpls["random"] = func(a []any, kw kwargs) (any, error) {
		r := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
		if s, ok := kw["seed"]; ok {
			h := fnv.New64a()
			h.Write([]byte(Text(s)))
			r = rand.New(rand.NewPCG(h.Sum64(), 0))
		}
		switch x := arg(a, 0).(type) {
		case []any:
			if len(x) == 0 {
				return nil, errors.New("random: the list is empty")
			}
			return x[r.IntN(len(x))], nil
		case string:
			if x == "" {
				return nil, errors.New("random: the string is empty")
			}
			rs := []rune(x)
			return string(rs[r.IntN(len(rs))]), nil
		default:
			n, ok := value.Int(x)
			start, _ := value.Int(opt(a, kw, 1, "start", 0))
			step, _ := value.Int(opt(a, kw, 2, "step", 1))
			if !ok || n <= start || step <= 0 {
				return nil, fmt.Errorf("random: want a list, a string or an end number above start, got %s", Describe(x))
			}
			return start + step*r.IntN((n-start+step-1)/step), nil
		}
	}
	filterImpls["indent"] = func(a []any, kw kwargs) (any, error) {
		width, _ := value.Int(opt(a, kw, 1, "width", 4))
		first := toBool(opt(a, kw, 2, "first", false))
		blank := toBool(opt(a, kw, 3, "blank", false))
		pad := strings.Repeat(" ", width)
		lines := strings.Split(Text(arg(a, 0)), "\n")
		for i, l := range lines {
			if (i > 0 || first) && (l != "" || blank) {
				lines[i] = pad + l
			}
		}
		return strings.Join(lines, "\n"), nil
	}
	filterImpls["format"] = func(a []any, _ kwargs) (any, error) {
		return pyPercent(Text(arg(a, 0)), a[min(1, len(a)):])
	}
	filterImpls["ipaddr"] = func(a []any, kw kwargs) (any, error) {
		return ipaddrFilter(arg(a, 0), Text(opt(a, kw, 1, "query", "")))
	}
	filterImpls["ipv4"] = func(a []any, kw kwargs) (any, error) {
		v, err := ipaddrFilter(arg(a, 0), Text(opt(a, kw, 1, "query", "")))
		if s, ok := v.(string); ok && strings.Contains(s, ":") {
			return false, err
		}
		return v, err
	}
}

// registerNewFilters makes the filters added to filterImpls after the
// tables were built known to the translator and to expr.
func registerNewFilters(int) {
	for name, impl := range filterImpls {
		if _, ok := jinjaFilters[name]; ok {
			continue
		}
		jinjaFilters[name] = "$j_" + name
		functions = append(functions, expr.Function("$j_"+name, wrap(impl)))
		funcNames = append(funcNames, "$j_"+name)
	}
}

// WithLoop gives the items of with_nested (the product of its lists) and
// with_subelements ([list, key] or [list, key, {skip_missing: true}]).
func WithLoop(kind string, v any) (any, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s: want a list, got %s", kind, Describe(v))
	}
	if kind == "with_nested" {
		return productOf(l)
	}
	if len(l) < 2 || len(l) > 3 {
		return nil, fmt.Errorf("with_subelements: want [list, key] or [list, key, {skip_missing: true}]")
	}
	skip := false
	if len(l) == 3 {
		if m, ok := l[2].(map[string]any); ok {
			skip = toBool(m["skip_missing"])
		}
	}
	return subelementsOf(l[0], Text(l[1]), skip)
}

func init() {
	filterImpls["password_hash"] = func(a []any, kw kwargs) (any, error) {
		scheme := Text(opt(a, kw, 1, "hashtype", "sha512"))
		if scheme != "sha512" && scheme != "sha512_crypt" {
			return nil, fmt.Errorf("password_hash(%q): ferry makes sha512 ($6$) hashes", scheme)
		}
		salt := Text(opt(a, kw, 2, "salt", ""))
		if salt == "" {
			const chars = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			b := make([]byte, 16)
			for i := range b {
				n, err := crand.Int(crand.Reader, big.NewInt(int64(len(chars))))
				if err != nil {
					return nil, fmt.Errorf("password_hash: %w", err)
				}
				b[i] = chars[n.Int64()]
			}
			salt = string(b)
		}
		return sha512Crypt(Text(arg(a, 0)), salt), nil
	}
	registerNewFilters(0)
}
