//! Keeps credentials out of a text windlass did not write: an API server's or admission
//! webhook's refusal, helm's error output. Unlike `redact.rs`, which knows the values of
//! the object a message is about, this knows no value: it recognises credentials by their
//! shape, so a message quoting a Secret windlass no longer holds (the pull secret of an earlier
//! license, deleted by a prune or an undeploy), or a chart's hook Secret helm quotes, loses its
//! credentials too. Three shapes are replaced by `<redacted>`:
//! - the value of a JSON (or JSON-in-a-string) `auth`, `password`, `identitytoken` or
//!   `registrytoken` key, as a docker config holds them;
//! - the contents of a JSON `data` or `stringData` object, as a Secret quoted whole holds them;
//! - a base64 run of 16 characters or more that decodes to a docker config or to any text with
//!   one of those keys (a pull secret's `.dockerconfigjson`, wherever it is quoted).

use std::borrow::Cow;
use std::sync::LazyLock;

use base64::Engine;
use regex::Regex;

/// The placeholder of a value left out.
const REDACTED: &str = "<redacted>";

/// A credential key and its value as JSON has them (`"auth":"…"`, escapes included): group 1
/// keeps the key and the opening quote of the value.
static CREDENTIAL_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"("(?:auth|password|identitytoken|registrytoken)"\s*:\s*")(?:[^"\\]|\\.)*"#)
        .expect("a valid pattern")
});

/// The same in JSON quoted inside a string (`\"auth\":\"…\"`), the value ending at the first
/// `\"` (an escaped quote inside it ends it early: what follows stays).
static QUOTED_CREDENTIAL_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(\\"(?:auth|password|identitytoken|registrytoken)\\"\s*:\s*\\")(?:[^"\\]|\\[^"])*"#,
    )
    .expect("a valid pattern")
});

/// The start of a Secret's `data` or `stringData` object (`"data":{`): what follows, to the
/// object's end ([`end_of_object`]), is left out.
static SECRET_DATA: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"\\?"(?:data|stringData)\\?"\s*:\s*\{"#).expect("a valid pattern")
});

/// A run that may be base64 (standard or URL-safe alphabet), long enough to hold a credential.
static BASE64_RUN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[A-Za-z0-9+/_-]{16,}={0,2}").expect("a valid pattern"));

/// What, found in a decoded base64 run, makes it a credential.
const CREDENTIAL_MARKERS: [&[u8]; 5] = [
    b"\"auths\"",
    b"\"auth\"",
    b"\"password\"",
    b"\"identitytoken\"",
    b"\"registrytoken\"",
];

/// `text` with every credential of a shape this module knows replaced by `<redacted>`
/// (borrowed unchanged when it holds none).
pub fn redact_credentials(text: &str) -> Cow<'_, str> {
    let mut redacted = Cow::Borrowed(text);
    let credential_runs: Vec<(usize, usize)> = BASE64_RUN
        .find_iter(text)
        .filter(|run| decodes_to_credential(run.as_str()))
        .map(|run| (run.start(), run.end()))
        .collect();
    if !credential_runs.is_empty() {
        redacted = Cow::Owned(replaced(text, &credential_runs));
    }
    for pattern in [&CREDENTIAL_VALUE, &QUOTED_CREDENTIAL_VALUE] {
        if let Cow::Owned(changed) = pattern.replace_all(&redacted, format!("${{1}}{REDACTED}")) {
            redacted = Cow::Owned(changed);
        }
    }
    let mut contents = Vec::new();
    for opening in SECRET_DATA.find_iter(&redacted) {
        if contents
            .last()
            .is_some_and(|(_, end): &(usize, usize)| opening.start() < *end)
        {
            continue;
        }
        contents.push((opening.end(), end_of_object(&redacted, opening.end())));
    }
    if !contents.is_empty() {
        redacted = Cow::Owned(replaced(&redacted, &contents));
    }
    redacted
}

/// `text`, cut to `max_bytes` (at a character boundary) with a note of how much was left out
/// (`... (N more bytes left out)`).
pub fn shortened(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_string();
    }
    let end = char_boundary_at_most(text, max_bytes);
    format!(
        "{}... ({} more bytes left out)",
        &text[..end],
        text.len() - end
    )
}

/// A `text` someone else wrote, without the credentials it may quote ([`redact_credentials`]),
/// cut as [`shortened`] cuts it. Only a head a few times the kept length is looked at for
/// credentials, so a huge text is not scanned whole (the note of what was left out counts the
/// whole text).
pub fn redacted_and_shortened(text: &str, max_bytes: usize) -> String {
    let head = char_boundary_at_most(text, max_bytes.saturating_mul(4));
    let redacted = redact_credentials(&text[..head]);
    if head == text.len() {
        return shortened(&redacted, max_bytes);
    }
    let end = char_boundary_at_most(&redacted, max_bytes);
    format!(
        "{}... ({} more bytes left out)",
        &redacted[..end],
        text.len().saturating_sub(end)
    )
}

/// The largest character boundary of `text` at or below `at`.
fn char_boundary_at_most(text: &str, at: usize) -> usize {
    let mut end = at.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// `text` with each of `spans` (start and end offsets, in order, apart) replaced by
/// `<redacted>`.
fn replaced(text: &str, spans: &[(usize, usize)]) -> String {
    let mut changed = String::with_capacity(text.len());
    let mut from = 0;
    for (start, end) in spans {
        changed.push_str(&text[from..*start]);
        changed.push_str(REDACTED);
        from = *end;
    }
    changed.push_str(&text[from..]);
    changed
}

/// Where the object whose contents start at `start` of `text` ends (its closing brace), or the
/// text's end when it was cut: braces inside its strings (escaped or not) do not count.
fn end_of_object(text: &str, start: usize) -> usize {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (offset, character) in text[start..].char_indices() {
        match character {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => in_string = !in_string,
            '{' if !in_string => depth += 1,
            '}' if !in_string => {
                if depth == 0 {
                    return start + offset;
                }
                depth -= 1;
            }
            _ => {}
        }
    }
    text.len()
}

/// Whether `run` decodes (in either alphabet, padded or not, or from any of its first four
/// characters on, as a run cut out of a longer text may start mid-group) to bytes holding a
/// credential key.
fn decodes_to_credential(run: &str) -> bool {
    let engines = [
        base64::engine::general_purpose::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::general_purpose::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
                .with_decode_allow_trailing_bits(true),
        ),
        base64::engine::general_purpose::GeneralPurpose::new(
            &base64::alphabet::URL_SAFE,
            base64::engine::general_purpose::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
                .with_decode_allow_trailing_bits(true),
        ),
    ];
    let trimmed = run.trim_end_matches('=');
    (0..4).any(|skip| {
        let Some(from) = trimmed.get(skip..) else {
            return false;
        };
        // Whole groups only: a cut run's last partial group holds no marker worth finding.
        let whole = &from[..from.len() - from.len() % 4];
        engines.iter().any(|engine| {
            engine.decode(whole).is_ok_and(|bytes| {
                CREDENTIAL_MARKERS
                    .iter()
                    .any(|marker| memchr::memmem::find(&bytes, marker).is_some())
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LICENSE: &str = "qs2Yw8xT4mK9pLr7VbN3cJ5hQ";

    fn encode(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    fn docker_config() -> String {
        let auth = encode(&format!("{LICENSE}:{LICENSE}"));
        json!({"auths": {"proxy.example": {"auth": auth}}}).to_string()
    }

    fn assert_no_credential(redacted: &str) {
        let auth = encode(&format!("{LICENSE}:{LICENSE}"));
        for credential in [LICENSE, auth.as_str(), encode(&docker_config()).as_str()] {
            assert!(
                !redacted.contains(credential),
                "{credential} left in {redacted}"
            );
        }
    }

    #[test]
    fn a_quoted_pull_secret_of_any_license_loses_its_docker_config() {
        let secret = json!({
            "kind": "Secret",
            "metadata": {"name": "my-app-registry"},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": encode(&docker_config())},
        });
        let message =
            format!("admission webhook \"audit\" denied the request: old object {secret}");
        let redacted = redact_credentials(&message);
        assert_no_credential(&redacted);
        assert!(
            redacted.contains("denied the request: old object"),
            "{redacted}"
        );
        assert!(redacted.contains("my-app-registry"), "{redacted}");
    }

    #[test]
    fn a_docker_config_quoted_as_yaml_or_cut_mid_group_is_found_by_decoding() {
        // helm prints a manifest as YAML; a message may start its quote anywhere in the value.
        let encoded = encode(&docker_config());
        for start in 0..4 {
            let message = format!(
                "Error: INSTALLATION FAILED: Secret \"x\" is invalid:\n  .dockerconfigjson: {}\nend",
                &encoded[start..]
            );
            let redacted = redact_credentials(&message);
            assert!(
                !redacted.contains(&encoded[start + 4..]),
                "start {start}: {redacted}"
            );
            assert!(redacted.contains("INSTALLATION FAILED") && redacted.ends_with("\nend"));
        }
        let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(docker_config());
        assert!(!redact_credentials(&format!("value {url_safe} end")).contains(&url_safe));
    }

    #[test]
    fn a_docker_config_in_plain_json_or_inside_a_string_loses_its_credentials() {
        let config = docker_config();
        let escaped = serde_json::to_string(&config).expect("a string");
        let with_password = r#"{"auths":{"r.example":{"username":"u","password":"hunter22"}}}"#;
        for message in [config.clone(), escaped, with_password.to_string()] {
            let redacted = redact_credentials(&message);
            assert_no_credential(&redacted);
            assert!(!redacted.contains("hunter22"), "{redacted}");
            assert!(
                redacted.contains("auths") && redacted.contains(REDACTED),
                "{redacted}"
            );
        }
    }

    #[test]
    fn a_quoted_secrets_data_and_string_data_are_left_out() {
        let message = json!({
            "kind": "Secret",
            "data": {"token": encode("s3cret-token"), "other": "c2Vj"},
            "stringData": {"plain": "s3cret-plain"},
        })
        .to_string();
        let redacted = redact_credentials(&message);
        for secret in [encode("s3cret-token").as_str(), "c2Vj", "s3cret-plain"] {
            assert!(!redacted.contains(secret), "{secret} left in {redacted}");
        }
    }

    #[test]
    fn escaped_quotes_braces_in_values_and_every_token_key_are_left_out() {
        let message = r#"webhook: {"kind":"Secret","stringData":{"config.json":"{\"token\":\"t0p-s3cret\"}","other":"x}y"},"metadata":{"name":"kept-name"}} {"auths":{"r":{"password":"p\"ss-rest","registrytoken":"rt-s3cret"}}}"#;
        let redacted = redact_credentials(message);
        for secret in ["t0p-s3cret", "x}y", "ss-rest", "rt-s3cret"] {
            assert!(!redacted.contains(secret), "{secret} left in {redacted}");
        }
        assert!(redacted.contains("kept-name"), "{redacted}");
        let encoded = encode(r#"{"x":{"registrytoken":"rt-s3cret"}}"#);
        assert!(!redact_credentials(&format!("value {encoded} end")).contains(&encoded));
    }

    #[test]
    fn a_text_without_credentials_is_kept_as_it_is() {
        let message = "admission webhook \"policy\" denied the request: Deployment web: image \
            quay.io/my-org/api@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef \
            is not allowed; uid 0b6f6c1e-8d2a-4c53-9f0e-6a3b2f1d4c5e";
        assert!(matches!(redact_credentials(message), Cow::Borrowed(_)));
    }
}
