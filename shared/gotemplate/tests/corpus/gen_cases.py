#!/usr/bin/env python3
"""Generates cases.jsonl: templates covering Go text/template features and edge cases.

Expected results come from the Go oracle (../oracle):
    python3 gen_cases.py > cases.jsonl
    (cd ../oracle && go run .) < cases.jsonl > expected.jsonl
"""
import json

V = {"A": "alpha", "B": "", "C": "gamma", "N": "3", "Name": "h\u00e9llo", "Z": "0",
     "S": "a,b,c", "Q": "it's \"q\" <b>&", "U": "a b/c?d=e&f", "T": "true", "F": "false",
     "Sp": " ", "Ctl": "\x01\t\n\x7f", "Emo": "\U0001F600x", "NUL": "a\x00b"}
M = {"X": "1", "Y": "2", "Z": "3"}
cases = []


def add(cat, tmpl, values=None, name=None):
    n = f"{cat}/{len([c for c in cases if c['name'].startswith(cat + '/')]):03d}"
    if name:
        n = f"{cat}/{name}"
    cases.append({"name": n, "template": tmpl, "values": V if values is None else values})


# --- text, values, missing keys
for t in ["", "plain", "FROM alpine\r\nRUN x\r\n", "{{.A}}", "{{.B}}[]", "{{.Missing}}", "{{.}}", "{{$}}",
          "{{$.A}}", "{{.A}}{{.C}}", "a{{.Name}}b", "{{.Emo}}", "{{.NUL}}", "{{.Ctl}}", "{{ .A }}", "{{.A.B}}",
          "{{.Missing.B}}", "{{$.Missing.X}}", "{{.A 1}}", "{{1 | .A}}", "{{.a}}", "{{._x}}", "{{.\u00e9}}",
          "{{.\u65e5\u672c}}", "{{ . }}", "{{.A|print}}", "{{(.A)}}", "{{(.).A}}", "{{(.A).B}}", "{{(.Missing).X}}",
          "{{$x := .}}{{$x.A}}", "{{$x := .A}}{{$x.B}}", "{{with $x := .A}}{{$x}}{{end}}", "{{.A.}}", "{{..A}}",
          "{{.A..B}}", "{{.1}}", "{{.A-B}}", "{{.A_B}}", "{{index . \"a b\"}}", "{{print .}}", "{{printf \"%v\" .}}",
          "{{len .}}", "{{if .}}y{{end}}", "{{with .}}{{.A}}{{end}}", "{{$}}{{$.A}}{{$.B}}"]:
    add("value", t)
add("value", "{{.}}", {})
add("value", "{{len .}}", {})
add("value", "{{range .}}x{{else}}empty{{end}}", {})
add("value", "{{.}}", {"b": "2", "a": "1", "": "e", "A": "c", "\u00e9": "x", "a b": "s", "Z": "z"})
add("value", "{{index . \"\"}}|{{index . \"a b\"}}", {"": "e", "a b": "s"})

# --- trim markers and comments
for t in ["a {{- .A}} b", "a {{.A -}} b", "a {{- .A -}} b", "a\n\t {{- .A -}} \n\tb", "a{{-.A}}b", "a{{.A-}}b",
          "a {{-3}} b", "a {{- 3}} b", "a {{3 -}} b", "{{- -}}", "{{-}}", "{{- }}", "{{ -}}", "a \u00a0{{- .A}}",
          "a\u2003{{- .A}}", "a \v{{- .A}}", "a \f{{- .A}}", "x\r\n{{- .A -}}\r\ny", "{{ - .A}}", "{{.A - }}",
          "{{- .A -}}", "a {{- /* c */}} b", "a {{/* c */ -}} b", "a {{- /* c */ -}} b", "a{{/* c */}}b",
          "a{{/*c*/}}b", "a{{ /* c */}}b", "a{{/* c */ }}b", "a{{/* c */}", "a{{/* c", "a{{/* c */ .A}}b",
          "{{/* a */}}{{/* b */}}", "{{/* {{.A}} */}}", "{{/*\n multi\n line\n */}}x", "{{-/* c */}}",
          "{{- /* c */}}", "{{/* c */-}}", "a {{- /* c */ -}}\n\n b", "{{/* */}}", "{{/**/}}", "{{/* c */}}{{.A}}",
          "{{.A /* c */}}", "x {{- if .A}} y {{- end}} z", "{{if .A -}}\n  yes\n{{- end}}", "a {{- \"x\" -}} b",
          "{{-\t.A\t-}}", "{{-\n.A\n-}}", "{{-\r.A\r-}}", "a  {{-  .A  -}}  b", "{{3 -}}4", "{{3 - }}",
          "{{.A -}}{{- .C}}", "{{- .A}}", "\n\n{{- .A}}", "{{.A -}}\n\n"]:
    add("trim", t)

# --- if / else
for t in ["{{if .A}}y{{end}}", "{{if .B}}y{{else}}n{{end}}", "{{if .Missing}}y{{else}}n{{end}}", "{{if .Z}}y{{end}}",
          "{{if 0}}y{{else}}n{{end}}", "{{if 1}}y{{end}}", "{{if 0.0}}y{{else}}n{{end}}", "{{if \"\"}}y{{else}}n{{end}}",
          "{{if true}}y{{end}}", "{{if false}}y{{else}}n{{end}}", "{{if nil}}y{{end}}", "{{if .}}y{{end}}",
          "{{if 0i}}y{{else}}n{{end}}", "{{if 1i}}y{{end}}", "{{if .B}}1{{else if .A}}2{{end}}",
          "{{if .B}}1{{else if .B}}2{{else}}3{{end}}", "{{if .A}}{{else}}{{end}}x", "{{if}}x{{end}}",
          "{{if .A}}x", "{{if .A}}x{{else}}", "{{if .A}}x{{else}}y{{else}}z{{end}}", "{{else}}", "{{end}}",
          "x{{end}}y", "{{if .A}}{{end}}{{end}}", "{{if .A}}x{{else if}}y{{end}}", "{{if .A}}x{{else with .B}}y{{end}}",
          "{{if $x := .A}}{{$x}}{{end}}", "{{if $x := .A}}{{end}}{{$x}}", "{{if .A}}{{$x := 1}}{{$x}}{{end}}",
          "{{if .B}}{{$x := 1}}{{else}}{{$x}}{{end}}", "{{if .A}}{{$x := 1}}{{else}}{{$x}}{{end}}",
          "{{if .A}}a{{else}}b{{end}}{{if .B}}c{{else}}d{{end}}", "{{if not .B}}nb{{end}}",
          "{{if and .A .C}}both{{end}}", "{{if or .B .Z}}one{{end}}", "{{if eq .A \"alpha\"}}eq{{end}}",
          "{{if .A}}{{if .B}}x{{else}}y{{end}}{{end}}", "{{ if .A }}sp{{ else }}no{{ end }}",
          "{{if .A}}x{{ else  if .B }}y{{end}}", "{{if .A}}x{{else}}{{if .B}}y{{end}}{{end}}",
          "{{if .A 1}}x{{end}}", "{{if (.A)}}x{{end}}", "{{if .A | not}}x{{else}}y{{end}}",
          "{{if .A}}x{{end", "{{if .A}}x{{end }}", "{{if .A}}x{{end x}}", "{{if .A}}x{{else x}}y{{end}}",
          "{{if 'a'}}ch{{end}}", "{{if index .A 0}}b{{end}}", "{{if .A}}\n{{.A}}\n{{end}}"]:
    add("if", t)

# --- with
for t in ["{{with .A}}{{.}}{{end}}", "{{with .B}}x{{else}}empty{{end}}", "{{with .Missing}}x{{else}}m{{end}}",
          "{{with $v := .A}}{{$v}}{{.}}{{end}}", "{{with .A}}{{$.C}}{{end}}", "{{with .A}}{{.B}}{{end}}",
          "{{with .B}}1{{else with .A}}2{{.}}{{end}}", "{{with .B}}1{{else with .B}}2{{else}}3{{end}}",
          "{{with .B}}1{{else if .A}}2{{end}}", "{{with 0}}x{{else}}zero{{end}}", "{{with 3}}{{.}}{{end}}",
          "{{with .}}{{len .}}{{end}}", "{{with}}x{{end}}", "{{with .A}}x", "{{with $x, $y := .A}}x{{end}}",
          "{{with .A}}{{with .C}}{{.}}{{end}}{{.}}{{end}}", "{{with print .A .C}}{{.}}{{end}}",
          "{{with .A}}{{else}}{{.}}{{end}}", "{{with $x := 0}}a{{else}}{{$x}}{{end}}", "{{with nil}}x{{end}}",
          "{{with 1.5}}{{.}}{{end}}", "{{with eq 1 1}}{{.}}{{end}}", "{{with (index .A 1)}}{{.}}{{end}}"]:
    add("with", t)

# --- range
for t in ["{{range .}}{{.}},{{end}}", "{{range $k, $v := .}}{{$k}}={{$v}};{{end}}", "{{range $v := .}}{{$v}}{{end}}",
          "{{range 3}}x{{end}}", "{{range $i := 3}}{{$i}}{{end}}", "{{range $i, $j := 3}}x{{end}}", "{{range 0}}x{{else}}e{{end}}",
          "{{range -2}}x{{else}}neg{{end}}", "{{range .A}}x{{end}}", "{{range .B}}x{{else}}e{{end}}",
          "{{range .Missing}}x{{else}}e{{end}}", "{{range 1.5}}x{{end}}", "{{range true}}x{{end}}", "{{range nil}}x{{end}}",
          "{{range 2i}}x{{end}}", "{{range index .A 0}}.{{end}}", "{{range $i := index .N 0}}{{$i}}{{end}}",
          "{{range $i, $c := index .N 0}}x{{end}}", "{{range len .A}}{{.}}{{end}}", "{{range}}x{{end}}",
          "{{range .}}x", "{{range $k, $v, $w := .}}x{{end}}", "{{range $k,}}x{{end}}", "{{range $k, 3}}x{{end}}",
          "{{range $k, $v = .}}x{{end}}", "{{$k := 0}}{{$v := 0}}{{range $k, $v = .}}{{end}}{{$k}}{{$v}}",
          "{{$i := 9}}{{range $i = 3}}{{end}}{{$i}}", "{{range $i := 3}}{{end}}{{$i}}", "{{range $i := 3}}{{$i}}{{else}}{{$i}}{{end}}",
          "{{range .}}{{$x := .}}{{end}}{{$x}}", "{{range .}}{{.X}}{{end}}", "{{range $k, $v := .}}{{$.A}}{{end}}",
          "{{range 2}}{{range 2}}x{{end}}{{end}}", "{{range $i := 3}}{{if eq $i 1}}{{break}}{{end}}{{$i}}{{end}}",
          "{{range $i := 3}}{{if eq $i 1}}{{continue}}{{end}}{{$i}}{{end}}", "{{range 3}}{{break}}{{end}}x",
          "{{range 3}}{{continue}}x{{end}}y", "{{continue}}", "{{if .A}}{{break}}{{end}}",
          "{{range 2}}{{else}}{{break}}{{end}}", "{{range 2}}{{break 1}}{{end}}", "{{range 2}}{{break}}{{end}}{{break}}",
          "{{range $i := 3}}{{range $j := 3}}{{if eq $j 1}}{{break}}{{end}}{{$i}}{{$j}} {{end}}{{end}}",
          "{{range 3}}{{with 1}}{{break}}{{end}}x{{end}}y", "{{range $i := 5}}{{if lt $i 2}}{{continue}}{{end}}{{if gt $i 3}}{{break}}{{end}}{{$i}}{{end}}",
          "{{range $x := .}}{{$x}}{{end}}", "{{range . | len}}{{.}}{{end}}", "{{range $i := 3}}{{$i = 7}}{{$i}}{{end}}",
          "{{range $i, $v := .}}{{$i}}{{$v}}{{end}}", "{{range 3}}{{.}}{{end}}", "{{range 'a'}}{{end}}done",
          "{{range 100000000000}}{{break}}{{end}}ok", "{{range $i := 10}}{{if eq $i 3}}{{break}}{{end}}{{end}}{{len .}}",
          "{{range .}}{{else}}x{{else}}y{{end}}", "{{range .A}}{{else}}e{{end}}", "{{range (.)}}{{.}}{{end}}",
          "{{range $i := 3}}{{print $i}}{{end}}", "{{range print 3}}x{{end}}"]:
    add("range", t, M if "$k" in t or "range ." in t else None)
add("range", "{{range .}}{{.}};{{end}}", {"b": "2", "a": "1", "\u00e9": "3", "Z": "0", "a b": "4", "": "5"})
add("range", "{{range $k, $v := .}}{{$k}}{{end}}", {"b": "", "a": ""})
add("range", "{{range $i := 3}}{{.}}{{end}}", {})

# --- variables
for t in ["{{$x := 1}}{{$x}}", "{{$x := 1}}{{$x = 2}}{{$x}}", "{{$x = 2}}", "{{$x}}", "{{$x := 1}}{{$x := 2}}{{$x}}",
          "{{$x := .A}}{{$x}}", "{{$x := 1}}{{$y := $x}}{{$y}}", "{{$ := 1}}", "{{$x := 1}}{{$x.A}}", "{{$.A}}",
          "{{$x := 1}}", "{{$x, $y := 1}}", "{{$x := 1 2}}", "{{$x := }}", "{{$x :=}}", "{{$x:=1}}{{$x}}",
          "{{$x=1}}", "{{$x := 1}}{{$x=2}}{{$x}}", "{{$x := 1}}{{if .A}}{{$x = 2}}{{end}}{{$x}}",
          "{{$x := 1}}{{with .A}}{{$x := 2}}{{end}}{{$x}}", "{{$x := 1}}{{range 2}}{{$x = 5}}{{end}}{{$x}}",
          "{{$1 := 3}}{{$1}}", "{{$_ := 3}}{{$_}}", "{{$\u00e9 := 3}}{{$\u00e9}}", "{{$x := $}}{{$x.A}}",
          "{{$x := (print 1 2)}}{{$x}}", "{{$x := 1 | print}}{{$x}}", "{{$x := .A | printf \"%s!\"}}{{$x}}",
          "{{ $x := 1 }}{{ $x }}", "{{$x := 1}}{{($x)}}", "{{$x := 1}}{{$x 2}}", "{{$x := 1}}{{2 | $x}}",
          "{{$x := and nil 1}}{{$x}}", "{{$x := and nil 1}}{{$x.A}}", "{{$x := and nil 1}}{{print $x}}",
          "{{(($x := 1))}}{{$x}}", "{{print ($x := 2) $x}}", "{{$x := 1}}{{$x := $x}}{{$x}}",
          "{{$x.y := 1}}", "{{$x := 1}}{{$x. }}", "{{$-x := 1}}", "{{$x := \"a\"}}{{$x = 1}}{{$x}}",
          "{{$x}}{{$x := 1}}", "{{if true}}{{$x := 1}}{{end}}{{$x}}", "{{range $i := 2}}{{end}}{{$i}}"]:
    add("var", t)

# --- pipelines and parens
for t in ["{{.A | print}}", "{{.A | printf \"%s-%s\" .C}}", "{{.A | len}}", "{{.A | len | print}}", "{{.A |}}",
          "{{| .A}}", "{{.A || print}}", "{{.A | 1}}", "{{.A | \"x\"}}", "{{.A | .}}", "{{.A | nil}}", "{{.A | true}}",
          "{{.A | (print)}}", "{{.A | $}}", "{{.A | .C}}", "{{.A | $.C}}", "{{1 | print 2}}", "{{(1)}}", "{{((1))}}",
          "{{(1) 2}}", "{{(print 1) (print 2)}}", "{{print (print 1) (print 2)}}", "{{(print 1}}", "{{print 1)}}",
          "{{()}}", "{{( )}}", "{{print (.A | len)}}", "{{(.A | len | print) | len}}", "{{print .A .C | len}}",
          "{{\"a\" | printf \"%s%s\" \"b\"}}", "{{print 1 | print 2 | print 3}}", "{{ .A|print }}",
          "{{.A|print|print}}", "{{print|print}}", "{{(print|print)}}", "{{(print 1).X}}", "{{(index . \"A\")}}",
          "{{(.)}}", "{{(.) | len}}", "{{print(1)}}", "{{print (1)(2)}}", "{{print 1(2)}}", "{{(1)(2)}}",
          "{{print \"a\"\"b\"}}", "{{print \"a\" \"b\"}}", "{{print 1 2}}", "{{print .A.B}}", "{{print nil}}",
          "{{nil}}", "{{print nil | print}}", "{{true}}", "{{false | not}}", "{{.A | not}}", "{{1 2}}",
          "{{\"a\" 2}}", "{{. 1}}", "{{nil 1}}", "{{true 1}}", "{{print | len}}", "{{len}}", "{{.A | print | len | eq 5}}",
          "{{(len .A) | eq 5}}", "{{print(.A)}}", "{{print ( .A ) }}", "{{print (\n.A\n)}}", "{{\n.A\n}}",
          "{{.A\n|\nprint}}", "{{print\t.A}}", "{{print,.A}}", "{{print .A,}}", "{{print .A;}}", "{{print @}}",
          "{{print #}}", "{{print .A=}}", "{{.A=1}}", "{{= 1}}", "{{:= 1}}", "{{print .A :}}", "{{print :=}}",
          "{{\u00e9}}", "{{print \u00e9}}", "{{print \u00a0}}", "{{.A\u00a0}}", "{{print .A\u200b}}"]:
    add("pipe", t)

# --- literals
for t in ["{{1}}", "{{-1}}", "{{+1}}", "{{0}}", "{{-0}}", "{{007}}", "{{08}}", "{{0x1F}}", "{{0X1f}}", "{{0o17}}",
          "{{0O17}}", "{{0b101}}", "{{0B101}}", "{{1_000}}", "{{1__0}}", "{{_1}}", "{{1_}}", "{{0x_1}}", "{{0_7}}",
          "{{1.5}}", "{{-1.5}}", "{{.5}}", "{{5.}}", "{{1e3}}", "{{1E3}}", "{{1e-3}}", "{{1e+3}}", "{{1.5e3}}",
          "{{1e21}}", "{{1e20}}", "{{123456789.0}}", "{{1234567.0}}", "{{123456.0}}", "{{0.0001}}", "{{0.00001}}",
          "{{1e100}}", "{{1e400}}", "{{1e-400}}", "{{0x1p4}}", "{{0x1p-2}}", "{{0x1.8p1}}", "{{0x1.8}}", "{{0x1e3}}",
          "{{-0x1e}}", "{{0x}}", "{{0b}}", "{{0b2}}", "{{0o8}}", "{{09}}", "{{09.5}}", "{{1.2.3}}", "{{1e}}",
          "{{1e+}}", "{{1i}}", "{{2.5i}}", "{{0i}}", "{{-1i}}", "{{1+2i}}", "{{1-2i}}", "{{1.5+0i}}", "{{1+2}}",
          "{{1i+2i}}", "{{0x10i}}", "{{9223372036854775807}}", "{{9223372036854775808}}", "{{-9223372036854775808}}",
          "{{-9223372036854775809}}", "{{18446744073709551615}}", "{{18446744073709551616}}", "{{0xFFFFFFFFFFFFFFFF}}",
          "{{99999999999999999999}}", "{{1e19}}", "{{'a'}}", "{{'\\n'}}", "{{'\\x41'}}", "{{'\\101'}}", "{{'\\u00e9'}}",
          "{{'\\U0001F600'}}", "{{'\u00e9'}}", "{{''}}", "{{'ab'}}", "{{'\\''}}", "{{'\"'}}", "{{'\\\"'}}", "{{'\\q'}}",
          "{{'a}}", "{{'\\400'}}", "{{'\\xff'}}", "{{'\\uD800'}}", "{{\"a\"}}", "{{\"\"}}", "{{\"a\\nb\"}}",
          "{{\"\\x41\\101\\u00e9\"}}", "{{\"\\xff\"}}", "{{\"\\q\"}}", "{{\"\\'\"}}", "{{\"a}}", "{{\"a\nb\"}}",
          "{{`raw\\n`}}", "{{`a\nb`}}", "{{`a\r\nb`}}", "{{`a}}", "{{``}}", "{{\"\\U0010FFFF\"}}", "{{\"\\U00110000\"}}",
          "{{\"\\ud800\"}}", "{{true}}", "{{false}}", "{{True}}", "{{nil}}", "{{.true}}", "{{print true false}}",
          "{{print 1.0 2.50 1e6 1e-7}}", "{{print -0.0}}", "{{print 0x10 0o10 0b10 010}}", "{{1.}}", "{{+.5}}",
          "{{-.5e-3}}", "{{1_000.000_1}}", "{{0x_1p0}}", "{{1e1_0}}", "{{0.1e_1}}", "{{1ea}}", "{{12abc}}",
          "{{1.5.A}}", "{{\"a\".A}}", "{{true.A}}", "{{nil.A}}", "{{..}}", "{{.A.1}}", "{{+}}", "{{-}}", "{{.}}{{-.5}}",
          "{{print 'a' 'b'}}", "{{printf \"%c\" 'x'}}", "{{printf \"%T\" 'x'}}", "{{printf \"%T %T %T %T\" 1 1.0 1i \"s\"}}",
          "{{printf \"%T\" 1e3}}", "{{printf \"%T\" 0x1e3}}", "{{printf \"%T\" -0x1e}}", "{{printf \"%T\" 0x1p4}}",
          "{{printf \"%v\" 1e6}}", "{{printf \"%T\" 1.5+0i}}"]:
    add("lit", t)

# --- builtin functions
for t in ["{{and}}", "{{and 1}}", "{{and 1 2}}", "{{and 0 2}}", "{{and 1 0 2}}", "{{and .A .B .C}}", "{{and .A .C}}",
          "{{and nil 1}}", "{{or}}", "{{or 0}}", "{{or 0 \"\" 3}}", "{{or .B .A}}", "{{or 1 (call .A)}}",
          "{{and 0 (call .A)}}", "{{and 1 (call .A)}}", "{{or .B .Missing}}", "{{\"x\" | and 1}}", "{{\"x\" | and 0}}",
          "{{0 | or 1}}", "{{0 | or}}", "{{not}}", "{{not 1}}", "{{not 0}}", "{{not .A}}", "{{not .B}}", "{{not 1 2}}",
          "{{not nil}}", "{{not .}}", "{{len .A}}", "{{len .Name}}", "{{len .B}}", "{{len 3}}", "{{len nil}}",
          "{{len .Emo}}", "{{len 1 2}}", "{{len (index .A 0)}}", "{{index .A 0}}", "{{index .A 4}}", "{{index .A 5}}",
          "{{index .A -1}}", "{{index .A 1.0}}", "{{index .A \"x\"}}", "{{index .A nil}}", "{{index . \"A\"}}",
          "{{index . \"Nope\"}}", "{{index . 1}}", "{{index . nil}}", "{{index .}}", "{{index}}", "{{index nil 1}}",
          "{{index .A 0 0}}", "{{index . \"A\" 1}}", "{{index . \"A\" 1 0}}", "{{index 1 1}}", "{{index .Name 1}}",
          "{{index .A (index .A 0)}}", "{{index .A (len .B)}}", "{{printf \"%T\" (index .A 0)}}", "{{slice .A}}",
          "{{slice .A 1}}", "{{slice .A 1 3}}", "{{slice .A 1 1}}", "{{slice .A 3 1}}", "{{slice .A 0 5}}",
          "{{slice .A 0 6}}", "{{slice .A 1 2 3}}", "{{slice .A 1 2 3 4}}", "{{slice .Name 1 2}}", "{{slice .Name 2}}",
          "{{slice . 1}}", "{{slice nil}}", "{{slice 1}}", "{{slice .A -1}}", "{{slice .A \"1\"}}", "{{slice}}",
          "{{slice .Emo 1}}", "{{slice .Emo 0 2}}", "{{slice .A (index .A 4)}}", "{{len (slice .Name 0 2)}}",
          "{{call}}", "{{call .A}}", "{{call nil}}", "{{call 1}}", "{{call .}}", "{{call print}}", "{{if false}}{{call .A}}{{end}}ok",
          "{{print}}", "{{print 1}}", "{{print 1 2}}", "{{print \"a\" \"b\"}}", "{{print \"a\" 1 \"b\"}}", "{{print 1 \"a\" 2}}",
          "{{print 1 2 \"c\" 3 4}}", "{{print .}}", "{{print nil nil}}", "{{print 1.5 true}}", "{{print (index .A 0) 1}}",
          "{{println}}", "{{println 1 2}}", "{{println \"a\" \"b\"}}", "{{println .A}}", "{{html .Q}}", "{{html \"<a href='x'>\" 1}}",
          "{{html .NUL}}", "{{html 1 2}}", "{{html}}", "{{html nil}}", "{{html .}}", "{{html \"a\" \"b\"}}", "{{js .Q}}",
          "{{js .Ctl}}", "{{js .Name}}", "{{js \"\\u2028\\u00a0\\u00ad\"}}", "{{js \"=&<>`\\\\\"}}", "{{js nil}}",
          "{{js 1 \"a\"}}", "{{js .Emo}}", "{{js (slice .Name 1 2)}}", "{{js \"\\x7f\"}}", "{{urlquery .U}}",
          "{{urlquery .Name}}", "{{urlquery \"a+b c~d_e.f-g\"}}", "{{urlquery 1 2}}", "{{urlquery nil}}",
          "{{urlquery .Q}}", "{{urlquery}}", "{{default \"x\" .A}}", "{{if false}}{{nope}}{{end}}", "{{printf}}",
          "{{printf 1}}", "{{printf nil}}", "{{printf .}}", "{{printf .A}}", "{{printf true}}", "{{printf (index .A 0)}}",
          "{{1 | printf}}", "{{\"%d\" | printf}}", "{{printf \"%d\" | printf}}", "{{template}}", "{{break}}",
          "{{print break}}", "{{print if}}", "{{print end}}", "{{print else}}", "{{print range}}", "{{print with}}",
          "{{print define}}", "{{print block}}", "{{print template}}", "{{print continue}}", "{{print .if}}",
          "{{print .range}}", "{{len.A}}", "{{print.A}}", "{{and.A}}", "{{html .A | len}}", "{{urlquery .A .C | js}}"]:
    add("func", t)

# --- comparisons
for t in ["{{eq 1 1}}", "{{eq 1 2}}", "{{eq 1}}", "{{eq}}", "{{eq 1 2 1}}", "{{eq 1 \"a\" 1}}", "{{eq 1 1 \"a\"}}",
          "{{eq .A \"alpha\"}}", "{{eq .A .C}}", "{{eq .A 1}}", "{{eq 1 1.0}}", "{{eq 1.0 1.0}}", "{{eq 1i 1i}}",
          "{{eq true true}}", "{{eq true 1}}", "{{eq nil nil}}", "{{eq .A nil}}", "{{eq nil .A}}", "{{eq . .}}",
          "{{eq . nil}}", "{{eq nil .}}", "{{eq . 1}}", "{{eq .Missing \"\"}}", "{{eq (index .A 0) 97}}",
          "{{eq 97 (index .A 0)}}", "{{eq (index .A 0) 'a'}}", "{{eq (index .A 0) -1}}", "{{eq (index .A 0) (index .A 4)}}",
          "{{eq (index .A 0) \"a\"}}", "{{eq (len .A) 5}}", "{{ne 1 2}}", "{{ne 1 1}}", "{{ne 1}}", "{{ne 1 2 3}}",
          "{{ne \"a\" 1}}", "{{ne nil nil}}", "{{ne . .}}", "{{lt 1 2}}", "{{lt 2 1}}", "{{lt 1.5 2.5}}", "{{lt \"a\" \"b\"}}",
          "{{lt .N \"10\"}}", "{{lt 1 1.5}}", "{{lt true false}}", "{{lt 1i 2i}}", "{{lt nil 1}}", "{{lt 1 nil}}",
          "{{lt . 1}}", "{{lt (index .A 0) 98}}", "{{lt -1 (index .A 0)}}", "{{lt (index .A 0) -1}}", "{{lt 1}}",
          "{{lt 1 2 3}}", "{{le 1 1}}", "{{le 2 1}}", "{{le \"a\" \"a\"}}", "{{le true true}}", "{{le 1 \"a\"}}",
          "{{gt 2 1}}", "{{gt 1 1}}", "{{gt \"b\" \"a\"}}", "{{gt 1.5 1}}", "{{ge 1 1}}", "{{ge 0 1}}", "{{ge \"\" \"\"}}",
          "{{ge nil nil}}", "{{gt nil nil}}", "{{eq \"\u00e9\" .Name}}", "{{lt .A .Name}}", "{{lt \"B\" \"a\"}}",
          "{{eq 0x10 16}}", "{{eq 'a' 97}}", "{{eq 1e3 1000.0}}", "{{eq 1e3 1000}}", "{{lt -0x1e 0}}",
          "{{eq .A \"alpha\" | not}}", "{{if eq .A \"x\" \"alpha\"}}in{{end}}", "{{eq 1 1 | printf \"%v\"}}",
          "{{eq 9223372036854775807 9223372036854775807}}", "{{lt 1 (index .A 0)}}", "{{ge (index .A 0) 97}}"]:
    add("cmp", t)

# --- printf and fmt
P = [("%s", ".A"), ("%v", ".A"), ("%q", ".A"), ("%x", ".A"), ("%X", ".A"), ("% x", ".A"), ("%#x", ".A"), ("%# x", ".A"),
     ("%d", ".A"), ("%5s", ".A"), ("%-8s|", ".A"), ("%.2s", ".A"), ("%.0s", ".A"), ("%08s", ".A"), ("%-08s|", ".A"),
     ("%.2s", ".Name"), ("%5.1s|", ".Name"), ("%x", ".Name"), ("%q", ".Name"), ("%+q", ".Name"), ("%#q", ".A"),
     ("%#q", ".Q"), ("%q", ".Ctl"), ("%+q", ".Emo"), ("%#v", ".A"), ("%+v", ".A"), ("%T", ".A"), ("%10T|", ".A"),
     ("%t", ".A"), ("%c", ".A"), ("%U", ".A"), ("%e", ".A"), ("%p", ".A"), ("%w", ".A"), ("%z", ".A"), ("%!", ".A"),
     ("%d", "42"), ("%5d", "42"), ("%-5d|", "42"), ("%05d", "42"), ("%05d", "-42"), ("%+d", "42"), ("% d", "42"),
     ("%+05d", "42"), ("%.3d", "7"), ("%8.3d", "7"), ("%08.3d", "7"), ("%.0d", "0"), ("%5.0d|", "0"), ("%x", "255"),
     ("%X", "255"), ("%#x", "255"), ("%#X", "255"), ("%#o", "8"), ("%o", "8"), ("%O", "8"), ("%b", "5"), ("%#b", "5"),
     ("%x", "-255"), ("%c", "65"), ("%c", "233"), ("%c", "-1"), ("%c", "1114112"), ("%q", "65"), ("%q", "10"),
     ("%+q", "233"), ("%q", "-1"), ("%U", "65"), ("%#U", "65"), ("%#U", "10"), ("%U", "-1"), ("%.6U", "65"),
     ("%v", "42"), ("%#v", "42"), ("%s", "42"), ("%t", "42"), ("%f", "42"), ("%e", "42"), ("%T", "42"), ("%08b", "5"),
     ("%v", "1.5"), ("%f", "1.5"), ("%.2f", "3.14159"), ("%8.3f|", "3.14159"), ("%-8.3f|", "3.14159"), ("%08.3f", "-3.14159"),
     ("%+.1f", "2.25"), ("%+.1f", "2.35"), ("%e", "123456.789"), ("%E", "123456.789"), ("%.3e", "0.000123"),
     ("%g", "123456.789"), ("%g", "1e21"), ("%g", "1e-7"), ("%G", "1e-7"), ("%.3g", "123456.789"), ("%.10g", "1.5"),
     ("%#g", "1.5"), ("%#.3g", "1.0"), ("%#v", "1.0"), ("%#f", "1.0"), ("%#.0f", "1.0"), ("%#e", "1.0"), ("%x", "1.5"),
     ("%X", "-1.5"), ("%.2x", "1.0"), ("%b", "1.0"), ("%F", "1.5"), ("%d", "1.5"), ("%s", "1.5"), ("%q", "1.5"),
     ("% f", "1.5"), ("% f", "-1.5"), ("%+f", "1.5"), ("%010.2f", "-1.5"), ("%+010.2f", "1.5"), ("% 010.2f", "1.5"),
     ("%v", "1e6"), ("%v", "1e-5"), ("%v", "100000.0"), ("%.0f", "0.5"), ("%.0f", "1.5"), ("%.0f", "2.5"),
     ("%.1f", "0.05"), ("%.1f", "0.25"), ("%.2f", "1.005"), ("%6.2f|", "1e10"), ("%g", "0.0"), ("%e", "0.0"),
     ("%v", "-0.0"), ("%g", "100000.0"), ("%g", "1000000.0"), ("%.3g", "1000.0"), ("%.3g", "100.0"), ("%.0g", "123.0"),
     ("%.0e", "5.5"), ("%v", "1i"), ("%v", "1+2i"), ("%f", "1+2i"), ("%.1f", "1.5-2.5i"), ("%+v", "1+2i"),
     ("%8.2f|", "1+2i"), ("%e", "2i"), ("%d", "1i"), ("%T", "1i"), ("%g", "1.5+0i"), ("%v", "true"), ("%t", "false"),
     ("%5t|", "true"), ("%-6t|", "false"), ("%d", "true"), ("%s", "true"), ("%q", "true"), ("%T", "true"),
     ("%v", "nil"), ("%s", "nil"), ("%d", "nil"), ("%T", "nil"), ("%5v|", "nil"), ("%q", "nil"), ("%v", "."),
     ("%s", "."), ("%d", "."), ("%q", "."), ("%x", "."), ("%5v", "."), ("%#v", "."), ("%+v", "."), ("%T", "."),
     ("%.1s", "."), ("%t", "."), ("%v", "(index .A 0)"), ("%c", "(index .A 0)"), ("%q", "(index .A 0)"),
     ("%x", "(index .A 0)"), ("%#v", "(index .A 0)"), ("%T", "(index .A 0)"), ("%s", "(index .A 0)"), ("%U", "(index .A 0)"),
     ("%08.3d", "(index .A 0)"), ("%s", "(slice .Name 1 2)"), ("%q", "(slice .Name 1 2)"), ("%x", "(slice .Name 1 2)"),
     ("%5s|", "(slice .Name 1 2)"), ("%.1q", ".Name"), ("%v", "(eq 1 1)"), ("%s", "(len .A)"), ("%6.2v|", "3.14159"),
     ("%v", "'x'"), ("%x", "\"\""), ("%5x|", "\"\""), ("%s", ".NUL"), ("%q", ".NUL"), ("%x", ".NUL"), ("%X", ".Emo"),
     ("%.3x", ".A"), ("% X", ".Name"), ("%#-10x|", ".A")]
for f, a in P:
    add("printf", "{{printf " + json.dumps(f) + " " + a + "}}")
for t in ["{{printf \"%s %s\" .A}}", "{{printf \"%s\" .A .C}}", "{{printf \"%s\" .A 1 nil .}}", "{{printf \"\" 1}}",
          "{{printf \"%\" 1}}", "{{printf \"%\"}}", "{{printf \"%%\"}}", "{{printf \"%%\" 1}}", "{{printf \"100%\"}}",
          "{{printf \"%5%\"}}", "{{printf \"%-5%|\"}}", "{{printf \"%[2]s %[1]s\" .A .C}}", "{{printf \"%[1]s %[1]s\" .A}}",
          "{{printf \"%[3]s\" .A .C}}", "{{printf \"%[0]s\" .A}}", "{{printf \"%[x]s\" .A}}", "{{printf \"%[1]\" .A}}",
          "{{printf \"%[2]s %s\" .A .C .Z}}", "{{printf \"%[1]s\" .A .C}}", "{{printf \"%[1]*d\" 5 42}}",
          "{{printf \"%*d\" 5 42}}", "{{printf \"%-*d|\" 5 42}}", "{{printf \"%*d|\" -5 42}}", "{{printf \"%.*f\" 2 3.14159}}",
          "{{printf \"%.*f\" -2 3.14159}}", "{{printf \"%*d\" \"x\" 42}}", "{{printf \"%.*d\" \"x\" 42}}",
          "{{printf \"%*d\" 10000000 1}}", "{{printf \"%*s|\" (index .A 0) \"x\"}}", "{{printf \"%*d\"}}",
          "{{printf \"%.*d\" 2}}", "{{printf \"%3.[2]*[1]f\" 12.0 2 6}}", "{{printf \"%[1]d %d\" 1 2}}",
          "{{printf \"%[2]*[1]d\" 12 5}}", "{{printf \"%[3]*.[2]*[1]f\" 12.0 2 6}}", "{{printf \"%d %d %#[1]x %#x\" 16 17}}",
          "{{printf \"%.\" 1}}", "{{printf \"%5\" 1}}", "{{printf \"%-\" 1}}", "{{printf \"%.2\" 1}}",
          "{{printf \"%10000000d\" 1}}", "{{printf \"%.10000000d\" 1}}", "{{printf \"%s\" }}", "{{printf .Q}}",
          "{{printf \"%v %v\" . .A}}", "{{printf \"%s\" (printf \"%d\" 3)}}", "{{printf \"\\xff%s\" .A}}",
          "{{printf \"%\\xff\" .A}}", "{{printf \"%\u00e9\" .A}}", "{{printf \"%!\" 1}}", "{{printf \"%v%v%v\" 1 2}}",
          "{{printf \"a%sb\" \"\"}}", "{{printf \"%s\" \"%d\"}}", "{{printf \"%d\" 1 | printf \"%s!\"}}",
          "{{.A | printf \"%s:%s\" .C}}", "{{printf \"%[-1]d\" 1}}", "{{printf \"%[1]d %[3]d %d\" 1 2}}",
          "{{printf \"%08q\" .A}}", "{{printf \"%-08d|\" 5}}", "{{printf \"%0-8d|\" 5}}", "{{printf \"%+-8d|\" 5}}",
          "{{printf \"%#08x\" 255}}", "{{printf \"%# x\" .Name}}", "{{printf \"%08.3s|\" .A}}", "{{printf \"%020v\" .}}",
          "{{printf \"%v\" .}}", "{{printf \"%d\" .}}", "{{printf \"%x\" .}}"]:
    add("printf", t)

# --- escapes & unicode
for t in ["{{.Name}}", "{{len .Name}}", "{{slice .Name 0 2}}", "{{slice .Name 1 3}}", "{{index .Name 1}}",
          "{{range $k, $v := .}}{{$k}}{{end}}", "{{html .Name}}", "{{js .Name}}", "{{urlquery .Name}}",
          "{{printf \"%q\" .Name}}", "{{printf \"%+q\" .Name}}", "{{printf \"%x\" .Name}}", "{{printf \"%5s|\" .Name}}",
          "{{printf \"%.3s|\" .Name}}", "{{print .Emo}}", "{{js .Emo}}", "{{slice .Emo 0 1}}{{slice .Emo 1}}",
          "\u65e5\u672c{{.A}}\u8a9e", "{{\"\u65e5\u672c\"}}", "{{len \"\u65e5\u672c\"}}", "{{printf \"%c\" 26085}}",
          "{{printf \"%U\" 26085}}", "{{printf \"%#U\" 26085}}", "{{printf \"%q\" 26085}}", "{{printf \"%+q\" 26085}}",
          "{{js \"\u65e5\"}}", "{{html \"\u65e5<\"}}", "{{printf \"%q\" \"\\u200b\"}}", "{{printf \"%q\" \"\\u00ad\"}}",
          "{{printf \"%q\" \"\\ufeff\"}}", "{{printf \"%#q\" \"\\ufeff\"}}", "{{printf \"%#q\" \"a`b\"}}",
          "{{printf \"%#q\" \"a\\tb\"}}", "{{printf \"%#q\" \"a\\nb\"}}", "{{printf \"%q\" \"\\x00\\x1f\\x7f\"}}",
          "{{printf \"%q\" \"\\a\\b\\f\\v\\r\"}}", "{{printf \"%+q\" \"\\U0001F600\"}}", "{{printf \"%q\" \"\\U0001F600\"}}",
          "{{printf \"%q\" \"\\ue000\"}}", "{{js \"\\ue000\"}}", "{{printf \"%q\" (slice .Name 1 2)}}",
          "{{printf \"%+q\" (slice .Name 1 2)}}", "{{printf \"%x\" (slice .Name 1 2)}}", "{{urlquery (slice .Name 1 2)}}",
          "{{html (slice .Name 1 2)}}", "{{printf \"%c\" 55296}}", "{{printf \"%q\" 55296}}", "{{printf \"%U\" 55296}}"]:
    add("unicode", t)
add("unicode", "{{range $k, $v := .}}{{$k}}={{$v}};{{end}}", {"\u00e9": "1", "e": "2", "\u65e5": "3", "z": "4", "Z": "5", "\U0001F600": "6"})

# --- exec errors and partial output
for t in ["FROM a\n{{.A.B}}", "a\n\nb{{.A.B}}", "{{.A}}{{index .A 99}}", "{{template \"x\"}}", "{{nil}}",
          "{{.A}}\n{{call .A}}", "{{if .A}}{{.A.X}}{{end}}", "{{range .}}{{.X}}{{end}}", "{{with .A}}{{.X}}{{end}}",
          "{{range .A}}{{end}}", "{{printf \"%d\" 1}}{{len 1}}", "{{9223372036854775808}}", "{{print 18446744073709551615}}",
          "{{if false}}{{18446744073709551615}}{{end}}ok", "{{$x := 1}}{{if false}}{{$x.Y}}{{end}}ok"]:
    add("execerr", t)

# --- parse errors
for t in ["{{", "}}", "{{}}", "{{ }}", "a{{.A", "{{.A}", "{{.A}}}", "{{{.A}}", "{{.A}}{{", "{{\"a}}", "{{`a}}",
          "{{'a}}", "{{(}}", "{{)}}", "{{(.A}}", "{{.A)}}", "{{print (print (1)}}", "{{@}}", "{{print \u00e9}}",
          "{{$x := 1}}{{$y}}", "{{end}}", "{{else}}", "{{if .A}}", "{{range .}}{{else}}", "{{with .A}}{{end}}{{end}}",
          "{{if .A}}{{else}}{{else}}{{end}}", "{{.A}}{{end}}", "{{if .A}}{{else if}}{{end}}", "{{if .A}}{{else if .B}}",
          "{{nope}}", "{{.A | nope}}", "{{if false}}{{nope .A}}{{end}}", "{{range 0}}{{nope}}{{end}}", "{{\\}}",
          "{{print \"\\z\"}}", "{{:}}", "{{$x :}}", "{{print ,}}", "{{1a}}", "{{0x1g}}", "{{.A.B.}}", "{{$.}}",
          "{{$x.}}", "{{print $}}", "{{if}}{{end}}", "{{range}}{{end}}", "{{with}}{{end}}", "{{if .A .B}}",
          "{{if .A}}x{{end}}{{if}}", "a\nb\n{{.A\n", "{{.A\n.B}}", "{{/*}}", "{{/* */ x}}", "{{else if .A}}",
          "{{if .A}}{{else with .B}}{{end}}", "{{with .A}}{{else if .B}}{{end}}", "{{range .}}{{else with .}}{{end}}",
          "{{range .}}{{break}}{{else}}{{continue}}{{end}}", "{{break}}{{range .}}{{end}}", "{{range .}}{{break .}}{{end}}",
          "{{range .}}{{continue x}}{{end}}", "{{end x}}", "{{else x}}", "{{if .A}}{{else x}}{{end}}", "{{.A |}}x",
          "{{| }}", "{{.A ||}}", "{{$x = 1}}", "{{$x := 1}}{{$x := }}", "{{print \"a\" | }}", "{{(print 1) | 2}}",
          "{{print | \"a\"}}", "{{print | nil}}", "{{print | .}}", "{{print | true}}", "{{print | 1}}", "{{print | 'a'}}",
          "{{print | (1)}}", "{{print | $}}", "{{print | .A}}", "{{print | $x}}"]:
    add("parse", t)

# --- forbidden and not-forbidden
for t in ["{{define \"x\"}}a{{end}}", "{{define \"x\"}}{{end}}", "{{- define \"x\" -}}a{{- end -}}b",
          "{{template \"x\"}}", "{{template \"x\" .}}", "{{template \"x\" .A}}", "{{block \"x\" .}}d{{end}}",
          "{{- block \"x\" . -}}d{{- end}}", "{{if .A}}{{template \"x\"}}{{end}}", "{{range .}}{{template \"x\"}}{{end}}",
          "{{with .B}}{{else}}{{template \"x\"}}{{end}}", "{{if .A}}{{block \"x\" .}}{{end}}{{end}}",
          "{{define\"x\"}}a{{end}}", "{{define `x`}}a{{end}}", "{{define \"x\"}}{{define \"y\"}}{{end}}{{end}}",
          "{{define \"x\"}}a{{end}}{{define \"x\"}}b{{end}}", "{{define \"x\"}}a{{end}}{{define \"x\"}}{{end}}",
          "{{define \"x\"}} {{end}}{{define \"x\"}}b{{end}}", "{{define \"Dockerfile\"}}a{{end}}",
          "{{define \"Dockerfile\"}}a{{end}}b", "b{{define \"Dockerfile\"}}a{{end}}", "{{define \"Dockerfile\"}}a{{end}} \n",
          "{{define}}", "{{define x}}{{end}}", "{{define \"x\" .}}{{end}}", "{{define \"x\"}}", "{{define \"x\"}}{{else}}{{end}}",
          "{{template}}", "{{template x}}", "{{template \"x\" . .}}", "{{template \"x\"}", "{{block}}", "{{block \"x\"}}{{end}}",
          "{{block \"x\" .}}", "{{block \"x\" .}}{{else}}{{end}}", "{{block \"x\" .}}{{$y}}{{end}}",
          "{{$y := 1}}{{block \"x\" .}}{{$y}}{{end}}", "{{range .}}{{block \"x\" .}}{{break}}{{end}}{{end}}",
          "{{define \"x\"}}{{nope}}{{end}}", "{{define \"x\"}}{{.A}}{{end}}{{.A.B}}", "{{define \"x\"}}{{end}}{{.A",
          "{{template \"x\"}}{{nope}}", "{{template \"\\q\"}}", "{{define \"\\q\"}}{{end}}", "{{if .A}}{{define \"x\"}}{{end}}{{end}}",
          "{{print define}}", "{{.define}}", "{{.template}}", "{{.block}}", "{{\"{{define \\\"x\\\"}}\"}}", "{{`{{template \"x\"}}`}}",
          "{{/* {{define \"x\"}}{{end}} */}}", "define template block", "{{print \"define\"}}", "{{$define := 1}}{{$define}}",
          "{{ template \"x\" }}", "{{- template \"x\" -}}", "{{define \"x\"}}{{template \"x\"}}{{end}}",
          "{{block \"Dockerfile\" .}}x{{end}}", "{{with .A}}{{template \"x\" .}}{{end}}", "{{template \"x\" | print}}",
          "{{template \"x\" (print 1)}}", "{{block \"x\" nope}}{{end}}", "{{block \"x\" .}}{{nope}}{{end}}",
          "{{define \"a\"}}{{end}}{{define \"b\"}}{{end}}ok"]:
    add("forbidden", t, {"A": "alpha", "define": "D", "template": "T", "block": "B"})

# --- nesting and long inputs (within Go's limits)
add("nest", "{{" + "(" * 1000 + "1" + ")" * 1000 + "}}", name="paren-1000")
add("nest", "{{print " + "(" * 1000 + ".A" + ")" * 1000 + "}}", name="paren-1000-arg")
add("nest", "{{" + "(" * 10000 + "1" + ")" * 10000 + "}}", name="paren-10000")
add("nest", "{{" + "(" * 10001 + "1" + ")" * 10001 + "}}", name="paren-10001")
add("nest", "{{" + "(" * 3000 + "1" + ")" * 2999 + "}}", name="paren-unbalanced")
add("nest", "{{if .A}}" * 500 + "x" + "{{end}}" * 500, name="if-500")
add("nest", "{{with .A}}" * 300 + "{{.}}" + "{{end}}" * 300, name="with-300")
add("nest", "{{range 1}}" * 200 + "x" + "{{end}}" * 200, name="range-200")
add("nest", "{{if .A}}" * 300 + "x" + "{{end}}" * 299, name="if-unclosed")
add("nest", "{{if .B}}a" + "{{else if .B}}b" * 500 + "{{else}}c{{end}}", name="elseif-500")
add("nest", "{{print" + " (print" * 500 + " 1" + ")" * 500 + "}}", name="print-500")
add("nest", "{{if .B}}a" + "{{else if .B}}b" * 20000 + "{{else if .A}}hit{{end}}", name="elseif-20000")
add("nest", "{{with .B}}a" + "{{else with .B}}b" * 20000 + "{{else}}{{.A}}{{end}}", name="elsewith-20000")
add("nest", "{{if .B}}" * 3 + "{{else if .B}}" * 50 + "x" + "{{end}}" * 3, name="elseif-nested")
add("nest", "{{range $i := 3}}{{range $j := 2}}{{range $k := 2}}{{$i}}{{$j}}{{$k}} {{end}}{{end}}{{end}}", name="range3")
add("nest", "{{range $k, $v := .}}{{if $v}}{{$k}}={{$v}} {{else}}{{$k}} unset {{end}}{{end}}", {"a": "1", "b": "", "c": "3"})
add("nest", "{{with .A}}{{with $.C}}{{.}}{{$.A}}{{end}}{{end}}")
add("long", "{{range $i := 10000}}{{if eq $i 9999}}{{$i}}{{end}}{{end}}", name="range-10000")
add("long", "{{range 1000}}0123456789{{end}}", name="range-out-10k")
add("long", "x" * 100000 + "{{.A}}", name="text-100k")
add("long", "{{.A}}" * 5000, name="actions-5000")
add("long", "{{$x := \"\"}}{{range 10}}{{$x = print $x $x \"a\"}}{{end}}{{len $x}}", name="doubling-10")

# --- realistic Dockerfiles
DV = {"BaseImage": "golang:1.22-alpine", "RuntimeImage": "gcr.io/distroless/static:nonroot", "AppName": "myapp",
      "Version": "1.2.3", "Port": "8080", "User": "app", "Workdir": "/src", "Debug": "true", "Empty": "",
      "Packages": "curl git", "Args": "--flag=1"}
for t in ["FROM {{ .BaseImage }} AS build\nWORKDIR {{ or .Workdir \"/src\" }}\nRUN go build -o /out/{{ .AppName }}\n\nFROM {{ .RuntimeImage }}\nCOPY --from=build /out/{{ .AppName }} /app\n{{- if .User }}\nUSER {{ .User }}\n{{- end }}\nEXPOSE {{ .Port }}\n",
          "FROM {{.BaseImage}}\n{{- if eq .Debug \"true\"}}\nENV DEBUG=1\n{{- end}}\n{{- range $k, $v := .}}\nLABEL {{$k}}={{printf \"%q\" $v}}\n{{- end}}\n",
          "FROM alpine\nRUN apk add --no-cache {{ .Packages }}{{ with .Empty }} {{ . }}{{ end }}\nCMD [\"{{ .AppName }}\", {{ printf \"%q\" .Args }}]\n",
          "ARG V={{ .Version | printf \"v%s\" }}\nFROM {{ .BaseImage | printf \"%s\" }}\n# {{/* comment */}}\nRUN echo {{ len .AppName }}\n",
          "FROM {{ .BaseImage }}\n{{ if not .Missing }}# no missing{{ end }}\nENV PORT={{ .Port | urlquery }}\nENV HTML={{ html \"<x>\" }}\n",
          "FROM {{ .BaseImage }}\nRUN echo \"{{ js .Args }}\" && echo {{ slice .Version 0 1 }}\n{{- range $i := 3 }}\nRUN echo step {{ $i }}\n{{- end }}\n",
          "FROM {{.BaseImage}}\n{{with .Port}}EXPOSE {{.}}{{else}}EXPOSE 80{{end}}\n{{with .Missing}}X{{else with .User}}USER {{.}}{{end}}\n"]:
    add("docker", t, DV)


# --- sampled matrices: printf verbs x flags x widths x kinds, builtins x argument kinds
import itertools
import random

PV = {"A": "alpha", "B": "", "Name": "h\u00e9llo", "Q": "it's \"q\"", "Emo": "\U0001F600"}
verbs = list("vsdqxXoObcUeEfFgGtTwz")
flags = ["", "+", "-", " ", "#", "0", "+0", "-0", "# ", "#0", "+ "]
wps = ["", "5", ".2", "8.3", ".0", "0", "12.5"]
pargs = [".A", ".Name", ".B", ".Q", ".Emo", "42", "-42", "0", "1.5", "-0.5", "1e21", "1e-7", "123456.789", "1+2i",
         "-0i", "true", "nil", ".", "(index .A 0)", "'x'", "255", "1e6", "100000.0", "0.1"]
for i, (v, f, w, a) in enumerate(itertools.product(verbs, flags, wps, pargs)):
    if i % 131 == 0:
        add("printf-matrix", "{{printf " + json.dumps("%" + f + w + v + "|") + " " + a + "}}", PV)

FV = {"A": "alpha", "B": "", "N": "3", "Name": "h\u00e9llo", "Z": "0"}
fnames = "eq ne lt le gt ge and or not len index slice print println html js urlquery call printf".split()
fargs = [".A", ".B", ".N", ".Missing", "1", "0", "-1", "3", "1.5", "0.0", "1i", "true", "false", "nil", ".",
         "(index .A 0)", "'a'", "\"a\"", "\"\"", "\"alpha\"", "97", "2", "5", "6", "$", "(and nil 1)"]
i = 0
for f in fnames:
    for k in range(0, 3):
        for c in itertools.product(fargs, repeat=k):
            i += 1
            if i % 37 == 0:
                add("func-matrix", "{{" + " ".join([f] + list(c)) + "}}", FV)
            if k == 1 and i % 41 == 0:
                add("func-matrix", "{{" + c[0] + " | " + f + "}}", FV)

rng = random.Random(20261125)
GV = {"A": "alpha", "B": "", "N": "3", "Name": "h\u00e9llo", "Z": "0", "Q": "<a href='x'>&\"", "S": "a b/c?d=e"}
gfuncs = ["print", "println", "html", "js", "urlquery", "len", "not", "and", "or", "eq", "ne", "lt", "le", "gt", "ge",
          "index", "slice", "printf"]


def g_atom(vs, d):
    if d > 2 or rng.random() < 0.5:
        return rng.choice([".A", ".B", ".N", ".Name", ".Z", ".Q", ".S", ".Missing", ".", "$", "1", "0", "2", "-1", "1.5",
                           "true", "false", "\"x\"", "\"%d|%s|%v\"", "\"%q\"", "'a'", "nil", "(index .A 0)"] + vs)
    return "(" + g_pipe(vs, d + 1) + ")"


def g_cmd(vs, d):
    f = rng.choice(gfuncs + [None, None])
    if f is None:
        return g_atom(vs, d)
    return " ".join([f] + [g_atom(vs, d) for _ in range(rng.randint(0, 3))])


def g_pipe(vs, d):
    p = g_cmd(vs, d)
    for _ in range(rng.randint(0, 2)):
        p += " | " + rng.choice(gfuncs) + "".join(" " + g_atom(vs, d) for _ in range(rng.randint(0, 1)))
    return p


def g_block(vs, d, inrange):
    out = []
    vs = list(vs)
    for _ in range(rng.randint(1, 4)):
        r = rng.random()
        if r < 0.3:
            out.append(rng.choice(["x", " ", "\n", "a\n  ", "\u00e9"]))
        elif r < 0.55 or d > 3:
            if rng.random() < 0.2:
                v = "$v%d" % len(vs)
                out.append("{{" + v + " := " + g_pipe(vs, 0) + "}}")
                vs.append(v)
            else:
                out.append("{{" + rng.choice(["", "- "]) + g_pipe(vs, 0) + rng.choice(["", " -"]) + "}}")
        elif r < 0.7:
            kw = rng.choice(["if", "with"])
            s = "{{" + kw + " " + g_pipe(vs, 0) + "}}" + g_block(vs, d + 1, inrange)
            if rng.random() < 0.3:
                s += "{{else " + kw + " " + g_pipe(vs, 0) + "}}" + g_block(vs, d + 1, inrange)
            if rng.random() < 0.5:
                s += "{{else}}" + g_block(vs, d + 1, inrange)
            out.append(s + "{{end}}")
        elif r < 0.85:
            decl = rng.choice(["", "$i := ", "$k, $e := "])
            nv = vs + [x.strip() for x in decl.replace(":=", "").split(",") if x.strip()]
            src = rng.choice([".", "3", "0", ".N", "(len .A)", "(index .A 0)", ".A", "$", "-2"])
            s = "{{range " + decl + src + "}}" + g_block(nv, d + 1, True)
            if rng.random() < 0.4:
                s += "{{else}}" + g_block(vs, d + 1, inrange)
            out.append(s + "{{end}}")
        elif inrange:
            out.append(rng.choice(["{{break}}", "{{continue}}", "{{if .B}}{{break}}{{end}}"]))
        else:
            out.append("{{/* c */}}")
    return "".join(out)


for _ in range(200):
    add("generated", g_block([], 0, False), GV)


# --- a define of the main template's own name (Go would use it as the body; forbidden here)
for t in ["{{define \"Dockerfile\"}}{{template \"x\"}}{{end}}", "{{define \"Dockerfile\"}}{{end}}x",
          "{{define \"Dockerfile\"}}a{{end}}{{define \"Dockerfile\"}}{{end}}", "{{define \"Dockerfile\"}}{{.A}}{{end}}",
          "{{define \"Dockerfile\"}}{{if .A}}{{block \"y\" .}}{{end}}{{end}}{{end}}", "{{define `Dockerfile`}}r{{end}}",
          "{{define \"Dockerfile\"}}{{end}}{{define \"Dockerfile\"}}b{{end}}", "{{define \"Dockerfile\"}}a{{end}}{{define \"x\"}}{{end}}",
          "{{define \"Dockerfile\"}}{{$x := 1}}{{$x}}{{end}}", "{{define \"Dockerfile\"}}{{/* c */}}{{end}}{{/* d */}}",
          "{{define \"Dockerfile\"}} {{end}}{{.A}}", "{{block \"Dockerfile\" .}}x{{end}}", "{{define \"dockerfile\"}}a{{end}}",
          "{{define \"Dockerfile\"}}{{range 2}}{{break}}{{end}}z{{end}}", "{{define \"Dockerfile\"}}{{.A.B}}{{end}}"]:
    add("selfdefine", t, {"A": "alpha"})

# --- every code point class: quoting, js escaping and identifiers (sampled blocks)
for start in list(range(0x80, 0x3400, 0x1C0)) + [0xA000, 0xD7A0, 0xE000, 0xFDC0, 0xFEE0, 0xFFE0, 0x10000, 0x1F300, 0x1F600, 0x2FFE0, 0xE0000]:
    s = "".join(chr(c) for c in range(start, start + 32) if not (0xD800 <= c < 0xE000))
    add("codepoints", "{{printf \"%q|%+q\" .S .S}}", {"S": s})
    add("codepoints", "{{js .S}}", {"S": s})
    add("codepoints", "".join("{{$%s := 1}}" % ch for ch in s if ch.isprintable() and ch not in "\\"), {"S": s})


# --- variable scoping across if/with/range chains, break/continue in else branches
for t in ["{{with $x := .B}}a{{else with $y := .A}}{{$x}}|{{$y}}{{end}}",
          "{{with $x := .B}}a{{else with $y := .B}}b{{else}}{{$x}}{{$y}}{{end}}",
          "{{if $x := .B}}a{{else if $y := .A}}[{{$x}}][{{$y}}]{{end}}", "{{$x := 1}}{{range $x := 3}}{{end}}{{$x}}",
          "{{$x := 1}}{{range $x = 3}}{{end}}{{$x}}", "{{range $k, $v := .}}{{$k = \"x\"}}{{$k}}{{$v}}{{end}}",
          "{{range $k, $v := .}}{{$v := 1}}{{$v}}{{end}}", "{{$x := 0}}{{range $i := 3}}{{$x := $i}}{{end}}{{$x}}",
          "{{$x := 0}}{{with 5}}{{$x = .}}{{end}}{{$x}}", "{{$x := 0}}{{with $x := 5}}{{$x = 7}}{{end}}{{$x}}",
          "{{range $i := 3}}{{$i}}{{$i = 9}}{{$i}} {{end}}", "{{$ = 5}}{{$}}", "{{$ := 5}}{{$}}{{.A}}",
          "{{range .}}{{$}}{{end}}", "{{with .A}}{{$.C}}{{$}}{{end}}", "{{$x := .}}{{range $x}}{{.}}{{end}}",
          "{{if .A}}{{$x := 1}}{{if .C}}{{$x = 2}}{{end}}{{$x}}{{end}}",
          "{{range $i := 2}}{{range $j := 2}}{{$i = 5}}{{end}}{{$i}}{{end}}",
          "{{range 2}}{{range 0}}{{else}}{{break}}{{end}}x{{end}}", "{{range 2}}{{range 0}}{{else}}{{continue}}{{end}}x{{end}}y",
          "{{range $i := 3}}{{with $i}}{{continue}}{{end}}{{$i}}{{end}}"]:
    add("scope", t, {"A": "alpha", "B": "", "C": "gamma"})

for c in cases:
    print(json.dumps(c, ensure_ascii=False))
