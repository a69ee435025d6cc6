{{/* Helm's labels, added to every object's metadata (never to selectors or Pod templates, so
     a chart upgrade alone does not restart anything). */}}
{{- define "osartifact.helmLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/* The labels of the operator's objects. */}}
{{- define "osartifact.operatorLabels" -}}
app.kubernetes.io/name: osartifact-operator
app.kubernetes.io/part-of: osartifact
{{ include "osartifact.helmLabels" . }}
{{- end }}

{{/* The labels of the webhook's objects. */}}
{{- define "osartifact.webhookLabels" -}}
app.kubernetes.io/name: osartifact-webhook
app.kubernetes.io/part-of: osartifact
{{ include "osartifact.helmLabels" . }}
{{- end }}

{{/* repository:tag, or repository@digest when a digest is set. */}}
{{- define "osartifact.image" -}}
{{- if .digest -}}
{{ .repository }}@{{ .digest }}
{{- else -}}
{{ .repository }}:{{ .tag }}
{{- end -}}
{{- end }}

{{- define "osartifact.selfManaged" -}}
{{- if eq .Values.certificates.mode "self-managed" -}}
true
{{- else if eq .Values.certificates.mode "cert-manager" -}}
{{- else -}}
{{- fail "certificates.mode must be self-managed or cert-manager" -}}
{{- end -}}
{{- end }}

{{/* Pod scheduling shared by both Deployments. */}}
{{- define "osartifact.scheduling" -}}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The deletion guard of both webhook configurations (see manifests/webhook). */}}
{{- define "osartifact.matchConditions" -}}
matchConditions:
  - name: not-being-deleted
    expression: (oldObject == null || !has(oldObject.metadata.deletionTimestamp)) && (object == null || !has(object.metadata.deletionTimestamp))
{{- end }}
