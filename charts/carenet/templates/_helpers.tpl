{{/*
Expand the name of the chart.
*/}}
{{- define "carenet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name.
We truncate at 63 chars because some Kubernetes name fields are limited to this (by the DNS naming spec).
If release name contains chart name it will be used as a full name.
*/}}
{{- define "carenet.fullname" -}}
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
Create chart name and version as used by the chart label.
*/}}
{{- define "carenet.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels
*/}}
{{- define "carenet.labels" -}}
helm.sh/chart: {{ include "carenet.chart" . }}
{{ include "carenet.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: carenet
{{- end }}

{{/*
Selector labels
*/}}
{{- define "carenet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "carenet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* ---------------------------------------------------------------------------
Per-service helpers. They take a dict: {"root": $, "name": "<service>"}; the
"component" helpers take {"root": $, "component": "<component>"} so that the
migrations Job and the test pod get labels of their own.
--------------------------------------------------------------------------- */}}

{{/*
Full name of one service's objects: "<fullname>-<service>".
*/}}
{{- define "carenet.service.fullname" -}}
{{- printf "%s-%s" (include "carenet.fullname" .root) .name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of one component (a service, "<service>-migrate" or "test").
*/}}
{{- define "carenet.component.labels" -}}
{{ include "carenet.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Selector labels of one component.
*/}}
{{- define "carenet.component.selectorLabels" -}}
{{ include "carenet.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "carenet.service.labels" -}}
{{ include "carenet.component.labels" (dict "root" .root "component" .name) }}
{{- end }}

{{- define "carenet.service.selectorLabels" -}}
{{ include "carenet.component.selectorLabels" (dict "root" .root "component" .name) }}
{{- end }}

{{/*
Deep merge: copies the map in (index . 1) into the map (index . 0), key by key.
Maps merge recursively; any other value (including false, 0, "" and lists) replaces.
Written out by hand so that the result does not depend on the merge library of the
Helm version in use.
*/}}
{{- define "carenet.deepMerge" -}}
{{- $dst := index . 0 }}
{{- $src := index . 1 }}
{{- range $key, $value := $src }}
{{- if and (kindIs "map" $value) (kindIs "map" (get $dst $key)) }}
{{- include "carenet.deepMerge" (list (get $dst $key) $value) }}
{{- else }}
{{- $_ := set $dst $key (deepCopy $value) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The settings of one service: `default` with `services.<name>` merged over it.
Fills the (empty) dict passed as "into": {"root": $, "name": <service>, "into": dict}.
*/}}
{{- define "carenet.service.values" -}}
{{- include "carenet.deepMerge" (list .into (deepCopy .root.Values.default)) }}
{{- include "carenet.deepMerge" (list .into (index .root.Values.services .name)) }}
{{- end }}

{{/*
Upper-case prefix of a service's settings: identity -> IDENTITY.
*/}}
{{- define "carenet.service.envPrefix" -}}
{{- . | upper | replace "-" "_" }}
{{- end }}

{{/*
The image of a service: repository:tag, or repository:tag@digest.
Takes {"root": $, "name": <service>, "image": <merged image values>}.
*/}}
{{- define "carenet.service.image" -}}
{{- $repository := .image.repository | default (printf "%s/%s" (trimSuffix "/" .image.registry) .name) }}
{{- $tag := .image.tag | default .root.Chart.AppVersion | toString }}
{{- include "carenet.image.refuseLatest" (dict "tag" $tag "what" (printf "services.%s.image.tag" .name)) }}
{{- if .image.digest }}
{{- printf "%s:%s@%s" $repository $tag .image.digest }}
{{- else }}
{{- printf "%s:%s" $repository $tag }}
{{- end }}
{{- end }}

{{/*
The test image: repository:tag, or repository:tag@digest.
*/}}
{{- define "carenet.test.image" -}}
{{- $image := .Values.tests.image }}
{{- $tag := $image.tag | toString }}
{{- include "carenet.image.refuseLatest" (dict "tag" $tag "what" "tests.image.tag") }}
{{- if $image.digest }}
{{- printf "%s:%s@%s" $image.repository $tag $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository $tag }}
{{- end }}
{{- end }}

{{- define "carenet.image.refuseLatest" -}}
{{- if or (eq .tag "") (eq (lower .tag) "latest") }}
{{- fail (printf "%s must be a fixed version, not %q: pin the image" .what .tag) }}
{{- end }}
{{- end }}

{{/*
Pod-level security context (restricted Pod Security Standard).
Takes the merged securityContext values.
*/}}
{{- define "carenet.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .runAsUser }}
runAsGroup: {{ .runAsGroup }}
fsGroup: {{ .fsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Container-level security context (restricted Pod Security Standard).
*/}}
{{- define "carenet.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .runAsUser }}
runAsGroup: {{ .runAsGroup }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Checkov skip annotations shared by every pod-owning object.
Takes {"skips": list of "CKV_K8S_xx=reason", "digest": image digest or ""}.
CKV_K8S_43 (image digest) is only skipped while no digest is configured.
*/}}
{{- define "carenet.checkovSkips" -}}
{{- $skips := .skips }}
{{- if not .digest }}
{{- $skips = append $skips "CKV_K8S_43=images are pinned by version tag (never latest); set image.digest to pin by digest" }}
{{- end }}
{{- range $i, $skip := $skips }}
checkov.io/skip{{ add1 $i }}: {{ $skip | quote }}
{{- end }}
{{- end }}

{{/*
Fail the render when no service is enabled, or when an enabled service calls a
service that is not enabled.
*/}}
{{- define "carenet.validateCalls" -}}
{{- $enabled := list }}
{{- range $name, $svc := .Values.services }}
{{- if $svc.enabled }}
{{- $enabled = append $enabled $name }}
{{- end }}
{{- end }}
{{- if not $enabled }}
{{- fail "no service is enabled: set services.<name>.enabled=true for at least one service" }}
{{- end }}
{{- range $name, $svc := .Values.services }}
{{- if $svc.enabled }}
{{- range $callee := ($svc.calls | default list) }}
{{- $target := index $.Values.services $callee | default dict }}
{{- if not $target.enabled }}
{{- fail (printf "services.%s calls %s, but services.%s.enabled is false" $name $callee $callee) }}
{{- end }}
{{- if eq $callee $name }}
{{- fail (printf "services.%s cannot call itself" $name) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
NetworkPolicy rules from a list of peers; renders nothing when the list is empty
(an empty `from`/`to` would admit everything).
Takes {"key": "from"|"to", "peers": [...], "ports": [...], "indent": <columns>}.
*/}}
{{- define "carenet.netpolRule" -}}
{{- if .peers }}
{{- printf "- %s:" .key | nindent .indent }}
{{- toYaml .peers | nindent (add .indent 4 | int) }}
{{- "  ports:" | nindent .indent }}
{{- toYaml .ports | nindent (add .indent 4 | int) }}
{{- end }}
{{- end }}

{{/*
Environment of a service container (the Deployment, its migrations Job, identity's
people-sync CronJob). Takes {"root": $, "name": <service>, "v": <merged values>,
"telemetry": bool, "skip": optional list of variable names of extraEnv/secretEnv to leave
out (the CronJob sets its Keycloak admin settings itself)}.
Secrets come only from existing Secrets (secretKeyRef); nothing secret is a plain value.
*/}}
{{- define "carenet.service.env" -}}
{{- $root := .root }}
{{- $name := .name }}
{{- $v := .v }}
{{- $skip := .skip | default list }}
{{- $p := include "carenet.service.envPrefix" $name }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: {{ $p }}_GRPC_PORT
  value: "50051"
- name: {{ $p }}_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ dig "database" "existingSecret" "" $v | default (printf "carenet-%s-db" $name) }}
      key: {{ dig "database" "key" "" $v | default "url" }}
- name: {{ $p }}_OIDC_ISSUER
  value: {{ $root.Values.oidc.issuer | quote }}
{{- $internal := include "carenet.oidc.internalUrl" $root }}
{{- $jwks := $root.Values.oidc.jwksUrl | default (ne $internal $root.Values.oidc.issuer | ternary (printf "%s/protocol/openid-connect/certs" $internal) "") }}
{{- with $jwks }}
- name: {{ $p }}_OIDC_JWKS_URL
  value: {{ . | quote }}
{{- end }}
- name: {{ $p }}_OIDC_AUDIENCE
  value: {{ dig "oidc" "audience" "" $v | default (printf "carenet-%s" $name) | quote }}
- name: {{ $p }}_LOG_LEVEL
  value: {{ $v.logLevel | quote }}
- name: {{ $p }}_SHUTDOWN_GRACE_SECONDS
  value: {{ $v.shutdownGraceSeconds | quote }}
- name: {{ $p }}_DRAIN_SECONDS
  value: {{ include "carenet.service.drainSeconds" $v | quote }}
- name: {{ $p }}_MAX_CONNECTION_AGE_SECONDS
  value: {{ $root.Values.lifecycle.maxConnectionAgeSeconds | quote }}
- name: {{ $p }}_MAX_CONNECTION_AGE_GRACE_SECONDS
  value: {{ $root.Values.lifecycle.maxConnectionAgeGraceSeconds | quote }}
{{- if $root.Values.tls.enabled }}
- name: {{ $p }}_TLS_CERT_FILE
  value: /etc/carenet/tls/tls.crt
- name: {{ $p }}_TLS_KEY_FILE
  value: /etc/carenet/tls/tls.key
- name: {{ $p }}_TLS_CA_FILE
  value: /etc/carenet/tls/ca.crt
{{- if $root.Values.tls.mutual }}
- name: {{ $p }}_TLS_CLIENT_CA_FILE
  value: /etc/carenet/tls/ca.crt
{{- end }}
- name: {{ $p }}_HEALTH_PORT
  value: "50052"
{{- end }}
{{- if $v.calls }}
{{- range $callee := $v.calls }}
- name: {{ $p }}_{{ include "carenet.service.envPrefix" $callee }}_TARGET
  value: {{ printf "dns:///%s.%s.svc.cluster.local:50051" (include "carenet.service.fullname" (dict "root" $root "name" $callee)) $root.Release.Namespace | quote }}
{{- end }}
{{- if ne $internal $root.Values.oidc.issuer }}
- name: {{ $p }}_OIDC_INTERNAL_URL
  value: {{ $internal | quote }}
{{- end }}
- name: {{ $p }}_OIDC_CLIENT_ID
  value: {{ dig "oidc" "clientId" "" $v | default (printf "svc-%s" $name) | quote }}
- name: {{ $p }}_OIDC_CLIENT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ dig "oidc" "clientSecret" "existingSecret" "" $v | default (printf "carenet-%s-oidc" $name) }}
      key: {{ dig "oidc" "clientSecret" "key" "" $v | default "client-secret" }}
{{- end }}
{{- range $v.secretEnv }}
{{- if not (has .name $skip) }}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret }}
      key: {{ .key }}
{{- end }}
{{- end }}
- name: OTEL_SERVICE_NAME
  value: {{ $name | quote }}
{{- with $root.Values.otel.disabledInstrumentations }}
- name: OTEL_PYTHON_DISABLED_INSTRUMENTATIONS
  value: {{ join "," . | quote }}
{{- end }}
{{- if and $root.Values.otel.enabled .telemetry }}
{{- $attrs := list "service.namespace=carenet" (printf "service.version=%s" ($v.image.tag | default $root.Chart.AppVersion)) (printf "k8s.namespace.name=%s" $root.Release.Namespace) "k8s.pod.name=$(POD_NAME)" }}
{{- range $key, $value := $root.Values.otel.resourceAttributes }}
{{- $attrs = append $attrs (printf "%s=%s" $key (toString $value)) }}
{{- end }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ join "," $attrs | quote }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ $root.Values.otel.endpoint | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ $root.Values.otel.protocol | quote }}
- name: OTEL_TRACES_EXPORTER
  value: {{ $root.Values.otel.tracesExporter | quote }}
- name: OTEL_METRICS_EXPORTER
  value: {{ $root.Values.otel.metricsExporter | quote }}
- name: OTEL_LOGS_EXPORTER
  value: {{ $root.Values.otel.logsExporter | quote }}
- name: OTEL_TRACES_SAMPLER
  value: {{ $root.Values.otel.sampler | quote }}
{{- with $root.Values.otel.samplerArg }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ . | quote }}
{{- end }}
{{- else }}
- name: OTEL_SDK_DISABLED
  value: "true"
- name: OTEL_TRACES_EXPORTER
  value: none
- name: OTEL_METRICS_EXPORTER
  value: none
- name: OTEL_LOGS_EXPORTER
  value: none
{{- end }}
{{- range $v.extraEnv }}
{{- if not (has .name $skip) }}
- name: {{ .name }}
  value: {{ .value | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
<SVC>_PAGE_TOKEN_KEY of a serving container, from an existing Secret (services.<svc>.pageTokenKey).
Every replica must sign page tokens with the same key, so the render fails without one.
Takes {"name": <service>, "v": <merged values>}.
*/}}
{{- define "carenet.service.pageTokenKey.env" -}}
{{- $ref := .v.pageTokenKey | default dict }}
- name: {{ include "carenet.service.envPrefix" .name }}_PAGE_TOKEN_KEY
  valueFrom:
    secretKeyRef:
      name: {{ required (printf "services.%s.pageTokenKey.existingSecret is required: the Secret holding the key every replica signs page tokens with (docs/deploy.md)" .name) $ref.existingSecret }}
      key: {{ required (printf "services.%s.pageTokenKey.key is required" .name) $ref.key }}
{{- end }}

{{/*
The Keycloak admin settings of `identity sync-people` (services.identity.peopleSync.keycloakAdmin).
*/}}
{{- define "carenet.identity.peopleSync.env" -}}
- name: IDENTITY_KEYCLOAK_ADMIN_URL
  value: {{ required "services.identity.peopleSync.keycloakAdmin.url is required" .url | quote }}
- name: IDENTITY_KEYCLOAK_ADMIN_REALM
  value: {{ required "services.identity.peopleSync.keycloakAdmin.adminRealm is required" .adminRealm | quote }}
- name: IDENTITY_KEYCLOAK_REALM
  value: {{ required "services.identity.peopleSync.keycloakAdmin.realm is required" .realm | quote }}
- name: IDENTITY_KEYCLOAK_ADMIN_CLIENT_ID
  value: {{ required "services.identity.peopleSync.keycloakAdmin.clientId is required" .clientId | quote }}
- name: IDENTITY_KEYCLOAK_ADMIN_CLIENT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ required "services.identity.peopleSync.keycloakAdmin.clientSecret.existingSecret is required" (dig "clientSecret" "existingSecret" "" .) }}
      key: {{ required "services.identity.peopleSync.keycloakAdmin.clientSecret.key is required" (dig "clientSecret" "key" "" .) }}
{{- end }}

{{/*
identity's access-log keys and checkpoint store (services.identity.accessLog): the
settings, the read-only mounts of the key Secrets and public-key ConfigMap, and the
checkpoint volume. Takes the merged accessLog values.
*/}}
{{- define "carenet.identity.accessLog.env" -}}
- name: IDENTITY_ACCESS_LOG_HMAC_KEYS_DIR
  value: /etc/carenet/access-log/chain-keys
- name: IDENTITY_ACCESS_LOG_HMAC_KEY_ID
  value: {{ required "services.identity.accessLog.chainKeys.currentKeyId is required" .chainKeys.currentKeyId | quote }}
- name: IDENTITY_ACCESS_LOG_SIGNING_KEY_FILE
  value: /etc/carenet/access-log/signing/private.pem
- name: IDENTITY_ACCESS_LOG_SIGNING_KEY_ID
  value: {{ required "services.identity.accessLog.signingKey.keyId is required" .signingKey.keyId | quote }}
- name: IDENTITY_ACCESS_LOG_PUBLIC_KEYS_DIR
  value: /etc/carenet/access-log/public-keys
- name: IDENTITY_ACCESS_LOG_CHECKPOINT_DIR
  value: /var/lib/carenet/access-log-checkpoints
- name: IDENTITY_ACCESS_LOG_CHECKPOINT_EVERY_ENTRIES
  value: {{ .checkpoints.everyEntries | quote }}
- name: IDENTITY_ACCESS_LOG_CHECKPOINT_EVERY_SECONDS
  value: {{ .checkpoints.everySeconds | quote }}
{{- end }}

{{- define "carenet.identity.accessLog.volumeMounts" -}}
- name: access-log-chain-keys
  mountPath: /etc/carenet/access-log/chain-keys
  readOnly: true
- name: access-log-signing-key
  mountPath: /etc/carenet/access-log/signing
  readOnly: true
- name: access-log-public-keys
  mountPath: /etc/carenet/access-log/public-keys
  readOnly: true
- name: access-log-checkpoints
  mountPath: /var/lib/carenet/access-log-checkpoints
{{- end }}

{{- define "carenet.identity.accessLog.volumes" -}}
- name: access-log-chain-keys
  secret:
    secretName: {{ required "services.identity.accessLog.chainKeys.existingSecret is required" .chainKeys.existingSecret }}
    defaultMode: 0440
- name: access-log-signing-key
  secret:
    secretName: {{ required "services.identity.accessLog.signingKey.existingSecret is required" .signingKey.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ .signingKey.key | default "private.pem" }}
        path: private.pem
- name: access-log-public-keys
  configMap:
    name: {{ required "services.identity.accessLog.publicKeys.existingConfigMap is required" .publicKeys.existingConfigMap }}
    defaultMode: 0444
- name: access-log-checkpoints
  {{- if .checkpoints.existingClaim }}
  persistentVolumeClaim:
    claimName: {{ .checkpoints.existingClaim }}
  {{- else }}
  # Not durable: the checkpoints go with the pod (services.identity.accessLog.checkpoints).
  emptyDir:
    sizeLimit: {{ .checkpoints.emptyDirSizeLimit | default "256Mi" }}
  {{- end }}
{{- end }}

{{/*
The realm URL pods fetch tokens and keys from: oidc.internalUrl, else the issuer, which must
then be an in-cluster URL (the egress policy admits only networkPolicy.issuer).
*/}}
{{- define "carenet.oidc.internalUrl" -}}
{{- $o := .Values.oidc }}
{{- if $o.internalUrl }}
{{- $o.internalUrl }}
{{- else }}
{{- $host := regexReplaceAll "^https?://([^/:]+).*$" $o.issuer "${1}" }}
{{- if not (or (hasSuffix ".svc" $host) (hasSuffix ".svc.cluster.local" $host)) }}
{{- fail (printf "oidc.issuer %s is not an in-cluster URL: set oidc.internalUrl to the realm's in-cluster URL (the pods' egress reaches only networkPolicy.issuer)" $o.issuer) }}
{{- end }}
{{- $o.issuer }}
{{- end }}
{{- end }}

{{/*
Seconds a pod reports NOT_SERVING while still serving: the readiness probe's period times its
failure threshold, so that the probe has failed before the server stops.
*/}}
{{- define "carenet.service.drainSeconds" -}}
{{- mul .probes.readiness.periodSeconds .probes.readiness.failureThreshold }}
{{- end }}

{{/*
terminationGracePeriodSeconds: preStop sleep + drain + shutdown grace + 5 s.
Takes {"root": $, "v": <merged values>}.
*/}}
{{- define "carenet.service.terminationGrace" -}}
{{- add .root.Values.lifecycle.preStopSeconds (include "carenet.service.drainSeconds" .v) .v.shutdownGraceSeconds 5 }}
{{- end }}
