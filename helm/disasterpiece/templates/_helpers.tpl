{{- define "disasterpiece.name" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "disasterpiece.labels" -}}
app.kubernetes.io/name: disasterpiece
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "disasterpiece.selector" -}}
app.kubernetes.io/name: disasterpiece
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "disasterpiece.serviceAccount" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "disasterpiece.name" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* What the faults, probes and the controller itself use in a namespace. */}}
{{- define "disasterpiece.namespacedRules" -}}
- apiGroups: ["disasterpiece.dev"]
  resources: ["scenarios", "gamedays", "exercises"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["disasterpiece.dev"]
  resources: ["exercises"]
  verbs: ["create", "patch", "delete"]
- apiGroups: ["disasterpiece.dev"]
  resources: ["exercises/status", "gamedays/status"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "delete", "patch"]
- apiGroups: [""]
  resources: ["pods/eviction", "pods/exec"]
  verbs: ["create"]
- apiGroups: [""]
  resources: ["pods/ephemeralcontainers"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "create", "update", "patch", "delete"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["services/proxy"]
  verbs: ["get"]
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets", "daemonsets", "replicasets"]
  verbs: ["get", "list"]
- apiGroups: ["apps"]
  resources: ["deployments/scale", "statefulsets/scale"]
  verbs: ["get", "patch"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "list", "create", "delete"]
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "create", "update"]
{{- end -}}
