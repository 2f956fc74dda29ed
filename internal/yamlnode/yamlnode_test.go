package yamlnode

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func parse(t testing.TB, src string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Skip(err)
	}
	if len(doc.Content) == 0 {
		t.Skip("empty")
	}
	return doc.Content[0]
}

// laughs is a "billion laughs": depth levels of fan aliases each.
func laughs(depth, fan int) string {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i <= depth; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [", i, i)
		for j := 0; j < fan; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	return b.String()
}

// walk expands everything, as a loader does.
func walk(d *Doc, n *yaml.Node) int {
	n = d.Resolve(n)
	c := 1
	for _, k := range n.Content {
		c += walk(d, k)
	}
	return c
}

func TestBillionLaughsStops(t *testing.T) {
	root := parse(t, laughs(9, 10))
	d := New(0)
	walk(d, root)
	if d.Err() == nil || d.Err().Cycle {
		t.Fatalf("err = %v", d.Err())
	}
	if !strings.Contains(d.Err().Error(), "too large") || d.Err().Node.Line == 0 {
		t.Fatalf("err = %v at %+v", d.Err(), d.Err().Node)
	}
	var v any
	d2 := New(0)
	if err := d2.Decode(root, &v); err == nil {
		t.Fatal("Decode expanded a billion laughs")
	}
}

// TestBudgetIsPerDocument: many small decodes add up (yaml.v3 alone checks
// each Decode on its own).
func TestBudgetIsPerDocument(t *testing.T) {
	src := laughs(3, 10) + "hosts:\n"
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&src2{&src}, "  h%d: *a3\n", i)
	}
	root := parse(t, src)
	d := New(0)
	var err error
	for _, p := range d.Pairs(root, nil) {
		if p.Key.Value != "hosts" {
			continue
		}
		for _, h := range d.Pairs(p.Value, nil) {
			var v any
			if err = d.Decode(h.Value, &v); err != nil {
				break
			}
		}
	}
	if err == nil || d.Err() == nil {
		t.Fatal("1000 decodes of a 10,000-node alias went through")
	}
}

type src2 struct{ s *string }

func (w *src2) Write(b []byte) (int, error) { *w.s += string(b); return len(b), nil }

func TestCycle(t *testing.T) {
	root := parse(t, "a: &v {b: *v}\n")
	d := New(0)
	walk(d, root)
	if d.Err() == nil || !d.Err().Cycle || d.Err().Node.Line != 1 {
		t.Fatalf("err = %+v", d.Err())
	}
	root = parse(t, "a: &m {x: 1, <<: *m}\n")
	d = New(0)
	for _, p := range d.Pairs(root, nil) {
		d.Pairs(p.Value, nil)
	}
	if d.Err() == nil || !d.Err().Cycle {
		t.Fatalf("self merge: err = %+v", d.Err())
	}
}

func TestPairsMerge(t *testing.T) {
	root := parse(t, "d: &d {a: 1, b: 2}\ne: &e {c: 3, a: 9}\nm: {<<: [*d, *e], b: 5, z: 0}\nbad: {<<: 1}\n")
	d := New(0)
	var got []string
	var bad int
	for _, p := range d.Pairs(root, nil) {
		if p.Key.Value == "m" {
			for _, q := range d.Pairs(p.Value, nil) {
				got = append(got, fmt.Sprintf("%s=%s/%v", q.Key.Value, q.Value.Value, q.Merged))
			}
		}
		if p.Key.Value == "bad" {
			d.Pairs(p.Value, func(*yaml.Node) { bad++ })
		}
	}
	if want := "b=5/false z=0/false a=1/true c=3/true"; strings.Join(got, " ") != want {
		t.Errorf("pairs = %s, want %s", strings.Join(got, " "), want)
	}
	if bad != 1 {
		t.Errorf("bad merge sources = %d", bad)
	}
}

// FuzzAliasFanOut: whatever the shape of nested aliases and merges, a walk
// plus decode of the document under one Doc allocates a bounded amount.
func FuzzAliasFanOut(f *testing.F) {
	f.Add(uint8(9), uint8(10), uint8(0), uint16(1))
	f.Add(uint8(5), uint8(30), uint8(1), uint16(200))
	f.Add(uint8(3), uint8(3), uint8(2), uint16(5000))
	f.Fuzz(func(t *testing.T, depth, fan, shape uint8, uses uint16) {
		depth, fan = depth%12, fan%40+1
		var b strings.Builder
		b.WriteString("l0: &l0 {k: v, n: [1, 2, 3]}\n")
		for i := 1; i <= int(depth); i++ {
			switch shape % 3 {
			case 0: // sequences of aliases
				fmt.Fprintf(&b, "l%d: &l%d [%s]\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d, ", i-1), int(fan)), ", "))
			case 1: // mappings of aliases
				fmt.Fprintf(&b, "l%d: &l%d {", i, i)
				for j := 0; j < int(fan); j++ {
					fmt.Fprintf(&b, "k%d: *l%d, ", j, i-1)
				}
				b.WriteString("z: 0}\n")
			case 2: // merge keys
				fmt.Fprintf(&b, "l%d: &l%d {<<: [*l%d], m%d: *l%d}\n", i, i, i-1, i, i-1)
			}
		}
		b.WriteString("uses:\n")
		for i := 0; i < int(uses%6000); i++ {
			fmt.Fprintf(&b, "  u%d: *l%d\n", i, depth)
		}
		root := parse(t, b.String())
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		d := New(0)
		var visit func(n *yaml.Node, depth int)
		visit = func(n *yaml.Node, depth int) {
			n = d.Resolve(n)
			if depth > 64 {
				return
			}
			if n.Kind == yaml.MappingNode {
				for _, p := range d.Pairs(n, nil) {
					visit(p.Value, depth+1)
				}
				var v any
				_ = d.Decode(n, &v)
				return
			}
			for _, c := range n.Content {
				visit(c, depth+1)
			}
		}
		visit(root, 0)
		runtime.ReadMemStats(&after)
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 512<<20 {
			t.Fatalf("allocated %d MB (err %v)", alloc>>20, d.Err())
		}
	})
}
