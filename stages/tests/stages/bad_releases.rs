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

use crate::support::{
    LICENSE_ID, assert_no_license_id_in, chart_archive, fixture, scan_ok, temp_dir,
};

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
        &[
            "b-license.yaml and a-license.yaml hold different licenses: a release may hold one license",
        ],
    ),
    limited(
        "bad/limits",
        Limits {
            max_file_bytes: 100,
            max_total_bytes: 1000,
            max_files: 10,
            ..Limits::DEFAULT
        },
        &["b.yaml: file is 108 bytes, over the limit of 100 bytes"],
    ),
    limited(
        "bad/limits",
        Limits {
            max_file_bytes: 150,
            max_total_bytes: 150,
            max_files: 10,
            ..Limits::DEFAULT
        },
        &["release is over the limit of 150 bytes in total (reached at b.yaml)"],
    ),
    limited(
        "bad/limits",
        Limits {
            max_file_bytes: 150,
            max_total_bytes: 1000,
            max_files: 2,
            ..Limits::DEFAULT
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
            ..Limits::DEFAULT
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
    let chart = chart_archive("real", "0.1.0");
    fs::write(root.join("charts/real.tgz"), &chart).expect("write");
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
            ("chart.tgz", FileClass::ChartArchive, chart.as_slice()),
            ("charts/real.tgz", FileClass::ChartArchive, chart.as_slice()),
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
        ..Limits::DEFAULT
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

/// A License and, after `---`, a Deployment: both would be left out with the license file.
const LICENSE_AND_DEPLOYMENT: &str = "apiVersion: kots.io/v1beta1
kind: License
metadata:
  name: customer
spec:
  licenseID: 2Xq9LicenseIdMustNeverLeak7Kp
  appSlug: example-app
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
";

#[test]
fn a_license_file_holding_other_documents_is_refused_naming_them() {
    let dir = temp_dir();
    fs::create_dir_all(dir.path().join("userdata")).expect("mkdir");
    fs::write(
        dir.path().join("userdata/license.yaml"),
        LICENSE_AND_DEPLOYMENT,
    )
    .expect("write");
    check(
        dir.path(),
        &Limits::default(),
        &[
            "userdata/license.yaml: a license file may hold only its License, \
             but it also holds Deployment/web (document 2, line 9)",
        ],
    );
    // A document named with the license ID is named without it (`check` also asserts that).
    let license = fs::read_to_string(fixture("good/release/userdata/license.yaml")).expect("read");
    fs::write(
        dir.path().join("userdata/license.yaml"),
        format!(
            "{license}---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: copy-{LICENSE_ID}\n"
        ),
    )
    .expect("write");
    check(
        dir.path(),
        &Limits::default(),
        &["but it also holds Secret/(withheld: holds the license ID) (document 2"],
    );
}

#[test]
fn a_file_holding_a_license_id_is_refused_without_quoting_it() {
    let license = fs::read(fixture("good/release/userdata/license.yaml")).expect("read");
    let with_license = |name: &str, contents: &[u8]| {
        let dir = temp_dir();
        fs::create_dir_all(dir.path().join("userdata")).expect("mkdir");
        fs::write(dir.path().join("userdata/license.yaml"), &license).expect("write");
        let path = dir.path().join(name);
        fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        fs::write(path, contents).expect("write");
        dir
    };
    let quoting = format!("Your license is {LICENSE_ID}, keep it safe.\n");
    let readme = with_license("README.txt", quoting.as_bytes());
    check(
        readme.path(),
        &Limits::default(),
        &["README.txt: holds the license ID of the License in userdata/license.yaml"],
    );
    let config_map = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: leak\ndata:\n  id: {LICENSE_ID}\n"
    );
    let yaml = with_license("manifests/leak.yaml", config_map.as_bytes());
    check(
        yaml.path(),
        &Limits::default(),
        &["manifests/leak.yaml: holds the license ID of the License in userdata/license.yaml"],
    );
    let archive = crate::support::tar_gz(&[
        ("c/Chart.yaml", b"name: c\nversion: 1.0.0\n"),
        ("c/templates/secret.yaml", quoting.as_bytes()),
    ]);
    let chart = with_license("charts/c-1.0.0.tgz", &archive);
    check(
        chart.path(),
        &Limits::default(),
        &[
            "charts/c-1.0.0.tgz: holds the license ID of the License in userdata/license.yaml (inside the archive)",
        ],
    );

    // The license in use need not be in the release: fetch_base hands its ID to the scan.
    let dir = temp_dir();
    fs::write(dir.path().join("notes.md"), quoting.as_bytes()).expect("write");
    let in_use = windlass_state::SecretString::new(LICENSE_ID);
    let error = windlass_stages::release::scan_cached(
        dir.path(),
        &Limits::default(),
        None,
        None,
        Some(&in_use),
        |_, _| {},
    )
    .expect_err("a file holding the ID of the license in use is refused")
    .to_string();
    assert!(
        error.starts_with("notes.md: holds the license ID of the license in use"),
        "{error}"
    );
    assert_no_license_id_in(&error);
}

#[test]
fn chart_archives_that_are_not_gzip_tars_or_too_big_are_refused() {
    let dir = temp_dir();
    fs::write(
        dir.path().join("chart.tgz"),
        b"\x1f\x8bnot really a gzip archive",
    )
    .expect("write");
    check(
        dir.path(),
        &Limits::default(),
        &["chart.tgz: not a valid chart archive (a gzip-compressed tar): "],
    );

    let good = chart_archive("c", "1.0.0");
    let dir = temp_dir();
    fs::write(dir.path().join("c.tar.gz"), &good[..good.len() - 10]).expect("write");
    check(
        dir.path(),
        &Limits::default(),
        &["c.tar.gz: not a valid chart archive (a gzip-compressed tar): "],
    );

    // 4 MiB of zeros packs into a few KiB; under a 1 MiB limit it is refused without unpacking
    // the rest.
    let zeros = vec![0u8; 4 << 20];
    let dir = temp_dir();
    fs::write(
        dir.path().join("bomb.tgz"),
        crate::support::tar_gz(&[
            ("c/Chart.yaml", b"name: c\nversion: 1.0.0\n"),
            ("c/zeros", &zeros),
        ]),
    )
    .expect("write");
    let small = Limits {
        max_chart_unpacked_bytes: 1 << 20,
        max_chart_entries: 3,
        ..Limits::DEFAULT
    };
    check(
        dir.path(),
        &small,
        &["bomb.tgz: chart archive unpacks to more than 1048576 bytes"],
    );

    let dir = temp_dir();
    let entries: Vec<(String, &[u8])> = (0..4)
        .map(|index| (format!("c/file-{index}"), &b"x"[..]))
        .collect();
    let entries: Vec<(&str, &[u8])> = entries
        .iter()
        .map(|(path, bytes)| (path.as_str(), *bytes))
        .collect();
    fs::write(
        dir.path().join("many.tgz"),
        crate::support::tar_gz(&entries),
    )
    .expect("write");
    check(
        dir.path(),
        &small,
        &["many.tgz: chart archive holds more than 3 entries"],
    );
}

#[test]
fn names_kubernetes_would_refuse_are_refused_with_file_document_and_line() {
    let object = |kind: &str, name: &str| {
        format!("apiVersion: v1\nkind: {kind}\nmetadata:\n  name: {name}\n")
    };
    let long = "a".repeat(254);
    let cases: Vec<(String, String)> = vec![
        (
            object("ConfigMap", "\"../x\""),
            "`metadata.name` \"../x\" is not a valid ConfigMap name".into(),
        ),
        (
            object("ConfigMap", "a/b"),
            "`metadata.name` \"a/b\" is not a valid ConfigMap name: it contains '/'".into(),
        ),
        (
            object("Secret", "\"x\\0y\""),
            "`metadata.name` \"x\\0y\" is not a valid Secret name: it contains a NUL byte".into(),
        ),
        (
            object("ConfigMap", "Settings"),
            "`metadata.name` \"Settings\" is not a valid ConfigMap name: a DNS-1123 subdomain"
                .into(),
        ),
        (
            object("ConfigMap", &long),
            "is not a valid ConfigMap name: it is 254 characters long, over the limit of 253"
                .into(),
        ),
        (
            object("Service", "1st"),
            "`metadata.name` \"1st\" is not a valid Service name".into(),
        ),
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n  namespace: My_Space\n"
                .into(),
            "`metadata.namespace` \"My_Space\" is not a valid namespace: a DNS-1123 label".into(),
        ),
        (
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: ..\n"
                .into(),
            "`metadata.name` \"..\" is not a valid ClusterRole name: it may not be \"..\"".into(),
        ),
    ];
    for (bad, expected) in cases {
        let dir = temp_dir();
        fs::write(
            dir.path().join("app.yaml"),
            format!("{}---\n{bad}", object("ConfigMap", "fine")),
        )
        .expect("write");
        check(
            dir.path(),
            &Limits::default(),
            &["app.yaml (document 2, line 6): ", &expected],
        );
    }
}

#[test]
fn names_kubernetes_accepts_pass() {
    let dir = temp_dir();
    fs::write(
        dir.path().join("app.yaml"),
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {}\n  namespace: team-1\n---\n\
             apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: system:controller:Web_Admin\n---\n\
             apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-1\n",
            "a.b-c".repeat(50) + "abc"
        ),
    )
    .expect("write");
    let release = scan_ok(dir.path());
    assert_eq!(release.documents().count(), 3);
}
