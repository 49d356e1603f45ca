{{- define "eloquent-recovery.fullname" -}}
{{- printf "%s" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- define "eloquent-recovery.labels" -}}
app.kubernetes.io/name: eloquent-recovery
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
{{- define "eloquent-recovery.selector" -}}
app.kubernetes.io/name: eloquent-recovery
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "eloquent-recovery.serviceAccount" -}}
{{- default (include "eloquent-recovery.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}
{{- define "eloquent-recovery.secretName" -}}
{{- default (printf "%s-secrets" (include "eloquent-recovery.fullname" .)) .Values.secrets.existingSecret -}}
{{- end -}}
