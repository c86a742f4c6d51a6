{{/* Names and labels. */}}
{{- define "marquee.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "marquee.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "marquee.selectorLabels" -}}
app.kubernetes.io/name: {{ include "marquee.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "marquee.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "marquee.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "marquee.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* The in-cluster URL of one service: (list $ "auth"). */}}
{{- define "marquee.serviceUrl" -}}
{{- $root := index . 0 -}}
{{- printf "http://%s-%s:%v" (include "marquee.fullname" $root) (index . 1) $root.Values.port -}}
{{- end -}}

{{/*
One service's settings: serviceDefaults overlaid with services.<name>, as YAML
(use with fromYaml). mergeOverwrite ignores false and 0 in the override, so those keys
are copied explicitly.
*/}}
{{- define "marquee.serviceValues" -}}
{{- $root := index . 0 -}}
{{- $overrides := index . 1 | default dict -}}
{{- $merged := mergeOverwrite (deepCopy $root.Values.serviceDefaults) (deepCopy $overrides) -}}
{{- range $key := list "database" "replicas" -}}
{{- if hasKey $overrides $key -}}
{{- $_ := set $merged $key (index $overrides $key) -}}
{{- end -}}
{{- end -}}
{{- toYaml $merged -}}
{{- end -}}

{{/* The pod spec parts every Marquee container shares. */}}
{{- define "marquee.podCommon" -}}
automountServiceAccountToken: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
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
volumes:
  - name: tmp
    emptyDir: {}
{{- end -}}
