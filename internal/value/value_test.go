package value

import "testing"

func TestBool(t *testing.T) {
	for _, c := range []struct {
		in     any
		want   bool
		wantOK bool
	}{
		{true, true, true}, {false, false, true},
		{"yes", true, true}, {" Y ", true, true}, {"On", true, true}, {"1", true, true}, {"TRUE", true, true}, {"t", true, true},
		{"no", false, true}, {"n", false, true}, {"off", false, true}, {"0", false, true}, {"False", false, true}, {"f", false, true},
		{1, true, true}, {0, false, true}, {int64(1), true, true}, {1.0, true, true}, {0.0, false, true},
		{2, false, false}, {"", false, false}, {"maybe", false, false}, {nil, false, false}, {[]any{}, false, false}, {0.5, false, false},
	} {
		got, ok := Bool(c.in)
		if got != c.want || ok != c.wantOK {
			t.Errorf("Bool(%#v) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.wantOK)
		}
	}
}

func FuzzParseBool(f *testing.F) {
	f.Add("yes")
	f.Fuzz(func(t *testing.T, s string) {
		b, ok := ParseBool(s)
		if !ok && b {
			t.Fatal("true without ok")
		}
	})
}

func TestTruthy(t *testing.T) {
	for _, v := range []any{true, "x", 1, int64(-1), 0.5, []any{1}, map[string]any{"a": 1}, struct{}{}} {
		if !Truthy(v) {
			t.Errorf("Truthy(%#v) = false", v)
		}
	}
	for _, v := range []any{nil, false, "", 0, 0.0, uint8(0), []any{}, map[string]any{}, []string{}} {
		if Truthy(v) {
			t.Errorf("Truthy(%#v) = true", v)
		}
	}
}
