//! The output directory, through the real binary: windlass writes only into a new or empty
//! directory or one it wrote (marked by `.windlass-output`), unless `--force`, and never into `/`,
//! the release directory (or inside it) or the state directory; a second install into a directory
//! another install is writing is refused, naming the holder; `--out` or `--state` naming a file
//! says so; a resumed install whose output was lost after a kill -9, or replaced by huge sparse
//! files, writes it again from the log and says so; and a huge marker is refused unread.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};

use crate::{OFFLINE_INSTALL, json, quickstart, run, windlass};

/// Every regular file under `root` with its bytes, by relative path.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    crate::files_under(root)
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap();
            (path.strip_prefix(root).unwrap().to_path_buf(), bytes)
        })
        .collect()
}

/// Copies the directory tree `from` to `to` (created): regular files and directories.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A `windlass install` paused after a stage; killed (SIGKILL) and reaped when dropped, so a failing
/// test leaves no process behind.
struct PausedInstall(Child);

impl PausedInstall {
    fn id(&self) -> u32 {
        self.0.id()
    }

    /// SIGKILL, as a crash or power loss would stop it, and waits for it to be gone.
    fn kill(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for PausedInstall {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `windlass install --offline <quickstart> --out <out> --namespace <namespace>`, paused after
/// `stage` (`WINDLASS_PAUSE_AFTER_STAGE`): returns once the process announced the pause.
fn paused_install(state: &Path, out: &Path, namespace: &str, stage: &str) -> PausedInstall {
    let mut child = windlass(state)
        .args(OFFLINE_INSTALL)
        .arg(quickstart())
        .arg("--out")
        .arg(out)
        .args(["--namespace", namespace])
        .env("WINDLASS_PAUSE_AFTER_STAGE", stage)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    crate::wait_for_pause(&mut child, stage);
    PausedInstall(child)
}

#[test]
fn a_second_install_into_an_output_directory_in_use_is_refused_naming_the_holder() {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    // Paused after the last stage, so that no other stage of the first install is still writing
    // while the second one is refused (a pause holds only the stage it follows).
    let first = paused_install(state.path(), &out, "team-a", "render_midstream");
    let first_id = json(run(windlass(state.path()).args(["history", "--json"])))[0]["install_id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = snapshot(&out);

    // Another namespace: another install key, so only the output directory's lock stops it.
    let second = run(windlass(state.path())
        .args(OFFLINE_INSTALL)
        .arg(quickstart())
        .arg("--out")
        .arg(&out)
        .args(["--namespace", "team-b"]));
    let message = stderr(&second);
    assert_eq!(second.status.code(), Some(1), "{message}");
    assert!(
        message.contains(&format!(
            "--out {}: another windlass install is writing into this directory (pid {}, install {first_id})",
            out.display(),
            first.id()
        )),
        "{message}"
    );
    assert_eq!(snapshot(&out), before, "the refused install wrote nothing");
    let history = json(run(windlass(state.path()).args(["history", "--json"])));
    assert_eq!(
        history.as_array().unwrap().len(),
        1,
        "the refused install recorded nothing"
    );

    first.kill(); // SIGKILL: the lock dies with the process
    let after = json(run(windlass(state.path())
        .args(OFFLINE_INSTALL)
        .arg("--json")
        .arg(quickstart())
        .arg("--out")
        .arg(&out)
        .args(["--namespace", "team-b"])));
    assert_eq!(after["status"], "completed");
    assert_eq!(after["namespace"], "team-b");
    let marker = std::fs::read_to_string(out.join(".windlass-output")).unwrap();
    assert!(
        marker.contains(&format!("install {first_id}\n"))
            && marker.contains(&format!(
                "install {}\n",
                after["install_id"].as_str().unwrap()
            )),
        "{marker}"
    );
}

#[test]
fn a_directory_windlass_did_not_write_is_refused_untouched_unless_forced() {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let mine = work.path().join("mine");
    for (path, body) in [
        ("base/deployment.yaml", "kind: Mine\n"),
        ("upstream/notes.md", "my notes\n"),
        ("rendered/this-cluster/keep.yaml", "kind: Mine\n"),
        ("README", "my project\n"),
    ] {
        let path = mine.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
    let before = snapshot(&mine);

    let refused = run(windlass(state.path())
        .args(OFFLINE_INSTALL)
        .arg(quickstart())
        .arg("--out")
        .arg(&mine));
    let message = stderr(&refused);
    assert_eq!(refused.status.code(), Some(2), "{message}");
    assert!(
        message.contains(&format!(
            "--out {}: the directory is not empty and was not written by windlass (no .windlass-output marker; it holds README, base, rendered, upstream)",
            mine.display()
        )) && message.contains("pass --force"),
        "{message}"
    );
    assert_eq!(
        message.matches("error:").count(),
        1,
        "one error, said once: {message}"
    );
    assert_eq!(snapshot(&mine), before, "nothing touched");
    assert_eq!(
        std::fs::read_dir(&mine).unwrap().count(),
        4,
        "no lock or marker file created"
    );

    let forced = json(run(windlass(state.path())
        .args(OFFLINE_INSTALL)
        .args(["--json", "--force"])
        .arg(quickstart())
        .arg("--out")
        .arg(&mine)));
    assert_eq!(forced["status"], "completed");
    assert_eq!(
        std::fs::read_to_string(mine.join("README")).unwrap(),
        "my project\n",
        "files outside the replaced trees are kept"
    );
    assert!(mine.join("base/kustomization.yaml").is_file());
    assert!(
        !mine.join("base/deployment.yaml").exists(),
        "base/ replaced"
    );
    assert!(mine.join(".windlass-output").is_file());
    // Marked now: the next install needs no --force.
    let again = json(run(windlass(state.path())
        .args(OFFLINE_INSTALL)
        .arg("--json")
        .arg(quickstart())
        .arg("--out")
        .arg(&mine)
        .args(["--namespace", "other"])));
    assert_eq!(again["status"], "completed");
}

#[test]
fn root_release_and_state_directories_are_refused_even_with_force() {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let release = work.path().join("release");
    copy_dir(&quickstart(), &release);
    let before = snapshot(&release);
    let state_dir = std::fs::canonicalize(state.path()).unwrap();
    let release_dir = std::fs::canonicalize(&release).unwrap();
    let cases: Vec<(PathBuf, String)> = vec![
        (
            PathBuf::from("/"),
            "--out /: refusing to write into the root directory".into(),
        ),
        (
            release.clone(),
            format!(
                "--out {}: is the release directory {}",
                release.display(),
                release_dir.display()
            ),
        ),
        (
            release.join("out"),
            format!(
                "--out {}: is inside the release directory {}",
                release.join("out").display(),
                release_dir.display()
            ),
        ),
        (
            release.join("manifests"),
            format!(
                "--out {}: is inside the release directory {}",
                release.join("manifests").display(),
                release_dir.display()
            ),
        ),
        (
            state.path().to_path_buf(),
            format!(
                "--out {}: is the state directory {}",
                state.path().display(),
                state_dir.display()
            ),
        ),
    ];
    for (out, expected) in cases {
        for force in [false, true] {
            let mut command = windlass(state.path());
            command
                .args(OFFLINE_INSTALL)
                .arg(&release)
                .arg("--out")
                .arg(&out);
            if force {
                command.arg("--force");
            }
            let refused = run(&mut command);
            let message = stderr(&refused);
            assert_eq!(
                refused.status.code(),
                Some(2),
                "{}: {message}",
                out.display()
            );
            assert!(message.contains(&expected), "{expected}\n{message}");
        }
    }
    assert_eq!(snapshot(&release), before, "the release is untouched");
    assert!(
        !release.join("out").exists(),
        "nothing created in the release"
    );
    // A directory whose base/ would hold the release (base/ is replaced whole).
    let holder = work.path().join("holder");
    copy_dir(&quickstart(), &holder.join("base"));
    let refused = run(windlass(state.path())
        .args(OFFLINE_INSTALL)
        .arg(holder.join("base"))
        .arg("--out")
        .arg(&holder)
        .arg("--force"));
    let message = stderr(&refused);
    assert_eq!(refused.status.code(), Some(2), "{message}");
    assert!(
        message.contains("windlass replaces base/ in it, which holds the release directory"),
        "{message}"
    );
    assert!(holder.join("base/kots-app.yaml").is_file());
}

#[test]
fn an_output_directory_windlass_wrote_can_be_installed_into_again() {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let first = json(run(windlass(state.path())
        .args(OFFLINE_INSTALL)
        .arg("--json")
        .arg(quickstart())
        .arg("--out")
        .arg(&out)));
    assert_eq!(first["status"], "completed");
    // The user's own downstream overlay, kept as always.
    let downstream = out.join("overlays/downstreams/this-cluster/kustomization.yaml");
    std::fs::write(
        &downstream,
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nbases:\n  - ../../midstream\n# mine\n",
    )
    .unwrap();
    let second = json(run(windlass(state.path())
        .args(OFFLINE_INSTALL)
        .arg("--json")
        .arg(quickstart())
        .arg("--out")
        .arg(&out)));
    assert_eq!(second["status"], "completed");
    assert_ne!(second["install_id"], first["install_id"]);
    assert!(
        std::fs::read_to_string(&downstream)
            .unwrap()
            .ends_with("# mine\n")
    );
    let marker = std::fs::read_to_string(out.join(".windlass-output")).unwrap();
    let installs: Vec<&str> = marker
        .lines()
        .filter_map(|line| line.strip_prefix("install "))
        .collect();
    assert_eq!(
        installs,
        [
            first["install_id"].as_str().unwrap(),
            second["install_id"].as_str().unwrap()
        ]
    );
    let leftovers: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.contains("windlass-staging") || name.contains("windlass-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn out_or_state_naming_a_file_says_so() {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("a-file");
    std::fs::write(&file, "mine\n").unwrap();
    for (out, expected) in [
        (
            file.clone(),
            format!("--out {}: is a file, not a directory", file.display()),
        ),
        (
            file.join("below"),
            format!(
                "--out {}: {} is a file, not a directory",
                file.join("below").display(),
                file.display()
            ),
        ),
    ] {
        let refused = run(windlass(state.path())
            .args(OFFLINE_INSTALL)
            .arg(quickstart())
            .arg("--out")
            .arg(&out));
        let message = stderr(&refused);
        assert_eq!(refused.status.code(), Some(2), "{message}");
        assert!(message.contains(&expected), "{expected}\n{message}");
        assert!(!message.contains("File exists"), "{message}");
    }
    for command in [vec!["history"], vec!["install", "--offline"]] {
        let mut invocation = windlass(&file);
        invocation.args(&command);
        if command[0] == "install" {
            invocation.arg(quickstart());
        }
        let refused = run(&mut invocation);
        let message = stderr(&refused);
        assert_eq!(refused.status.code(), Some(2), "{message}");
        assert!(
            message.contains(&format!(
                "--state {}: is a file, not a directory",
                file.display()
            )),
            "{message}"
        );
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine\n");
}

/// The `rederived` entries of the install's `InstallResumed` events.
fn rederived(state: &Path, install_id: &str) -> Vec<serde_json::Value> {
    json(run(windlass(state).args(["events", install_id, "--json"])))
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["type"] == "InstallResumed")
        .flat_map(|event| {
            event["payload"]["rederived"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

/// Kills an install with SIGKILL after `stage`, damages its output with `damage`, resumes, and
/// checks the output equals that of an undisturbed install and the resume said what it
/// re-derived: `expected` lists each stage that re-derived something with part of its note.
fn check_rederived_after_kill(stage: &str, damage: impl FnOnce(&Path), expected: &[(&str, &str)]) {
    let reference_state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let reference_out = work.path().join("reference");
    let reference = run(windlass(reference_state.path())
        .args(OFFLINE_INSTALL)
        .arg(quickstart())
        .arg("--out")
        .arg(&reference_out));
    assert!(reference.status.success(), "{}", stderr(&reference));

    let state = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    paused_install(state.path(), &out, "default", stage).kill();
    damage(&out);

    let resumed = run(windlass(state.path())
        .args(OFFLINE_INSTALL)
        .arg("--json")
        .arg(quickstart())
        .arg("--out")
        .arg(&out));
    let message = stderr(&resumed);
    let resumed = json(resumed);
    assert_eq!(resumed["status"], "completed", "{message}");
    assert_eq!(resumed["resumed"], 1);
    let install_id = resumed["install_id"].as_str().unwrap();
    let recorded = rederived(state.path(), install_id);
    assert_eq!(recorded.len(), expected.len(), "{recorded:?}");
    for (stage, note) in expected {
        assert!(
            message.contains(&format!("windlass: {stage}: ")) && message.contains(note),
            "the resume says what {stage} re-derived: {message}"
        );
        let detail = recorded
            .iter()
            .find(|entry| entry["stage"] == *stage)
            .unwrap_or_else(|| panic!("no rederived entry for {stage}: {recorded:?}"));
        assert!(
            detail["detail"].as_str().unwrap().contains(note),
            "{recorded:?}"
        );
    }
    for tree in [
        "upstream",
        "base",
        "overlays/midstream",
        "overlays/downstreams",
        "rendered/this-cluster",
    ] {
        assert_eq!(
            snapshot(&out.join(tree)),
            snapshot(&reference_out.join(tree)),
            "{tree} after the resume"
        );
    }
}

#[test]
fn a_lost_base_after_kill_9_is_rederived_on_resume() {
    check_rederived_after_kill(
        "write_base",
        |out| std::fs::remove_dir_all(out.join("base")).unwrap(),
        &[(
            "write_base",
            "were missing or changed (first: base/kustomization.yaml); re-derived upstream/ and base/ from the recorded blobs",
        )],
    );
}

#[test]
fn a_truncated_or_removed_base_file_after_kill_9_is_rederived_on_resume() {
    check_rederived_after_kill(
        "write_base",
        |out| {
            let truncated = out.join("base/manifests/api.yaml");
            let length = std::fs::metadata(&truncated).unwrap().len();
            std::fs::OpenOptions::new()
                .write(true)
                .open(&truncated)
                .unwrap()
                .set_len(length / 2)
                .unwrap();
            std::fs::remove_file(out.join("base/manifests/nightly-report.yaml")).unwrap();
        },
        &[(
            "write_base",
            "2 of 9 recorded files in upstream/ and base/ were missing or changed (first: base/manifests/api.yaml)",
        )],
    );
}

/// Recorded files replaced by sparse files of 64 MiB (a rendered Secret, recorded by fingerprint,
/// by one byte past the most such a file is read): each is read only up to its recorded size,
/// found changed, and re-derived on resume.
#[test]
fn recorded_files_replaced_by_huge_sparse_files_are_rederived_on_resume() {
    check_rederived_after_kill(
        "render_midstream",
        |out| {
            for (file, size) in [
                ("base/manifests/api.yaml", 64 << 20),
                ("rendered/this-cluster/api-deployment.yaml", 64 << 20),
                (
                    "rendered/this-cluster/my-app-registry-secret.yaml",
                    (64 << 20) + 1,
                ),
                ("overlays/midstream/secret.yaml", 64 << 20),
            ] {
                let path = out.join(file);
                assert!(path.is_file(), "{file} is among the recorded files");
                std::fs::remove_file(&path).unwrap();
                std::fs::File::create(&path)
                    .and_then(|sparse| sparse.set_len(size))
                    .unwrap();
            }
        },
        &[
            (
                "write_base",
                "1 of 9 recorded files in upstream/ and base/ were missing or changed (first: base/manifests/api.yaml)",
            ),
            (
                "provision_secrets",
                "overlays/midstream/secret.yaml was changed; re-derived it",
            ),
            (
                "render_midstream",
                "in overlays/midstream/ and rendered/this-cluster/ were missing or changed",
            ),
        ],
    );
}

/// A `.windlass-output` far larger than any marker windlass writes (a sparse 64 MiB file) is
/// refused without being read, naming it; nothing is touched or recorded.
#[test]
fn a_huge_marker_file_is_refused_unread() {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let marker = out.join(".windlass-output");
    std::fs::File::create(&marker)
        .and_then(|file| file.set_len(64 << 20))
        .unwrap();
    let refused = run(windlass(state.path())
        .args(OFFLINE_INSTALL)
        .arg(quickstart())
        .arg("--out")
        .arg(&out));
    let message = stderr(&refused);
    assert_eq!(refused.status.code(), Some(2), "{message}");
    assert!(
        message.contains(&format!(
            "--out {}: its .windlass-output is larger than 64 KiB, which no marker windlass writes is; remove it and try again",
            out.display()
        )),
        "{message}"
    );
    assert_eq!(std::fs::metadata(&marker).unwrap().len(), 64 << 20);
    let history = json(run(windlass(state.path()).args(["history", "--json"])));
    assert_eq!(history.as_array().unwrap().len(), 0, "nothing recorded");
}

/// Killed after the last stage completed but before the install was recorded as completed: the
/// whole output directory but the marker lost (as after a power loss), then resumed.
#[test]
fn output_lost_after_the_last_stage_is_rederived_by_every_stage_on_resume() {
    check_rederived_after_kill(
        "render_midstream",
        |out| {
            for tree in ["upstream", "base", "overlays", "rendered"] {
                std::fs::remove_dir_all(out.join(tree)).unwrap();
            }
        },
        &[
            ("write_base", "9 of 9 recorded files in upstream/ and base/"),
            (
                "provision_secrets",
                "overlays/midstream/secret.yaml was missing; re-derived it",
            ),
            (
                "render_midstream",
                "in overlays/midstream/ and rendered/this-cluster/ were missing or changed",
            ),
        ],
    );
}
