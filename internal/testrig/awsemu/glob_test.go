package awsemu

import (
	"strings"
	"testing"
)

func TestGlob(t *testing.T) {
	cases := []struct {
		p, v string
		want bool
	}{
		{"web-*", "web-1", true}, {"web-*", "api-1", false}, {"*-1", "web-1", true}, {"w?b*", "web-eu", true},
		{"*", "", true}, {"?", "", false}, {"a*b*c", "aXbYc", true}, {"a*b*c", "aXbY", false},
		{"arn:*/api/*", "arn:aws:x:targetgroup/api/1", true}, {"**a", "bba", true}, {"a", "ab", false},
	}
	for _, c := range cases {
		if got := glob(c.p, c.v); got != c.want {
			t.Errorf("glob(%q, %q) = %v", c.p, c.v, got)
		}
	}
}

func FuzzParseAuthAndGlob(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=x", "web-*", "web-1")
	f.Add("Credential=a/b/c/d/e", "*?*", "")
	f.Fuzz(func(t *testing.T, h, p, v string) {
		ak, region, svc, ok := parseAuth(h)
		if ok && (strings.ContainsAny(ak+region+svc, "/ ,")) {
			t.Fatalf("parseAuth(%q) = %q %q %q", h, ak, region, svc)
		}
		if len(p) > 64 || len(v) > 64 {
			return
		}
		if !strings.ContainsAny(v, "*?") && !glob(v, v) {
			t.Fatalf("%q does not match itself", v)
		}
		if !glob("*", v) {
			t.Fatalf("* does not match %q", v)
		}
		if !strings.ContainsAny(p, "*?") && !glob(p+"*", p+v) {
			t.Fatalf("%q* does not match %q", p, p+v)
		}
	})
}
