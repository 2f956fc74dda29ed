package awsemu

import (
	"encoding/xml"
	"strconv"
	"strings"
	"time"
)

// xmlw builds response bodies; a plain builder keeps 10k-instance pages cheap.
type xmlw struct{ strings.Builder }

func (b *xmlw) raw(s string) { b.WriteString(s) }

// elem writes <tag>escaped value</tag>.
func (b *xmlw) elem(tag, val string) {
	b.WriteByte('<')
	b.WriteString(tag)
	b.WriteByte('>')
	_ = xml.EscapeText(b, []byte(val))
	b.WriteString("</")
	b.WriteString(tag)
	b.WriteByte('>')
}

// opt writes elem only for a non-empty value.
func (b *xmlw) opt(tag, val string) {
	if val != "" {
		b.elem(tag, val)
	}
}

func (b *xmlw) num(tag string, n int) { b.elem(tag, strconv.Itoa(n)) }

func (b *xmlw) boolean(tag string, v bool) { b.elem(tag, strconv.FormatBool(v)) }

func (b *xmlw) ts(tag string, t time.Time) { b.elem(tag, t.UTC().Format("2006-01-02T15:04:05.000Z")) }

func (b *xmlw) open(tag string)  { b.WriteString("<" + tag + ">") }
func (b *xmlw) close(tag string) { b.WriteString("</" + tag + ">") }
