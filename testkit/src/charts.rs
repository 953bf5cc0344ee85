//! Helm chart fixtures built at test time: [`chart_archive`] packs files into a gzip tar as
//! `helm package` lays one out (`<chart>/...`), and [`sample_chart`] is the chart the HelmChart
//! tests share — a parent chart with a subchart under an alias (`db` as `database`), a second
//! subchart without one (`cache`), CRDs in the parent's and in a subchart's `crds/`, a hook, a
//! template printing two documents, and images in values that `optionalValues` and `builder`
//! change.

/// A gzip-compressed tar of `files` (paths inside the archive, contents).
///
/// # Panics
///
/// Never on valid input; only if writing into memory fails.
pub fn chart_archive(files: &[(String, String)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (path, contents) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, path, contents.as_bytes())
            .expect("append to an in-memory tar");
    }
    builder
        .into_inner()
        .expect("finish the tar")
        .finish()
        .expect("finish the gzip stream")
}

/// The files of the sample chart `app` at `version`, under `app/`.
pub fn sample_chart(version: &str) -> Vec<(String, String)> {
    let file = |path: &str, contents: &str| (format!("app/{path}"), contents.to_string());
    vec![
        file(
            "Chart.yaml",
            &format!(
                "apiVersion: v2\nname: app\nversion: {version}\ndependencies:\n  - name: db\n    version: 0.1.0\n    alias: database\n  - name: cache\n    version: 0.2.0\n"
            ),
        ),
        file(
            "values.yaml",
            "image:\n  repository: registry.vendor.example/team/web\n  tag: \"1.0\"\nreplicas: 1\nimagePullSecrets: []\ndatabase:\n  image: registry.vendor.example/team/postgres:16\ncache:\n  image: docker.io/library/redis:7\n",
        ),
        file(
            "templates/deployment.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}-web\nspec:\n  replicas: {{ .Values.replicas }}\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      {{- with .Values.imagePullSecrets }}\n      imagePullSecrets:\n        {{- toYaml . | nindent 8 }}\n      {{- end }}\n      containers:\n        - name: web\n          image: \"{{ .Values.image.repository }}:{{ .Values.image.tag }}\"\n",
        ),
        file(
            "templates/hook-job.yaml",
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {{ .Release.Name }}-migrate\n  annotations:\n    helm.sh/hook: pre-install,pre-upgrade\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - name: migrate\n          image: \"{{ .Values.image.repository }}:{{ .Values.image.tag }}\"\n",
        ),
        file(
            "templates/config.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-one\ndata:\n  namespace: {{ .Release.Namespace }}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-two\ndata:\n  release: {{ .Release.Name }}\n",
        ),
        file(
            "crds/widget.yaml",
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\nspec:\n  group: example.com\n  names:\n    kind: Widget\n    plural: widgets\n  scope: Namespaced\n  versions:\n    - name: v1\n      served: true\n      storage: true\n      schema:\n        openAPIV3Schema:\n          type: object\n          x-kubernetes-preserve-unknown-fields: true\n",
        ),
        file(
            "charts/db/Chart.yaml",
            "apiVersion: v2\nname: db\nversion: 0.1.0\n",
        ),
        file("charts/db/values.yaml", "image: postgres:15\n"),
        file(
            "charts/db/templates/statefulset.yaml",
            "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: {{ .Release.Name }}-db\nspec:\n  serviceName: db\n  selector:\n    matchLabels:\n      app: db\n  template:\n    metadata:\n      labels:\n        app: db\n    spec:\n      containers:\n        - name: postgres\n          image: {{ .Values.image }}\n",
        ),
        file(
            "charts/db/crds/backup.yaml",
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: backups.db.example.com\nspec:\n  group: db.example.com\n  names:\n    kind: Backup\n    plural: backups\n  scope: Namespaced\n  versions:\n    - name: v1\n      served: true\n      storage: true\n      schema:\n        openAPIV3Schema:\n          type: object\n          x-kubernetes-preserve-unknown-fields: true\n",
        ),
        file(
            "charts/cache/Chart.yaml",
            "apiVersion: v2\nname: cache\nversion: 0.2.0\n",
        ),
        file("charts/cache/values.yaml", "image: redis:6\n"),
        file(
            "charts/cache/templates/deployment.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}-cache\nspec:\n  selector:\n    matchLabels:\n      app: cache\n  template:\n    metadata:\n      labels:\n        app: cache\n    spec:\n      containers:\n        - name: redis\n          image: {{ .Values.image }}\n",
        ),
    ]
}
