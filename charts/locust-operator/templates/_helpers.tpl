{{/*
Chart name, truncated to the 63 characters of a DNS-1123 label.
*/}}
{{- define "locust-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's resources: fullnameOverride, else the release
name, with the chart name appended unless the release name contains it.
*/}}
{{- define "locust-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "locust-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every resource of the chart.
*/}}
{{- define "locust-operator.labels" -}}
helm.sh/chart: {{ include "locust-operator.chart" . }}
{{ include "locust-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: locust-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Selector labels of the operator pod (immutable in the Deployment selector).
*/}}
{{- define "locust-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "locust-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Name of the ServiceAccount the operator runs as.
*/}}
{{- define "locust-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "locust-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Operator image reference; the tag defaults to the chart's appVersion.
*/}}
{{- define "locust-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/*
Directory the operator reads its config file (and template overrides) from.
*/}}
{{- define "locust-operator.configDir" -}}
/etc/locust-operator
{{- end }}

{{/*
The operator config document: .Values.config, with `namespaces` filled from
watchNamespaces and `templatesDir` set when templateOverrides are given.
*/}}
{{- define "locust-operator.config" -}}
{{- $config := deepCopy .Values.config }}
{{- $_ := set $config "namespaces" .Values.watchNamespaces }}
{{- if .Values.templateOverrides }}
{{- $_ := set $config "templatesDir" (printf "%s/templates" (include "locust-operator.configDir" .)) }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/*
Arguments of `locust-operator`: run with the mounted config and either one
--namespace per watched namespace or --all-namespaces.
*/}}
{{- define "locust-operator.args" -}}
- run
- --config
- {{ include "locust-operator.configDir" . }}/config.yaml
{{- range .Values.watchNamespaces }}
- --namespace
- {{ . | quote }}
{{- else }}
- --all-namespaces
{{- end }}
{{- end }}

{{/*
Least privilege, no wildcards: exactly the calls the controller makes (Kopf
lists, watches and patches, the latter only for the finalizer of a live test;
the controller creates children and events, reads a child back only when its
create answered AlreadyExists, to check that it owns it, and patches status). Kopf runs without CRD/namespace scanning, so nothing else is
needed. All in a ClusterRole when all namespaces are watched, else in a Role
per watched namespace.
*/}}
{{- define "locust-operator.namespacedRules" -}}
- apiGroups: ["locust.io"]
  resources: ["locusttests"]
  {{- if .Values.config.schedules }}
  # create, get, delete: a LocustTestSchedule's runs (made, read back on AlreadyExists,
  # deleted past the history limits); patch: Kopf's finalizer, and aborts (Replace).
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
  {{- else }}
  verbs: ["list", "watch", "patch"]
  {{- end }}
- apiGroups: ["locust.io"]
  resources: ["locusttests/status"]
  verbs: ["patch"]
{{- if .Values.config.schedules }}
- apiGroups: ["locust.io"]
  resources: ["locusttestschedules"]
  verbs: ["list", "watch", "patch"]
- apiGroups: ["locust.io"]
  resources: ["locusttestschedules/status"]
  verbs: ["patch"]
{{- end }}
{{- if .Values.config.webRoutes }}
# create, get: a test's spec.webUI routes (read back on AlreadyExists); owned by the
# test, so the garbage collector removes them: no delete.
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses"]
  verbs: ["get", "create"]
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes"]
  verbs: ["get", "create"]
{{- end }}
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "create"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["configmaps"]
  {{- if .Values.config.schedules }}
  # delete: the HTML report of a schedule's old run (keepReportRuns), by uid; a
  # DELETE answers a Status, so the operator still reads no ConfigMap.
  verbs: ["create", "delete"]
  {{- else }}
  verbs: ["create"]
  {{- end }}
- apiGroups: [""]
  resources: ["events"]
  # list: the FailedMount events of a pod that cannot start (a missing ConfigMap).
  verbs: ["create", "list"]
{{- end }}

{{/*
Labels of the pods of a test's master, as the controller renders them
(controller/locust_operator/render.py, selector_labels): the PodMonitor and
the NetworkPolicy select the masters by them.
*/}}
{{- define "locust-operator.masterPodLabels" -}}
managed-by: locust-k8s-operator
app.kubernetes.io/component: master
{{- end }}

{{/*
Port the controller reads a master's live results on: the port of
config.statsUrlTemplate (80 or 443 from its scheme when it has none).
*/}}
{{- define "locust-operator.statsPort" -}}
{{- $url := .Values.config.statsUrlTemplate }}
{{- $re := "^[A-Za-z][A-Za-z0-9+.-]*://[^/:@?#]*(:([0-9]+))?([/?#].*)?$" }}
{{- if not (regexMatch $re $url) }}
{{- fail (printf "networkPolicy: cannot find the port of config.statsUrlTemplate %q" $url) }}
{{- end }}
{{- $port := regexReplaceAll $re $url "${2}" }}
{{- if $port }}{{ $port }}{{ else if hasPrefix "https:" $url }}443{{ else }}80{{ end }}
{{- end }}
