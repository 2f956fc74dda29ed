package template

import (
	"context"
	"crypto/md5"
	crand "crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"math/big"
	"math/rand/v2"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"

	"github.com/ferrydeploy/ferry/diag"
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

// pyTimeLayout turns a strftime format into Go's layout.
func pyTimeLayout(f string) string {
	r := strings.NewReplacer("%Y", "2006", "%m", "01", "%d", "02", "%H", "15", "%M", "04", "%S", "05", "%f", "000000",
		"%y", "06", "%b", "Jan", "%B", "January", "%a", "Mon", "%A", "Monday", "%p", "PM", "%I", "03", "%z", "-0700", "%Z", "MST", "%%", "%")
	return r.Replace(f)
}

// pyPercent formats like Python's `fmt % args` for %s, %d, %i, %f, %r, %%.
func pyPercent(f string, args []any) (string, error) {
	var b strings.Builder
	n := 0
	for i := 0; i < len(f); i++ {
		if f[i] != '%' || i+1 >= len(f) {
			b.WriteByte(f[i])
			continue
		}
		i++
		verb := f[i]
		if verb == '%' {
			b.WriteByte('%')
			continue
		}
		if n >= len(args) {
			return "", errors.New("format: not enough arguments for the format string")
		}
		switch verb {
		case 's', 'r':
			b.WriteString(Text(args[n]))
		case 'd', 'i':
			x, ok := value.Int(args[n])
			if !ok {
				return "", fmt.Errorf("format: %%%c wants a number, got %s", verb, Describe(args[n]))
			}
			b.WriteString(strconv.Itoa(x))
		case 'f':
			x, ok := toNumber(args[n])
			if !ok {
				return "", fmt.Errorf("format: %%f wants a number, got %s", Describe(args[n]))
			}
			b.WriteString(strconv.FormatFloat(x, 'f', 6, 64))
		default:
			return "", fmt.Errorf("format: %%%c is not supported (use %%s, %%d, %%f)", verb)
		}
		n++
	}
	return b.String(), nil
}

// ipaddrFilter is the common part of ansible.utils.ipaddr: the value when
// it is an address or network (false when not), or one of its parts.
func ipaddrFilter(v any, query string) (any, error) {
	if l, ok := v.([]any); ok {
		var out []any
		for _, x := range l {
			r, err := ipaddrFilter(x, query)
			if err != nil {
				return nil, err
			}
			if r != false {
				out = append(out, r)
			}
		}
		return out, nil
	}
	s := strings.TrimSpace(Text(v))
	var pfx netip.Prefix
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return false, nil
		}
		pfx = p
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return false, nil
		}
		pfx = netip.PrefixFrom(a, a.BitLen())
	}
	switch query {
	case "", "bool":
		if query == "bool" {
			return true, nil
		}
		return s, nil
	case "address":
		return pfx.Addr().String(), nil
	case "network":
		return pfx.Masked().Addr().String(), nil
	case "prefix":
		return pfx.Bits(), nil
	case "netmask":
		if !pfx.Addr().Is4() {
			return nil, errors.New("ipaddr('netmask'): not an IPv4 network")
		}
		m := net.CIDRMask(pfx.Bits(), 32)
		return net.IP(m).String(), nil
	case "net", "cidr", "subnet":
		return pfx.Masked().String(), nil
	case "host":
		return pfx.String(), nil
	case "private":
		if pfx.Addr().IsPrivate() {
			return s, nil
		}
		return false, nil
	case "public":
		if !pfx.Addr().IsPrivate() && !pfx.Addr().IsLoopback() && !pfx.Addr().IsLinkLocalUnicast() {
			return s, nil
		}
		return false, nil
	}
	return nil, fmt.Errorf("ipaddr(%q) is not supported: address, network, prefix, netmask, net, host, private, public, bool", query)
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

// hashFilter is Ansible's hash('sha1'|'md5'|'sha256'|'sha512') of a string.
func hashFilter(a []any, _ kwargs) (any, error) {
	algo := Text(opt(a, nil, 1, "hashtype", "sha1"))
	var h hash.Hash
	switch algo {
	case "sha1":
		h = sha1.New()
	case "md5":
		h = md5.New()
	case "sha256":
		h = sha256.New()
	case "sha512":
		h = sha512.New()
	default:
		return nil, fmt.Errorf("hash: %q is not one of sha1, md5, sha256, sha512", algo)
	}
	h.Write([]byte(Text(arg(a, 0))))
	return hex.EncodeToString(h.Sum(nil)), nil
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

// lookups are the lookup plugins ferry has (short names; ansible.builtin.X too).
var lookups = []string{"env", "file", "pipe", "fileglob", "first_found", "password", "template"}

// checkLookup rejects lookup('NAME', ...) of a lookup ferry does not have
// when the playbook loads, not when the task runs.
func checkLookup(fn string, args []ast.Node) error {
	if fn != "$j_lookup" && fn != "$j_query" {
		return nil
	}
	if len(args) > 0 {
		if id, ok := args[0].(*ast.IdentifierNode); ok && id.Value == "$env" {
			args = args[1:] // envArg has given the lookup its variables
		}
	}
	if len(args) == 0 {
		return nil
	}
	s, ok := args[0].(*ast.StringNode)

	if !ok {
		return nil
	}
	name := strings.TrimPrefix(s.Value, "ansible.builtin.")
	for _, l := range lookups {
		if l == name {
			return nil
		}
	}
	return fmt.Errorf("lookup(%q) is not supported: ferry has the %s lookups (and env_vars.NAME)", s.Value, strings.Join(lookups, ", "))
}

// moreLookup runs the lookups beyond env and file, on the controller.
func moreLookup(kind string, x any, kw kwargs, env map[string]any) (any, error) {
	switch strings.TrimPrefix(kind, "ansible.builtin.") {
	case "template":
		// relative to the role's templates/, then the playbook's templates/ and directory
		name := Text(x)
		cands := []string{name}
		if !filepath.IsAbs(name) {
			cands = nil
			for _, base := range []string{Text(env["role_path"]), Text(env["playbook_dir"])} {
				if base != "" && base != "<nil>" {
					cands = append(cands, filepath.Join(base, "templates", name), filepath.Join(base, name))
				}
			}
			cands = append(cands, name)
		}
		for _, c := range cands {
			b, err := os.ReadFile(c)
			if err != nil {
				continue
			}
			return RenderTemplateFile(string(b), diag.Pos{File: c, Line: 1, Col: 1}, env)
		}
		return nil, fmt.Errorf("lookup('template', %q): not found in %s", name, strings.Join(cands, ", "))
	case "pipe":
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "/bin/sh", "-c", Text(x)).Output()
		if err != nil {
			return nil, fmt.Errorf("lookup('pipe', %q): %w", Text(x), err)
		}
		return strings.TrimRight(string(out), "\n"), nil
	case "fileglob":
		m, err := filepath.Glob(Text(x))
		if err != nil {
			return nil, fmt.Errorf("lookup('fileglob'): %w", err)
		}
		return strings.Join(m, ","), nil
	case "first_found":
		var files, paths []string
		switch v := x.(type) {
		case []any:
			for _, f := range v {
				files = append(files, Text(f))
			}
		case map[string]any:
			for _, key := range []string{"files", "paths"} {
				var l []string
				switch w := v[key].(type) {
				case []any:
					for _, f := range w {
						l = append(l, Text(f))
					}
				case string:
					l = strings.Split(w, ",")
				}
				if key == "files" {
					files = l
				} else {
					paths = l
				}
			}
		default:
			files = []string{Text(v)}
		}
		if len(paths) == 0 {
			paths = []string{""}
		}
		for _, f := range files {
			for _, p := range paths {
				cand := filepath.Join(p, f)
				if st, err := os.Stat(cand); err == nil && !st.IsDir() {
					abs, _ := filepath.Abs(cand)
					return abs, nil
				}
			}
		}
		if toBool(kw["skip"]) {
			return []any{}, nil
		}
		return nil, fmt.Errorf("lookup('first_found'): none of %s exists", strings.Join(files, ", "))
	case "password":
		return passwordLookup(Text(x))
	}
	return nil, fmt.Errorf("lookup(%q) is not supported: ferry has the %s lookups (and env_vars.NAME)", kind, strings.Join(lookups, ", "))
}

// passwordLookup is Ansible's password lookup: "PATH length=N chars=..."
// reads the password stored at PATH, or makes one and stores it there
// (0600); /dev/null stores nothing.
func passwordLookup(spec string) (any, error) {
	fields := strings.Fields(spec)
	if len(fields) == 0 {
		return nil, errors.New("lookup('password'): want a path")
	}
	path, length, chars := fields[0], 20, ""
	for _, f := range fields[1:] {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "length":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1024 {
				return nil, fmt.Errorf("lookup('password'): length=%s: want 1 to 1024", v)
			}
			length = n
		case "chars":
			for _, c := range strings.Split(v, ",") {
				switch c {
				case "ascii_letters":
					chars += "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				case "ascii_lowercase":
					chars += "abcdefghijklmnopqrstuvwxyz"
				case "ascii_uppercase":
					chars += "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				case "digits":
					chars += "0123456789"
				case "punctuation":
					chars += ".,:-_"
				default:
					chars += c
				}
			}
		}
	}
	if chars == "" {
		chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,:-_"
	}
	if path != "/dev/null" {
		if b, err := os.ReadFile(path); err == nil {
			first, _, _ := strings.Cut(string(b), "\n")
			pw, _, _ := strings.Cut(first, " salt=")
			return pw, nil
		}
	}
	rs := []rune(chars)
	out := make([]rune, length)
	for i := range out {
		n, err := crand.Int(crand.Reader, big.NewInt(int64(len(rs))))
		if err != nil {
			return nil, fmt.Errorf("lookup('password'): %w", err)
		}
		out[i] = rs[n.Int64()]
	}
	pw := string(out)
	if path != "/dev/null" {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("lookup('password'): %w", err)
		}
		if err := os.WriteFile(path, []byte(pw+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("lookup('password'): %w", err)
		}
	}
	return pw, nil
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

// sha512Crypt is glibc's SHA-512 crypt ($6$, 5000 rounds), what Ansible's
// password_hash('sha512') gives for /etc/shadow.
func sha512Crypt(password, salt string) string {
	if len(salt) > 16 {
		salt = salt[:16]
	}
	p, s := []byte(password), []byte(salt)
	sum := func(parts ...[]byte) []byte {
		h := sha512.New()
		for _, x := range parts {
			h.Write(x)
		}
		return h.Sum(nil)
	}
	b := sum(p, s, p)
	ha := sha512.New()
	ha.Write(p)
	ha.Write(s)
	for n := len(p); n > 0; n -= 64 {
		ha.Write(b[:min(n, 64)])
	}
	for n := len(p); n > 0; n >>= 1 {
		if n&1 != 0 {
			ha.Write(b)
		} else {
			ha.Write(p)
		}
	}
	a := ha.Sum(nil)
	hp := sha512.New()
	for range p {
		hp.Write(p)
	}
	dp := hp.Sum(nil)
	pp := make([]byte, 0, len(p))
	for len(pp) < len(p) {
		pp = append(pp, dp[:min(64, len(p)-len(pp))]...)
	}
	hs := sha512.New()
	for i := 0; i < 16+int(a[0]); i++ {
		hs.Write(s)
	}
	ds := hs.Sum(nil)
	sp := ds[:len(s)]
	c := a
	for i := 0; i < 5000; i++ {
		h := sha512.New()
		if i%2 != 0 {
			h.Write(pp)
		} else {
			h.Write(c)
		}
		if i%3 != 0 {
			h.Write(sp)
		}
		if i%7 != 0 {
			h.Write(pp)
		}
		if i%2 != 0 {
			h.Write(c)
		} else {
			h.Write(pp)
		}
		c = h.Sum(nil)
	}
	const itoa64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	var out strings.Builder
	enc := func(b2, b1, b0 byte, n int) {
		w := uint(b2)<<16 | uint(b1)<<8 | uint(b0)
		for ; n > 0; n-- {
			out.WriteByte(itoa64[w&0x3f])
			w >>= 6
		}
	}
	for _, t := range [][3]int{{0, 21, 42}, {22, 43, 1}, {44, 2, 23}, {3, 24, 45}, {25, 46, 4}, {47, 5, 26}, {6, 27, 48},
		{28, 49, 7}, {50, 8, 29}, {9, 30, 51}, {31, 52, 10}, {53, 11, 32}, {12, 33, 54}, {34, 55, 13}, {56, 14, 35},
		{15, 36, 57}, {37, 58, 16}, {59, 17, 38}, {18, 39, 60}, {40, 61, 19}, {62, 20, 41}} {
		enc(c[t[0]], c[t[1]], c[t[2]], 4)
	}
	enc(0, 0, c[63], 2)
	return "$6$" + salt + "$" + out.String()
}
