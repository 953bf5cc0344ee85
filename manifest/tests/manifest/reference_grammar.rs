//! `images::grammar` against `oci-spec`, whose regular expression it replaces: on generated
//! references (valid ones built from the grammar, and mutations of them with stray characters,
//! doubled separators, uppercase, ports, tags and digests) both accept and refuse the same strings,
//! cut them into the same registry, repository, tag and digest, and give the same reason — except
//! where windlass keeps two rules of Docker's that oci-spec leaves out: a first segment with an
//! uppercase letter is a registry host, and a digest's hex is lowercase.

use oci_spec::distribution::Reference;
use proptest::prelude::*;
use windlass_manifest::images::grammar;

/// Path and host alphabets with the characters that make a reference invalid mixed in.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9]{1,6}",
        "[a-z0-9]{1,3}(\\.|_|__|-{1,3})[a-z0-9]{1,3}",
        "[a-zA-Z0-9._-]{0,6}",
        "[a-z0-9]{1,3}(___|\\.\\.|_\\.|-_)[a-z0-9]{1,3}",
    ]
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("docker.io".to_string()),
        Just("index.docker.io".to_string()),
        Just("localhost".to_string()),
        "[a-zA-Z0-9-]{1,6}(\\.[a-zA-Z0-9-]{1,5}){0,2}",
        "[a-z0-9]{1,5}\\.[a-z]{2,3}:[0-9]{1,5}",
        "[a-z0-9]{1,5}:[0-9a-z]{0,3}",
    ]
}

fn reference() -> impl Strategy<Value = String> {
    let tag = prop_oneof![
        Just(String::new()),
        ":[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}",
        ":[A-Za-z0-9_.: -]{0,4}",
    ];
    let digest = prop_oneof![
        Just(String::new()),
        "@sha256:[0-9a-f]{64}",
        "@sha512:[0-9a-f]{128}",
        "@sha256:[0-9a-fA-F]{30,66}",
        "@(md5|sha1|sha-256|Sha256):[0-9a-f]{32,40}",
    ];
    (
        proptest::option::of(host()),
        proptest::collection::vec(segment(), 1..4),
        tag,
        digest,
    )
        .prop_map(|(host, path, tag, digest)| {
            let mut reference = host.map(|host| format!("{host}/")).unwrap_or_default();
            reference.push_str(&path.join("/"));
            format!("{reference}{tag}{digest}")
        })
}

/// Docker's `splitDockerDomain` reads a first segment with an uppercase letter (and no `.` or `:`)
/// as a registry host; oci-spec reads it as the start of a Docker Hub repository.
fn uppercase_registry(written: &str) -> Option<&str> {
    let (first, _) = written.split_once('/')?;
    (!first.contains(['.', ':', '@']) && first.bytes().any(|byte| byte.is_ascii_uppercase()))
        .then_some(first)
}

/// Docker's `go-digest` refuses uppercase hex in a digest of a known algorithm; oci-spec takes it.
fn uppercase_digest(theirs: &Reference) -> bool {
    theirs
        .digest()
        .and_then(|digest| digest.split_once(':'))
        .is_some_and(|(_, hex)| hex.bytes().any(|byte| byte.is_ascii_uppercase()))
}

fn check(written: &str) {
    let ours = grammar::parse(written);
    let theirs = Reference::try_from(written);
    match (&ours, &theirs) {
        (Err(grammar::GrammarError::DigestFormat), Ok(theirs)) => {
            assert!(uppercase_digest(theirs), "{written:?}: {theirs:?}");
        }
        (Ok(ours), Ok(theirs)) if uppercase_registry(written).is_some() => {
            assert_eq!(Some(ours.registry.as_str()), uppercase_registry(written));
            assert_eq!(
                format!("{}/{}", ours.registry, ours.repository),
                theirs.repository(),
                "{written:?}"
            );
            assert_eq!(theirs.registry(), "docker.io", "{written:?}");
        }
        (Ok(ours), Ok(theirs)) => {
            assert!(!uppercase_digest(theirs), "{written:?}: {ours:?}");
            assert_eq!(ours.registry, theirs.registry(), "{written:?}");
            assert_eq!(ours.repository, theirs.repository(), "{written:?}");
            assert_eq!(ours.digest, theirs.digest(), "{written:?}");
            // oci-spec reports `latest` when neither a tag nor a digest is written.
            let their_tag = theirs
                .tag()
                .filter(|_| ours.tag.is_some() || ours.digest.is_some());
            assert_eq!(ours.tag, their_tag, "{written:?}");
        }
        (Err(ours), Err(theirs)) => {
            assert_eq!(ours.to_string(), theirs.to_string(), "{written:?}")
        }
        _ => panic!("{written:?}: windlass says {ours:?}, oci-spec says {theirs:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, .. ProptestConfig::default() })]

    #[test]
    fn the_grammar_agrees_with_oci_spec(written in reference()) {
        check(&written);
    }
}

#[test]
fn the_grammar_agrees_with_oci_spec_on_edge_cases() {
    let long = "n".repeat(250);
    for written in [
        "",
        "redis",
        "Redis",
        "localhost:5000",
        "localhost:5000/a",
        "a:b/c",
        "a/b:",
        "a@",
        "@sha256:",
        "a:1@sha256:",
        "quay.io/a/b@sha384:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        &format!("{long}/{long}"),
        &format!("docker.io/{long}"),
        "a/b/c/d/e/f/g:h",
        "a-b.io:443/x--y__z.w",
        "[::1]:5000/a",
        "MyOrg/app:1",
        "MyOrg/App:1",
        "quay.io/a@sha256:ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
    ] {
        check(written);
    }
}
