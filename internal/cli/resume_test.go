package cli

import (
	"fmt"
	"strings"
	"testing"
)

func TestResumeArgs(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"run pb.yml --resume", "[run pb.yml --resume=last]"},
		{"run --resume pb.yml", "[run --resume=last pb.yml]"},
		{"run pb.yml --resume 20260611-101500-7f3a2c -e v=1", "[run pb.yml --resume=20260611-101500-7f3a2c -e v=1]"},
		{"run pb.yml --resume=20260611-101500-7f3a2c", "[run pb.yml --resume=20260611-101500-7f3a2c]"},
		{"exec -- echo --resume", "[exec -- echo --resume]"},
	} {
		if got := fmt.Sprint(resumeArgs(strings.Fields(c.in))); got != c.want {
			t.Errorf("%q → %s, want %s", c.in, got, c.want)
		}
	}
}
