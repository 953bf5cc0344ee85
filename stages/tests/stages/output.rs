//! `output::OutputDir`, attacked: relative paths that climb out, absolute paths, and symlinks
//! planted in the output directory that point outside it must all be refused, with nothing
//! written outside; symlinks that stay inside are fine; `remove_tree` removes a symlink rather than
//! what it points to. `replace_tree` writes whole trees that appear only on commit, replacing
//! (never following) whatever is at the target or staging name. Reads stop at their cap: a
//! recorded file at its recorded size, so a sparse file planted in its place costs nothing. Each
//! test lays out `out/` and a sibling `outside/` in a temporary directory.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::PathBuf;

use tempfile::TempDir;
use windlass_stages::output::{FileRead, MAX_UNSIZED_RECORDED_FILE_BYTES, OutputDir, OutputError};
use windlass_state::BlobStore;

/// A cap well above every file these tests write.
const CAP: u64 = 1024;

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
    assert_unsafe_path(
        output.write(relative, b"kind: Escaped\n", 0o644),
        relative,
        reason,
    );
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

// `replace_tree`: whole trees written into a staging directory and swapped in on commit.

/// Every regular file under the output directory, by relative path.
fn output_files(layout: &Layout) -> BTreeMap<String, Vec<u8>> {
    files_under(&layout.out)
}

/// Every entry (files, directories, symlinks) directly inside `directory`, by name.
fn entries(directory: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(directory)
        .expect("read the directory")
        .map(|entry| {
            entry
                .expect("an entry")
                .file_name()
                .into_string()
                .expect("UTF-8")
        })
        .collect();
    names.sort();
    names
}

fn tree(files: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
    files
        .iter()
        .map(|(path, body)| (path.to_string(), body.as_bytes().to_vec()))
        .collect()
}

fn commit_tree(output: &OutputDir, relative: &str, files: &[(&str, &str)]) -> PathBuf {
    let writer = output.replace_tree(relative).expect("start the tree");
    for (path, body) in files {
        writer
            .write(path, body.as_bytes(), 0o644)
            .unwrap_or_else(|error| panic!("write {path}: {error}"));
    }
    writer.commit().expect("commit")
}

#[test]
fn a_tree_is_written_whole_and_appears_only_on_commit() {
    let layout = layout();
    let output = OutputDir::create(&layout.out).expect("open");
    let writer = output
        .replace_tree("rendered/this-cluster")
        .expect("start the tree");
    writer.write("a.yaml", b"a\n", 0o644).expect("write a");
    writer
        .write("manifests/b.yaml", b"b\n", 0o644)
        .expect("write b");
    writer
        .write("manifests/deep/er/c.yaml", b"c\n", 0o644)
        .expect("write c");
    writer
        .write("manifests/d.yaml", b"d\n", 0o644)
        .expect("write d into a cached directory");
    assert!(
        !layout.out.join("rendered/this-cluster").exists(),
        "nothing is in place before the commit"
    );
    let committed = writer.commit().expect("commit");
    assert_eq!(committed, output.root().join("rendered/this-cluster"));
    assert_eq!(
        output_files(&layout),
        tree(&[
            ("rendered/this-cluster/a.yaml", "a\n"),
            ("rendered/this-cluster/manifests/b.yaml", "b\n"),
            ("rendered/this-cluster/manifests/d.yaml", "d\n"),
            ("rendered/this-cluster/manifests/deep/er/c.yaml", "c\n"),
        ])
    );
    assert_eq!(
        entries(&layout.out.join("rendered")),
        ["this-cluster"],
        "no staging directory is left behind"
    );
    assert_eq!(files_under(&layout.outside), sentinel_only());
}

#[test]
fn replacing_a_tree_removes_its_stale_files() {
    let layout = layout();
    let output = OutputDir::create(&layout.out).expect("open");
    commit_tree(
        &output,
        "base",
        &[
            ("old.yaml", "old\n"),
            ("gone/deep/old.yaml", "old\n"),
            ("kept.yaml", "first\n"),
        ],
    );
    commit_tree(
        &output,
        "base",
        &[("kept.yaml", "second\n"), ("new/x.yaml", "new\n")],
    );
    assert_eq!(
        output_files(&layout),
        tree(&[("base/kept.yaml", "second\n"), ("base/new/x.yaml", "new\n")])
    );
    assert_eq!(
        entries(&layout.out),
        ["base", "escape"],
        "the old tree is removed, not left under the staging name"
    );
    assert_eq!(files_under(&layout.outside), sentinel_only());
}

#[test]
fn a_symlink_or_file_at_the_target_is_replaced_not_followed() {
    let layout = layout();
    let output = OutputDir::create(&layout.out).expect("open");
    // `escape` is a symlink to `outside/`.
    let committed = commit_tree(&output, "escape", &[("x.yaml", "mine\n")]);
    let metadata = fs::symlink_metadata(&committed).expect("stat");
    assert!(metadata.is_dir(), "the link became a real directory");
    assert_eq!(fs::read(committed.join("x.yaml")).expect("read"), b"mine\n");
    assert!(layout.outside.is_dir(), "the link's target still exists");
    assert_eq!(files_under(&layout.outside), sentinel_only());

    // A symlink to a file outside, and a plain file, are replaced the same way.
    let victim = layout.outside.join("victim");
    fs::write(&victim, b"untouched\n").expect("write victim");
    symlink(&victim, layout.out.join("linked")).expect("symlink");
    fs::write(layout.out.join("plain"), b"a file\n").expect("write");
    commit_tree(&output, "linked", &[("y.yaml", "y\n")]);
    commit_tree(&output, "plain", &[("z.yaml", "z\n")]);
    assert_eq!(fs::read(&victim).expect("read victim"), b"untouched\n");
    assert_eq!(
        output_files(&layout),
        tree(&[
            ("escape/x.yaml", "mine\n"),
            ("linked/y.yaml", "y\n"),
            ("plain/z.yaml", "z\n"),
        ])
    );
    assert_eq!(entries(&layout.out), ["escape", "linked", "plain"]);
}

#[test]
fn a_symlink_or_stale_directory_at_the_staging_name_is_removed_not_followed() {
    let layout = layout();
    let output = OutputDir::create(&layout.out).expect("open");
    symlink(&layout.outside, layout.out.join(".base.windlass-staging")).expect("symlink");
    // A stale staging directory holding a link outside, as a crash might leave (with a planted
    // link added).
    let stale = layout.out.join("rendered/.this-cluster.windlass-staging");
    fs::create_dir_all(stale.join("deep")).expect("mkdir");
    fs::write(stale.join("deep/half.yaml"), b"half\n").expect("write");
    symlink(&layout.outside, stale.join("deep/link")).expect("symlink");

    commit_tree(&output, "base", &[("a.yaml", "a\n")]);
    commit_tree(&output, "rendered/this-cluster", &[("b.yaml", "b\n")]);
    assert_eq!(
        output_files(&layout),
        tree(&[
            ("base/a.yaml", "a\n"),
            ("rendered/this-cluster/b.yaml", "b\n"),
        ])
    );
    assert_eq!(entries(&layout.out), ["base", "escape", "rendered"]);
    assert_eq!(entries(&layout.out.join("rendered")), ["this-cluster"]);
    assert_eq!(
        files_under(&layout.outside),
        sentinel_only(),
        "nothing outside was written or removed"
    );
}

/// Starts `relative` as a tree and checks that it is refused with `reason`.
fn check_tree_refused(output: &OutputDir, relative: &str, reason: &str) {
    assert_unsafe_path(output.replace_tree(relative), relative, reason);
}

/// Checks that `result` is the `UnsafePath` refusal of `relative`, giving `reason`.
fn assert_unsafe_path<T: std::fmt::Debug>(
    result: Result<T, OutputError>,
    relative: &str,
    reason: &str,
) {
    match result {
        Ok(done) => panic!("{relative:?} was accepted: {done:?}"),
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
}

#[test]
fn trees_under_symlinks_or_outside_are_refused() {
    let layout = layout();
    let output = OutputDir::create(&layout.out).expect("open");
    check_tree_refused(&output, "escape/tree", "symlinks are not followed");
    check_tree_refused(&output, "escape/deeper/tree", "symlinks are not followed");
    fs::create_dir_all(layout.out.join("real")).expect("mkdir");
    symlink("real", layout.out.join("inside")).expect("symlink");
    check_tree_refused(&output, "inside/tree", "symlinks are not followed");
    fs::write(layout.out.join("file"), b"a file\n").expect("write");
    check_tree_refused(&output, "file/tree", "is not a directory");
    check_tree_refused(
        &output,
        "../outside",
        "only plain relative paths are allowed",
    );
    check_tree_refused(&output, "/abs", "only plain relative paths are allowed");
    check_tree_refused(&output, "", "empty path");
    assert_eq!(files_under(&layout.outside), sentinel_only());
    assert!(!layout.outside.join("deeper").exists());
    assert!(entries(&layout.out.join("real")).is_empty());
}

#[test]
fn bad_paths_inside_a_tree_are_refused() {
    let layout = layout();
    let output = OutputDir::create(&layout.out).expect("open");
    let writer = output.replace_tree("base").expect("start the tree");
    let cases: &[(&str, &str)] = &[
        ("../x", "only plain relative paths are allowed"),
        ("../../outside/x", "only plain relative paths are allowed"),
        ("a/../../x", "only plain relative paths are allowed"),
        ("./x", "only plain relative paths are allowed"),
        ("/abs", "only plain relative paths are allowed"),
        ("", "empty path"),
    ];
    for (path, reason) in cases {
        let error = writer
            .write(path, b"kind: Escaped\n", 0o644)
            .expect_err("refused");
        assert!(matches!(error, OutputError::UnsafePath { .. }), "{error}");
        let message = error.to_string();
        assert!(
            message.starts_with(&format!("refusing to write \"base/{path}\": ")),
            "{message}"
        );
        assert!(message.contains(reason), "{message:?} lacks {reason:?}");
    }
    writer.commit().expect("commit the empty tree");
    assert!(output_files(&layout).is_empty());
    assert_eq!(files_under(&layout.outside), sentinel_only());
}

#[test]
fn writing_a_path_twice_in_one_tree_is_an_error() {
    let layout = layout();
    let output = OutputDir::create(&layout.out).expect("open");
    let writer = output
        .replace_tree("rendered/this-cluster")
        .expect("start the tree");
    writer
        .write("dir/x.yaml", b"first\n", 0o644)
        .expect("write");
    let error = writer
        .write("dir/x.yaml", b"second\n", 0o644)
        .expect_err("a second write of one path");
    assert!(
        matches!(error, OutputError::AlreadyWritten { .. }),
        "{error}"
    );
    assert_eq!(
        error.to_string(),
        "cannot write rendered/this-cluster/dir/x.yaml: already written in this tree"
    );
    let error = writer
        .write("dir", b"a file over a directory\n", 0o644)
        .expect_err("a file where a directory is");
    assert!(
        error.to_string().contains("rendered/this-cluster/dir"),
        "{error}"
    );
    let error = writer
        .write("dir/x.yaml/y.yaml", b"a directory over a file\n", 0o644)
        .expect_err("a directory where a file is");
    assert!(
        error
            .to_string()
            .contains("rendered/this-cluster/dir/x.yaml"),
        "{error}"
    );
    writer.commit().expect("commit");
    assert_eq!(
        output_files(&layout),
        tree(&[("rendered/this-cluster/dir/x.yaml", "first\n")]),
        "the first write stands"
    );
}

#[test]
fn an_uncommitted_tree_leaves_the_old_one_intact() {
    let layout = layout();
    let output = OutputDir::create(&layout.out).expect("open");
    commit_tree(
        &output,
        "base",
        &[("old.yaml", "old\n"), ("sub/old.yaml", "old\n")],
    );
    let before = output_files(&layout);
    {
        let writer = output.replace_tree("base").expect("start the tree");
        writer.write("new.yaml", b"new\n", 0o644).expect("write");
        writer
            .write("sub/new.yaml", b"new\n", 0o644)
            .expect("write");
        // Dropped: as if the stage failed half way.
    }
    let old_tree: BTreeMap<_, _> = output_files(&layout)
        .into_iter()
        .filter(|(path, _)| path.starts_with("base/"))
        .collect();
    assert_eq!(old_tree, before, "the old tree is untouched");
    assert_eq!(
        entries(&layout.out),
        ["base", "escape"],
        "a dropped writer removes its staging directory"
    );
    commit_tree(&output, "base", &[("next.yaml", "next\n")]);
    assert_eq!(output_files(&layout), tree(&[("base/next.yaml", "next\n")]));
    assert_eq!(entries(&layout.out), ["base", "escape"]);
}

#[test]
fn tree_files_keep_their_modes() {
    let layout = layout();
    let output = OutputDir::create(&layout.out).expect("open");
    let writer = output.replace_tree("rendered/this-cluster").expect("start");
    writer
        .write("secret.yaml", b"kind: Secret\n", 0o600)
        .expect("write the secret");
    writer
        .write("nested/config.yaml", b"kind: ConfigMap\n", 0o644)
        .expect("write the config map");
    let committed = writer.commit().expect("commit");
    let mode = |path: &str| {
        fs::metadata(committed.join(path))
            .expect("stat")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("secret.yaml"), 0o600);
    let config = mode("nested/config.yaml");
    assert_eq!(config & !0o644, 0, "mode {config:o} is at most 0644");
    assert_ne!(
        config & 0o400,
        0,
        "mode {config:o} is readable by its owner"
    );
}

#[test]
fn remove_tree_refuses_symlinked_parents() {
    let layout = layout();
    let output = OutputDir::create(&layout.out).expect("open");
    let error = output
        .remove_tree("escape/sentinel")
        .expect_err("a path through a symlink");
    assert!(
        error.to_string().contains("symlinks are not followed"),
        "{error}"
    );
    assert_eq!(files_under(&layout.outside), sentinel_only());
    output
        .remove_tree("missing/parent/tree")
        .expect("a missing parent means nothing to remove");
}

#[test]
fn many_directories_in_one_tree_are_written_and_revisited() {
    let layout = layout();
    let output = OutputDir::create(&layout.out).expect("open");
    let writer = output.replace_tree("base").expect("start");
    let mut expected = BTreeMap::new();
    // More directories than the writer keeps open, then each one again.
    for round in ["a", "b"] {
        for index in 0..300 {
            let path = format!("group-{}/dir-{index}/{round}.yaml", index % 7);
            writer
                .write(&path, path.as_bytes(), 0o644)
                .unwrap_or_else(|error| panic!("{path}: {error}"));
            expected.insert(format!("base/{path}"), path.into_bytes());
        }
    }
    writer.commit().expect("commit");
    assert_eq!(output_files(&layout), expected);
}

#[test]
fn several_threads_can_write_one_tree() {
    let layout = layout();
    let output = OutputDir::create(&layout.out).expect("open");
    let writer = output.replace_tree("rendered/this-cluster").expect("start");
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let writer = &writer;
            scope.spawn(move || {
                for index in 0..100 {
                    // Shared directories are created by whichever thread gets there first.
                    let path = format!("dir-{}/file-{thread}-{index}.yaml", index % 5);
                    writer
                        .write(&path, path.as_bytes(), 0o644)
                        .unwrap_or_else(|error| panic!("{path}: {error}"));
                }
            });
        }
    });
    writer.commit().expect("commit");
    let files = output_files(&layout);
    assert_eq!(files.len(), 400);
    for (path, bytes) in &files {
        let in_tree = path
            .strip_prefix("rendered/this-cluster/")
            .unwrap_or_else(|| panic!("{path} is outside the tree"));
        assert_eq!(bytes.as_slice(), in_tree.as_bytes(), "{path}");
    }
}

/// The staging directories `directory` holds, by name.
fn staging_entries(directory: &std::path::Path) -> Vec<String> {
    entries(directory)
        .into_iter()
        .filter(|name| name.contains(".windlass-staging"))
        .collect()
}

#[test]
fn staging_directories_are_unique_per_process_and_writer() {
    let layout = layout();
    let output = OutputDir::create(&layout.out).expect("open");
    let first = output.replace_tree("base").expect("start the first tree");
    first.write("first.yaml", b"first\n", 0o644).expect("write");
    // A second writer of the same target (before, it removed the first one's staging directory
    // under its feet, as a second install into the same directory did).
    let second = output.replace_tree("base").expect("start the second tree");
    second
        .write("second.yaml", b"second\n", 0o644)
        .expect("write");
    let staging = staging_entries(&layout.out);
    assert_eq!(staging.len(), 2, "{staging:?}");
    let own = format!(".base.windlass-staging-{}-", std::process::id());
    assert!(
        staging.iter().all(|name| name.starts_with(&own)),
        "named after the process: {staging:?}"
    );
    first.commit().expect("commit the first tree");
    assert_eq!(
        files_under(&layout.out.join("base")),
        tree(&[("first.yaml", "first\n")])
    );
    second.commit().expect("commit the second tree");
    assert_eq!(
        output_files(&layout),
        tree(&[("base/second.yaml", "second\n")])
    );
    assert_eq!(entries(&layout.out), ["base", "escape"], "no staging left");
}

#[test]
fn leftovers_of_killed_processes_are_removed_and_a_live_writer_keeps_its_own() {
    let layout = layout();
    let output = OutputDir::create(&layout.out).expect("open");
    // What a killed process (another pid) left: a half-written staging directory, a temporary
    // file, and an older windlass's fixed staging name.
    let stale = layout.out.join(".base.windlass-staging-4194999-7");
    fs::create_dir_all(stale.join("deep")).expect("mkdir");
    fs::write(stale.join("deep/half.yaml"), b"half\n").expect("write");
    fs::create_dir_all(layout.out.join(".base.windlass-staging")).expect("mkdir");
    fs::create_dir_all(layout.out.join("overlays")).expect("mkdir");
    fs::write(
        layout.out.join("overlays/.k.yaml.windlass-tmp-4194999-2"),
        b"half\n",
    )
    .expect("write");
    // Another target whose name merely starts alike is not a leftover.
    fs::create_dir_all(layout.out.join(".base.windlass-staging-notes")).expect("mkdir");

    let live = output.replace_tree("base").expect("start a tree");
    live.write("a.yaml", b"a\n", 0o644).expect("write");
    assert_eq!(
        staging_entries(&layout.out).len(),
        2,
        "the stale ones are gone: {:?}",
        entries(&layout.out)
    );
    // Starting another tree of the same target in this process leaves the live one alone.
    let other = output.replace_tree("base").expect("start another tree");
    drop(other);
    output
        .write("overlays/k.yaml", b"k\n", 0o644)
        .expect("write a file");
    assert_eq!(entries(&layout.out.join("overlays")), ["k.yaml"]);
    live.commit().expect("commit the live tree");
    assert_eq!(
        entries(&layout.out),
        [".base.windlass-staging-notes", "base", "escape", "overlays"]
    );
    assert_eq!(
        output_files(&layout),
        tree(&[("base/a.yaml", "a\n"), ("overlays/k.yaml", "k\n")])
    );
}

#[test]
fn read_file_reads_regular_files_only_and_never_follows_a_symlink() {
    let layout = layout();
    let output = OutputDir::create(&layout.out).expect("open");
    output.write("base/a.yaml", b"a\n", 0o644).expect("write");
    symlink(
        layout.outside.join("sentinel"),
        layout.out.join("base/link.yaml"),
    )
    .expect("symlink");
    assert_eq!(
        output.read_file("base/a.yaml", CAP).expect("read"),
        FileRead::Bytes(b"a\n".to_vec())
    );
    for missing in [
        "base/none.yaml",
        "none/a.yaml",
        "base/link.yaml",
        "escape/sentinel",
        "base",
    ] {
        assert_eq!(
            output.read_file(missing, CAP).expect("read"),
            FileRead::Missing,
            "{missing}"
        );
    }
    assert!(matches!(
        output.read_file("../outside/sentinel", CAP),
        Err(OutputError::UnsafePath { .. })
    ));
}

/// A file holding more than the cap is `Larger`, and is not read past it: a sparse file claiming
/// 64 MiB costs nothing (its size alone refuses it).
#[test]
fn read_file_reads_no_further_than_its_cap() {
    let layout = layout();
    let output = OutputDir::create(&layout.out).expect("open");
    output
        .write("base/a.yaml", b"0123456789", 0o644)
        .expect("write");
    assert_eq!(
        output.read_file("base/a.yaml", 10).expect("read"),
        FileRead::Bytes(b"0123456789".to_vec())
    );
    assert_eq!(
        output.read_file("base/a.yaml", 9).expect("read"),
        FileRead::Larger
    );
    fs::File::create(layout.out.join("base/sparse.yaml"))
        .and_then(|file| file.set_len(64 * 1024 * 1024))
        .expect("sparse file");
    assert_eq!(
        output.read_file("base/sparse.yaml", 4096).expect("read"),
        FileRead::Larger
    );
    assert_eq!(
        output
            .reader()
            .read_file("base/sparse.yaml", 4096)
            .expect("read"),
        FileRead::Larger
    );
}

/// A recorded file is read up to its recorded size: the size of its blob for a file over 1 MiB
/// (smaller ones are read whole without asking), [`MAX_UNSIZED_RECORDED_FILE_BYTES`] for one
/// recorded by fingerprint. Anything larger — a sparse file planted in its place — is `Larger`,
/// that is changed, without being read.
#[test]
fn a_recorded_file_is_read_up_to_its_recorded_size() {
    let layout = layout();
    let output = OutputDir::create(&layout.out).expect("open");
    let blobs = BlobStore::in_memory();
    let large = vec![b'x'; 2 * 1024 * 1024];
    let large_blob = blobs.put(&large).expect("put").to_string();
    let small_blob = blobs.put(b"small\n").expect("put").to_string();
    blobs.sync().expect("sync");
    let sparse = |name: &str, size: u64| {
        fs::File::create(layout.out.join(name))
            .and_then(|file| file.set_len(size))
            .expect("sparse file");
    };
    let read = |name: &str, blob: Option<&str>| {
        let by_dir = output.read_recorded(name, blob, &blobs).expect("read");
        let by_reader = output
            .reader()
            .read_recorded(name, blob, &blobs)
            .expect("read");
        assert_eq!(by_dir, by_reader, "{name}");
        by_dir
    };

    output.write("large.yaml", &large, 0o644).expect("write");
    assert_eq!(
        read("large.yaml", Some(&large_blob)),
        FileRead::Bytes(large.clone())
    );
    output
        .write("longer.yaml", &[large.as_slice(), b"!"].concat(), 0o644)
        .expect("write");
    assert_eq!(read("longer.yaml", Some(&large_blob)), FileRead::Larger);
    sparse("planted.yaml", 64 * 1024 * 1024);
    assert_eq!(read("planted.yaml", Some(&large_blob)), FileRead::Larger);
    assert_eq!(read("planted.yaml", Some(&small_blob)), FileRead::Larger);
    sparse("secret.yaml", MAX_UNSIZED_RECORDED_FILE_BYTES + 1);
    assert_eq!(read("secret.yaml", None), FileRead::Larger);
    assert_eq!(read("missing.yaml", Some(&small_blob)), FileRead::Missing);
}

#[test]
fn a_reader_reads_many_files_as_read_file_does_keeping_their_directory_open() {
    let layout = layout();
    let output = OutputDir::create(&layout.out).expect("open");
    output.write("base/a.yaml", b"a\n", 0o644).expect("write");
    output.write("base/b.yaml", b"b\n", 0o644).expect("write");
    output
        .write("overlays/x/c.yaml", b"c\n", 0o644)
        .expect("write");
    output.write("top.yaml", b"t\n", 0o644).expect("write");
    symlink(
        layout.outside.join("sentinel"),
        layout.out.join("base/link.yaml"),
    )
    .expect("symlink");
    let paths = [
        "base/a.yaml",
        "base/b.yaml",
        "base/link.yaml",
        "base/none.yaml",
        "escape/sentinel",
        "escape/other",
        "overlays/x/c.yaml",
        "none/a.yaml",
        "base/a.yaml",
        "top.yaml",
        "base",
    ];
    let mut reader = output.reader();
    for path in paths {
        assert_eq!(
            reader.read_file(path, CAP).expect("read"),
            output.read_file(path, CAP).expect("read"),
            "{path}"
        );
    }
    assert_eq!(
        reader.read_file("base/b.yaml", CAP).expect("read"),
        FileRead::Bytes(b"b\n".to_vec())
    );
    assert!(matches!(
        reader.read_file("../outside/sentinel", CAP),
        Err(OutputError::UnsafePath { .. })
    ));
}

#[test]
fn long_file_names_are_shortened_deterministically_with_a_hash() {
    use windlass_stages::output::{MAX_FILE_NAME_BYTES, fit_file_name};
    assert_eq!(
        fit_file_name("short-configmap.yaml"),
        "short-configmap.yaml"
    );
    let exact = format!("{}.yaml", "a".repeat(MAX_FILE_NAME_BYTES - 5));
    assert_eq!(fit_file_name(&exact), exact.as_str());
    let long = format!("{}-configmap.yaml", "b".repeat(253));
    let fitted = fit_file_name(&long);
    assert_eq!(fitted.len(), MAX_FILE_NAME_BYTES);
    assert!(
        fitted.starts_with("bbbb") && fitted.ends_with(".yaml"),
        "{fitted}"
    );
    assert_eq!(fit_file_name(&long), fitted, "deterministic");
    let other = format!("{}-configmap-2.yaml", "b".repeat(253));
    assert_ne!(
        fit_file_name(&other),
        fitted,
        "another long name, another hash"
    );
    // Multi-byte characters are never cut in half.
    let wide = "é".repeat(150);
    let fitted_wide = fit_file_name(&wide);
    assert!(fitted_wide.len() <= MAX_FILE_NAME_BYTES);
    assert!(fitted_wide.starts_with("éé"));
    let layout = layout();
    let output = OutputDir::create(&layout.out).expect("open");
    output
        .write(&format!("rendered/{fitted}"), b"x\n", 0o644)
        .expect("a shortened name can be written");
}

/// An output directory kept in memory (a replay's) writes, replaces, reads and removes trees under
/// the same path checks, and never touches the disk under its root.
#[test]
fn an_output_directory_in_memory_touches_no_file() {
    let layout = layout();
    let before = files_under(&layout.out);
    let memory = std::sync::Arc::new(windlass_engine::MemoryOutput::default());
    let output = OutputDir::in_memory(&layout.out, memory.clone()).expect("open");
    assert!(output.is_in_memory());
    let written = output
        .write("overlays/midstream/kustomization.yaml", b"k\n", 0o644)
        .expect("write");
    assert_eq!(
        written,
        output.root().join("overlays/midstream/kustomization.yaml")
    );
    let tree = output.replace_tree("rendered").expect("start a tree");
    tree.write("this-cluster/a.yaml", b"a\n", 0o644)
        .expect("write in the tree");
    let twice = tree
        .write("this-cluster/a.yaml", b"again\n", 0o644)
        .expect_err("one write per path");
    assert!(
        matches!(twice, OutputError::AlreadyWritten { .. }),
        "{twice}"
    );
    assert!(
        !output.exists("rendered/this-cluster/a.yaml").unwrap(),
        "invisible before the commit"
    );
    assert_eq!(
        tree.commit().expect("commit"),
        output.root().join("rendered")
    );
    assert_eq!(
        output
            .read_file("rendered/this-cluster/a.yaml", CAP)
            .expect("read"),
        FileRead::Bytes(b"a\n".to_vec())
    );
    assert_eq!(
        output
            .read_file("rendered/this-cluster/a.yaml", 1)
            .expect("read"),
        FileRead::Larger
    );
    assert!(output.exists("overlays/midstream").unwrap());
    let refused = output
        .write("../outside/x.yaml", b"x\n", 0o644)
        .expect_err("refused");
    assert!(
        matches!(refused, OutputError::UnsafePath { .. }),
        "{refused}"
    );
    output.remove_tree("overlays").expect("remove");
    assert_eq!(memory.paths(), ["rendered/this-cluster/a.yaml"]);
    assert_eq!(
        files_under(&layout.out),
        before,
        "nothing on the disk changed"
    );
    assert_eq!(files_under(&layout.outside), sentinel_only());
}
