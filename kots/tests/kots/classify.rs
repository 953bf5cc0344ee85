//! [`windlass_kots::classify`] on every family of documents KOTS never deploys, and on their
//! neighbours that it does deploy.

use windlass_kots::{Classification, classify, helm_chart_release_name, is_single_instance};

#[test]
fn documents_kots_never_deploys_are_told_from_kubernetes_objects() {
    for (api_version, kind, expected) in [
        ("kots.io/v1beta1", "Application", Classification::KotsKind),
        ("kots.io/v1beta2", "HelmChart", Classification::KotsKind),
        (
            "troubleshoot.sh/v1beta2",
            "Preflight",
            Classification::NotDeployed,
        ),
        (
            "troubleshoot.sh/v1beta2",
            "SupportBundle",
            Classification::NotDeployed,
        ),
        (
            "troubleshoot.sh/v1beta2",
            "HostPreflight",
            Classification::NotDeployed,
        ),
        (
            "troubleshoot.replicated.com/v1beta1",
            "Redactor",
            Classification::NotDeployed,
        ),
        (
            "troubleshoot.replicated.com/v1beta1",
            "Analyzer",
            Classification::NotDeployed,
        ),
        ("kurl.sh/v1beta1", "Installer", Classification::NotDeployed),
        (
            "cluster.kurl.sh/v1beta1",
            "Installer",
            Classification::NotDeployed,
        ),
        (
            "embeddedcluster.replicated.com/v1beta1",
            "Config",
            Classification::NotDeployed,
        ),
        (
            "app.k8s.io/v1beta1",
            "Application",
            Classification::NotDeployed,
        ),
        ("velero.io/v1", "Backup", Classification::NotDeployed),
        ("velero.io/v1", "Restore", Classification::NotDeployed),
        ("velero.io/v1", "Schedule", Classification::KubernetesObject),
        (
            "velero.io/v1",
            "BackupStorageLocation",
            Classification::KubernetesObject,
        ),
        (
            "troubleshoot.sh/v1beta3",
            "Preflight",
            Classification::KubernetesObject,
        ),
        ("apps/v1", "Deployment", Classification::KubernetesObject),
        ("v1", "ConfigMap", Classification::KubernetesObject),
    ] {
        assert_eq!(
            classify(api_version, kind),
            expected,
            "{api_version} {kind}"
        );
        assert_eq!(
            classify(api_version, kind).is_deployed(),
            expected == Classification::KubernetesObject
        );
    }
}

#[test]
fn single_instance_kinds_are_kots_kinds_only() {
    for kind in ["Application", "Config", "ConfigValues", "Installation"] {
        assert!(is_single_instance("kots.io/v1beta1", kind), "{kind}");
    }
    assert!(!is_single_instance("kots.io/v1beta1", "HelmChart"));
    assert!(!is_single_instance("app.k8s.io/v1beta1", "Application"));
}

#[test]
fn helm_chart_release_names_follow_each_version() {
    let value = |text: &str| -> serde_json::Value { serde_json::from_str(text).unwrap() };
    let v1 = value(r#"{"spec":{"chart":{"name":"web","releaseName":"web-release"}}}"#);
    assert_eq!(
        helm_chart_release_name("kots.io/v1beta1", "HelmChart", &v1),
        Some("web-release")
    );
    let v2 = value(r#"{"spec":{"chart":{"name":"web"},"releaseName":"web-release"}}"#);
    assert_eq!(
        helm_chart_release_name("kots.io/v1beta2", "HelmChart", &v2),
        Some("web-release")
    );
    let plain = value(r#"{"spec":{"chart":{"name":"web"}}}"#);
    assert_eq!(
        helm_chart_release_name("kots.io/v1beta1", "HelmChart", &plain),
        Some("web")
    );
    assert_eq!(
        helm_chart_release_name("kots.io/v1beta2", "HelmChart", &plain),
        Some("web")
    );
    assert_eq!(
        helm_chart_release_name("kots.io/v1beta1", "Config", &plain),
        None
    );
}
