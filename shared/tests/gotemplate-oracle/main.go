// Command gotemplate-oracle renders conformance cases with Go's text/template.
//
// It reads JSONL cases ({"name","template","values"}) on stdin and prints one
// result a line in the expected.jsonl format: "output" (or "output_base64" when
// the bytes are not valid UTF-8), "error": "parse"|"exec" with "message", or
// "forbidden": true.
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"text/template"
	"text/template/parse"
	"unicode/utf8"
)

type testCase struct {
	Name     string            `json:"name"`
	Template string            `json:"template"`
	Values   map[string]string `json:"values"`
}

// hasTemplateNode walks a parse tree looking for {{template}} (and so {{block}}).
func hasTemplateNode(n parse.Node) bool {
	switch n := n.(type) {
	case nil:
		return false
	case *parse.ListNode:
		if n == nil {
			return false
		}
		for _, c := range n.Nodes {
			if hasTemplateNode(c) {
				return true
			}
		}
	case *parse.TemplateNode:
		return true
	case *parse.IfNode:
		return hasTemplateNode(n.List) || hasTemplateNode(n.ElseList)
	case *parse.RangeNode:
		return hasTemplateNode(n.List) || hasTemplateNode(n.ElseList)
	case *parse.WithNode:
		return hasTemplateNode(n.List) || hasTemplateNode(n.ElseList)
	}
	return false
}

// definesSomething reparses under a name no define can plausibly use, so a
// {{define "Dockerfile"}} that merges into the main template is still seen.
func definesSomething(src string) bool {
	trees, err := parse.Parse("\x00oracle-main\x00", src, "{{", "}}", map[string]any{})
	if err != nil {
		// Builtins are not in the map above; fall back to a func-check-free parse.
		t := parse.New("\x00oracle-main\x00")
		t.Mode = parse.SkipFuncCheck
		set := map[string]*parse.Tree{}
		if _, err := t.Parse(src, "{{", "}}", set); err != nil {
			return false
		}
		return len(set) > 1
	}
	return len(trees) > 1
}

func run(c testCase) map[string]any {
	res := map[string]any{"name": c.Name}
	defer func() {
		if r := recover(); r != nil {
			res["error"] = "exec"
			res["message"] = fmt.Sprint("panic: ", r)
			delete(res, "output")
		}
	}()
	tmpl, err := template.New("Dockerfile").Option("missingkey=zero").Parse(c.Template)
	if err != nil {
		res["error"] = "parse"
		res["message"] = err.Error()
		return res
	}
	if len(tmpl.Templates()) > 1 || hasTemplateNode(tmpl.Tree.Root) || definesSomething(c.Template) {
		res["forbidden"] = true
		return res
	}
	values := c.Values
	if values == nil {
		values = map[string]string{}
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, values); err != nil {
		res["error"] = "exec"
		res["message"] = err.Error()
		return res
	}
	if utf8.Valid(buf.Bytes()) {
		res["output"] = buf.String()
	} else {
		res["output_base64"] = base64.StdEncoding.EncodeToString(buf.Bytes())
	}
	return res
}

func main() {
	in := bufio.NewReader(os.Stdin)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	for {
		line, err := in.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var c testCase
			if jerr := json.Unmarshal(line, &c); jerr != nil {
				_ = enc.Encode(map[string]any{"name": c.Name, "error": "input", "message": jerr.Error()})
			} else {
				_ = enc.Encode(run(c))
			}
		}
		if err != nil {
			break
		}
	}
}
