{{/*
The resources of one service. Every template takes (dict "root" $ "cfg" <merged settings>),
where cfg is `defaults` with `services.<name>` merged over it (see switchboard.serviceConfig).
*/}}

{{- define "switchboard.componentName" -}}
{{- printf "%s-%s" (include "switchboard.fullname" .root) .cfg.name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The config files of a service: (file name -> content), from values or from files/config/<service>/. */}}
{{- define "switchboard.configData" -}}
{{- $out := dict -}}
{{- range $file, $spec := .cfg.configFiles -}}
{{- $content := $spec.content -}}
{{- if not $content -}}
{{- $path := printf "files/config/%s/%s" $.cfg.name $file -}}
{{- $content = $.root.Files.Get $path -}}
{{- if not $content -}}
{{- fail (printf "services.%s.configFiles.%s: no content given and %s is missing or empty in the chart" $.cfg.name $file $path) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $out $file $content -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{- define "switchboard.configMap" -}}
{{- $data := include "switchboard.configData" . | fromJson -}}
{{- if $data }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "switchboard.componentName" . }}-config
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "switchboard.componentLabels" (dict "root" .root "component" .cfg.name) | nindent 4 }}
data:
  {{- range $file, $content := $data }}
  {{ $file }}: |-
    {{- $content | trimSuffix "\n" | nindent 4 }}
  {{- end }}
{{- end }}
{{- end -}}

{{- define "switchboard.deployment" -}}
{{- $root := .root -}}
{{- $cfg := .cfg -}}
{{- $data := include "switchboard.configData" . | fromJson -}}
{{- $labels := dict "root" $root "component" $cfg.name -}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "switchboard.componentName" . }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "switchboard.componentLabels" $labels | nindent 4 }}
spec:
  {{- if not $cfg.autoscaling.enabled }}
  replicas: {{ int $cfg.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "switchboard.selectorLabels" $labels | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  template:
    metadata:
      labels:
        {{- include "switchboard.componentLabels" $labels | nindent 8 }}
        {{- with $cfg.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        {{- if $data }}
        checksum/config: {{ toJson $data | sha256sum }}
        {{- end }}
        {{- with $cfg.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "switchboard.serviceAccountName" $root }}
      # The services never call the Kubernetes API.
      automountServiceAccountToken: false
      enableServiceLinks: false
      terminationGracePeriodSeconds: {{ int $cfg.terminationGracePeriodSeconds }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $cfg.podSecurityContext | nindent 8 }}
      containers:
        - name: {{ $cfg.name }}
          image: {{ include "switchboard.image" (dict "Values" $root.Values "Chart" $root.Chart "suffix" ($cfg.imageSuffix | default "")) | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command: ["python", "-m", "services.{{ $cfg.name }}"]
          securityContext:
            {{- toYaml $cfg.securityContext | nindent 12 }}
          ports:
            - name: http
              containerPort: {{ int $cfg.ports.http }}
              protocol: TCP
            {{- if $cfg.ports.grpc }}
            - name: grpc
              containerPort: {{ int $cfg.ports.grpc }}
              protocol: TCP
            {{- end }}
          env:
            - name: SWITCHBOARD_HTTP_PORT
              value: {{ $cfg.ports.http | int | quote }}
            {{- if $cfg.ports.grpc }}
            - name: {{ required (printf "services.%s.grpcPortEnv is required with ports.grpc" $cfg.name) $cfg.grpcPortEnv }}
              value: {{ $cfg.ports.grpc | int | quote }}
            {{- end }}
            # Unique per replica: client ids and the transactional id.
            - name: SWITCHBOARD_INSTANCE_ID
              valueFrom:
                fieldRef: {fieldPath: metadata.name}
            {{- include "switchboard.kafkaEnv" $root | nindent 12 }}
            {{- with $root.Values.tracing }}
            {{- if .otlpEndpoint }}
            # traces (docs/observability.md#traces)
            - name: OTEL_EXPORTER_OTLP_ENDPOINT
              value: {{ .otlpEndpoint | quote }}
            - name: OTEL_TRACES_SAMPLER
              value: {{ .sampler | quote }}
            {{- if .samplerArg }}
            - name: OTEL_TRACES_SAMPLER_ARG
              value: {{ .samplerArg | quote }}
            {{- end }}
            {{- if .headersSecret.name }}
            - name: OTEL_EXPORTER_OTLP_HEADERS
              valueFrom:
                secretKeyRef: {name: {{ .headersSecret.name | quote }}, key: {{ .headersSecret.key | quote }}}
            {{- end }}
            {{- end }}
            {{- end }}
            {{- if $cfg.ports.grpc }}
            {{- include "switchboard.grpcSecurityEnv" $root | nindent 12 }}
            {{- end }}
            {{- range $file, $spec := $cfg.configFiles }}
            - name: {{ $spec.env }}
              value: {{ printf "/etc/switchboard/config/%s" $file | quote }}
            {{- end }}
            {{- range $name, $value := $cfg.env }}
            - name: {{ $name }}
              value: {{ $value | toString | quote }}
            {{- end }}
            {{- with $cfg.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          startupProbe:
            httpGet: {path: /healthz, port: http}
            {{- toYaml $cfg.probes.startup | nindent 12 }}
          livenessProbe:
            httpGet: {path: /healthz, port: http}
            {{- toYaml $cfg.probes.liveness | nindent 12 }}
          readinessProbe:
            {{- if and $cfg.grpcProbe $cfg.ports.grpc (not (include "switchboard.grpcTlsSecret" $root)) }}
            # The standard grpc.health.v1 service: SERVING once the service owns partitions.
            grpc: {port: {{ int $cfg.ports.grpc }}, service: ""}
            {{- else }}
            httpGet: {path: /readyz, port: http}
            {{- end }}
            {{- toYaml $cfg.probes.readiness | nindent 12 }}
          resources:
            {{- toYaml $cfg.resources | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- if $data }}
            - name: config
              mountPath: /etc/switchboard/config
              readOnly: true
            {{- end }}
            {{- with include "switchboard.kafkaVolumeMounts" $root }}{{ . | nindent 12 }}{{ end }}
            {{- if $cfg.ports.grpc }}
            {{- with include "switchboard.grpcSecurityVolumeMounts" $root }}{{ . | nindent 12 }}{{ end }}
            {{- end }}
            {{- with $cfg.extraVolumeMounts }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
      volumes:
        - name: tmp
          emptyDir: {sizeLimit: {{ $cfg.tmpSizeLimit }}}
        {{- if $data }}
        - name: config
          configMap:
            name: {{ include "switchboard.componentName" . }}-config
        {{- end }}
        {{- with include "switchboard.kafkaVolumes" $root }}{{ . | nindent 8 }}{{ end }}
        {{- if $cfg.ports.grpc }}
        {{- with include "switchboard.grpcSecurityVolumes" $root }}{{ . | nindent 8 }}{{ end }}
        {{- end }}
        {{- with $cfg.extraVolumes }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- if $cfg.topologySpread }}
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- include "switchboard.selectorLabels" $labels | nindent 14 }}
      {{- end }}
      {{- with $cfg.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $cfg.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $cfg.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}

{{- define "switchboard.service" -}}
{{- $labels := dict "root" .root "component" .cfg.name -}}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ include "switchboard.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "switchboard.componentLabels" $labels | nindent 4 }}
  {{- with .root.Values.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ .root.Values.service.type }}
  selector:
    {{- include "switchboard.selectorLabels" $labels | nindent 4 }}
  ports:
    - name: http
      port: {{ int .cfg.ports.http }}
      targetPort: http
      protocol: TCP
    {{- if .cfg.ports.grpc }}
    - name: grpc
      port: {{ int .cfg.ports.grpc }}
      targetPort: grpc
      protocol: TCP
      appProtocol: kubernetes.io/h2c
    {{- end }}
{{- end -}}

{{- define "switchboard.hpa" -}}
{{- $a := .cfg.autoscaling -}}
{{- if $a.enabled }}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "switchboard.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "switchboard.componentLabels" (dict "root" .root "component" .cfg.name) | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "switchboard.componentName" . }}
  minReplicas: {{ int $a.minReplicas }}
  maxReplicas: {{ int $a.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target: {type: Utilization, averageUtilization: {{ int $a.targetCPUUtilizationPercentage }}}
  {{- with $a.behavior }}
  behavior:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end -}}

{{- define "switchboard.pdb" -}}
{{- if .cfg.pdb.enabled }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "switchboard.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "switchboard.componentLabels" (dict "root" .root "component" .cfg.name) | nindent 4 }}
spec:
  maxUnavailable: {{ .cfg.pdb.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "switchboard.selectorLabels" (dict "root" .root "component" .cfg.name) | nindent 6 }}
{{- end }}
{{- end -}}

{{/* Ingress: metrics from Prometheus, gRPC from allowed clients. Egress: DNS and Kafka only. */}}
{{- define "switchboard.networkPolicy" -}}
{{- $np := .root.Values.networkPolicy -}}
{{- if $np.enabled }}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "switchboard.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "switchboard.componentLabels" (dict "root" .root "component" .cfg.name) | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "switchboard.selectorLabels" (dict "root" .root "component" .cfg.name) | nindent 6 }}
  policyTypes: [Ingress, Egress]
  ingress:
    - ports: [{port: http, protocol: TCP}]
      {{- with $np.metricsFrom }}
      from:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    {{- if and .root.Values.tests.enabled $np.metricsFrom }}
    # `helm test`'s Pod asks /readyz.
    - ports: [{port: http, protocol: TCP}]
      from:
        - podSelector:
            matchLabels:
              {{- include "switchboard.selectorLabels" (dict "root" .root "component" "test") | nindent 14 }}
    {{- end }}
    {{- if .cfg.ports.grpc }}
    - ports: [{port: grpc, protocol: TCP}]
      {{- with $np.grpcFrom }}
      from:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    {{- end }}
  egress:
    - ports:
        {{- range $np.dnsPorts }}
        - {port: {{ int . }}, protocol: UDP}
        - {port: {{ int . }}, protocol: TCP}
        {{- end }}
    - ports:
        {{- range $np.kafkaPorts }}
        - {port: {{ int . }}, protocol: TCP}
        {{- end }}
      {{- if eq .root.Values.kafka.mode "strimzi" }}
      to:
        - podSelector:
            matchLabels:
              strimzi.io/cluster: {{ include "switchboard.strimziCluster" .root }}
              strimzi.io/kind: Kafka
      {{- else if $np.kafkaTo }}
      to:
        {{- toYaml $np.kafkaTo | nindent 8 }}
      {{- end }}
    {{- with .root.Values.tracing }}
    {{- if .otlpEndpoint }}
    - ports:
        - {port: {{ int .port }}, protocol: TCP}
      {{- with .to }}
      to:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    {{- end }}
    {{- end }}
{{- end }}
{{- end -}}

{{/*
gRPC security of the services with a gRPC port (services/common/grpc_security.py): the TLS
certificate and the tenant tokens come from Secrets (yours, or made by the chart:
templates/grpc-secrets.yaml), mounted read-only. Without TLS and tokens the services would refuse
to start, so the chart refuses to render instead, naming the values, unless grpc.insecure=true.
The kubelet's native gRPC probe cannot speak TLS: with TLS, readiness uses /readyz instead.
*/}}
{{- define "switchboard.grpcTlsGenerated" -}}
{{- and (not .Values.grpc.insecure) (not .Values.grpc.tls.existingSecret) .Values.grpc.tls.generate | toString -}}
{{- end -}}

{{- define "switchboard.grpcTlsSecret" -}}
{{- if .Values.grpc.tls.existingSecret -}}
{{- .Values.grpc.tls.existingSecret -}}
{{- else if eq (include "switchboard.grpcTlsGenerated" .) "true" -}}
{{- printf "%s-grpc-tls" (include "switchboard.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "switchboard.grpcTokensGenerated" -}}
{{- and (not .Values.grpc.tokens.existingSecret) (gt (len .Values.grpc.tokens.generate) 0) | toString -}}
{{- end -}}

{{- define "switchboard.grpcTokensSecret" -}}
{{- if .Values.grpc.tokens.existingSecret -}}
{{- .Values.grpc.tokens.existingSecret -}}
{{- else if eq (include "switchboard.grpcTokensGenerated" .) "true" -}}
{{- printf "%s-grpc-tokens" (include "switchboard.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "switchboard.grpcSecurityEnv" -}}
{{- $g := .Values.grpc -}}
{{- $tls := include "switchboard.grpcTlsSecret" . -}}
{{- $tokens := include "switchboard.grpcTokensSecret" . -}}
{{- if and $g.tls.clientCaKey (not $g.tls.existingSecret) -}}
{{- fail "grpc.tls.clientCaKey (mTLS) needs grpc.tls.existingSecret" -}}
{{- end -}}
{{- if and (not $g.insecure) (not $tls) -}}
{{- fail "gRPC needs TLS: set grpc.tls.existingSecret (a kubernetes.io/tls Secret, e.g. from cert-manager) or grpc.tls.generate=true, or grpc.insecure=true (development only)" -}}
{{- end -}}
{{- if and (not $g.insecure) (not $tokens) -}}
{{- fail "gRPC needs per-tenant tokens: set grpc.tokens.generate (the tenant ids, e.g. --set grpc.tokens.generate={acme}) or grpc.tokens.existingSecret, or grpc.insecure=true (development only)" -}}
{{- end -}}
- name: SWITCHBOARD_GRPC_INSECURE
  value: {{ $g.insecure | toString | quote }}
{{- if $tls }}
- name: SWITCHBOARD_GRPC_TLS_CERT_FILE
  value: {{ printf "/etc/switchboard/grpc-tls/%s" $g.tls.certKey | quote }}
- name: SWITCHBOARD_GRPC_TLS_KEY_FILE
  value: {{ printf "/etc/switchboard/grpc-tls/%s" $g.tls.keyKey | quote }}
{{- if $g.tls.clientCaKey }}
- name: SWITCHBOARD_GRPC_TLS_CLIENT_CA_FILE
  value: {{ printf "/etc/switchboard/grpc-tls/%s" $g.tls.clientCaKey | quote }}
{{- end }}
{{- end }}
{{- if $tokens }}
- name: SWITCHBOARD_GRPC_TOKENS_FILE
  value: {{ printf "/etc/switchboard/grpc-tokens/%s" $g.tokens.key | quote }}
{{- end }}
{{- end -}}

{{- define "switchboard.grpcSecurityVolumes" -}}
{{- with include "switchboard.grpcTlsSecret" . }}
- name: grpc-tls
  secret:
    secretName: {{ . | quote }}
    defaultMode: 0440
{{- end }}
{{- with include "switchboard.grpcTokensSecret" . }}
- name: grpc-tokens
  secret:
    secretName: {{ . | quote }}
    defaultMode: 0440
{{- end }}
{{- end -}}

{{- define "switchboard.grpcSecurityVolumeMounts" -}}
{{- if include "switchboard.grpcTlsSecret" . }}
- name: grpc-tls
  mountPath: /etc/switchboard/grpc-tls
  readOnly: true
{{- end }}
{{- if include "switchboard.grpcTokensSecret" . }}
- name: grpc-tokens
  mountPath: /etc/switchboard/grpc-tokens
  readOnly: true
{{- end }}
{{- end -}}
