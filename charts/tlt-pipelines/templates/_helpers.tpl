{{/* Names: the chart name, and the release-qualified full name (63 chars max). */}}
{{- define "tlt-pipelines.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tlt-pipelines.fullname" -}}
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

{{- define "tlt-pipelines.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The standard labels every object carries. */}}
{{- define "tlt-pipelines.labels" -}}
helm.sh/chart: {{ include "tlt-pipelines.chart" . }}
{{ include "tlt-pipelines.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tlt-pipelines
{{- end }}

{{- define "tlt-pipelines.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tlt-pipelines.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "tlt-pipelines.serviceAccountName" -}}
{{- default (include "tlt-pipelines.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{- define "tlt-pipelines.sensorServiceAccountName" -}}
{{- printf "%s-sensor" (include "tlt-pipelines.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tlt-pipelines.kfpNamespace" -}}
{{- default .Release.Namespace .Values.kfp.namespace }}
{{- end }}

{{/*
The tlt-core image: pinned by digest when images.digest is set (what was scanned and
signed is what runs), else by tag.
*/}}
{{- define "tlt-pipelines.tltCoreImage" -}}
{{- if .Values.images.digest }}
{{- printf "%s/%s@%s" .Values.images.registry .Values.images.tltCore .Values.images.digest }}
{{- else }}
{{- printf "%s/%s:%s" .Values.images.registry .Values.images.tltCore (default .Chart.AppVersion .Values.images.tag) }}
{{- end }}
{{- end }}

{{/*
Pod and container security settings: the same on every pod the chart runs, and not
configurable beyond the UID/GID (values.schema.json refuses 0).
*/}}
{{- define "tlt-pipelines.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroup: {{ .Values.securityContext.fsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "tlt-pipelines.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "tlt-pipelines.resources" -}}
{{- toYaml .Values.resources }}
{{- end }}

{{/* The projected KFP token: short-lived, audience-bound, rotated by the kubelet. */}}
{{- define "tlt-pipelines.kfpTokenVolume" -}}
- name: kfp-token
  projected:
    defaultMode: 0440
    sources:
      - serviceAccountToken:
          path: token
          audience: {{ .Values.kfp.token.audience }}
          expirationSeconds: {{ .Values.kfp.token.expirationSeconds }}
{{- end }}

{{/* Volumes of a submitting pod: token, specs, targets, a writable /tmp. */}}
{{- define "tlt-pipelines.submitVolumes" -}}
{{ include "tlt-pipelines.kfpTokenVolume" . }}
- name: specs
  configMap:
    name: {{ include "tlt-pipelines.fullname" . }}-specs
- name: targets
  configMap:
    name: {{ include "tlt-pipelines.fullname" . }}-targets
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
{{- end }}

{{- define "tlt-pipelines.submitVolumeMounts" -}}
- name: kfp-token
  mountPath: /var/run/secrets/kubeflow/pipelines
  readOnly: true
- name: specs
  mountPath: /etc/tlt/specs
  readOnly: true
- name: targets
  mountPath: /etc/tlt/targets
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- end }}

{{/*
Environment of a submitting container. The KFP client reads the token file named by
KF_PIPELINES_SA_TOKEN_PATH on every request, so the rotated token is always used.
TLT_S3_SECRET / TLT_MODEL_KEY_SECRET name the Secrets the pipeline tasks are to read;
TLT_NETWORK is the network every submit passes as --network.
*/}}
{{- define "tlt-pipelines.submitEnv" -}}
- name: TLT_NETWORK
  value: {{ .Values.network | quote }}
- name: KFP_HOST
  value: {{ .Values.kfp.host | quote }}
- name: KFP_NAMESPACE
  value: {{ include "tlt-pipelines.kfpNamespace" . | quote }}
- name: KFP_EXPERIMENT
  value: {{ .Values.kfp.experiment | quote }}
- name: KF_PIPELINES_SA_TOKEN_PATH
  value: /var/run/secrets/kubeflow/pipelines/token
- name: TLT_TARGETS
  value: /etc/tlt/targets/targets.yaml
- name: DATASET_URI
  value: {{ .Values.storage.datasetUri | quote }}
- name: CALIBRATION_IMAGES_URI
  value: {{ .Values.storage.calibrationImagesUri | quote }}
- name: PUBLISH_URI
  value: {{ .Values.storage.publishUri | quote }}
- name: TLT_S3_SECRET
  value: {{ .Values.secrets.s3.name | quote }}
- name: TLT_MODEL_KEY_SECRET
  value: {{ .Values.secrets.modelKey.name | quote }}
- name: HOME
  value: /tmp
{{- end }}

{{/*
The network's spec files in the ConfigMap <fullname>-specs: <network>_train.txt, and the
dataset-convert spec of the KITTI detectors (classification reads class folders, 002 has
no conversion for it; values.schema.json refuses a convert spec with it).
*/}}
{{- define "tlt-pipelines.experimentSpecFile" -}}
{{- printf "%s_train.txt" .Values.network }}
{{- end }}

{{- define "tlt-pipelines.convertSpecFile" -}}
{{- if ne .Values.network "classification" }}dataset_convert.txt{{ end }}
{{- end }}

{{/*
The experiment spec text: specs.experimentSpec, else the network's sample. A spec of
another network would only fail inside the run, hours later; the section every spec of
the network must have (its parser requires it, and no other network's spec has it) is
looked for here so that `helm template` fails at once. Only a line starting with the
section name counts (not a comment).
*/}}
{{- define "tlt-pipelines.experimentSpec" -}}
{{- $file := include "tlt-pipelines.experimentSpecFile" . }}
{{- $text := default (.Files.Get (printf "files/specs/%s" $file)) .Values.specs.experimentSpec }}
{{- $section := get (dict "ssd" "ssd_config" "detectnet_v2" "bbox_rasterizer_config" "classification" "train_config") .Values.network }}
{{- if not (regexMatch (printf "(?m)^[ \t]*%s[ \t]*:?[ \t]*\\{" $section) $text) }}
{{- fail (printf "specs.experimentSpec: not a %s experiment spec (it has no %s section); give a %s spec or set network to the spec's network" .Values.network $section .Values.network) }}
{{- end }}
{{- $text }}
{{- end }}
