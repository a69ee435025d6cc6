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
	// Forbidden: any template besides the main one (define/block), or a {{template}}
	// call in the tree that runs. A define of "Dockerfile" itself would replace the body: it is
	// found by parsing once more under a name no define can have.
	if len(tmpl.Templates()) > 1 || hasTemplateNode(tmpl.Tree.Root) || definesAny(c.Template) {
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
			// One answer a line as soon as it is known: the differential fuzz target waits
			// for each before sending the next.
			_ = out.Flush()
		}
		if err != nil {
			break
		}
	}
}

// definesAny reports whether the source holds a define (or block) of any name, including the
// main template's own, by parsing it under a name that no define in it can use.
func definesAny(src string) bool {
	t, err := template.New("\x00main").Option("missingkey=zero").Parse(src)
	return err == nil && len(t.Templates()) > 1
}
