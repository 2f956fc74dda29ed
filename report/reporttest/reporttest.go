// Package reporttest checks a page written by package report in a real
// headless browser, for the report's own tests and the CLI's lab tests.
package reporttest

import (
	"os"
	"strings"
	"testing"

	"github.com/ferrydeploy/ferry/internal/testrig/browsertest"
)

// CheckPage asserts what every report must show in a browser: hosts maps
// each host to its status; failed names a host whose bar must be marked
// and link to its output ("" none).
func CheckPage(t *testing.T, path string, hosts map[string]string, failed string) {
	t.Helper()
	url := "file://" + path
	p := browsertest.Open(t, url, 1200, 800)
	var rows []struct {
		Host, Status, Class string
	}
	p.Eval(t, `Array.from(document.querySelectorAll('#timeline g.row.host')).map(g => ({Host: g.dataset.host, Status: g.dataset.status, Class: g.getAttribute('class')}))`, &rows)
	if len(rows) != len(hosts) {
		t.Fatalf("%d host rows in the timeline, want %d: %+v", len(rows), len(hosts), rows)
	}
	for _, r := range rows {
		want, ok := hosts[r.Host]
		if !ok || r.Status != want {
			t.Errorf("row %s: status %q, want %q", r.Host, r.Status, want)
		}
		if marked := strings.Contains(r.Class, "failed"); marked != (r.Host == failed) {
			t.Errorf("row %s: class %q", r.Host, r.Class)
		}
	}
	if os.Getenv("FERRY_REPORT_SCREENSHOT") != "" {
		p.Screenshot(t, os.Getenv("FERRY_REPORT_SCREENSHOT")) // before the click below scrolls to the output
	}
	if failed != "" {
		var link struct {
			Href, Target string
			Marked       bool
		}
		p.Eval(t, `(() => {
			const g = document.querySelector('#timeline g.row.host[data-host="`+failed+`"]');
			const a = g.querySelector('a.failedlink');
			if (!a) return {Href: "", Target: "", Marked: false};
			const href = a.getAttribute('href');
			const target = document.getElementById(href.slice(1));
			const bar = a.querySelector('rect');
			return {Href: href, Target: target ? target.dataset.host : "", Marked: getComputedStyle(bar).fill === 'rgb(194, 59, 59)' || getComputedStyle(bar).stroke === 'rgb(194, 59, 59)'};
		})()`, &link)
		if link.Target != failed || !link.Marked {
			t.Errorf("failed host %s: link %+v, want a red bar linking to its output", failed, link)
		}
		// A click on the failed bar (dispatched to it: a short task's bar
		// may be a few pixels wide under its neighbours) follows the link.
		var hash string
		p.Eval(t, `(() => {
			const bar = document.querySelector('#timeline g.row.host[data-host="`+failed+`"] a.failedlink rect');
			bar.dispatchEvent(new MouseEvent('click', {bubbles: true, cancelable: true}));
			return location.hash;
		})()`, &hash)
		if hash != link.Href {
			t.Errorf("clicking the failed bar went to %q, want %q", hash, link.Href)
		}
	}
	if probs := p.Problems(); len(probs) > 0 {
		t.Errorf("console problems: %q", probs)
	}
	for _, u := range p.Requests() {
		if u != url {
			t.Errorf("the page fetched %s: a report must be self-contained", u)
		}
	}
}
