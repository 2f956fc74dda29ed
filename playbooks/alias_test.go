package playbooks

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ferrydeploy/ferry/internal/yamlnode/yamlnodetest"
)

// aliasPlaybook: nested anchors in play vars, then tasks and plays that
// alias them (vars, module arguments, whole task lists).
func aliasPlaybook(depth, fan, uses int, shape uint8) string {
	var b strings.Builder
	b.WriteString("- hosts: all\n  vars:\n")
	b.WriteString(yamlnodetest.Anchors("    ", depth, fan, shape))
	b.WriteString("  tasks: &tasks\n")
	for i := 0; i < uses; i++ {
		fmt.Fprintf(&b, "    - fx_debug: {msg: *l%d}\n", depth)
	}
	b.WriteString("- hosts: all\n  tasks: *tasks\n")
	return b.String()
}

func TestAliasFanOutStops(t *testing.T) {
	src := aliasPlaybook(5, 10, 300, 0)
	var err error
	alloc := yamlnodetest.Allocated(func() { _, err = Parse("pb.yml", []byte(src)) })
	if err == nil || !strings.Contains(err.Error(), "too large") || !strings.Contains(err.Error(), "pb.yml:") {
		t.Fatalf("err = %v", err)
	}
	if alloc > 256<<20 {
		t.Fatalf("allocated %d MB before stopping", alloc>>20)
	}
	if _, err := Parse("pb.yml", []byte(aliasPlaybook(2, 4, 10, 2))); err != nil {
		t.Fatal(err)
	}
}

// FuzzAliasFanOut: alias-heavy playbooks load or fail with a positioned
// error, within the memory cap.
func FuzzAliasFanOut(f *testing.F) {
	f.Add(uint8(5), uint8(10), uint16(300), uint8(0))
	f.Add(uint8(9), uint8(2), uint16(2000), uint8(2))
	f.Add(uint8(3), uint8(25), uint16(50), uint8(1))
	f.Fuzz(func(t *testing.T, depth, fan uint8, uses uint16, shape uint8) {
		src := aliasPlaybook(int(depth%10), int(fan%40)+1, int(uses%3000), shape)
		var err error
		alloc := yamlnodetest.Allocated(func() { _, err = Parse("pb.yml", []byte(src)) })
		if alloc > yamlnodetest.MemCap {
			t.Fatalf("allocated %d MB", alloc>>20)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "pb.yml:") {
			t.Fatalf("unpositioned: %v", err)
		}
	})
}
