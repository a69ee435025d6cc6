// A minimal controller-runtime validating and defaulting webhook for the OSArtifact CRD: the
// baseline `just bench-webhook --go-baseline` runs beside osartifact-webhook. It decodes the
// typed object through controller-runtime's admission decoder, checks the rules that fit in a
// few lines (one image source, volume binding names, reserved volume names), makes the same
// SubjectAccessReviews when given a kubeconfig, and defaults the same fields, answering with the
// JSON Patch controller-runtime computes (admission.PatchResponseFromRaw).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	authorizationv1 "k8s.io/api/authorization/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

var gv = schema.GroupVersion{Group: "build.kairos.io", Version: "v1alpha2"}

type SecretKeyRef struct {
	Name string  `json:"name"`
	Key  *string `json:"key,omitempty"`
}

type VolumeBindings struct {
	BuildContext  *string `json:"buildContext,omitempty"`
	OverlayISO    *string `json:"overlayISO,omitempty"`
	OverlayRootfs *string `json:"overlayRootfs,omitempty"`
}

type OSArtifactSpec struct {
	ImageName                    *string                           `json:"imageName,omitempty"`
	BaseImageDockerfile          *SecretKeyRef                     `json:"baseImageDockerfile,omitempty"`
	DockerfileTemplateValues     map[string]string                 `json:"dockerfileTemplateValues,omitempty"`
	DockerfileTemplateValuesFrom *corev1.LocalObjectReference      `json:"dockerfileTemplateValuesFrom,omitempty"`
	ISO                          bool                              `json:"iso,omitempty"`
	CloudImage                   bool                              `json:"cloudImage,omitempty"`
	AzureImage                   bool                              `json:"azureImage,omitempty"`
	GCEImage                     bool                              `json:"gceImage,omitempty"`
	Netboot                      bool                              `json:"netboot,omitempty"`
	NetbootURL                   *string                           `json:"netbootURL,omitempty"`
	DiskSize                     *json.RawMessage                  `json:"diskSize,omitempty"`
	Arch                         *string                           `json:"arch,omitempty"`
	CloudConfigRef               *SecretKeyRef                     `json:"cloudConfigRef,omitempty"`
	GrubConfig                   *string                           `json:"grubConfig,omitempty"`
	OSRelease                    *string                           `json:"osRelease,omitempty"`
	KairosRelease                *string                           `json:"kairosRelease,omitempty"`
	Bundles                      []string                          `json:"bundles,omitempty"`
	ImagePullSecrets             []corev1.LocalObjectReference     `json:"imagePullSecrets,omitempty"`
	Volume                       *corev1.PersistentVolumeClaimSpec `json:"volume,omitempty"`
	Exporters                    []batchv1.JobSpec                 `json:"exporters,omitempty"`
	Volumes                      []corev1.Volume                   `json:"volumes,omitempty"`
	Importers                    []corev1.Container                `json:"importers,omitempty"`
	VolumeBindings               *VolumeBindings                   `json:"volumeBindings,omitempty"`
	NodeSelector                 map[string]string                 `json:"nodeSelector,omitempty"`
	Tolerations                  []corev1.Toleration               `json:"tolerations,omitempty"`
	Affinity                     *corev1.Affinity                  `json:"affinity,omitempty"`
	PodLabels                    map[string]string                 `json:"podLabels,omitempty"`
	PodAnnotations               map[string]string                 `json:"podAnnotations,omitempty"`
	Resources                    *corev1.ResourceRequirements      `json:"resources,omitempty"`
	ServiceAccountName           *string                           `json:"serviceAccountName,omitempty"`
	PriorityClassName            *string                           `json:"priorityClassName,omitempty"`
}

type OSArtifact struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              OSArtifactSpec  `json:"spec"`
	Status            json.RawMessage `json:"status,omitempty"`
}

func (in *OSArtifact) DeepCopyObject() runtime.Object {
	// The decoder only needs a runtime.Object; a JSON round trip is a correct deep copy.
	out := &OSArtifact{}
	if b, err := json.Marshal(in); err == nil {
		_ = json.Unmarshal(b, out)
	}
	return out
}

var reserved = map[string]bool{"artifacts": true, "rootfs": true, "config": true, "dockerfile": true, "cloudconfig": true}

func validate(a *OSArtifact) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	s := &a.Spec
	switch {
	case s.ImageName != nil && s.BaseImageDockerfile != nil:
		errs = append(errs, field.Forbidden(spec.Child("baseImageDockerfile"), "may not be set together with spec.imageName"))
	case s.ImageName == nil && s.BaseImageDockerfile == nil:
		errs = append(errs, field.Required(spec.Child("imageName"), "set exactly one of spec.imageName and spec.baseImageDockerfile"))
	}
	names := map[string]bool{}
	for i, v := range s.Volumes {
		p := spec.Child("volumes").Index(i).Child("name")
		switch {
		case v.Name == "":
			errs = append(errs, field.Required(p, ""))
		case names[v.Name]:
			errs = append(errs, field.Duplicate(p, v.Name))
		case reserved[v.Name]:
			errs = append(errs, field.Invalid(p, v.Name, "reserved for the builder's own volumes"))
		}
		names[v.Name] = true
	}
	if b := s.VolumeBindings; b != nil {
		for key, v := range map[string]*string{"buildContext": b.BuildContext, "overlayISO": b.OverlayISO, "overlayRootfs": b.OverlayRootfs} {
			if v != nil && !names[*v] {
				errs = append(errs, field.NotFound(spec.Child("volumeBindings", key), *v))
			}
		}
	}
	return errs
}

func applyDefaults(s *OSArtifactSpec) {
	if s.BaseImageDockerfile != nil && s.BaseImageDockerfile.Key == nil {
		k := "Dockerfile"
		s.BaseImageDockerfile.Key = &k
	}
	if s.CloudConfigRef != nil && s.CloudConfigRef.Key == nil {
		k := "userdata"
		s.CloudConfigRef.Key = &k
	}
	if s.Volume == nil {
		s.Volume = &corev1.PersistentVolumeClaimSpec{}
	}
	if len(s.Volume.AccessModes) == 0 {
		s.Volume.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	}
	if s.Volume.Resources.Requests == nil {
		s.Volume.Resources.Requests = corev1.ResourceList{}
	}
	if _, ok := s.Volume.Resources.Requests[corev1.ResourceStorage]; !ok {
		s.Volume.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("10Gi")
	}
	for i := range s.Exporters {
		if s.Exporters[i].Template.Spec.RestartPolicy == "" {
			s.Exporters[i].Template.Spec.RestartPolicy = corev1.RestartPolicyNever
		}
	}
}

type validator struct {
	decoder admission.Decoder
	client  kubernetes.Interface
}

func (v *validator) Handle(ctx context.Context, req admission.Request) admission.Response {
	a := &OSArtifact{}
	if err := v.decoder.Decode(req, a); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if errs := validate(a); len(errs) > 0 {
		return admission.Denied(errs.ToAggregate().Error())
	}
	if v.client != nil {
		for _, p := range [][2]string{{"", "pods"}, {"batch", "jobs"}} {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User: req.UserInfo.Username, UID: req.UserInfo.UID, Groups: req.UserInfo.Groups,
				ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: req.Namespace, Verb: "create", Group: p[0], Resource: p[1]},
			}}
			out, err := v.client.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
			if err != nil {
				return admission.Errored(http.StatusInternalServerError, err)
			}
			if !out.Status.Allowed {
				return admission.Denied(fmt.Sprintf("not allowed to create %s in %s", p[1], req.Namespace))
			}
		}
	}
	return admission.Allowed("")
}

type defaulter struct{ decoder admission.Decoder }

func (d *defaulter) Handle(_ context.Context, req admission.Request) admission.Response {
	a := &OSArtifact{}
	if err := d.decoder.Decode(req, a); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	applyDefaults(&a.Spec)
	out, err := json.Marshal(a)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	return admission.PatchResponseFromRaw(req.Object.Raw, out)
}

func main() {
	host := flag.String("host", "127.0.0.1", "listen address")
	port := flag.Int("port", 9444, "listen port")
	certDir := flag.String("cert-dir", "", "directory with tls.crt and tls.key")
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig for SubjectAccessReviews (none: no check)")
	flag.Parse()

	scheme := runtime.NewScheme()
	scheme.AddKnownTypes(gv, &OSArtifact{})
	decoder := admission.NewDecoder(scheme)
	var client kubernetes.Interface
	if *kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		client = kubernetes.NewForConfigOrDie(cfg)
	}
	srv := webhook.NewServer(webhook.Options{Host: *host, Port: *port, CertDir: *certDir})
	srv.Register("/validate", &webhook.Admission{Handler: &validator{decoder: decoder, client: client}})
	srv.Register("/mutate", &webhook.Admission{Handler: &defaulter{decoder: decoder}})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
