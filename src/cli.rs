//! Command-line arguments (clap derive). Global options (`--state`, `--json`, `--backend`) are
//! accepted by every command, before or after the subcommand.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Event-sourced deployment pipeline for Kubernetes applications whose images sit in private
/// registries.
#[derive(Debug, Parser)]
#[command(name = "windlass", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    /// Options every command accepts.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

const EXIT_CODES: &str = "Exit codes: 0 success; 1 an install failed, an internal error, or another install is writing into --out; \
2 bad command line (also --out or --state naming a file, and --out naming a directory windlass may not write); \
3 invalid input (release, license or pipeline); 4 state directory problem (unreadable, newer format, broken hash chain); \
5 no such install (or proxy license)";

/// Options every command accepts.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// State directory holding the event log and blobs.
    #[arg(
        long,
        global = true,
        env = "WINDLASS_STATE",
        default_value = ".windlass"
    )]
    pub state: PathBuf,
    /// Print machine-readable JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Event log backend: redb (default) or sled (when built with the `sled` feature).
    #[arg(long, global = true, env = "WINDLASS_BACKEND", default_value = "redb")]
    pub backend: String,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Install a release: run the pipeline and write the output layout.
    Install(Box<InstallArgs>),
    /// List the distinct images of a release; `--why` shows where each one was found.
    Images(ImagesArgs),
    /// Print the release's KOTS Config items, their effective values (passwords masked) and the
    /// required items still missing, evaluated with a ConfigValues file as an install would.
    Config(ConfigArgs),
    /// One line per install: id, app, release digest, status, started, duration; with `--app`,
    /// that app's installs as a chain of upgrades.
    History {
        /// Only this app's installs, each with the install it upgrades.
        #[arg(long, value_name = "SLUG")]
        app: Option<String>,
    },
    /// Compare two installs stage by stage (files, probe outcomes, overrides, pull secrets,
    /// rendered objects), each change attributed; with one install, compare it with the install
    /// it upgraded.
    Diff {
        /// The older install (or, alone, the install to compare with the one it upgraded).
        first: String,
        /// The newer install.
        second: Option<String>,
        /// Only this stage's changes.
        #[arg(long)]
        stage: Option<String>,
    },
    /// Every event of one install, in order.
    Events {
        /// The install id (see `windlass history`).
        install_id: String,
    },
    /// The state of one install, folded from its events.
    Show {
        /// The install id.
        install_id: String,
    },
    /// Check the event log's hash chain and sequence numbers, every blob, and whether the
    /// indexes reflect the log.
    VerifyLog {
        /// Rebuild the indexes (install summaries, install keys, facts by type) from the log
        /// first; needs write access to the state directory.
        #[arg(long)]
        rebuild_indexes: bool,
    },
    /// Re-run a recorded install offline (no network, no release directory, no cluster) and
    /// compare every file and fact with what it recorded; exits 0 only when identical, and
    /// records `ReplayVerified` or `ReplayDiffered`. With a what-if option (`--proxy-domain`,
    /// `--registry-domain`, `--probe-policy`, `--known-images`, `--namespace`, `--kots-compat`,
    /// `--registry-host`, `--registry-namespace`),
    /// prints what would differ instead and records nothing.
    Replay(ReplayArgs),
    /// Write the event log as JSON lines (one record a line, with its hash, the previous hash and
    /// its exact bytes, decompressed when stored compressed) on stdout, for an audit system.
    Export {
        /// Only records after this global sequence (the last one an earlier export held).
        #[arg(long, value_name = "SEQ", default_value_t = 0)]
        since: u64,
        /// Only this install's records.
        #[arg(long, value_name = "ID")]
        install: Option<String>,
    },
    /// Check a file `windlass export` wrote, offline (no state directory): every record's hash
    /// and every link of the chain; names the first bad line, its byte offset and record.
    VerifyExport {
        /// The exported file.
        file: PathBuf,
    },
    /// Run the license-authenticated pull-through registry proxy, or manage its licenses.
    Proxy(ProxyArgs),
    /// Apply what a completed install rendered (`--target dir:PATH` or `kube[:CONTEXT]`).
    Apply(ApplyArgs),
    /// Remove an app from a cluster: delete what windlass's newest apply of it there left
    /// (namespaces, `kots.io/keep` objects and refused deletes stay, and are listed) and
    /// `helm uninstall` the charts it installed.
    Undeploy(UndeployArgs),
    /// Watch a directory and install each release dropped into it (a subdirectory or a `.tar.gz`
    /// bundle) exactly once per release digest, one at a time in version order; with `--listen`,
    /// serve status, metrics and a read-only web console.
    Watch(Box<WatchArgs>),
}

/// Arguments of `windlass apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The install whose rendered output to apply (see `windlass history`).
    pub install_id: String,
    /// Where and how to apply.
    #[command(flatten)]
    pub target: TargetArgs,
    /// The helm (Helm 4) that installs the release's HelmCharts with `--target kube` (the
    /// `useHelmInstall: true` and `kots.io/v1beta2` ones); default: `tools/bin/helm` beside the
    /// binary's directory, else `helm` on PATH.
    #[arg(long, value_name = "PATH", env = "WINDLASS_HELM")]
    pub helm: Option<PathBuf>,
}

/// Arguments of `windlass undeploy`.
#[derive(Debug, Args)]
pub struct UndeployArgs {
    /// An install of the app (see `windlass history`): its app and namespace say what to
    /// remove. Its rendered output is not read.
    pub install_id: String,
    /// The cluster: `kube` (the kubeconfig's current context) or `kube:CONTEXT`.
    #[arg(long, value_parser = parse_target)]
    pub target: windlass_apply::Target,
    /// Kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Report what would be deleted (the server is asked with a dry run) and delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Deadline of each helm uninstall, and of the wait until what was deleted is gone:
    /// seconds, or with a unit (`90s`, `10m`, `1h`); at most `168h`.
    #[arg(long, default_value = "10m", value_parser = parse_wait_timeout)]
    pub wait_timeout: u64,
    /// The helm (Helm 4) that uninstalls the charts windlass installed; default: `tools/bin/helm`
    /// beside the binary's directory, else `helm` on PATH.
    #[arg(long, value_name = "PATH", env = "WINDLASS_HELM")]
    pub helm: Option<PathBuf>,
}

/// Where and how to apply (`install` and `apply`).
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Where to apply: `none` (render only), `dir:PATH` (one file per object in apply order), or
    /// `kube[:CONTEXT]` (server-side apply through the kubeconfig context; the current one when
    /// not named).
    #[arg(long, default_value = "none", value_parser = parse_target)]
    pub target: windlass_apply::Target,
    /// Kubeconfig file for `--target kube` (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// With `--target kube`: a server-side dry run that reports what would change and writes
    /// nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Deadline of every wait (CRDs Established, Namespaces Active, kots.io/wait-for-ready and
    /// wait-for-properties, the app state): seconds, or with a unit (`90s`, `10m`, `1h`); at
    /// most `168h`.
    #[arg(long, default_value = "10m", value_parser = parse_wait_timeout)]
    pub wait_timeout: u64,
    /// Prune every object of the previous install even though the new release applies nothing.
    #[arg(long)]
    pub allow_empty_prune: bool,
}

/// `--target`.
fn parse_target(value: &str) -> Result<windlass_apply::Target, String> {
    windlass_apply::Target::parse(value).map_err(|error| error.to_string())
}

use windlass_apply::stage::MAX_WAIT_TIMEOUT_SECONDS;

/// `--wait-timeout`: seconds, or a number with `s`, `m` or `h`, from one second to
/// [`MAX_WAIT_TIMEOUT_SECONDS`].
fn parse_wait_timeout(value: &str) -> Result<u64, String> {
    let (number, unit) = match value.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => value.split_at(at),
        None => (value, "s"),
    };
    let factor = match unit {
        "s" => Some(1),
        "m" => Some(60),
        "h" => Some(3600),
        _ => None,
    };
    let Some(factor) = factor.filter(|_| !number.is_empty()) else {
        return Err(format!(
            "{value:?} is not a duration: use seconds or 90s, 10m, 1h"
        ));
    };
    let too_long = || {
        format!(
            "{value:?} is too long: --wait-timeout is at most 168h (7 days, \
             {MAX_WAIT_TIMEOUT_SECONDS} seconds)"
        )
    };
    // Only digits: the number fails to parse only when it does not fit in 64 bits.
    let number: u64 = number.parse().map_err(|_| too_long())?;
    match number.checked_mul(factor) {
        Some(0) => Err("the wait timeout must be at least one second".into()),
        Some(seconds) if seconds <= MAX_WAIT_TIMEOUT_SECONDS => Ok(seconds),
        _ => Err(too_long()),
    }
}

/// Arguments of `windlass install`.
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Directory of YAML files and chart archives (a KOTS upstream directory works as it is).
    pub release_dir: PathBuf,
    /// Output directory (see `--help`).
    #[arg(
        long,
        help = "Output directory; defaults to <state>/installs/<install id>/. It must be new, empty, \
                or one windlass wrote (it holds a .windlass-output marker)"
    )]
    pub out: Option<PathBuf>,
    /// Write into a non-empty `--out` directory windlass did not write: windlass then replaces
    /// upstream/, base/ and rendered/this-cluster/ in it (never `/`, the release or the state
    /// directory).
    #[arg(long)]
    pub force: bool,
    /// How to install.
    #[command(flatten)]
    pub install: InstallOptionArgs,
}

/// How to install a release (`install` and `watch`).
#[derive(Debug, Args)]
pub struct InstallOptionArgs {
    /// License file; defaults to RELEASE_DIR/userdata/license.yaml when that exists.
    #[arg(long)]
    pub license: Option<PathBuf>,
    /// KOTS ConfigValues file with the values of the release's Config items; defaults to
    /// RELEASE_DIR/userdata/config.yaml when that exists (a file given here must exist).
    #[arg(long, value_name = "FILE")]
    pub config_values: Option<PathBuf>,
    /// Namespace the application is installed into (a DNS-1123 label: at most 63 lowercase
    /// letters, digits and '-').
    #[arg(long, default_value = "default", value_parser = parse_namespace)]
    pub namespace: String,
    /// windlass config file with extra image-field rules for custom resources and plugin
    /// declarations (`plugins:`).
    #[arg(long, env = "WINDLASS_CONFIG")]
    pub config: Option<PathBuf>,
    /// How long an earlier install's probe result is reused, in seconds (0: always probe).
    #[arg(long, default_value_t = 86_400)]
    pub probe_cache_ttl: u64,
    /// Custom proxy host (default: Installation/Application settings, else proxy.replicated.com).
    #[arg(long)]
    pub proxy_domain: Option<String>,
    /// Custom registry host (default: Installation/Application settings, else
    /// registry.replicated.com).
    #[arg(long)]
    pub registry_domain: Option<String>,
    /// Also write the legacy `kotsadm-replicated-registry` pull secret, as KOTS does.
    #[arg(long)]
    pub kots_compat: bool,
    /// How to use a local registry.
    #[command(flatten)]
    pub local_registry: LocalRegistryArgs,
    /// Command that builds overlays using kustomize features windlass's native build lacks; the
    /// overlay directory is appended.
    #[arg(long, default_value = "kubectl kustomize", env = "WINDLASS_KUSTOMIZE")]
    pub external_kustomize: String,
    /// The helm (Helm 4) that renders the release's HelmCharts; default: `tools/bin/helm` beside
    /// the binary's directory, else `helm` on PATH.
    #[arg(long, value_name = "PATH", env = "WINDLASS_HELM")]
    pub helm: Option<PathBuf>,
    /// How to probe.
    #[command(flatten)]
    pub probing: ProbeArgs,
    /// Pipeline file (YAML) listing the stages to run, their kinds, inputs and configs, instead
    /// of the built-in pipeline; the stage options above then must not be given (set them in the
    /// file).
    #[arg(long, value_name = "FILE")]
    pub pipeline: Option<PathBuf>,
    /// Where and how to apply the rendered objects.
    #[command(flatten)]
    pub target: TargetArgs,
}

/// Local-registry mode (`install` and `watch`; also `local_registry:` in the `--config` file,
/// which these options override).
#[derive(Debug, Args)]
pub struct LocalRegistryArgs {
    /// Local-registry mode: rewrite every image, public or private, to HOST[/NAMESPACE]/NAME,
    /// NAME being the last path component of the image (tag and digest kept), with a pull secret
    /// for this registry only.
    #[arg(long, value_name = "HOST")]
    pub registry_host: Option<String>,
    /// The namespace images go under on the local registry (may have several segments).
    #[arg(long, value_name = "NS")]
    pub registry_namespace: Option<String>,
    /// The user name the pull secret authenticates with (with --registry-password-file).
    #[arg(long, value_name = "USER")]
    pub registry_username: Option<String>,
    /// File holding the local registry's password (one line; never recorded, only its keyed
    /// fingerprint).
    #[arg(long, value_name = "FILE")]
    pub registry_password_file: Option<PathBuf>,
}

/// Arguments of `windlass watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The directory to watch: each subdirectory or `.tar.gz` bundle in it is a release.
    pub dir: PathBuf,
    /// How long a release's content must stay unchanged before it is taken, when it was neither
    /// renamed in nor marked with `.ready`: seconds, or with a unit (`500ms`, `5s`, `1m`).
    #[arg(long, default_value = "5s", value_parser = parse_interval)]
    pub quiet_period: std::time::Duration,
    /// How often the whole directory is rescanned, events or not.
    #[arg(long, default_value = "60s", value_parser = parse_interval)]
    pub rescan_interval: std::time::Duration,
    /// Poll the directory at this interval instead of watching for file-system events (for
    /// network file systems, which send none).
    #[arg(long, value_name = "INTERVAL", num_args = 0..=1, default_missing_value = "2s", value_parser = parse_interval)]
    pub poll: Option<std::time::Duration>,
    /// Install the release with this digest again, once (it was taken before); repeatable.
    #[arg(long, value_name = "DIGEST")]
    pub reinstall: Vec<String>,
    /// Serve the status API, metrics and the web console on this address (loopback unless an
    /// address says otherwise), e.g. 127.0.0.1:9440.
    #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
    pub listen: Option<std::net::SocketAddr>,
    /// File holding the token that state-changing API requests must send
    /// (`Authorization: Bearer TOKEN`); without it the API is read-only.
    #[arg(long, value_name = "FILE")]
    pub api_token_file: Option<PathBuf>,
    /// How to install each release.
    #[command(flatten)]
    pub install: InstallOptionArgs,
}

/// `--listen`: `HOST:PORT`, or a bare port on loopback.
fn parse_listen(value: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(port) = value.parse::<u16>() {
        return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    value
        .parse()
        .map_err(|_| format!("{value:?} is not an address: use 127.0.0.1:9440 or a bare port"))
}

/// `--quiet-period`, `--rescan-interval`, `--poll`: seconds, or a number with `ms`, `s` or `m`.
fn parse_interval(value: &str) -> Result<std::time::Duration, String> {
    let invalid = || format!("{value:?} is not a duration: use seconds or 500ms, 5s, 1m");
    let (number, unit) = match value.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => value.split_at(at),
        None => (value, "s"),
    };
    let number: u64 = number.parse().map_err(|_| invalid())?;
    let millis = match unit {
        "ms" => Some(number),
        "s" => number.checked_mul(1000),
        "m" => number.checked_mul(60_000),
        _ => return Err(invalid()),
    }
    .ok_or_else(|| format!("{value:?} is too long"))?;
    Ok(std::time::Duration::from_millis(millis))
}

/// Arguments of `windlass replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The install to replay (see `windlass history`).
    pub install_id: String,
    /// The license the install ran with: the files holding secrets are then compared by keyed
    /// fingerprint (without it they are not compared).
    #[arg(long)]
    pub license: Option<PathBuf>,
    /// The ConfigValues file the install ran with: it must be the same file (its keyed
    /// fingerprint is checked); files rendered from password values are then re-rendered and
    /// compared. Without it, the values the install recorded (all but passwords) are used.
    #[arg(long, value_name = "FILE")]
    pub config_values: Option<PathBuf>,
    /// What-if: this proxy host instead of the recorded one.
    #[arg(long)]
    pub proxy_domain: Option<String>,
    /// What-if: this registry host instead of the recorded one.
    #[arg(long)]
    pub registry_domain: Option<String>,
    /// What-if: this probe policy (`kots` or `strict`) instead of the recorded one.
    #[arg(long)]
    pub probe_policy: Option<String>,
    /// What-if: these known images (a KOTS Installation YAML) instead of the recorded ones.
    #[arg(long)]
    pub known_images: Option<PathBuf>,
    /// What-if: this app namespace instead of the recorded one.
    #[arg(long, value_parser = parse_namespace)]
    pub namespace: Option<String>,
    /// What-if: also write the legacy `kotsadm-replicated-registry` pull secret.
    #[arg(long)]
    pub kots_compat: bool,
    /// The local registry's password file the install ran with (local-registry mode): its keyed
    /// fingerprint must be the recorded one; the pull secrets are then compared by fingerprint.
    #[arg(long, value_name = "FILE")]
    pub registry_password_file: Option<PathBuf>,
    /// What-if: this local registry host (local-registry mode) instead of the recorded mode.
    #[arg(long, value_name = "HOST")]
    pub registry_host: Option<String>,
    /// What-if: this local registry namespace instead of the recorded one.
    #[arg(long, value_name = "NS")]
    pub registry_namespace: Option<String>,
}

/// `--namespace`: a name Kubernetes accepts for a namespace, refused before anything runs.
fn parse_namespace(value: &str) -> Result<String, String> {
    windlass_stages::names::check_dns_label(value)
        .map(|()| value.to_string())
        .map_err(|problem| format!("not a valid namespace: {problem}"))
}

/// Arguments of `windlass config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The release directory.
    pub release_dir: PathBuf,
    /// KOTS ConfigValues file; defaults to RELEASE_DIR/userdata/config.yaml when that exists.
    #[arg(long, value_name = "FILE")]
    pub config_values: Option<PathBuf>,
    /// License file (for `LicenseFieldValue` in defaults); defaults to
    /// RELEASE_DIR/userdata/license.yaml when that exists.
    #[arg(long)]
    pub license: Option<PathBuf>,
    /// Namespace (what `Namespace` answers).
    #[arg(long, default_value = "default", value_parser = parse_namespace)]
    pub namespace: String,
}

/// Arguments of `windlass images`.
#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Directory of YAML files and chart archives.
    pub release_dir: PathBuf,
    /// Show every place each image was found (file, document, object, field).
    #[arg(long)]
    pub why: bool,
    /// windlass config file with extra image-field rules for custom resources.
    #[arg(long, env = "WINDLASS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Ask each image's registry, anonymously, whether the image is public.
    #[arg(long)]
    pub probe: bool,
    /// The helm (Helm 4) that renders the release's HelmCharts to list their images; default:
    /// `tools/bin/helm` beside the binary's directory, else `helm` on PATH.
    #[arg(long, value_name = "PATH", env = "WINDLASS_HELM")]
    pub helm: Option<PathBuf>,
    /// KOTS ConfigValues file the templates read; defaults to RELEASE_DIR/userdata/config.yaml
    /// when that exists.
    #[arg(long, value_name = "FILE")]
    pub config_values: Option<PathBuf>,
    /// License file (for `LicenseFieldValue`); defaults to RELEASE_DIR/userdata/license.yaml
    /// when that exists.
    #[arg(long)]
    pub license: Option<PathBuf>,
    /// Namespace: what `Namespace` answers, and the namespace charts are templated in (as
    /// `install --namespace`).
    #[arg(long, default_value = "default", value_parser = parse_namespace)]
    pub namespace: String,
    /// How to probe.
    #[command(flatten)]
    pub probing: ProbeArgs,
}

/// How images are probed (`install`, and `images --probe`).
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Registry settings file (endpoints, CAs, credentials per registry host).
    #[arg(long)]
    pub registries: Option<PathBuf>,
    /// Never touch the network: images without a known or cached result follow the policy for
    /// `unreachable`.
    #[arg(long)]
    pub offline: bool,
    /// How outcomes become decisions: `kots` (anything not public is private) or `strict`
    /// (unreachable registries and server errors stop the install).
    #[arg(long, default_value = "kots")]
    pub probe_policy: String,
    /// A KOTS Installation YAML whose `spec.knownImages[].{image,isPrivate}` are used instead of
    /// probing those images.
    #[arg(long)]
    pub known_images: Option<PathBuf>,
    /// Deadline of each registry request, in seconds.
    #[arg(long, default_value_t = 10)]
    pub request_timeout: u64,
}

/// Arguments of `windlass proxy`.
#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ProxyCommand,
}

/// `windlass proxy` subcommands.
#[derive(Debug, Subcommand)]
pub enum ProxyCommand {
    /// Serve the OCI distribution API for pulls through the proxy.
    Serve {
        /// The proxy configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Manage the licenses the proxy accepts (works while the proxy runs).
    License {
        /// What to do.
        #[command(subcommand)]
        command: LicenseCommand,
    },
}

/// `windlass proxy license` subcommands.
#[derive(Debug, Subcommand)]
pub enum LicenseCommand {
    /// Accept a license (a KOTS License YAML file); only a keyed hash of its ID is stored.
    Add {
        /// The proxy configuration file.
        #[arg(long)]
        config: PathBuf,
        /// The license file.
        file: PathBuf,
        /// Accept the license again even though it was revoked (without this, adding a revoked
        /// license is refused).
        #[arg(long)]
        reinstate: bool,
    },
    /// Stop accepting a license; its pulls stop within a second. Name the license by its file,
    /// its fingerprint or its ID on standard input, never by its ID on the command line.
    Revoke {
        /// The proxy configuration file.
        #[arg(long)]
        config: PathBuf,
        /// The license file of the license to revoke.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["fingerprint", "id_stdin"])]
        license_file: Option<PathBuf>,
        /// The license's fingerprint, exactly as `license list` prints it (`fp1:...`).
        #[arg(long, conflicts_with = "id_stdin")]
        fingerprint: Option<String>,
        /// Read the license ID from the first line of standard input.
        #[arg(long)]
        id_stdin: bool,
        /// Refused with an error that does not repeat it: a license ID on the command line shows
        /// in process lists and shell history.
        #[arg(hide = true, num_args = 0.., value_name = "LICENSE_ID")]
        refused_license_id: Vec<String>,
    },
    /// List the licenses (fingerprints, apps, status: active, expired or revoked, expiry).
    List {
        /// The proxy configuration file.
        #[arg(long)]
        config: PathBuf,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_timeouts_are_read_up_to_seven_days() {
        for (value, seconds) in [
            ("90", 90),
            ("90s", 90),
            ("10m", 600),
            ("1h", 3600),
            ("168h", 604_800),
            ("10080m", 604_800),
            ("604800", 604_800),
        ] {
            assert_eq!(parse_wait_timeout(value), Ok(seconds), "{value}");
        }
        let too_long = "is too long: --wait-timeout is at most 168h (7 days, 604800 seconds)";
        for value in [
            "604801",
            "169h",
            "10081m",
            "18446744073709551615",
            "18446744073709551616",
            "5124095576030431h",
        ] {
            assert_eq!(
                parse_wait_timeout(value),
                Err(format!("{value:?} {too_long}")),
                "{value}"
            );
        }
        assert_eq!(
            parse_wait_timeout("0m"),
            Err("the wait timeout must be at least one second".to_string())
        );
        for value in ["", "5y", "h", "-1", "1.5h"] {
            assert!(
                parse_wait_timeout(value).is_err_and(|error| error.contains("is not a duration")),
                "{value}"
            );
        }
    }

    #[test]
    fn a_wait_timeout_too_long_is_a_command_line_error() {
        let error = Cli::try_parse_from([
            "windlass",
            "install",
            "release",
            "--wait-timeout",
            "5124095576030431h",
        ])
        .unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation);
        assert_eq!(error.exit_code(), 2);
        let message = error.to_string();
        assert!(
            message.contains("--wait-timeout") && message.contains("at most 168h"),
            "{message}"
        );
    }
}
