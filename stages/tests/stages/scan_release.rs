//! `release::scan` and `documents::parse_documents` on the good fixture release
//! (`fixtures/good/release`): nested folders, a multi-document file with comments, an empty
//! document, a `--- !!map` marker with content and a `...` end marker, a KOTS `Application`, a KOTS
//! `License` recognised by content, a chart archive a KOTS `HelmChart` refers to, and a README. The classification and document
//! identities are compared with `fixtures/good/expected/scan.txt`; document texts are checked
//! against the original file line by line. A scan takes the files the digest pre-scan kept
//! (`ReleaseSnapshot`) only once and only when read under the same limits. Copies of the license
//! under any name are left out like the license itself, and chart archives no `HelmChart` refers
//! to are listed.

use std::fmt::Write as _;
use std::fs;

use windlass_manifest::documents::Document;
use windlass_stages::events::FileClass;
use windlass_stages::release::{
    FileContents, Limits, Release, ReleaseSnapshot, digest_keeping, scan, scan_cached,
};

use crate::support::{LICENSE_ID, copy_fixture, expect_file, fixture, scan_ok};

/// One line per file and one per document: everything `scan` decided about the release.
fn render(release: &Release) -> String {
    let mut out = String::new();
    for file in &release.files {
        let class = serde_json::to_value(file.class()).expect("a class encodes");
        writeln!(
            out,
            "{}: {} ({} bytes on disk, {} kept)",
            file.path,
            class.as_str().expect("a string"),
            file.size,
            file.bytes.len()
        )
        .expect("write to a string");
        if let FileContents::Yaml(documents) = &file.contents {
            for document in documents {
                let class = serde_json::to_value(document.class).expect("a class encodes");
                writeln!(
                    out,
                    "  [{}] line {}: {} {} {} namespace={} name={}",
                    document.index,
                    document.line,
                    class.as_str().expect("a string"),
                    document.api_version,
                    document.kind,
                    document.namespace.as_deref().unwrap_or("-"),
                    document.name.as_deref().unwrap_or("-"),
                )
                .expect("write to a string");
            }
        }
    }
    writeln!(out, "license file: {:?}", release.license_file()).expect("write to a string");
    out
}

fn documents_of<'a>(release: &'a Release, path: &str) -> &'a [Document] {
    let file = release
        .files
        .iter()
        .find(|file| file.path == path)
        .unwrap_or_else(|| panic!("no file {path}"));
    match &file.contents {
        FileContents::Yaml(documents) => documents,
        other => panic!("{path} is {other:?}, not YAML"),
    }
}

#[test]
fn good_release_scans_as_expected() {
    let release = scan_ok(&fixture("good/release"));
    expect_file(&fixture("good/expected/scan.txt"), &render(&release));
}

#[test]
fn document_text_is_the_exact_original_text() {
    let root = fixture("good/release");
    let release = scan_ok(&root);
    let mut checked = 0;
    for file in &release.files {
        let FileContents::Yaml(documents) = &file.contents else {
            continue;
        };
        let original = fs::read_to_string(root.join(&file.path)).expect("read the fixture");
        assert_eq!(
            file.bytes,
            original.as_bytes(),
            "{}: bytes are kept",
            file.path
        );
        let lines: Vec<&str> = original.split_inclusive('\n').collect();
        for document in documents {
            let count = document.text.split_inclusive('\n').count();
            let start = document.line - 1;
            let mut expected = lines[start..start + count].concat();
            // Content after a `---` marker belongs to the document; the marker does not.
            if let Some(rest) = expected.strip_prefix("--- ") {
                expected = rest.to_string();
            }
            assert_eq!(document.text, expected, "{}", document.location());
            // Nothing of the document was cut off: what follows is a marker or the end.
            if let Some(next) = lines.get(start + count) {
                assert!(
                    next.starts_with("---") || next.starts_with("..."),
                    "{}: followed by {next:?}",
                    document.location()
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 8, "every YAML document of the fixture was checked");

    // And spelled out for the multi-document file, so the splitting rules are visible here.
    let texts: Vec<&str> = documents_of(&release, "manifests/multi.yaml")
        .iter()
        .map(|document| document.text.as_str())
        .collect();
    assert_eq!(
        texts,
        [
            "# A comment before the first document.\napiVersion: apps/v1\nkind: Deployment\n\
             metadata:\n  name: web\nspec:\n  replicas: 1 # inline comment\n",
            "# A comment opening the second document.\napiVersion: v1\nkind: ServiceAccount\n\
             metadata:\n  name: web\n",
            "!!map\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tagged\n",
            "apiVersion: kots.io/v1beta1\nkind: Config\nmetadata:\n  name: example-config\n\
             spec:\n  groups: []\n",
        ]
    );
    let lines: Vec<(usize, usize)> = documents_of(&release, "manifests/multi.yaml")
        .iter()
        .map(|document| (document.index, document.line))
        .collect();
    assert_eq!(lines, [(0, 1), (1, 9), (2, 17), (3, 23)]);
}

#[test]
fn license_is_recognised_by_content_wherever_it_lives() {
    let (_dir, release_dir) = copy_fixture("good/release");
    fs::rename(
        release_dir.join("userdata/license.yaml"),
        release_dir.join("customer.yml"),
    )
    .expect("move the license");
    let release = scan_ok(&release_dir);
    assert_eq!(release.license_file(), Some("customer.yml"));
    let license = release
        .files
        .iter()
        .find(|file| file.path == "customer.yml")
        .expect("the license file is listed");
    assert_eq!(license.class(), FileClass::License);
    assert!(matches!(license.contents, FileContents::License));
    assert!(license.bytes.is_empty(), "license bytes are dropped");
    assert_eq!(
        license.size,
        fs::metadata(release_dir.join("customer.yml"))
            .expect("stat")
            .len()
    );
    assert!(!format!("{release:?}").contains(LICENSE_ID));
}

#[test]
fn digest_ignores_the_license_but_not_the_manifests() {
    let (_dir, release_dir) = copy_fixture("good/release");
    let digest = || scan_ok(&release_dir).digest();
    let original = digest();
    assert!(original.starts_with("blake3:"), "{original}");
    assert_eq!(original.len(), "blake3:".len() + 64);
    assert_eq!(
        original,
        scan_ok(&fixture("good/release")).digest(),
        "digest is stable"
    );

    let license_path = release_dir.join("userdata/license.yaml");
    let license = fs::read_to_string(&license_path).expect("read the license");
    fs::write(
        &license_path,
        license.replace(LICENSE_ID, "AnotherCustomersLicenseId42"),
    )
    .expect("rewrite the license");
    assert_eq!(
        digest(),
        original,
        "a different license ID is the same release"
    );

    let manifest = release_dir.join("manifests/configmap.yaml");
    let text = fs::read_to_string(&manifest).expect("read a manifest");
    fs::write(&manifest, text.replace("hello", "goodbye")).expect("rewrite a manifest");
    let changed = digest();
    assert_ne!(
        changed, original,
        "a changed manifest is a different release"
    );

    fs::rename(&manifest, release_dir.join("manifests/settings.yaml")).expect("rename");
    assert_ne!(digest(), changed, "a renamed file is a different release");
}

#[test]
fn progress_counts_every_file() {
    let mut calls = Vec::new();
    let release = scan(
        &fixture("good/release"),
        &Limits::default(),
        |done, total| calls.push((done, total)),
    )
    .expect("scan");
    let total = release.files.len() as u64;
    assert_eq!(total, 8);
    assert_eq!(
        calls,
        (1..=total).map(|done| (done, total)).collect::<Vec<_>>()
    );
}

#[test]
fn a_scan_takes_the_files_its_digest_kept_once_and_only_under_the_same_limits() {
    let (_dir, release_dir) = copy_fixture("good/release");
    let before = scan_ok(&release_dir);
    let snapshot = ReleaseSnapshot::default();
    let limits = Limits::default();
    let kept_digest = digest_keeping(&release_dir, &limits, &snapshot).expect("digest");
    assert_eq!(kept_digest, before.digest(), "the digest is scan's digest");

    let manifest = release_dir.join("manifests/configmap.yaml");
    let text = fs::read_to_string(&manifest).expect("read a manifest");
    fs::write(&manifest, text.replace("hello", "goodbye")).expect("rewrite a manifest");
    let mut other_limits = limits;
    other_limits.max_files += 1;
    let reread = scan_cached(
        &release_dir,
        &other_limits,
        None,
        Some(&snapshot),
        None,
        |_, _| {},
    )
    .expect("scan");
    assert_ne!(
        reread.digest(),
        kept_digest,
        "other limits read the disk, where the manifest changed"
    );

    let from_snapshot = scan_cached(
        &release_dir,
        &limits,
        None,
        Some(&snapshot),
        None,
        |_, _| {},
    )
    .expect("scan");
    assert_eq!(
        from_snapshot.digest(),
        kept_digest,
        "the kept files were used"
    );
    assert_eq!(render(&from_snapshot), render(&before));

    let again = scan_cached(
        &release_dir,
        &limits,
        None,
        Some(&snapshot),
        None,
        |_, _| {},
    )
    .expect("scan");
    assert_eq!(
        again.digest(),
        reread.digest(),
        "the snapshot is handed out once"
    );
}

#[test]
fn license_copies_under_any_name_are_left_out_of_the_release() {
    let (_dir, release_dir) = copy_fixture("good/release");
    let original = scan_ok(&release_dir).digest();
    let license = fs::read(release_dir.join("userdata/license.yaml")).expect("read");
    let copies = [
        "userdata/license.yaml.orig",
        "userdata/license.yaml.bak",
        "license.txt",
        "notes/LICENSE-COPY",
    ];
    for copy in copies {
        let path = release_dir.join(copy);
        fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        fs::write(path, &license).expect("copy the license");
    }
    let release = scan_ok(&release_dir);
    let mut expected: Vec<&str> = copies.to_vec();
    expected.push("userdata/license.yaml");
    expected.sort();
    assert_eq!(release.license_files().collect::<Vec<_>>(), expected);
    for file in &release.files {
        if expected.contains(&file.path.as_str()) {
            assert_eq!(file.class(), FileClass::License, "{}", file.path);
            assert!(file.bytes.is_empty(), "{}: bytes kept", file.path);
        }
    }
    assert!(!format!("{release:?}").contains(LICENSE_ID));
    assert_eq!(
        release.digest(),
        original,
        "license copies are not part of the release"
    );
    let snapshot = ReleaseSnapshot::default();
    assert_eq!(
        digest_keeping(&release_dir, &Limits::default(), &snapshot).expect("digest"),
        original,
        "the digest pre-scan recognises the copies by content too"
    );
}

#[test]
fn chart_archives_no_helm_chart_refers_to_are_listed() {
    let (_dir, release_dir) = copy_fixture("good/release");
    let release = scan_ok(&release_dir);
    assert!(
        release.unreferenced_archives().is_empty(),
        "the HelmChart refers to charts/redis-1.2.3.tgz by name and chartVersion"
    );
    let FileContents::ChartArchive(chart) = &release
        .files
        .iter()
        .find(|file| file.path == "charts/redis-1.2.3.tgz")
        .expect("the chart is listed")
        .contents
    else {
        panic!("charts/redis-1.2.3.tgz is not a chart archive")
    };
    assert_eq!(
        (chart.name.as_deref(), chart.version.as_deref()),
        (Some("redis"), Some("1.2.3"))
    );

    fs::write(
        release_dir.join("charts/redis-2.0.0.tgz"),
        crate::support::chart_archive("redis", "2.0.0"),
    )
    .expect("write");
    fs::write(
        release_dir.join("charts/postgres.tar.gz"),
        crate::support::chart_archive("postgres", "15.0.1"),
    )
    .expect("write");
    fs::write(
        release_dir.join("charts/empty.tgz"),
        crate::support::tar_gz(&[]),
    )
    .expect("write");
    let unreferenced = |release: &Release| -> Vec<String> {
        release
            .unreferenced_archives()
            .into_iter()
            .map(|(path, chart)| format!("{path} {:?} {:?}", chart.name, chart.version))
            .collect()
    };
    assert_eq!(
        unreferenced(&scan_ok(&release_dir)),
        [
            "charts/empty.tgz None None",
            "charts/postgres.tar.gz Some(\"postgres\") Some(\"15.0.1\")",
            "charts/redis-2.0.0.tgz Some(\"redis\") Some(\"2.0.0\")",
        ],
        "another version of a referenced chart is not referenced"
    );

    // A HelmChart without `chartVersion` refers to its chart by name, any version.
    fs::write(
        release_dir.join("postgres-chart.yaml"),
        "apiVersion: kots.io/v1beta1\nkind: HelmChart\nmetadata:\n  name: postgres\nspec:\n  chart:\n    name: postgres\n",
    )
    .expect("write");
    assert_eq!(
        unreferenced(&scan_ok(&release_dir)),
        [
            "charts/empty.tgz None None",
            "charts/redis-2.0.0.tgz Some(\"redis\") Some(\"2.0.0\")",
        ]
    );
}
