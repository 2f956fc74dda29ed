package ec2

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/internal/yamlnode/yamlnodetest"
)

// FuzzAliasFanOut: aws_ec2 options whose anchors fan out load or fail with
// a positioned error, within the memory cap.
func FuzzAliasFanOut(f *testing.F) {
	f.Add(uint8(6), uint8(10), uint16(2000), uint8(0))
	f.Add(uint8(3), uint8(4), uint16(20), uint8(1))
	f.Fuzz(func(t *testing.T, depth, fan uint8, uses uint16, shape uint8) {
		var b strings.Builder
		b.WriteString("plugin: aws_ec2\nkeyed_groups:\n  - key: tags.Role\n    anchors:\n")
		b.WriteString(yamlnodetest.Anchors("      ", int(depth%10), int(fan%40)+1, shape))
		b.WriteString("regions:\n")
		for i := 0; i < int(uses%3000); i++ {
			fmt.Fprintf(&b, "  - *l%d\n", depth%10)
		}
		var err error
		alloc := yamlnodetest.Allocated(func() { _, err = parseConfig("f.yml", []byte(b.String()), nil) })
		if alloc > yamlnodetest.MemCap {
			t.Fatalf("allocated %d MB", alloc>>20)
		}
		if err != nil && !diag.IsInvalidInput(err) {
			t.Fatalf("error is not invalid input: %v", err)
		}
	})
}
