// Command argo-diff compares desired manifests with live objects using Argo CD's diff code
// (github.com/argoproj/gitops-engine/pkg/diff): the three-way diff against the
// kubectl.kubernetes.io/last-applied-configuration annotation that Argo CD's client-side sync
// writes, or the two-way diff without it. This module is the last standalone release of that
// code (v0.7.3, Kubernetes 1.23 libraries); Argo CD's current releases need a newer Go.
//
// Input: -config, a multi-document YAML file of desired objects; -live, the JSON List that
// `kubectl get -o json` prints for the same objects. Output, one JSON object on stdout:
// {"objects":[{"key","modified","paths"}]}, where paths are the fields in which the predicted
// live object differs from the normalized live one (a[0].b style), i.e. what shows as
// OutOfSync.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"

	"github.com/argoproj/gitops-engine/pkg/diff"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

type result struct {
	Key      string   `json:"key"`
	Modified bool     `json:"modified"`
	Paths    []string `json:"paths"`
}

func main() {
	config := flag.String("config", "", "desired objects, multi-document YAML")
	live := flag.String("live", "", "live objects, a JSON List from kubectl get -o json")
	flag.Parse()
	if err := run(*config, *live); err != nil {
		fmt.Fprintln(os.Stderr, "argo-diff:", err)
		os.Exit(1)
	}
}

func key(u *unstructured.Unstructured) string {
	return u.GetKind() + "/" + u.GetNamespace() + "/" + u.GetName()
}

func run(configPath, livePath string) error {
	desired, err := readYAML(configPath)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(livePath)
	if err != nil {
		return err
	}
	var list struct {
		Items []map[string]interface{} `json:"items"`
	}
	if err := json.Unmarshal(data, &list); err != nil {
		return err
	}
	live := map[string]*unstructured.Unstructured{}
	for _, o := range list.Items {
		u := &unstructured.Unstructured{Object: o}
		live[key(u)] = u
	}
	var out struct {
		Objects []result `json:"objects"`
	}
	for _, c := range desired {
		l, ok := live[key(c)]
		if !ok {
			return fmt.Errorf("%s: no live object", key(c))
		}
		res, err := diff.Diff(c, l, diff.WithNormalizer(diff.GetNoopNormalizer()))
		if err != nil {
			return fmt.Errorf("%s: %w", key(c), err)
		}
		var normalized, predicted interface{}
		if err := yaml.Unmarshal(res.NormalizedLive, &normalized); err != nil {
			return err
		}
		if err := yaml.Unmarshal(res.PredictedLive, &predicted); err != nil {
			return err
		}
		paths := []string{}
		differences("", normalized, predicted, &paths)
		sort.Strings(paths)
		out.Objects = append(out.Objects, result{Key: key(c), Modified: res.Modified, Paths: paths})
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

// differences lists the paths at which a and b differ (only for reporting which fields are
// out of sync; whether they are is Argo's Modified).
func differences(path string, a, b interface{}, out *[]string) {
	switch av := a.(type) {
	case map[string]interface{}:
		bv, ok := b.(map[string]interface{})
		if !ok {
			*out = append(*out, path)
			return
		}
		keys := map[string]bool{}
		for k := range av {
			keys[k] = true
		}
		for k := range bv {
			keys[k] = true
		}
		for k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			differences(p, av[k], bv[k], out)
		}
	case []interface{}:
		bv, ok := b.([]interface{})
		if !ok || len(av) != len(bv) {
			*out = append(*out, path)
			return
		}
		for i := range av {
			differences(fmt.Sprintf("%s[%d]", path, i), av[i], bv[i], out)
		}
	default:
		if !reflect.DeepEqual(a, b) {
			*out = append(*out, path)
		}
	}
}

func readYAML(path string) ([]*unstructured.Unstructured, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objects []*unstructured.Unstructured
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &u.Object); err != nil {
			return nil, err
		}
		if len(u.Object) == 0 {
			continue
		}
		objects = append(objects, u)
	}
	return objects, nil
}
