package inventory

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ferrydeploy/ferry/internal/yamlnode/yamlnodetest"
)

// aliasInventory: group vars with nested anchors and uses hosts that each
// alias the deepest one (the shape of a 580 KB file that took 2.2 GB).
func aliasInventory(depth, fan, uses int, shape uint8) string {
	var b strings.Builder
	b.WriteString("all:\n  vars:\n")
	b.WriteString(yamlnodetest.Anchors("    ", depth, fan, shape))
	b.WriteString("  hosts:\n")
	for i := 0; i < uses; i++ {
		fmt.Fprintf(&b, "    h%d: {v: *l%d}\n", i, depth)
	}
	b.WriteString("    hm: {<<: *l0}\n")
	return b.String()
}

func TestAliasFanOutStops(t *testing.T) {
	src := aliasInventory(4, 10, 5000, 0)
	var err error
	alloc := yamlnodetest.Allocated(func() {
		root, doc, e := yamlRoot("inv.yml", []byte(src))
		if e == nil {
			_, e = yamlOrPlugin(context.Background(), "inv.yml", []byte(src), doc, root, Options{})
		}
		err = e
	})
	if err == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("err = %v", err)
	}
	positioned(t, err)
	if alloc > 256<<20 {
		t.Fatalf("allocated %d MB before stopping", alloc>>20)
	}
	// The same shape, used a few times, loads.
	src = aliasInventory(2, 5, 20, 1)
	root, doc, err := yamlRoot("inv.yml", []byte(src))
	if err == nil {
		_, err = yamlOrPlugin(context.Background(), "inv.yml", []byte(src), doc, root, Options{})
	}
	if err != nil {
		t.Fatal(err)
	}
}

// FuzzAliasFanOut: alias-heavy inventories load or fail with a positioned
// error, within the memory cap.
func FuzzAliasFanOut(f *testing.F) {
	f.Add(uint8(4), uint8(10), uint16(5000), uint8(0))
	f.Add(uint8(8), uint8(3), uint16(300), uint8(2))
	f.Add(uint8(3), uint8(30), uint16(40), uint8(1))
	f.Fuzz(func(t *testing.T, depth, fan uint8, uses uint16, shape uint8) {
		src := aliasInventory(int(depth%10), int(fan%40)+1, int(uses%6000), shape)
		var err error
		alloc := yamlnodetest.Allocated(func() {
			root, doc, e := yamlRoot("inv.yml", []byte(src))
			if e == nil {
				_, e = yamlOrPlugin(context.Background(), "inv.yml", []byte(src), doc, root, Options{})
			}
			err = e
		})
		if alloc > yamlnodetest.MemCap {
			t.Fatalf("allocated %d MB", alloc>>20)
		}
		if err != nil {
			positioned(t, err)
		}
	})
}
