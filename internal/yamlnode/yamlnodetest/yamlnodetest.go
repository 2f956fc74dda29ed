// Package yamlnodetest builds alias-heavy YAML for the loaders' tests and
// fuzz targets, and measures what loading it allocates.
package yamlnodetest

import (
	"fmt"
	"runtime"
	"strings"
)

// MemCap is what loading one fuzzed document may allocate in all.
const MemCap = 512 << 20

// Anchors writes, at indent, the keys l0..l<depth>: l0 a small mapping,
// each next one fan aliases of the previous, as a sequence (shape 0), a
// mapping (1) or merge keys (2). Alias l<depth> expands to about fan^depth nodes.
func Anchors(indent string, depth, fan int, shape uint8) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%sl0: &l0 {k: v, n: [1, 2, 3]}\n", indent)
	for i := 1; i <= depth; i++ {
		switch shape % 3 {
		case 0:
			fmt.Fprintf(&b, "%sl%d: &l%d [%s]\n", indent, i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d, ", i-1), fan), ", "))
		case 1:
			fmt.Fprintf(&b, "%sl%d: &l%d {", indent, i, i)
			for j := 0; j < fan; j++ {
				fmt.Fprintf(&b, "k%d: *l%d, ", j, i-1)
			}
			b.WriteString("z: 0}\n")
		case 2:
			fmt.Fprintf(&b, "%sl%d: &l%d {<<: [*l%d], m%d: *l%d}\n", indent, i, i, i-1, i, i-1)
		}
	}
	return b.String()
}

// Allocated runs f and returns the bytes it allocated (all goroutines).
func Allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
