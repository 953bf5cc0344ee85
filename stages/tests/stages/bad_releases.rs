//! Every kind of bad release fed to `release::scan`, each expected to fail with a message naming the
//! file, and the document and line where there is one. Releases that can be committed live under
//! `fixtures/bad/<case>/`; those that cannot (symlinks, non-UTF-8 bytes, a 64 GiB sparse file) are
//! built in a temporary directory by the test. One `check` helper runs every case and also holds it
//! to a CPU-time budget, so an alias bomb or a huge file that is read whole fails the test instead
//! of hanging it.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, Instant};

use windlass_stages::events::FileClass;
use windlass_stages::release::{Limits, scan};

use crate::support::{assert_no_license_id_in, fixture, scan_ok, temp_dir};

/// CPU time one failing scan may use. The alias bomb would take hours (and all memory) if
/// expanded; parsed under its budget it fails in a fraction of this, even in a debug build.
const CPU_BUDGET: Duration = Duration::from_secs(1);
/// Wall time one failing scan may take: far beyond the CPU budget, only to catch a hang.
const WALL_BUDGET: Duration = Duration::from_secs(20);

fn thread_cpu_time() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// Scans `release` under `limits` and checks that it fails, quickly, with a message containing
/// every string of `expected` and never the license ID.
fn check(release: &Path, limits: &Limits, expected: &[&str]) {
    let cpu_before = thread_cpu_time();
    let wall_before = Instant::now();
    let result = scan(release, limits, |_, _| {});
    let cpu = thread_cpu_time() - cpu_before;
    let wall = wall_before.elapsed();
    let error = match result {
        Ok(scanned) => panic!(
            "{}: scan succeeded with {} files, expected an error",
            release.display(),
            scanned.files.len()
        ),
        Err(error) => error.to_string(),
    };
    for wanted in expected {
        assert!(
            error.contains(wanted),
            "{}: error {error:?} does not contain {wanted:?}",
            release.display()
        );
    }
    assert_no_license_id_in(&error);
    assert!(
        cpu < CPU_BUDGET && wall < WALL_BUDGET,
        "{}: took {cpu:?} of CPU and {wall:?} in all to fail",
        release.display()
    );
}

/// A committed bad release, the limits to scan it under, and what its error must say.
struct Case {
    fixture: &'static str,
    limits: Option<Limits>,
    expected: &'static [&'static str],
}

/// A case scanned under the default limits.
const fn case(fixture: &'static str, expected: &'static [&'static str]) -> Case {
    Case {
        fixture,
        limits: None,
        expected,
    }
}

/// A case scanned under small limits.
const fn limited(fixture: &'static str, limits: Limits, expected: &'static [&'static str]) -> Case {
    Case {
        fixture,
        limits: Some(limits),
        expected,
    }
}

const CASES: &[Case] = &[
    case(
        "bad/invalid-yaml",
        &["manifests/multi.yaml (document 3, line 16): invalid YAML"],
    ),
    case(
        "bad/no-kind",
        &["objects.yaml (document 2, line 6): document has no `kind`"],
    ),
    case(
        "bad/no-api-version",
        &["objects.yaml (document 2, line 8): document has no `apiVersion`"],
    ),
    case(
        "bad/no-name",
        &["objects.yaml (document 2, line 5): document has no `metadata.name`"],
    ),
    case(
        "bad/list-document",
        &["objects.yaml (document 2, line 6): document is not a mapping"],
    ),
    case(
        "bad/scalar-document",
        &["objects.yaml (document 2, line 5): document is not a mapping"],
    ),
    case(
        "bad/duplicate-objects",
        &[
            "sub/b.yaml (document 2, line 8) and a.yaml (document 1, line 1) \
             both define Deployment.apps example/web",
        ],
    ),
    case(
        "bad/alias-bomb",
        &[
            "bomb.yaml (document 1, line ",
            "invalid YAML at column ",
            "budget breached",
        ],
    ),
    case(
        "bad/two-licenses",
        &["b-license.yaml and a-license.yaml both hold a License: a release may hold one"],
    ),
    limited(
        "bad/limits",
        Limits {
            max_file_bytes: 100,
            max_total_bytes: 1000,
            max_files: 10,
        },
        &["b.yaml: file is 108 bytes, over the limit of 100 bytes"],
    ),
    limited(
        "bad/limits",
        Limits {
            max_file_bytes: 150,
            max_total_bytes: 150,
            max_files: 10,
        },
        &["release is over the limit of 150 bytes in total (reached at b.yaml)"],
    ),
    limited(
        "bad/limits",
        Limits {
            max_file_bytes: 150,
            max_total_bytes: 1000,
            max_files: 2,
        },
        &["release has more than 2 files"],
    ),
];

#[test]
fn committed_bad_releases_fail_with_located_errors() {
    for case in CASES {
        check(
            &fixture(case.fixture),
            &case.limits.unwrap_or_default(),
            case.expected,
        );
    }
}

#[test]
fn the_limits_fixture_is_fine_within_its_limits() {
    // So the three limit cases above fail because of the limits, not because of the fixture.
    let release = scan(
        &fixture("bad/limits"),
        &Limits {
            max_file_bytes: 108,
            max_total_bytes: 210,
            max_files: 3,
        },
        |_, _| {},
    )
    .expect("exactly at every limit is allowed");
    assert_eq!(release.files.len(), 3);
}

#[test]
fn non_utf8_yaml_is_refused() {
    let dir = temp_dir();
    fs::write(
        dir.path().join("latin1.yaml"),
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: caf\xe9\n",
    )
    .expect("write");
    check(
        dir.path(),
        &Limits::default(),
        &["latin1.yaml (document 1, line 4): not valid UTF-8"],
    );
}

#[test]
fn a_huge_file_is_refused_without_reading_it_all() {
    let dir = temp_dir();
    let huge = fs::File::create(dir.path().join("huge.yaml")).expect("create");
    huge.set_len(64 << 30).expect("make a sparse 64 GiB file");
    check(
        dir.path(),
        &Limits::default(),
        &["huge.yaml: file is 68719476736 bytes, over the limit of 16777216 bytes"],
    );
}

#[test]
fn symlinks_leading_outside_the_release_are_refused() {
    let dir = temp_dir();
    let outside = dir.path().join("outside");
    fs::create_dir_all(&outside).expect("mkdir");
    fs::write(outside.join("secret.yaml"), "apiVersion: v1\nkind: X\n").expect("write");

    let to_file = dir.path().join("to-file");
    fs::create_dir_all(to_file.join("manifests")).expect("mkdir");
    symlink(
        "../../outside/secret.yaml",
        to_file.join("manifests/link.yaml"),
    )
    .expect("symlink");
    check(
        &to_file,
        &Limits::default(),
        &["manifests/link.yaml: symlink leads outside the release directory"],
    );

    let to_directory = dir.path().join("to-directory");
    fs::create_dir_all(&to_directory).expect("mkdir");
    symlink(&outside, to_directory.join("elsewhere")).expect("symlink");
    check(
        &to_directory,
        &Limits::default(),
        &["elsewhere: symlink leads outside the release directory"],
    );

    let to_root = dir.path().join("to-root");
    fs::create_dir_all(&to_root).expect("mkdir");
    symlink("/etc/passwd", to_root.join("passwd")).expect("symlink");
    check(
        &to_root,
        &Limits::default(),
        &["passwd: symlink leads outside the release directory (to /etc/passwd)"],
    );

    let dangling = dir.path().join("dangling");
    fs::create_dir_all(&dangling).expect("mkdir");
    symlink("nowhere.yaml", dangling.join("broken.yaml")).expect("symlink");
    check(&dangling, &Limits::default(), &["broken.yaml: cannot read"]);
}

#[test]
fn a_symlinked_manifest_repeats_its_objects() {
    // Reading a symlink as its target means its objects appear twice, which kustomize would
    // refuse later; scan refuses now and names both paths.
    let dir = temp_dir();
    fs::write(
        dir.path().join("deploy.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
    )
    .expect("write");
    symlink("deploy.yaml", dir.path().join("link.yaml")).expect("symlink");
    check(
        dir.path(),
        &Limits::default(),
        &[
            "link.yaml (document 1, line 1) and deploy.yaml (document 1, line 1) both define ConfigMap x",
        ],
    );
}

#[test]
fn symlinks_inside_the_release_are_read_as_their_target() {
    let dir = temp_dir();
    let root = dir.path();
    fs::create_dir_all(root.join("charts")).expect("mkdir");
    fs::create_dir_all(root.join("docs")).expect("mkdir");
    fs::write(root.join("charts/real.tgz"), b"\x1f\x8bchart").expect("write");
    fs::write(root.join("docs/readme.txt"), "read me\n").expect("write");
    symlink("charts/real.tgz", root.join("chart.tgz")).expect("symlink");
    symlink(root.join("docs/readme.txt"), root.join("notes.txt")).expect("absolute symlink");
    symlink("docs", root.join("docs-link")).expect("symlink to a directory");

    let release = scan_ok(root);
    let listed: Vec<(&str, FileClass, &[u8])> = release
        .files
        .iter()
        .map(|file| (file.path.as_str(), file.class(), file.bytes.as_slice()))
        .collect();
    assert_eq!(
        listed,
        [
            ("chart.tgz", FileClass::ChartArchive, &b"\x1f\x8bchart"[..]),
            (
                "charts/real.tgz",
                FileClass::ChartArchive,
                &b"\x1f\x8bchart"[..]
            ),
            ("docs/readme.txt", FileClass::Other, &b"read me\n"[..]),
            ("notes.txt", FileClass::Other, &b"read me\n"[..]),
        ],
        "a symlink to a directory inside is skipped, not walked twice"
    );
}

/// A release big enough to be read on several threads: 200 files of 100 bytes (`f-000.yaml` ...).
fn many_files() -> tempfile::TempDir {
    let dir = temp_dir();
    for index in 0..200 {
        let text = format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: f-{index:03}\n");
        fs::write(
            dir.path().join(format!("f-{index:03}.yaml")),
            format!("{text:<99}\n"),
        )
        .expect("write");
    }
    dir
}

#[test]
fn a_release_read_on_several_threads_reports_the_first_file_in_path_order() {
    let dir = many_files();
    let limits = |max_file_bytes, max_total_bytes| Limits {
        max_file_bytes,
        max_total_bytes,
        max_files: 1000,
    };
    // The total is passed at the 151st file whichever thread gets there first.
    check(
        dir.path(),
        &limits(100, 15_050),
        &["release is over the limit of 15050 bytes in total (reached at f-150.yaml)"],
    );
    // Two files over the per-file limit, in different threads' runs: the first one is named.
    for index in [40, 170] {
        let path = dir.path().join(format!("f-{index:03}.yaml"));
        fs::write(&path, format!("{:<149}\n", "# too long")).expect("write");
    }
    check(
        dir.path(),
        &limits(100, 1_000_000),
        &["f-040.yaml: file is 150 bytes, over the limit of 100 bytes"],
    );
}
