package diag

import (
	"fmt"
	"strings"
	"testing"
)

func TestErrorFormat(t *testing.T) {
	src := []byte("- hosts: all\n  seriall: 1\n")
	e := New(src, Pos{File: "deploy.yml", Line: 2, Col: 3}, Suggest("seriall", []string{"serial", "hosts", "tasks"}), "unknown key %q", "seriall")
	got := e.Error()
	want := "deploy.yml:2:3: unknown key \"seriall\"\n      seriall: 1\n      ^\n    did you mean \"serial\"?"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if !IsInvalidInput(fmt.Errorf("load: %w", e)) {
		t.Fatal("wrapped *Error is not invalid input")
	}
}

func TestSuggest(t *testing.T) {
	for _, c := range []struct{ word, want string }{
		{"sreial", "serial"}, {"taks", "tasks"}, {"zzzzzz", ""}, {"hots", "hosts"},
	} {
		got := Suggest(c.word, []string{"serial", "tasks", "hosts", "vars"})
		if (c.want == "") != (got == "") || (c.want != "" && !strings.Contains(got, `"`+c.want+`"`)) {
			t.Errorf("Suggest(%q) = %q, want %q", c.word, got, c.want)
		}
	}
}

func TestListSorted(t *testing.T) {
	l := List{{Pos: Pos{File: "a", Line: 3}}, {Pos: Pos{File: "a", Line: 1}}}
	err := l.Err()
	if err.(List)[0].Pos.Line != 1 {
		t.Fatal("not sorted")
	}
	if (List{}).Err() != nil {
		t.Fatal("empty list is not nil")
	}
}

func TestCollect(t *testing.T) {
	var l List
	if err := l.Collect(fmt.Errorf("wrapped: %w", &Error{Msg: "a"})); err != nil {
		t.Fatal(err)
	}
	if err := l.Collect(List{{Msg: "b"}, {Msg: "c"}}); err != nil {
		t.Fatal(err)
	}
	other := fmt.Errorf("disk on fire")
	if err := l.Collect(other); err != other {
		t.Fatalf("a non-input error was swallowed: %v", err)
	}
	if len(l) != 3 {
		t.Fatalf("collected %d, want 3", len(l))
	}
}
