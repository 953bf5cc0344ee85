//! `output::OutputDir`, attacked: relative paths that climb out, absolute paths, and symlinks
//! planted in the output directory that point outside it must all be refused, with nothing
//! written outside; symlinks that stay inside are fine; `remove_tree` removes a symlink rather than
//! what it points to. Each test lays out `out/` and a sibling `outside/` in a temporary directory.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::PathBuf;

use tempfile::TempDir;
use windlass_stages::output::{OutputDir, OutputError};

use crate::support::{files_under, temp_dir};

/// `out/` (holding an `escape` symlink to `outside/`) and `outside/` (holding one sentinel file).
struct Layout {
    _dir: TempDir,
    out: PathBuf,
    outside: PathBuf,
}

fn layout() -> Layout {
    let dir = temp_dir();
    let out = dir.path().join("out");
    let outside = dir.path().join("outside");
    fs::create_dir_all(&out).expect("mkdir");
    fs::create_dir_all(&outside).expect("mkdir");
    fs::write(outside.join("sentinel"), "untouched\n").expect("write");
    symlink(&outside, out.join("escape")).expect("symlink");
    Layout {
        _dir: dir,
        out,
        outside,
    }
}

fn sentinel_only() -> BTreeMap<String, Vec<u8>> {
    BTreeMap::from([("sentinel".to_string(), b"untouched\n".to_vec())])
}

/// Writes `relative` and checks that it is refused with `reason`, leaving no file anywhere.
fn check_refused(layout: &Layout, relative: &str, reason: &str) {
    let output = OutputDir::create(&layout.out).expect("open the output directory");
    match output.write(relative, b"kind: Escaped\n", 0o644) {
        Ok(path) => panic!("{relative:?} was written to {}", path.display()),
        Err(error @ OutputError::UnsafePath { .. }) => {
            let message = error.to_string();
            assert!(
                message.starts_with(&format!("refusing to write {relative:?}: ")),
                "{message}"
            );
            assert!(
                message.contains(reason),
                "{message:?} does not contain {reason:?}"
            );
        }
        Err(error) => panic!("{relative:?}: expected UnsafePath, got {error}"),
    }
    assert_eq!(
        files_under(&layout.outside),
        sentinel_only(),
        "after {relative:?}"
    );
    assert!(files_under(&layout.out).is_empty(), "after {relative:?}");
}

#[test]
fn unsafe_paths_are_refused_and_nothing_is_written_outside() {
    let layout = layout();
    let absolute = layout.outside.join("absolute.yaml");
    let cases: &[(&str, &str)] = &[
        ("../x", "only plain relative paths are allowed"),
        ("../outside/x.yaml", "only plain relative paths are allowed"),
        ("base/../../x.yaml", "only plain relative paths are allowed"),
        ("./x.yaml", "only plain relative paths are allowed"),
        ("/abs", "only plain relative paths are allowed"),
        (
            absolute.to_str().expect("UTF-8"),
            "only plain relative paths are allowed",
        ),
        ("", "empty path"),
        ("escape/x.yaml", "symlinks are not followed"),
        ("escape/deeper/x.yaml", "symlinks are not followed"),
    ];
    for (relative, reason) in cases {
        check_refused(&layout, relative, reason);
    }
    assert!(!absolute.exists());
    assert!(
        !layout.outside.join("deeper").exists(),
        "no directory is created outside either"
    );
}

#[test]
fn a_planted_temporary_symlink_is_replaced_not_followed() {
    let layout = layout();
    let output = OutputDir::create(&layout.out).expect("open");
    fs::create_dir_all(layout.out.join("base")).expect("mkdir");
    let victim = layout.outside.join("victim");
    fs::write(&victim, b"untouched\n").expect("write victim");
    symlink(&victim, layout.out.join("base/.x.yaml.windlass-tmp")).expect("symlink");
    let written = output
        .write("base/x.yaml", b"mine\n", 0o644)
        .expect("write");
    assert_eq!(fs::read(&victim).expect("read victim"), b"untouched\n");
    assert!(
        !fs::symlink_metadata(&written)
            .expect("stat")
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read(&written).expect("read"), b"mine\n");
}

#[test]
fn a_symlink_planted_deeper_is_refused_too() {
    let layout = layout();
    fs::create_dir_all(layout.out.join("base/manifests")).expect("mkdir");
    symlink("/", layout.out.join("base/manifests/root")).expect("symlink");
    check_refused(
        &layout,
        "base/manifests/root/tmp/x.yaml",
        "symlinks are not followed",
    );
    let relative_link = layout.out.join("base/up");
    symlink("../../outside", &relative_link).expect("symlink");
    check_refused(&layout, "base/up/x.yaml", "symlinks are not followed");
}

#[test]
fn writes_stay_inside_and_replace_whole_files() {
    let layout = layout();
    let output = OutputDir::create(&layout.out).expect("open");
    assert_eq!(
        output.root(),
        fs::canonicalize(&layout.out).expect("canonical")
    );
    let written = output
        .write("base/manifests/a.yaml", b"first\n", 0o644)
        .expect("write");
    assert_eq!(written, output.root().join("base/manifests/a.yaml"));
    output
        .write("base/manifests/a.yaml", b"second\n", 0o644)
        .expect("overwrite");
    let mode = fs::metadata(&written).expect("stat").permissions().mode();
    assert_eq!(mode & !0o644 & 0o777, 0, "mode {mode:o} is at most 0644");

    // Even a symlink that stays inside the output directory is not written through.
    fs::create_dir_all(layout.out.join("real")).expect("mkdir");
    symlink("real", layout.out.join("inside")).expect("symlink");
    let refused = output
        .write("inside/b.yaml", b"through a link\n", 0o644)
        .expect_err("symlinked directories in the output are refused");
    assert!(
        refused.to_string().contains("symlinks are not followed"),
        "{refused}"
    );

    assert_eq!(
        files_under(&layout.out),
        BTreeMap::from([("base/manifests/a.yaml".to_string(), b"second\n".to_vec()),]),
        "no temporary file is left behind"
    );
    assert_eq!(files_under(&layout.outside), sentinel_only());
}

#[test]
fn remove_tree_removes_symlinks_without_following_them() {
    let layout = layout();
    let output = OutputDir::create(&layout.out).expect("open");
    output.remove_tree("escape").expect("remove the symlink");
    assert!(
        fs::symlink_metadata(layout.out.join("escape")).is_err(),
        "the link is gone"
    );
    assert_eq!(
        files_under(&layout.outside),
        sentinel_only(),
        "its target is not"
    );

    output.write("base/a/b.yaml", b"x\n", 0o644).expect("write");
    output.remove_tree("base").expect("remove a tree");
    assert!(!layout.out.join("base").exists());
    output
        .remove_tree("base")
        .expect("removing what is not there is fine");

    let error = output.remove_tree("../outside").expect_err("refused");
    assert!(matches!(error, OutputError::UnsafePath { .. }), "{error}");
    assert_eq!(files_under(&layout.outside), sentinel_only());
}
