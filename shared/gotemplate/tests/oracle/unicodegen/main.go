// Command unicodegen prints the Rust range tables for the Unicode predicates the
// template engine needs, computed by calling Go's own predicates on every code point:
//
//	go run ./unicodegen > ../../src/unicode_tables.rs
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"unicode"
)

func ranges(pred func(rune) bool) [][2]rune {
	var out [][2]rune
	start := rune(-1)
	for r := rune(0); r <= unicode.MaxRune+1; r++ {
		in := r <= unicode.MaxRune && pred(r)
		if in && start < 0 {
			start = r
		}
		if !in && start >= 0 {
			out = append(out, [2]rune{start, r - 1})
			start = -1
		}
	}
	return out
}

func emit(b *strings.Builder, name, doc string, pred func(rune) bool) {
	rs := ranges(pred)
	fmt.Fprintf(b, "/// %s\n#[rustfmt::skip]\npub(crate) static %s: &[(u32, u32)] = &[\n", doc, name)
	for i, r := range rs {
		if i%6 == 0 {
			b.WriteString("   ")
		}
		fmt.Fprintf(b, " (0x%X, 0x%X),", r[0], r[1])
		if i%6 == 5 || i == len(rs)-1 {
			b.WriteString("\n")
		}
	}
	b.WriteString("];\n\n")
}

func main() {
	var b strings.Builder
	b.WriteString("//! Unicode range tables generated from Go's own predicates by\n")
	b.WriteString("//! `shared/gotemplate/tests/oracle/unicodegen`. Do not edit.\n\n")
	emit(&b, "LETTER", "Go's `unicode.IsLetter`.", unicode.IsLetter)
	emit(&b, "DIGIT", "Go's `unicode.IsDigit`.", unicode.IsDigit)
	emit(&b, "PRINT", "Go's `strconv.IsPrint` (same as `unicode.IsPrint`).", strconv.IsPrint)
	emit(&b, "SPACE", "Go's `unicode.IsSpace`.", unicode.IsSpace)
	os.Stdout.WriteString(strings.TrimRight(b.String(), "\n") + "\n")
}
