package tui

import (
	"strings"
	"testing"
)

// TestKeymapDrawsHelpAndFooter: the help screen lists every key of every
// binding, and the footer names keys the handlers answer (one keymap).
func TestKeymapDrawsHelpAndFooter(t *testing.T) {
	h := newHarness(t, 120, 40)
	h.key("?")
	v := h.view()
	for _, b := range keys.fullHelp() {
		for _, k := range b.Keys() {
			if k == " " {
				k = "space"
			}
			if !strings.Contains(v, k) {
				t.Errorf("help screen lacks key %q (%s)", k, b.Help().Desc)
			}
		}
		if !strings.Contains(v, b.Help().Desc) {
			t.Errorf("help screen lacks %q", b.Help().Desc)
		}
	}
	h.key("?")
	if v := h.view(); !strings.Contains(v, "↑↓ select · enter log · p pause after batch · a abort · ? help") &&
		!strings.Contains(v, "up/down select") {
		t.Errorf("footer: %q", v[strings.LastIndex(v, "\n")+1:])
	}
	// Every binding answers each of its keys: a key in the help that
	// nothing handled would be a lie.
	for _, b := range keys.fullHelp() {
		for _, k := range b.Keys() {
			if !matches(keyMsg(k), b) {
				t.Errorf("binding %q does not match its key %q", b.Help().Key, k)
			}
		}
	}
}
