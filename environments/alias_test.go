package environments

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ferrydeploy/ferry/internal/yamlnode/yamlnodetest"
)

// FuzzAliasFanOut: a ferry.yml whose environments alias nested anchors
// loads or fails with a positioned error, within the memory cap.
func FuzzAliasFanOut(f *testing.F) {
	f.Add(uint8(5), uint8(10), uint16(200), uint8(0))
	f.Add(uint8(3), uint8(4), uint16(5), uint8(2))
	f.Fuzz(func(t *testing.T, depth, fan uint8, uses uint16, shape uint8) {
		d := int(depth % 10)
		var b strings.Builder
		b.WriteString("anchors:\n")
		b.WriteString(yamlnodetest.Anchors("  ", d, int(fan%40)+1, shape))
		b.WriteString("environments:\n")
		for i := 0; i < int(uses%2000); i++ {
			fmt.Fprintf(&b, "  e%d: {inventory: x, vars: {v: *l%d}}\n", i, d)
		}
		var err error
		alloc := yamlnodetest.Allocated(func() { _, err = Parse("ferry.yml", []byte(b.String())) })
		if alloc > yamlnodetest.MemCap {
			t.Fatalf("allocated %d MB", alloc>>20)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "ferry.yml:") {
			t.Fatalf("unpositioned: %v", err)
		}
	})
}
