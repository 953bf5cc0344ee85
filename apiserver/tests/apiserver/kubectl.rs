//! The real kubectl 1.33 driving the test API server. The server is a fake because no real
//! Kubernetes API server can run here; these tests check that kubectl accepts it and that
//! what kubectl prints matches what a real cluster would answer.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use windlass_test_apiserver::{Options, TestApiServer};

/// A server, its kubeconfig, and a place for manifests.
struct Cluster {
    server: TestApiServer,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

fn cluster() -> Cluster {
    cluster_with(Options::default())
}

fn cluster_with(options: Options) -> Cluster {
    let server = TestApiServer::start(options).expect("the test API server starts");
    let dir = tempfile::tempdir().expect("temporary directory");
    let kubeconfig = dir.path().join("kubeconfig");
    server
        .write_kubeconfig(&kubeconfig)
        .expect("kubeconfig written");
    Cluster {
        server,
        dir,
        kubeconfig,
    }
}

/// What kubectl printed.
struct Printed {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Cluster {
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("manifest written");
        path
    }

    fn kubectl(&self, arguments: &[&str]) -> Printed {
        let mut command = Command::new(windlass_testkit::kube_tools::kubectl());
        command
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.dir.path())
            .env_remove("KUBECTL_EXTERNAL_DIFF")
            .args(arguments);
        let output = windlass_testkit::output_within(
            &mut command,
            Duration::from_secs(60),
            &format!("kubectl {}", arguments.join(" ")),
        );
        Printed {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn kubectl_ok(&self, arguments: &[&str]) -> String {
        let printed = self.kubectl(arguments);
        assert!(
            printed.success,
            "kubectl {} failed:\nstdout:\n{}\nstderr:\n{}",
            arguments.join(" "),
            printed.stdout,
            printed.stderr
        );
        printed.stdout
    }
}

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports:
        - containerPort: 80
";

/// Fake API server (no real one can run here): `kubectl apply --server-side` creates the
/// object, records kubectl's Apply entry in managedFields with keyed list items, and a
/// second identical apply changes nothing (the resourceVersion stays).
#[test]
fn server_side_apply_creates_and_records_managed_fields() {
    let cluster = cluster();
    let manifest = cluster.write("deployment.yaml", DEPLOYMENT);
    let manifest = manifest.to_str().expect("utf-8 path");
    let printed = cluster.kubectl_ok(&["apply", "--server-side", "-f", manifest]);
    assert_eq!(printed.trim(), "deployment.apps/web serverside-applied");
    let yaml = cluster.kubectl_ok(&[
        "get",
        "deployment",
        "web",
        "-o",
        "yaml",
        "--show-managed-fields",
    ]);
    assert!(
        yaml.contains("manager: kubectl\n    operation: Apply"),
        "{yaml}"
    );
    assert!(
        yaml.contains(r#"k:{"containerPort":80,"protocol":"TCP"}:"#),
        "{yaml}"
    );
    let version = cluster.kubectl_ok(&[
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    cluster.kubectl_ok(&["apply", "--server-side", "-f", manifest]);
    let again = cluster.kubectl_ok(&[
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    assert_eq!(version, again, "an identical apply must not write");
    assert!(cluster.server.counts().verb("patch") >= 2);
}
