// Filters that encode and hash: JSON, YAML, hash, password_hash.

package template

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"strings"

	"gopkg.in/yaml.v3"
)

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
