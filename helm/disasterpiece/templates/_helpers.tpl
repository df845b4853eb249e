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
  resources: ["exercises/status", "gamedays/status", "scenarios/status"]
  verbs: ["patch"]
# `watch` on pods and workloads: the observed blast radius watches them beyond the targets.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "delete", "patch"]
- apiGroups: [""]
  resources: ["pods/eviction"]
  verbs: ["create"]
# The exec that stops an in-pod fault is a WebSocket upgrade (a GET): authorized as `get`
# up to Kubernetes 1.34, as `create` too from 1.35.
- apiGroups: [""]
  resources: ["pods/exec"]
  verbs: ["get", "create"]
- apiGroups: [""]
  resources: ["pods/ephemeralcontainers"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "create", "update", "patch", "delete"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
# http probes reach NAME.NAMESPACE.svc through the service proxy, authorized by their
# method: GET and HEAD as `get`, POST as `create`.
- apiGroups: [""]
  resources: ["services/proxy"]
  verbs: ["get", "create"]
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets", "daemonsets", "replicasets"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["apps"]
  resources: ["deployments/scale", "statefulsets/scale"]
  verbs: ["get", "patch"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["create", "delete"]
{{- end -}}
