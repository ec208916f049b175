{{/* Names, labels and the settings every template shares. */}}

{{- define "switchboard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "switchboard.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "switchboard.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "switchboard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: switchboard
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "routing") */}}
{{- define "switchboard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "switchboard.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "switchboard.componentLabels" -}}
{{ include "switchboard.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The image: .Values.image, plus an optional "suffix" on the repository (a service's imageSuffix). */}}
{{- define "switchboard.image" -}}
{{- printf "%s%s:%s" .Values.image.repository (.suffix | default "") (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "switchboard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "switchboard.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
Deep merge of .src into .dst, in place (a map in both merges key by key; anything else in .src
replaces). Unlike sprig's merge/mergeOverwrite, a false, 0 or "" in .src wins over .dst.
*/}}
{{- define "switchboard.mergeInto" -}}
{{- $dst := .dst -}}
{{- range $k, $v := .src -}}
{{- $cur := get $dst $k -}}
{{- if and (kindIs "map" $v) (kindIs "map" $cur) -}}
{{- include "switchboard.mergeInto" (dict "dst" $cur "src" $v) -}}
{{- else -}}
{{- $_ := set $dst $k (deepCopy $v) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* One service's settings: `defaults` with the service's entry merged over it. Returns a dict. */}}
{{- define "switchboard.serviceConfig" -}}
{{- $cfg := deepCopy .root.Values.defaults -}}
{{- include "switchboard.mergeInto" (dict "dst" $cfg "src" .svc) -}}
{{- $_ := set $cfg "name" .name -}}
{{- toJson $cfg -}}
{{- end -}}

{{- define "switchboard.strimziCluster" -}}
{{- default (printf "%s-kafka" .Release.Name) .Values.kafka.strimzi.clusterName | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "switchboard.topicProvisioner" -}}
{{- $p := .Values.topics.provisioner -}}
{{- if eq $p "auto" -}}
{{- ternary "strimzi" "job" (eq .Values.kafka.mode "strimzi") -}}
{{- else -}}
{{- $p -}}
{{- end -}}
{{- end -}}

{{/*
How the services reach Kafka, after validation: a dict with bootstrap, protocol, mechanism,
username / usernameSecret+usernameKey, passwordSecret+passwordKey, tlsSecret, caKey, certKey, keyKey.
Strimzi mode derives all of it from the cluster (listener plain or tls + SCRAM-SHA-512 KafkaUser).
*/}}
{{- define "switchboard.kafka" -}}
{{- $k := .Values.kafka -}}
{{- $out := dict -}}
{{- if eq $k.mode "strimzi" -}}
{{- $cluster := include "switchboard.strimziCluster" . -}}
{{- if eq $k.strimzi.listener "tls" -}}
{{- $_ := set $out "bootstrap" (printf "%s-kafka-bootstrap.%s.svc:9093" $cluster .Release.Namespace) -}}
{{- $_ := set $out "protocol" "SASL_SSL" -}}
{{- $_ := set $out "mechanism" "SCRAM-SHA-512" -}}
{{- $_ := set $out "username" $k.strimzi.user -}}
{{- $_ := set $out "passwordSecret" $k.strimzi.user -}}
{{- $_ := set $out "passwordKey" "password" -}}
{{- $_ := set $out "tlsSecret" (printf "%s-cluster-ca-cert" $cluster) -}}
{{- $_ := set $out "caKey" "ca.crt" -}}
{{- else if eq $k.strimzi.listener "plain" -}}
{{- $_ := set $out "bootstrap" (printf "%s-kafka-bootstrap.%s.svc:9092" $cluster .Release.Namespace) -}}
{{- $_ := set $out "protocol" "PLAINTEXT" -}}
{{- else -}}
{{- fail (printf "kafka.strimzi.listener=%q must be plain or tls" $k.strimzi.listener) -}}
{{- end -}}
{{- else if eq $k.mode "external" -}}
{{- if not $k.bootstrapServers -}}
{{- fail "kafka.bootstrapServers is required with kafka.mode=external (e.g. b-1.kafka.example:9096,b-2.kafka.example:9096)" -}}
{{- end -}}
{{- $proto := upper $k.securityProtocol -}}
{{- if not (has $proto (list "PLAINTEXT" "SSL" "SASL_PLAINTEXT" "SASL_SSL")) -}}
{{- fail (printf "kafka.securityProtocol=%q must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL" $k.securityProtocol) -}}
{{- end -}}
{{- $_ := set $out "bootstrap" $k.bootstrapServers -}}
{{- $_ := set $out "protocol" $proto -}}
{{- if hasPrefix "SASL" $proto -}}
{{- if not $k.sasl.mechanism -}}
{{- fail (printf "kafka.securityProtocol=%s needs kafka.sasl.mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)" $proto) -}}
{{- end -}}
{{- if not $k.sasl.existingSecret -}}
{{- fail (printf "kafka.securityProtocol=%s needs kafka.sasl.existingSecret: the name of a Secret you create with the password (the chart never takes passwords as values)" $proto) -}}
{{- end -}}
{{- if not (or $k.sasl.username $k.sasl.usernameKey) -}}
{{- fail (printf "kafka.securityProtocol=%s needs kafka.sasl.username or kafka.sasl.usernameKey" $proto) -}}
{{- end -}}
{{- $_ := set $out "mechanism" (upper $k.sasl.mechanism) -}}
{{- if $k.sasl.usernameKey -}}
{{- $_ := set $out "usernameSecret" $k.sasl.existingSecret -}}
{{- $_ := set $out "usernameKey" $k.sasl.usernameKey -}}
{{- else -}}
{{- $_ := set $out "username" $k.sasl.username -}}
{{- end -}}
{{- $_ := set $out "passwordSecret" $k.sasl.existingSecret -}}
{{- $_ := set $out "passwordKey" $k.sasl.passwordKey -}}
{{- end -}}
{{- if $k.tls.existingSecret -}}
{{- if not (or (eq $proto "SSL") (eq $proto "SASL_SSL")) -}}
{{- fail (printf "kafka.tls.existingSecret is set but kafka.securityProtocol=%s does not use TLS (use SSL or SASL_SSL)" $proto) -}}
{{- end -}}
{{- if ne (empty $k.tls.certKey) (empty $k.tls.keyKey) -}}
{{- fail "kafka.tls.certKey and kafka.tls.keyKey go together (mTLS needs both the client certificate and its key)" -}}
{{- end -}}
{{- $_ := set $out "tlsSecret" $k.tls.existingSecret -}}
{{- $_ := set $out "caKey" $k.tls.caKey -}}
{{- $_ := set $out "certKey" $k.tls.certKey -}}
{{- $_ := set $out "keyKey" $k.tls.keyKey -}}
{{- else if or $k.tls.certKey $k.tls.keyKey -}}
{{- fail "kafka.tls.certKey/keyKey need kafka.tls.existingSecret" -}}
{{- end -}}
{{- else -}}
{{- fail (printf "kafka.mode=%q must be external or strimzi" $k.mode) -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{- define "switchboard.kafkaTlsDir" -}}/etc/switchboard/kafka-tls{{- end -}}

{{/* The Kafka env vars (services and the topics Job): credentials only by secretKeyRef. */}}
{{- define "switchboard.kafkaEnv" -}}
{{- $k := include "switchboard.kafka" . | fromJson -}}
{{- $dir := include "switchboard.kafkaTlsDir" . -}}
- name: KAFKA_BOOTSTRAP_SERVERS
  value: {{ $k.bootstrap | quote }}
- name: KAFKA_SECURITY_PROTOCOL
  value: {{ $k.protocol | quote }}
- name: SWITCHBOARD_TOPIC_PREFIX
  value: {{ .Values.kafka.topicPrefix | quote }}
- name: SWITCHBOARD_EXACTLY_ONCE
  value: {{ .Values.kafka.exactlyOnce | quote }}
{{- if $k.mechanism }}
- name: KAFKA_SASL_MECHANISM
  value: {{ $k.mechanism | quote }}
{{- if $k.usernameSecret }}
- name: KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef: {name: {{ $k.usernameSecret | quote }}, key: {{ $k.usernameKey | quote }}}
{{- else }}
- name: KAFKA_SASL_USERNAME
  value: {{ $k.username | quote }}
{{- end }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ $k.passwordSecret | quote }}, key: {{ $k.passwordKey | quote }}}
{{- end }}
{{- if $k.tlsSecret }}
- name: KAFKA_SSL_CA_LOCATION
  value: {{ printf "%s/%s" $dir $k.caKey | quote }}
{{- if $k.certKey }}
- name: KAFKA_SSL_CERTIFICATE_LOCATION
  value: {{ printf "%s/%s" $dir $k.certKey | quote }}
- name: KAFKA_SSL_KEY_LOCATION
  value: {{ printf "%s/%s" $dir $k.keyKey | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "switchboard.kafkaVolumes" -}}
{{- $k := include "switchboard.kafka" . | fromJson -}}
{{- if $k.tlsSecret }}
- name: kafka-tls
  secret:
    secretName: {{ $k.tlsSecret | quote }}
    defaultMode: 0440
{{- end }}
{{- end -}}

{{- define "switchboard.kafkaVolumeMounts" -}}
{{- $k := include "switchboard.kafka" . | fromJson -}}
{{- if $k.tlsSecret }}
- name: kafka-tls
  mountPath: {{ include "switchboard.kafkaTlsDir" . }}
  readOnly: true
{{- end }}
{{- end -}}
