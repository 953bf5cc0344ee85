//! Keyed fingerprints and secrets: the fingerprint key is created readable by its owner only
//! (0600), survives reloads so one credential keeps one fingerprint per state directory, distinct
//! keys give unrelated fingerprints, a fingerprint never contains the credential, and neither the
//! key nor a [`SecretString`] reveals its contents through `Debug`. These are the guarantees behind
//! "secrets never enter an event". The key file is read as a regular file of at most 32 bytes: a
//! FIFO or an oversized file there is refused at once, naming it.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use windlass_state::{FingerprintKey, SecretString};

const LICENSE: &str = "LICENSE-Zq7-wUx9-private";

#[test]
fn key_file_is_created_owner_only() {
    let dir = tempfile::tempdir().expect("scratch directory");
    let path = dir.path().join("fingerprint.key");
    FingerprintKey::load_or_create(&path).expect("create key");
    let metadata = fs::metadata(&path).expect("key file exists");
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
    assert_eq!(metadata.len(), 32);
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .expect("read dir")
        .map(|entry| entry.expect("entry").file_name())
        .filter(|name| name != "fingerprint.key")
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary files left behind: {leftovers:?}"
    );
}

#[test]
fn fingerprints_are_stable_across_reloads() {
    let dir = tempfile::tempdir().expect("scratch directory");
    let path = dir.path().join("fingerprint.key");
    let secret = SecretString::new(LICENSE);
    let first = FingerprintKey::load_or_create(&path)
        .expect("create key")
        .fingerprint("license-id", &secret);
    let again = FingerprintKey::load_or_create(&path)
        .expect("reload key")
        .fingerprint("license-id", &secret);
    assert_eq!(first, again);
    assert!(first.starts_with("fp1:"), "{first}");
    assert_eq!(first.len(), 4 + 32);
    assert!(
        first[4..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
}

#[test]
fn different_keys_give_different_fingerprints() {
    let secret = SecretString::new(LICENSE);
    let one = FingerprintKey::from_bytes([1; 32]);
    let two = FingerprintKey::from_bytes([2; 32]);
    assert_ne!(
        one.fingerprint("license-id", &secret),
        two.fingerprint("license-id", &secret)
    );
    assert_ne!(
        one.fingerprint_bytes("pull-secret", b"{\"auths\":{}}"),
        two.fingerprint_bytes("pull-secret", b"{\"auths\":{}}")
    );

    // Two state directories get two random keys.
    let first_dir = tempfile::tempdir().expect("scratch directory");
    let second_dir = tempfile::tempdir().expect("scratch directory");
    let first = FingerprintKey::load_or_create(&first_dir.path().join("fingerprint.key"))
        .expect("first key");
    let second = FingerprintKey::load_or_create(&second_dir.path().join("fingerprint.key"))
        .expect("second key");
    assert_ne!(
        first.fingerprint("license-id", &secret),
        second.fingerprint("license-id", &secret)
    );
}

#[test]
fn purpose_and_credential_both_change_the_fingerprint() {
    let key = FingerprintKey::from_bytes([7; 32]);
    let secret = SecretString::new(LICENSE);
    let base = key.fingerprint("license-id", &secret);
    assert_ne!(base, key.fingerprint("registry-password", &secret));
    assert_ne!(
        base,
        key.fingerprint("license-id", &SecretString::new("LICENSE-other"))
    );
}

#[test]
fn fingerprint_never_contains_the_secret() {
    let key = FingerprintKey::from_bytes([9; 32]);
    for secret in [LICENSE, "hunter2", "a-license-with-dashes", "s3cr3t_TOKEN"] {
        let fingerprint = key.fingerprint("license-id", &SecretString::new(secret));
        assert!(
            !fingerprint.contains(secret),
            "{fingerprint} contains {secret}"
        );
        let fingerprint = key.fingerprint_bytes("pull-secret", secret.as_bytes());
        assert!(
            !fingerprint.contains(secret),
            "{fingerprint} contains {secret}"
        );
    }
}

#[test]
fn debug_output_reveals_no_secret() {
    #[derive(Debug)]
    #[allow(dead_code)] // only read through Debug
    struct Credentials {
        user: String,
        license: SecretString,
    }
    let credentials = Credentials {
        user: "ops".into(),
        license: SecretString::new(LICENSE),
    };
    for shown in [
        format!("{:?}", credentials.license),
        format!("{credentials:?}"),
        format!("{credentials:#?}"),
    ] {
        assert!(!shown.contains(LICENSE), "Debug leaked the secret: {shown}");
        assert!(
            !shown.contains("Zq7"),
            "Debug leaked part of the secret: {shown}"
        );
    }
    assert_eq!(credentials.license.expose(), LICENSE);

    let key = FingerprintKey::from_bytes([0xAB; 32]);
    let shown = format!("{key:?}");
    assert!(
        !shown.to_lowercase().contains("abab"),
        "Debug leaked the key: {shown}"
    );
    assert!(!shown.contains("171"), "Debug leaked the key: {shown}");
}

#[test]
fn a_key_file_of_the_wrong_size_is_refused() {
    let dir = tempfile::tempdir().expect("scratch directory");
    let path = dir.path().join("fingerprint.key");
    fs::write(&path, [0u8; 31]).expect("write short key");
    let error = FingerprintKey::load_or_create(&path).expect_err("a 31-byte key is refused");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    assert_eq!(
        fs::read(&path).expect("key file").len(),
        31,
        "the bad key is not overwritten"
    );
}

/// Many threads creating the same key at once all end up with the key that is on disk.
#[test]
fn racing_creators_agree_on_one_key() {
    for _ in 0..20 {
        let dir = tempfile::tempdir().expect("scratch directory");
        let path = dir.path().join("fingerprint.key");
        let secret = SecretString::new("race");
        let fingerprints: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        FingerprintKey::load_or_create(&path)
                            .expect("load or create")
                            .fingerprint("license-id", &secret)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().unwrap())
                .collect()
        });
        let on_disk = FingerprintKey::load_or_create(&path)
            .expect("reload")
            .fingerprint("license-id", &secret);
        assert!(
            fingerprints
                .iter()
                .all(|fingerprint| *fingerprint == on_disk),
            "{fingerprints:?} vs {on_disk}"
        );
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .map(|entry| entry.expect("entry").file_name())
            .filter(|name| name != "fingerprint.key")
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }
}

/// A FIFO where the key belongs is refused at once, naming the file (reading it would wait for a
/// writer for ever).
#[test]
fn a_fifo_as_key_file_is_refused_at_once() {
    let dir = tempfile::tempdir().expect("scratch directory");
    let path = dir.path().join("fingerprint.key");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .expect("mkfifo");
    let (sender, answer) = std::sync::mpsc::channel();
    let read_from = path.clone();
    std::thread::spawn(move || {
        let _ = sender.send(FingerprintKey::load_or_create(&read_from).map(|_| ()));
    });
    let error = answer
        .recv_timeout(std::time::Duration::from_secs(5))
        .expect("load_or_create returns within five seconds")
        .expect_err("a FIFO is not a key");
    let message = error.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("not a regular file (FIFO)"), "{message}");
}

/// A key file larger than a key is refused without reading more than a key's worth past it.
#[test]
fn a_key_file_larger_than_a_key_is_refused_naming_it() {
    let dir = tempfile::tempdir().expect("scratch directory");
    let path = dir.path().join("fingerprint.key");
    // Sparse: its size says 64 MiB, and the read stops at the cap.
    fs::File::create(&path)
        .and_then(|file| file.set_len(64 * 1024 * 1024))
        .expect("sparse key file");
    let error = FingerprintKey::load_or_create(&path).expect_err("not a key");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    let message = error.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("larger than 32 bytes"), "{message}");
}
