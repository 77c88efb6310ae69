{{- define "corpusforge.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "corpusforge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "corpusforge.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The pod fields every corpusforge pod has: account, image, recipe volume, env, resources. */}}
{{- define "corpusforge.podBase" -}}
serviceAccountName: {{ include "corpusforge.serviceAccountName" . }}
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  fsGroup: 10001
{{- with .Values.nodeSelector }}
nodeSelector: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations: {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  - name: recipe
    configMap:
      name: {{ include "corpusforge.fullname" . }}-recipe
{{- with .Values.extraVolumes }}
{{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "corpusforge.containerBase" -}}
image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
imagePullPolicy: {{ .Values.image.pullPolicy }}
{{- with .Values.env }}
env: {{- toYaml . | nindent 2 }}
{{- end }}
volumeMounts:
  - name: recipe
    mountPath: /recipe
    readOnly: true
{{- with .Values.extraVolumeMounts }}
{{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
