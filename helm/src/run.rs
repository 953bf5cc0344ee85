//! Running the real `helm` in a bounded subprocess: a cleared environment (only `HOME` and Helm's
//! cache, configuration and data directories, all inside a fresh temporary directory, which is
//! also the working directory), no stdin, a deadline after which the process is killed, and a cap
//! on what it may print. The chart archive and the values (or, for `helm upgrade --install`, the
//! rendered chart's files) are written into that directory; nothing else of the caller's is
//! visible to helm, except the kubeconfig an upgrade is handed as `KUBECONFIG`.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

/// The environment variable that names the helm binary (the `windlass` binary's `--helm` flag
/// sets the same thing).
pub const HELM_ENV: &str = "WINDLASS_HELM";

/// Which helm to run and the bounds it runs under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelmTool {
    /// The helm executable.
    pub path: PathBuf,
    /// How long one helm command may run.
    pub timeout: Duration,
    /// Most bytes helm may print on stdout (stderr is kept to 64 KiB).
    pub max_output_bytes: usize,
}

/// Most bytes of helm's stderr kept for an error message.
const MAX_STDERR_BYTES: usize = 64 * 1024;

impl HelmTool {
    /// Five minutes, 256 MiB of output.
    pub fn new(path: PathBuf) -> HelmTool {
        HelmTool {
            path,
            timeout: Duration::from_secs(300),
            max_output_bytes: 256 * 1024 * 1024,
        }
    }

    /// The helm to use when none is named: `$WINDLASS_HELM`; else `tools/bin/helm` beside the
    /// running executable's directory (where `scripts/install-kube-tools.sh` puts it for a build
    /// under `target/`); else `helm` on `PATH`.
    pub fn default_path() -> PathBuf {
        if let Some(path) = std::env::var_os(HELM_ENV).filter(|path| !path.is_empty()) {
            return PathBuf::from(path);
        }
        if let Ok(exe) = std::env::current_exe() {
            for dir in exe.ancestors().skip(1).take(3) {
                let candidate = dir.join("tools/bin/helm");
                if candidate.is_file() {
                    return candidate;
                }
            }
        }
        PathBuf::from("helm")
    }
}

/// Why helm could not give its output.
#[derive(Debug, thiserror::Error)]
pub enum HelmError {
    /// The temporary directory or a file in it could not be written.
    #[error("helm: could not prepare its working directory: {0}")]
    Prepare(String),
    /// The executable could not be started.
    #[error("helm {path} could not be started: {error} (set --helm or ${HELM_ENV} to a Helm 4 binary)", path = .path.display())]
    Start {
        /// The executable.
        path: PathBuf,
        /// The OS error.
        error: String,
    },
    /// It ran past the deadline and was killed.
    #[error("{what} ran longer than {seconds} s and was stopped")]
    TimedOut {
        /// The command, e.g. `helm template my-release chart.tgz`.
        what: String,
        /// The deadline.
        seconds: u64,
    },
    /// It printed more than allowed and was stopped.
    #[error("{what} printed more than {limit} bytes and was stopped")]
    OutputTooLarge {
        /// The command.
        what: String,
        /// The cap.
        limit: usize,
    },
    /// It exited with a failure.
    #[error("{what} failed ({status}): {stderr}")]
    Failed {
        /// The command.
        what: String,
        /// How it exited.
        status: String,
        /// Its stderr, trimmed and cut to 64 KiB.
        stderr: String,
    },
    /// Its output is not UTF-8.
    #[error("{what} printed output that is not UTF-8")]
    NotText {
        /// The command.
        what: String,
    },
    /// It is not Helm 4 (or its version could not be read).
    #[error("helm {path} is version {version:?}: windlass needs Helm 4 (v4.x)", path = .path.display())]
    WrongVersion {
        /// The executable.
        path: PathBuf,
        /// What it said.
        version: String,
    },
}

/// One `helm template` to run.
#[derive(Debug, Clone)]
pub struct TemplateRequest<'a> {
    /// The chart archive's bytes as shipped.
    pub archive: &'a [u8],
    /// The release name passed to helm.
    pub release_name: &'a str,
    /// `--namespace`.
    pub namespace: &'a str,
    /// The merged values (written as `values.yaml` and passed with `--values`).
    pub values: &'a Map<String, Value>,
}

/// What helm printed for a request, and the command that printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateOutput {
    /// stdout, whole.
    pub stdout: String,
    /// The arguments helm ran with (paths relative to its working directory), for the record.
    pub arguments: Vec<String>,
}

/// One `helm upgrade --install` to run.
#[derive(Debug, Clone)]
pub struct UpgradeRequest<'a> {
    /// The release name.
    pub release_name: &'a str,
    /// `--namespace`.
    pub namespace: &'a str,
    /// The chart's files, paths relative to the chart's directory (`Chart.yaml`, `templates/…`),
    /// or an archive and its values file (see `archive`).
    pub files: &'a [(String, Vec<u8>)],
    /// `None`: helm installs the directory `files` make up (a rendered chart). `Some`: the path
    /// of a chart archive among `files` (`<chart>-<version>.tgz`), which helm installs as it is.
    pub archive: Option<&'a str>,
    /// Paths among `files` handed to helm with `--values`, in order.
    pub values_files: &'a [&'a str],
    /// The kubeconfig (or `:`-separated list) helm reads, as `KUBECONFIG`.
    pub kubeconfig: &'a Path,
    /// `--kube-context`, when one is named.
    pub kube_context: Option<&'a str>,
    /// helm's own `--timeout` for hooks, in seconds.
    pub timeout_seconds: u64,
    /// More arguments, after windlass's (a HelmChart's `spec.helmUpgradeFlags`).
    pub extra_arguments: &'a [String],
    /// A file helm gets as its stdin, which it never reads: a lock taken on it (`flock`) is held
    /// as long as helm runs, even when the caller is killed first.
    pub held_open: Option<&'a std::fs::File>,
}

/// One command on an installed release: `helm uninstall`, `helm history`, `helm rollback`.
#[derive(Debug, Clone)]
pub struct ReleaseRequest<'a> {
    /// The release name.
    pub release_name: &'a str,
    /// `--namespace`.
    pub namespace: &'a str,
    /// The kubeconfig (or `:`-separated list) helm reads, as `KUBECONFIG`.
    pub kubeconfig: &'a Path,
    /// `--kube-context`, when one is named.
    pub kube_context: Option<&'a str>,
    /// helm's own `--timeout` for hooks, in seconds.
    pub timeout_seconds: u64,
    /// A file helm gets as its stdin, which it never reads: a lock taken on it (`flock`) is held
    /// as long as helm runs, even when the caller is killed first.
    pub held_open: Option<&'a std::fs::File>,
}

/// What `helm uninstall` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UninstallOutcome {
    /// The release and the objects it installed were deleted.
    Uninstalled,
    /// helm knows no such release there (uninstalled already, or by someone else).
    NotFound,
}

/// What `helm upgrade --install` reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeOutput {
    /// `REVISION:` as helm printed it.
    pub revision: Option<u64>,
    /// `STATUS:` as helm printed it (`deployed`).
    pub status: Option<String>,
    /// The arguments helm ran with (the chart as `chart`, relative to its working directory).
    pub arguments: Vec<String>,
}

/// The result of running a command: its status and what it printed.
pub(crate) struct Ran {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
}

impl HelmTool {
    /// `helm version --short`, checked to be Helm 4.
    pub fn version(&self) -> Result<String, HelmError> {
        let work = scratch()?;
        let ran = self.run(work.path(), &["version".into(), "--short".into()])?;
        let what = "helm version --short".to_string();
        if !ran.status.success() {
            return Err(failed(what, &ran));
        }
        let version = String::from_utf8_lossy(&ran.stdout).trim().to_string();
        if !version.starts_with("v4.") {
            return Err(HelmError::WrongVersion {
                path: self.path.clone(),
                version,
            });
        }
        Ok(version)
    }

    /// `helm template <release> chart.tgz --namespace <ns> --values values.yaml --include-crds`:
    /// every template, hooks and every chart's `crds/` included, as KOTS renders a chart.
    pub fn template(&self, request: &TemplateRequest<'_>) -> Result<TemplateOutput, HelmError> {
        let work = scratch()?;
        let prepare = |error: std::io::Error| HelmError::Prepare(error.to_string());
        std::fs::write(work.path().join("chart.tgz"), request.archive).map_err(prepare)?;
        let values = serde_json::to_string(&Value::Object(request.values.clone()))
            .map_err(|error| HelmError::Prepare(error.to_string()))?;
        // JSON is YAML: helm reads it as its values file, readable by this user only (it may
        // hold a password value), never passed on helm's command line.
        write_private(&work.path().join("values.yaml"), values.as_bytes()).map_err(prepare)?;
        let arguments: Vec<String> = vec![
            "template".into(),
            request.release_name.into(),
            "chart.tgz".into(),
            "--namespace".into(),
            request.namespace.into(),
            "--values".into(),
            "values.yaml".into(),
            "--include-crds".into(),
        ];
        let ran = self.run(work.path(), &arguments)?;
        let what = format!("helm template {} chart.tgz", request.release_name);
        if !ran.status.success() {
            return Err(failed(what, &ran));
        }
        let stdout = String::from_utf8(ran.stdout).map_err(|_| HelmError::NotText { what })?;
        Ok(TemplateOutput { stdout, arguments })
    }

    /// `helm upgrade --install <release> chart --namespace <ns> --timeout <s>s [--values
    /// chart/<values>]... [--kube-context <context>]`, with the chart's files written under
    /// `chart/` in helm's temporary directory (an archive among them is installed as
    /// `chart/<archive>` instead of the directory). helm sees the kubeconfig named here and
    /// nothing else of the caller's environment; it does not `--wait`.
    pub fn upgrade_install(
        &self,
        request: &UpgradeRequest<'_>,
    ) -> Result<UpgradeOutput, HelmError> {
        let among_files = |what: &str, named: &str| {
            if request.files.iter().any(|(path, _)| path == named) {
                Ok(())
            } else {
                Err(HelmError::Prepare(format!(
                    "the {what} {named:?} is not among the chart's files"
                )))
            }
        };
        if let Some(archive) = request.archive {
            among_files("chart archive", archive)?;
        }
        for values in request.values_files {
            among_files("values file", values)?;
        }
        let work = scratch()?;
        let prepare = |error: std::io::Error| HelmError::Prepare(error.to_string());
        let chart = work.path().join("chart");
        for (path, bytes) in request.files {
            let relative = Path::new(path);
            if relative.is_absolute()
                || relative
                    .components()
                    .any(|part| !matches!(part, std::path::Component::Normal(_)))
            {
                return Err(HelmError::Prepare(format!(
                    "the chart file {path:?} is not a plain relative path"
                )));
            }
            let target = chart.join(relative);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(prepare)?;
            }
            // Readable by this user only, as a file the kill of this process would leave
            // behind: the chart's documents include its pull secret.
            write_private(&target, bytes).map_err(prepare)?;
        }
        let in_chart = |path: &str| format!("chart/{path}");
        let mut arguments: Vec<String> = vec![
            "upgrade".into(),
            "--install".into(),
            request.release_name.into(),
            request.archive.map_or_else(|| "chart".into(), in_chart),
            "--namespace".into(),
            request.namespace.into(),
            "--timeout".into(),
            format!("{}s", request.timeout_seconds.max(1)),
        ];
        for values in request.values_files {
            arguments.extend(["--values".to_string(), in_chart(values)]);
        }
        arguments.extend(kube_context_arguments(request.kube_context));
        arguments.extend(request.extra_arguments.iter().cloned());
        let ran = self.run_with(
            work.path(),
            &arguments,
            &kubeconfig_environment(request.kubeconfig),
            request.held_open,
        )?;
        let what = format!("helm upgrade --install {}", request.release_name);
        if !ran.status.success() {
            return Err(failed(what, &ran));
        }
        let stdout = String::from_utf8_lossy(&ran.stdout);
        let field = |name: &str| {
            stdout
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .map(|value| value.trim().to_string())
        };
        Ok(UpgradeOutput {
            revision: field("REVISION:").and_then(|revision| revision.parse().ok()),
            status: field("STATUS:"),
            arguments,
        })
    }

    /// `helm uninstall <release> --namespace <ns> --timeout <s>s [--kube-context <context>]`,
    /// with the kubeconfig named here and nothing else of the caller's environment; a release helm
    /// does not know is [`UninstallOutcome::NotFound`], not an error. Returns the arguments too.
    pub fn uninstall(
        &self,
        request: &ReleaseRequest<'_>,
    ) -> Result<(UninstallOutcome, Vec<String>), HelmError> {
        let (ran, arguments) = self.run_on_release(
            request,
            vec!["uninstall".into(), request.release_name.into()],
            true,
        )?;
        if ran.status.success() {
            return Ok((UninstallOutcome::Uninstalled, arguments));
        }
        // helm 4: `Error: uninstall: Release not loaded: <name>: release: not found`.
        if String::from_utf8_lossy(&ran.stderr).contains("release: not found") {
            return Ok((UninstallOutcome::NotFound, arguments));
        }
        Err(failed(
            format!("helm uninstall {}", request.release_name),
            &ran,
        ))
    }

    /// Runs `helm <arguments> --namespace <ns> [--timeout <s>s] [--kube-context <context>]` on
    /// `request`'s release (`with_timeout`: helm's `--timeout`) in a fresh working directory, with
    /// the request's kubeconfig and held-open file and nothing else of the caller's environment.
    /// Returns what helm did and the arguments it ran with.
    pub(crate) fn run_on_release(
        &self,
        request: &ReleaseRequest<'_>,
        mut arguments: Vec<String>,
        with_timeout: bool,
    ) -> Result<(Ran, Vec<String>), HelmError> {
        let work = scratch()?;
        arguments.extend(["--namespace".into(), request.namespace.into()]);
        if with_timeout {
            arguments.extend([
                "--timeout".into(),
                format!("{}s", request.timeout_seconds.max(1)),
            ]);
        }
        arguments.extend(kube_context_arguments(request.kube_context));
        let ran = self.run_with(
            work.path(),
            &arguments,
            &kubeconfig_environment(request.kubeconfig),
            request.held_open,
        )?;
        Ok((ran, arguments))
    }

    /// Runs helm with `arguments` in `work`, bounded.
    fn run(&self, work: &Path, arguments: &[String]) -> Result<Ran, HelmError> {
        self.run_with(work, arguments, &[], None)
    }

    /// Runs helm with `arguments` in `work` and `environment` beside helm's own directories,
    /// bounded, with `held_open` as its stdin (else nothing).
    pub(crate) fn run_with(
        &self,
        work: &Path,
        arguments: &[String],
        environment: &[(String, std::ffi::OsString)],
        held_open: Option<&std::fs::File>,
    ) -> Result<Ran, HelmError> {
        let stdin = match held_open {
            Some(file) => Stdio::from(
                file.try_clone()
                    .map_err(|error| HelmError::Prepare(error.to_string()))?,
            ),
            None => Stdio::null(),
        };
        let what = format!(
            "helm {}",
            arguments.first().map(String::as_str).unwrap_or("")
        );
        let mut child = Command::new(&self.path)
            .args(arguments)
            .env_clear()
            .env("HOME", work)
            .env("HELM_CACHE_HOME", work.join(".cache"))
            .env("HELM_CONFIG_HOME", work.join(".config"))
            .env("HELM_DATA_HOME", work.join(".data"))
            .envs(environment.iter().map(|(name, value)| (name, value)))
            .current_dir(work)
            // Its own process group, so that a deadline stops whatever helm started too.
            .process_group(0)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| HelmError::Start {
                path: self.path.clone(),
                error: error.to_string(),
            })?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let cap = self.max_output_bytes;
        let over = Arc::new(AtomicBool::new(false));
        let stdout_over = over.clone();
        let stdout_reader = std::thread::spawn(move || read_capped(stdout, cap, &stdout_over));
        let stderr_reader = std::thread::spawn(move || {
            read_capped(stderr, MAX_STDERR_BYTES, &AtomicBool::new(false))
        });
        let started = Instant::now();
        let mut timed_out = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if over.load(Ordering::Relaxed) => {
                    stop(&mut child);
                    break None;
                }
                Ok(None) if started.elapsed() > self.timeout => {
                    timed_out = true;
                    stop(&mut child);
                    break None;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(error) => {
                    stop(&mut child);
                    return Err(HelmError::Failed {
                        what,
                        status: "unknown".into(),
                        stderr: error.to_string(),
                    });
                }
            }
        };
        let stdout = stdout_reader.join().unwrap_or_default();
        let stderr = stderr_reader.join().unwrap_or_default();
        if timed_out {
            return Err(HelmError::TimedOut {
                what,
                seconds: self.timeout.as_secs(),
            });
        }
        if over.load(Ordering::Relaxed) {
            return Err(HelmError::OutputTooLarge { what, limit: cap });
        }
        let status = status.expect("helm exited when neither timed out nor over the cap");
        Ok(Ran {
            status,
            stdout,
            stderr,
        })
    }
}

/// Kills the child's whole process group and reaps the child.
fn stop(child: &mut std::process::Child) {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Reads up to `cap` bytes; past that, sets `over` and stops reading (the process is then killed).
fn read_capped(reader: impl Read, cap: usize, over: &AtomicBool) -> Vec<u8> {
    let mut bytes = Vec::new();
    let _ = reader.take(cap as u64 + 1).read_to_end(&mut bytes);
    if bytes.len() > cap {
        bytes.truncate(cap);
        over.store(true, Ordering::Relaxed);
    }
    bytes
}

/// `--kube-context <context>` when a context is named.
pub(crate) fn kube_context_arguments(context: Option<&str>) -> Vec<String> {
    context
        .map(|context| vec!["--kube-context".to_string(), context.to_string()])
        .unwrap_or_default()
}

/// The environment helm gets beside its own directories: only `KUBECONFIG`.
pub(crate) fn kubeconfig_environment(kubeconfig: &Path) -> [(String, std::ffi::OsString); 1] {
    [(
        "KUBECONFIG".to_string(),
        kubeconfig.as_os_str().to_os_string(),
    )]
}

pub(crate) fn failed(what: String, ran: &Ran) -> HelmError {
    HelmError::Failed {
        what,
        status: ran.status.to_string(),
        stderr: String::from_utf8_lossy(&ran.stderr).trim().to_string(),
    }
}

/// Writes `bytes` to a new file at `path`, mode 0600.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?
        .write_all(bytes)
}

/// The start of the name of helm's working directories in the system's temporary directory;
/// the process id that made one and a random part follow.
const SCRATCH_PREFIX: &str = "windlass-helm-";

/// helm's working directory for one run: readable by this user only (0700), since it holds the
/// chart's rendered documents, the pull secret among them, and the values. Named
/// `windlass-helm-<pid>-<random>`; the first call in a process removes such directories a
/// windlass killed before it could remove them left behind ([`sweep_stale_scratch`]).
pub(crate) fn scratch() -> Result<tempfile::TempDir, HelmError> {
    use std::os::unix::fs::PermissionsExt;
    static SWEPT: std::sync::Once = std::sync::Once::new();
    SWEPT.call_once(|| sweep_stale_scratch(&std::env::temp_dir()));
    tempfile::Builder::new()
        .prefix(&format!("{SCRATCH_PREFIX}{}-", std::process::id()))
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
        .map_err(|error| HelmError::Prepare(error.to_string()))
}

/// Removes each `windlass-helm-<pid>-*` directory in `temp` that this user owns and whose process
/// is no longer running: a killed windlass's, which may hold a chart's pull secret. Best effort:
/// what cannot be read or removed stays. Directories named before the process id was part of the
/// name (`windlass-helm-<random>`) are not recognised and stay.
pub(crate) fn sweep_stale_scratch(temp: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(temp) else {
        return;
    };
    let this_user = rustix::process::getuid().as_raw();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix(SCRATCH_PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<i32>().ok())
            .and_then(rustix::process::Pid::from_raw)
        else {
            continue;
        };
        let Ok(metadata) = entry.path().symlink_metadata() else {
            continue;
        };
        // Another user's process, or a live one, answers anything but "no such process".
        let gone = rustix::process::test_kill_process(pid) == Err(rustix::io::Errno::SRCH);
        if metadata.is_dir() && metadata.uid() == this_user && gone {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory of a process that has exited goes; a running process's, and anything not
    /// named as a scratch directory, stay.
    #[test]
    fn only_the_scratch_directories_of_exited_processes_are_swept() {
        let temp = tempfile::tempdir().unwrap();
        let mut exited = std::process::Command::new("true").spawn().unwrap();
        let exited_pid = exited.id();
        exited.wait().unwrap();
        let names = [
            format!("{SCRATCH_PREFIX}{exited_pid}-a1B2c3"),
            format!("{SCRATCH_PREFIX}{}-d4E5f6", std::process::id()),
            format!("{SCRATCH_PREFIX}g7H8i9"),
            format!("other-{exited_pid}-j0K1l2"),
        ];
        for name in &names {
            std::fs::create_dir(temp.path().join(name)).unwrap();
            std::fs::write(temp.path().join(name).join("secret.yaml"), "x").unwrap();
        }
        sweep_stale_scratch(temp.path());
        let left: Vec<bool> = names
            .iter()
            .map(|name| temp.path().join(name).exists())
            .collect();
        assert_eq!(left, [false, true, true, true], "{names:?}");
    }

    #[test]
    fn the_scratch_directory_is_the_users_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch().unwrap();
        let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{mode:o}");
    }

    #[test]
    fn an_archive_or_values_file_not_among_the_files_is_refused_before_helm_runs() {
        // No helm exists at this path: a refusal comes before it would be started.
        let tool = HelmTool::new(PathBuf::from("/nonexistent/helm"));
        let files = vec![("web-1.0.0.tgz".to_string(), b"archive".to_vec())];
        let request = |archive: Option<&'static str>, values_files: &'static [&'static str]| {
            let files = files.clone();
            move |tool: &HelmTool| {
                tool.upgrade_install(&UpgradeRequest {
                    release_name: "web",
                    namespace: "default",
                    files: &files,
                    archive,
                    values_files,
                    kubeconfig: Path::new("/nonexistent/kubeconfig"),
                    kube_context: None,
                    timeout_seconds: 60,
                    extra_arguments: &[],
                    held_open: None,
                })
            }
        };
        let refused = |result: Result<UpgradeOutput, HelmError>| match result {
            Err(HelmError::Prepare(message)) => message,
            other => panic!("not refused: {other:?}"),
        };
        assert!(
            refused(request(Some("web-2.0.0.tgz"), &[])(&tool))
                .contains("the chart archive \"web-2.0.0.tgz\" is not among the chart's files")
        );
        assert!(
            refused(request(Some("web-1.0.0.tgz"), &["values.yaml"])(&tool))
                .contains("the values file \"values.yaml\" is not among the chart's files")
        );
        // Both present: it goes on, to the helm that is not there.
        assert!(!matches!(
            request(Some("web-1.0.0.tgz"), &[])(&tool),
            Err(HelmError::Prepare(_))
        ));
    }
}
