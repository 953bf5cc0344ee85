//! scratch
use windlass_stages::release::{scan, Limits};
use windlass_stages::documents::parse_documents;
#[test]
fn scratch() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/stages/fixtures/good/release");
    let release = scan(&root, &Limits::default(), |_, _| {}).unwrap();
    for f in &release.files { println!("{} {:?} {}", f.path, f.class(), f.size);
      if let windlass_stages::release::FileContents::Yaml(d) = &f.contents { for d in d { println!("  {} {} {:?} {:?} {}/{} {:?}\n{}", d.index, d.line, d.class, d.namespace, d.api_version, d.kind, d.name, d.text); } } }
    for (name, text) in [
      ("kv", "--- kind: x\napiVersion: v1\n"),
      ("bad", "a: 1\n---\nb: [\n"),
      ("esc", "spec:\n  licenseID: \"SECRETID\\q\"\n"),
      ("dup", "spec:\n  SECRETID: 1\n  SECRETID: 2\n"),
      ("colon", "spec:\n  licenseID: SECRETID: x\n"),
      ("tab", "spec:\n\tlicenseID: SECRETID\n"),
      ("anchor", "a: *SECRETID\n"),
      ("tag", "a: !SECRETID x\n"),
      ("unterminated", "a: \"SECRETID\n"),
      ("list", "- a\n- b\n"),
      ("scalar", "hello\n"),
    ] {
      println!("{name}: {:?}", parse_documents("f.yaml", text.as_bytes()).map(|d| d.len()).map_err(|e| e.to_string()));
    }
}
