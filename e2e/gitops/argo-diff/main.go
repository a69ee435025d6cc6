// Command argo-diff drives Argo CD's sync and diff code (github.com/argoproj/gitops-engine, the
// revision Argo CD 3.2.0 builds with; the module's last tagged release, v0.7.3, predates the
// server-side diff, and Argo CD's own module needs a newer Go than this project builds with).
//
// Modes, each reading -config, a multi-document YAML file of desired objects:
//   - default: the diff Argo CD runs unless told otherwise, offline against -live (the JSON List
//     that `kubectl get -o json` prints): three-way against the
//     kubectl.kubernetes.io/last-applied-configuration annotation that its client-side sync
//     writes, two-way without it.
//   - -sync: applies each object as an Argo CD sync does, through gitops-engine's kubectl apply
//     (field manager argocd-controller, validated): client-side by default, server-side with
//     -server-side-apply (sync option ServerSideApply=true, conflicts forced as Argo does).
//   - -server-side: Argo CD's server-side diff (compare option ServerSideDiff=true): for each
//     object, a server-side apply dry run with Argo's field manager against the apiserver, the
//     fields other managers own (webhook mutations) taken from the live object, then compared
//     with the live object, which this mode reads itself.
//
// Output, one JSON object on stdout: {"objects":[{"key","modified","paths"}]}, where paths are
// the fields in which the predicted live object differs from the normalized live one (a[0].b
// style), i.e. what shows as OutOfSync; -sync prints {"applied":[keys]}.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"

	"github.com/argoproj/gitops-engine/pkg/diff"
	"github.com/argoproj/gitops-engine/pkg/utils/kube"
	"github.com/argoproj/gitops-engine/pkg/utils/tracing"
	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2/textlogger"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"sigs.k8s.io/yaml"
)

// The field manager Argo CD's application controller syncs and dry-runs with.
const argoManager = "argocd-controller"

type result struct {
	Key      string   `json:"key"`
	Modified bool     `json:"modified"`
	Paths    []string `json:"paths"`
}

func main() {
	config := flag.String("config", "", "desired objects, multi-document YAML")
	live := flag.String("live", "", "live objects, a JSON List from kubectl get -o json (default mode)")
	sync := flag.Bool("sync", false, "apply -config as Argo CD's default sync does")
	ssa := flag.Bool("server-side-apply", false, "with -sync: as the sync option ServerSideApply=true")
	serverSide := flag.Bool("server-side", false, "Argo CD's server-side diff against the apiserver")
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig file (-sync, -server-side)")
	flag.Parse()
	err := func() error {
		desired, err := readYAML(*config)
		if err != nil {
			return err
		}
		if !*sync && !*serverSide {
			return offline(desired, *live)
		}
		// kubectl's factory caches discovery under $HOME/.kube unless told otherwise: keep it in
		// a directory of this run's own.
		if os.Getenv("KUBECACHEDIR") == "" {
			dir, err := os.MkdirTemp("", "argo-diff-cache")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			os.Setenv("KUBECACHEDIR", dir)
		}
		cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
		if err != nil {
			return err
		}
		if *sync {
			return applyAll(cfg, desired, *ssa)
		}
		return serverSideDiff(cfg, desired)
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, "argo-diff:", err)
		os.Exit(1)
	}
}

func key(u *unstructured.Unstructured) string {
	return u.GetKind() + "/" + u.GetNamespace() + "/" + u.GetName()
}

func logger() logr.Logger {
	return textlogger.NewLogger(textlogger.NewConfig(textlogger.Output(os.Stderr)))
}

func offline(desired []*unstructured.Unstructured, livePath string) error {
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
	return report(desired, func(c *unstructured.Unstructured) (*diff.DiffResult, error) {
		l, ok := live[key(c)]
		if !ok {
			return nil, errors.New("no live object")
		}
		return diff.Diff(c, l, diff.WithNormalizer(diff.GetNoopNormalizer()))
	})
}

func applyAll(cfg *rest.Config, desired []*unstructured.Unstructured, serverSideApply bool) error {
	k := &kube.KubectlCmd{Log: logger(), Tracer: tracing.NopTracer{}}
	schema, _, err := k.LoadOpenAPISchema(cfg)
	if err != nil {
		return err
	}
	ops, cleanup, err := k.ManageResources(cfg, schema)
	if err != nil {
		return err
	}
	defer cleanup()
	var out struct {
		Applied []string `json:"applied"`
	}
	for _, c := range desired {
		// As a sync task applies: no dry run, no --force, validated.
		if _, err := ops.ApplyResource(context.Background(), c, cmdutil.DryRunNone, false, true, serverSideApply, argoManager); err != nil {
			return fmt.Errorf("%s: %w", key(c), err)
		}
		out.Applied = append(out.Applied, key(c))
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

func serverSideDiff(cfg *rest.Config, desired []*unstructured.Unstructured) error {
	k := &kube.KubectlCmd{Log: logger(), Tracer: tracing.NopTracer{}}
	schema, gvkParser, err := k.LoadOpenAPISchema(cfg)
	if err != nil {
		return err
	}
	applier, cleanup, err := kube.ManageServerSideDiffDryRuns(cfg, schema, tracing.NopTracer{}, logger(), nil)
	if err != nil {
		return err
	}
	defer cleanup()
	return report(desired, func(c *unstructured.Unstructured) (*diff.DiffResult, error) {
		live, err := k.GetResource(context.Background(), cfg, c.GroupVersionKind(), c.GetName(), c.GetNamespace())
		if err != nil {
			return nil, err
		}
		// The options Argo CD's controller passes with ServerSideDiff=true; mutation webhooks'
		// changes are left out, its default.
		return diff.Diff(c, live,
			diff.WithNormalizer(diff.GetNoopNormalizer()),
			diff.WithServerSideDiff(true),
			diff.WithServerSideDryRunner(diff.NewK8sServerSideDryRunner(applier)),
			diff.WithManager(argoManager),
			diff.WithGVKParser(gvkParser),
			diff.WithIgnoreMutationWebhook(true),
		)
	})
}

// report runs diffOne for each desired object and prints what differs.
func report(desired []*unstructured.Unstructured, diffOne func(*unstructured.Unstructured) (*diff.DiffResult, error)) error {
	var out struct {
		Objects []result `json:"objects"`
	}
	for _, c := range desired {
		res, err := diffOne(c)
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
