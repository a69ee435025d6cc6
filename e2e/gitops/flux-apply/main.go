// Command flux-apply applies Kubernetes manifests the way Flux's kustomize-controller does,
// with the same library (github.com/fluxcd/pkg/ssa): every object labelled with its
// Kustomization, staged (CRDs, Namespaces and ClusterRoles first, waited for), server-side
// applied with the field manager "kustomize-controller", each object diffed against a
// server-side dry run first, so an object that would not change is reported "unchanged".
//
// Each -f file is one Kustomization, applied in order; between the stages, ApplyAllStaged waits
// for the first stage to be Current, as Flux does. With -wait, each Kustomization is then
// health-checked as kustomize-controller does with `wait: true`: WaitForSet (kstatus) until every
// applied object is Current (a Deployment: its Pods rolled out and Ready), failing fast on a
// Failed one. The result is one JSON object on stdout:
// {"kustomizations":[{"name","entries":[{"subject","action"}],"waited","waitSeconds"}]}.
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
	"path/filepath"
	"strings"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/pkg/ssa"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

type entry struct {
	Subject string `json:"subject"`
	Action  string `json:"action"`
}

type result struct {
	Name    string  `json:"name"`
	Entries []entry `json:"entries"`
	// Whether the health check ran and passed, and how long it took.
	Waited      bool    `json:"waited"`
	WaitSeconds float64 `json:"waitSeconds"`
}

type files []string

func (f *files) String() string     { return strings.Join(*f, ",") }
func (f *files) Set(v string) error { *f = append(*f, v); return nil }

func main() {
	var (
		kubeconfig = flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig file")
		timeout    = flag.Duration("timeout", 3*time.Minute, "how long a reconcile may take")
		wait       = flag.Bool("wait", false, "health-check each Kustomization's objects after applying it")
		inputs     files
	)
	flag.Var(&inputs, "f", "multi-document YAML file, one Kustomization each (repeatable)")
	flag.Parse()
	if err := run(*kubeconfig, inputs, *timeout, *wait); err != nil {
		fmt.Fprintln(os.Stderr, "flux-apply:", err)
		os.Exit(1)
	}
}

func run(kubeconfig string, inputs []string, timeout time.Duration, wait bool) error {
	if len(inputs) == 0 {
		return errors.New("no -f file given")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return err
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		return err
	}
	c, err := client.New(cfg, client.Options{Mapper: mapper, HTTPClient: httpClient})
	if err != nil {
		return err
	}
	poller := polling.NewStatusPoller(c, mapper, polling.Options{})
	// Flux's field manager and the group of its owner labels.
	rm := ssa.NewResourceManager(c, poller, ssa.Owner{
		Field: "kustomize-controller",
		Group: "kustomize.toolkit.fluxcd.io",
	})
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	var out struct {
		Kustomizations []result `json:"kustomizations"`
	}
	for _, path := range inputs {
		objects, err := read(path)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
		rm.SetOwnerLabels(objects, name, "flux-system")
		opts := ssa.DefaultApplyOptions()
		opts.WaitTimeout = timeout
		// As kustomize-controller does: a client-side apply's annotation and the managers of
		// earlier kubectl applies are removed, so that Flux becomes the sole owner of its fields.
		opts.Cleanup = ssa.ApplyCleanupOptions{
			Annotations: []string{"kubectl.kubernetes.io/last-applied-configuration"},
			FieldManagers: []ssa.FieldManager{
				{Name: "kubectl", OperationType: "Apply"},
				{Name: "kubectl", OperationType: "Update"},
				{Name: "before-first-apply", OperationType: "Update"},
			},
		}
		cs, err := rm.ApplyAllStaged(ctx, objects, opts)
		if err != nil {
			return fmt.Errorf("applying %s: %w", path, err)
		}
		r := result{Name: name}
		for _, e := range cs.Entries {
			r.Entries = append(r.Entries, entry{Subject: e.Subject, Action: string(e.Action)})
		}
		if wait {
			// Every applied object, unchanged ones too, as kustomize-controller's health check.
			t0 := time.Now()
			if err := rm.WaitForSetWithContext(ctx, cs.ToObjMetadataSet(), ssa.WaitOptions{
				Interval: 2 * time.Second,
				Timeout:  timeout,
				FailFast: true,
			}); err != nil {
				return fmt.Errorf("health check of %s: %w", path, err)
			}
			r.Waited = true
			r.WaitSeconds = time.Since(t0).Seconds()
		}
		out.Kustomizations = append(out.Kustomizations, r)
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

// read parses a multi-document YAML file into objects, skipping empty documents.
func read(path string) ([]*unstructured.Unstructured, error) {
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
		if err := utilyaml.Unmarshal(doc, &u.Object); err != nil {
			return nil, err
		}
		if len(u.Object) == 0 {
			continue
		}
		objects = append(objects, u)
	}
	return objects, nil
}
