//! The `windlass-test-apiserver` binary, run as a process and driven by the real kubectl.
//!
//! The server is a fake Kubernetes API server because no real one can run here; these tests
//! check that the binary serves it to any client through the kubeconfig it writes, that its
//! flags reach the server, and that it stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::kubectl::{Printed, run_kubectl};

const BINARY: &str = env!("CARGO_BIN_EXE_windlass-test-apiserver");

/// A running `windlass-test-apiserver` process, killed when dropped (also when a test panics).
struct Served {
    child: Child,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Starts the binary with `--listen 127.0.0.1:0 --kubeconfig <dir>/kubeconfig` and `extra`,
/// and waits (at most 10 s) for its `listening on <url>` line.
fn serve(extra: &[&str]) -> Served {
    let dir = tempfile::tempdir().expect("temporary directory");
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = Command::new(BINARY)
        .args(["--listen", "127.0.0.1:0", "--kubeconfig"])
        .arg(&kubeconfig)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut served = Served {
        child,
        dir,
        kubeconfig,
        url: String::new(),
    };
    let (lines, line) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut first = String::new();
        let _ = reader.read_line(&mut first);
        let _ = lines.send(first);
        // Keep reading, so the process never blocks on a full pipe.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    let first = line
        .recv_timeout(Duration::from_secs(10))
        .expect("the binary says where it listens within 10 s");
    served.url = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("not a `listening on` line: {first:?}"))
        .trim()
        .to_owned();
    assert!(
        served.url.starts_with("http://127.0.0.1:") && !served.url.ends_with(":0"),
        "{}",
        served.url
    );
    served
}

impl Served {
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("manifest written");
        path
    }

    fn kubeconfig_text(&self) -> String {
        std::fs::read_to_string(&self.kubeconfig).expect("the kubeconfig was written")
    }

    /// Runs the real kubectl with `--kubeconfig <the binary's kubeconfig>` (and no other
    /// configuration: `KUBECONFIG` unset, `HOME` in the test's directory).
    fn kubectl(&self, arguments: &[&str]) -> Printed {
        run_kubectl(self.dir.path(), &self.kubeconfig, arguments)
    }

    fn kubectl_ok(&self, arguments: &[&str]) -> String {
        self.kubectl(arguments).ok(arguments)
    }

    /// Sends SIGTERM to the process (by its id) and waits at most 5 s for it to exit.
    fn terminate(&mut self) -> ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "SIGTERM sent");
        wait_within(&mut self.child, Duration::from_secs(5))
    }
}

fn wait_within(child: &mut Child, deadline: Duration) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("the process can be waited for") {
            return status;
        }
        assert!(
            started.elapsed() < deadline,
            "the process did not exit within {deadline:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The kubeconfig the binary writes: one cluster, context and user named `context`, the
/// server at `url`, default namespace `default`, current context `context`.
fn assert_kubeconfig(text: &str, url: &str, context: &str) {
    let config: serde_json::Value = serde_saphyr::from_str(text).expect("the kubeconfig is YAML");
    assert_eq!(config["current-context"], context, "{text}");
    assert_eq!(
        config["clusters"],
        serde_json::json!([{"name": context, "cluster": {"server": url}}]),
        "{text}"
    );
    assert_eq!(
        config["contexts"],
        serde_json::json!([{"name": context, "context": {
            "cluster": context, "user": context, "namespace": "default"}}]),
        "{text}"
    );
    assert_eq!(config["users"][0]["name"], context, "{text}");
}

const CONFIGMAP: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: demo
  namespace: default
data:
  greeting: hello
";

/// The binary writes a kubeconfig for the address it listens on, and the real kubectl works
/// through it: `apply --server-side` creates a ConfigMap, `get -o yaml` shows it with kubectl's
/// Apply entry in managedFields, `delete --wait` removes it (a later get is NotFound); on
/// SIGTERM the binary exits with status 0.
#[test]
fn the_binary_serves_kubectl_through_its_kubeconfig() {
    let mut served = serve(&[]);
    assert_kubeconfig(&served.kubeconfig_text(), &served.url, "windlass-test");
    assert_eq!(
        served.kubectl_ok(&["config", "current-context"]).trim_end(),
        "windlass-test"
    );
    let manifest = served.write("configmap.yaml", CONFIGMAP);
    let manifest = manifest.to_str().expect("utf-8 path");
    assert_eq!(
        served
            .kubectl_ok(&["apply", "--server-side", "-f", manifest])
            .trim_end(),
        "configmap/demo serverside-applied"
    );
    let yaml = served.kubectl_ok(&[
        "get",
        "configmap",
        "demo",
        "-o",
        "yaml",
        "--show-managed-fields",
    ]);
    let object: serde_json::Value = serde_saphyr::from_str(&yaml).expect("kubectl printed YAML");
    assert_eq!(object["kind"], "ConfigMap", "{yaml}");
    assert_eq!(object["metadata"]["name"], "demo", "{yaml}");
    assert_eq!(object["metadata"]["namespace"], "default", "{yaml}");
    assert_eq!(
        object["data"],
        serde_json::json!({"greeting": "hello"}),
        "{yaml}"
    );
    let managed = object["metadata"]["managedFields"]
        .as_array()
        .unwrap_or_else(|| panic!("managedFields in {yaml}"));
    assert_eq!(managed.len(), 1, "{yaml}");
    assert_eq!(managed[0]["manager"], "kubectl", "{yaml}");
    assert_eq!(managed[0]["operation"], "Apply", "{yaml}");
    assert_eq!(managed[0]["apiVersion"], "v1", "{yaml}");
    assert_eq!(
        managed[0]["fieldsV1"],
        serde_json::json!({"f:data": {"f:greeting": {}}}),
        "{yaml}"
    );

    assert_eq!(
        served
            .kubectl_ok(&["delete", "configmap", "demo", "--wait", "--timeout=10s"])
            .trim_end(),
        r#"configmap "demo" deleted"#
    );
    let missing = served.kubectl(&["get", "configmap", "demo"]);
    assert!(!missing.success, "{}", missing.stdout);
    assert_eq!(
        missing.stderr.trim_end(),
        r#"Error from server (NotFound): configmaps "demo" not found"#
    );

    let status = served.terminate();
    assert_eq!(status.code(), Some(0), "{status}");
}

/// `--context NAME` names the kubeconfig's cluster, context and user, and makes it current.
#[test]
fn the_binary_names_the_kubeconfig_context() {
    let served = serve(&["--context", "test-cluster"]);
    assert_kubeconfig(&served.kubeconfig_text(), &served.url, "test-cluster");
    assert_eq!(
        served.kubectl_ok(&["config", "current-context"]).trim_end(),
        "test-cluster"
    );
    let listed = served.kubectl(&["--context", "test-cluster", "get", "configmaps"]);
    assert!(listed.success, "{}", listed.stderr);
    assert_eq!(
        listed.stderr.trim_end(),
        "No resources found in default namespace."
    );
    let unknown = served.kubectl(&["--context", "windlass-test", "get", "configmaps"]);
    assert!(!unknown.success, "only the named context exists");
}

const NAMESPACED: &str = "apiVersion: v1
kind: Namespace
metadata:
  name: doomed
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: inside
  namespace: doomed
";

/// `--namespace-controller` reaches the server: `kubectl delete namespace` (which waits for
/// the namespace to go) completes, the namespace and its content gone. Without the flag the
/// namespace stays Terminating and the wait times out.
#[test]
fn the_binary_passes_the_namespace_controller_flag() {
    for controller in [true, false] {
        let served = if controller {
            serve(&["--namespace-controller"])
        } else {
            serve(&[])
        };
        let manifest = served.write("namespaced.yaml", NAMESPACED);
        let manifest = manifest.to_str().expect("utf-8 path");
        served.kubectl_ok(&["apply", "--server-side", "-f", manifest]);
        let deleted = served.kubectl(&["delete", "namespace", "doomed", "--timeout=2s"]);
        if controller {
            assert!(deleted.success, "{}", deleted.stderr);
            assert_eq!(deleted.stdout.trim_end(), r#"namespace "doomed" deleted"#);
            let missing = served.kubectl(&["get", "namespace", "doomed"]);
            assert_eq!(
                missing.stderr.trim_end(),
                r#"Error from server (NotFound): namespaces "doomed" not found"#
            );
        } else {
            assert!(!deleted.success, "{}", deleted.stdout);
            assert!(
                deleted
                    .stderr
                    .contains("timed out waiting for the condition on namespaces/doomed"),
                "{}",
                deleted.stderr
            );
            let phase = served.kubectl_ok(&[
                "get",
                "namespace",
                "doomed",
                "-o",
                "jsonpath={.status.phase}",
            ]);
            assert_eq!(phase, "Terminating");
            let inside =
                served.kubectl_ok(&["get", "configmap", "inside", "-n", "doomed", "-o", "name"]);
            assert_eq!(inside.trim_end(), "configmap/inside");
        }
    }
}

const OWNED: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1
";

/// `--garbage-collector` reaches the server: `kubectl delete --cascade=foreground` of a
/// Deployment completes, and the ReplicaSet it owned is gone with it.
#[test]
fn the_binary_passes_the_garbage_collector_flag() {
    let served = serve(&["--garbage-collector"]);
    let manifest = served.write("deployment.yaml", OWNED);
    let manifest = manifest.to_str().expect("utf-8 path");
    served.kubectl_ok(&["apply", "--server-side", "-f", manifest]);
    let uid = served.kubectl_ok(&["get", "deployment", "web", "-o", "jsonpath={.metadata.uid}"]);
    let replica_set = format!(
        "apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web-1
  namespace: default
  ownerReferences:
  - {{apiVersion: apps/v1, kind: Deployment, name: web, uid: {uid}, controller: true, blockOwnerDeletion: true}}
spec:
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1
"
    );
    let dependent = served.write("replicaset.yaml", &replica_set);
    served.kubectl_ok(&[
        "apply",
        "--server-side",
        "-f",
        dependent.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(
        served
            .kubectl_ok(&[
                "delete",
                "deployment",
                "web",
                "--cascade=foreground",
                "--timeout=10s"
            ])
            .trim_end(),
        r#"deployment.apps "web" deleted"#
    );
    let missing = served.kubectl(&["get", "replicaset", "web-1"]);
    assert_eq!(
        missing.stderr.trim_end(),
        r#"Error from server (NotFound): replicasets.apps "web-1" not found"#
    );
}

/// Run `BINARY` with `arguments` until it exits (at most 10 s): its status and stderr.
fn run_to_exit(arguments: &[&str], directory: &Path) -> (ExitStatus, String) {
    let mut child = Command::new(BINARY)
        .args(arguments)
        .current_dir(directory)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let status = wait_within(&mut child, Duration::from_secs(10));
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("piped stderr")
        .read_to_string(&mut stderr)
        .expect("stderr read");
    (status, stderr)
}

/// The binary exits with status 1 and says why when it cannot listen (the address is taken)
/// or cannot write its kubeconfig; `--kubeconfig` is required.
#[test]
fn the_binary_reports_why_it_cannot_serve() {
    let served = serve(&[]);
    let taken = served.url.trim_start_matches("http://").to_owned();
    let dir = tempfile::tempdir().expect("temporary directory");
    let (status, stderr) = run_to_exit(
        &["--listen", &taken, "--kubeconfig", "kubeconfig"],
        dir.path(),
    );
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(&format!("error: cannot listen on {taken}: ")),
        "{stderr}"
    );
    assert!(!dir.path().join("kubeconfig").exists());

    let (status, stderr) = run_to_exit(
        &[
            "--listen",
            "127.0.0.1:0",
            "--kubeconfig",
            "missing/kubeconfig",
        ],
        dir.path(),
    );
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("error: cannot write the kubeconfig missing/kubeconfig: "),
        "{stderr}"
    );

    let (status, stderr) = run_to_exit(&["--listen", "127.0.0.1:0"], dir.path());
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--kubeconfig <KUBECONFIG>"), "{stderr}");
}
