//! Keeps the values of a Secret (or of an object rendered from a password item) out of what
//! windlass records and prints about it. A server's refusal is copied into the event log and onto
//! the terminal; the API server itself never echoes a Secret's data, but an admission webhook may
//! put the whole request in its message. Before such a refusal is kept, every value the object
//! carries (each `data` entry as sent and decoded, each `stringData` entry, and the credentials
//! inside a `.dockerconfigjson`, which for the pull secret include the license ID) is replaced by
//! `<redacted>`, as is the start of a value a shortened message was cut in.

use base64::Engine;
use serde_json::Value;

/// Values shorter than this are left alone: they are too common to be a secret worth hiding
/// and replacing them would garble the message.
const SHORTEST_REDACTED: usize = 4;

/// `text` with every value of `body` replaced by `<redacted>` when `body` is a Secret or
/// `holds_secret` (an object rendered from a password item, whose `data` is plain text);
/// `text` unchanged for any other object. A message cut short (`... (N more bytes left out)`)
/// also loses the start of a value it was cut in.
pub fn redact_secret_values(body: &Value, holds_secret: bool, text: &str) -> String {
    if !holds_secret && body.get("kind").and_then(Value::as_str) != Some("Secret") {
        return text.to_string();
    }
    let mut values = Vec::new();
    for (_, value) in entries(body, "stringData") {
        collect(value, &mut values);
    }
    for (_, encoded) in entries(body, "data") {
        values.push(encoded.to_string());
        if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded)
            && let Ok(decoded) = String::from_utf8(decoded)
        {
            collect(&decoded, &mut values);
        }
    }
    // Longest first, so that a value containing another is replaced whole.
    values.sort_by_key(|value| std::cmp::Reverse(value.len()));
    values.dedup();
    let values: Vec<&String> = values
        .iter()
        .filter(|value| value.len() >= SHORTEST_REDACTED)
        .collect();
    let mut redacted = text.to_string();
    for value in &values {
        if redacted.contains(value.as_str()) {
            redacted = redacted.replace(value.as_str(), "<redacted>");
        }
    }
    redact_cut_tail(&redacted, &values)
}

/// `text` whose end was cut (`<head>... (N more bytes left out)`, as the apply stage shortens a
/// server's message) with the start of a value at the end of its head replaced too.
fn redact_cut_tail(text: &str, values: &[&String]) -> String {
    let Some(cut) = text.rfind("... (") else {
        return text.to_string();
    };
    if !text.ends_with("more bytes left out)") {
        return text.to_string();
    }
    let head = &text[..cut];
    for value in values {
        for length in (SHORTEST_REDACTED..value.len()).rev() {
            if value.is_char_boundary(length) && head.ends_with(&value[..length]) {
                return format!("{}<redacted>{}", &head[..head.len() - length], &text[cut..]);
            }
        }
    }
    text.to_string()
}

/// The string entries of `body[field]`.
fn entries<'a>(body: &'a Value, field: &str) -> impl Iterator<Item = (&'a String, &'a str)> {
    body.get(field)
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(name, value)| Some((name, value.as_str()?)))
}

/// `value`, and when it is a docker config (`{"auths": {host: {auth, username, password}}}`)
/// each credential in it, as sent and (for `auth`) decoded, with its two halves.
fn collect(value: &str, values: &mut Vec<String>) {
    values.push(value.to_string());
    let Ok(config) = serde_json::from_str::<Value>(value) else {
        return;
    };
    let Some(auths) = config.get("auths").and_then(Value::as_object) else {
        return;
    };
    for entry in auths.values() {
        for field in [
            "auth",
            "username",
            "password",
            "identitytoken",
            "registrytoken",
        ] {
            let Some(credential) = entry.get(field).and_then(Value::as_str) else {
                continue;
            };
            values.push(credential.to_string());
            if field == "auth"
                && let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(credential)
                && let Ok(decoded) = String::from_utf8(decoded)
            {
                if let Some((user, password)) = decoded.split_once(':') {
                    values.push(user.to_string());
                    values.push(password.to_string());
                }
                values.push(decoded);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn encode(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[test]
    fn a_pull_secret_echoed_by_a_webhook_loses_every_credential() {
        let license = "2Yw8xT4mK9pLr7VbN3cJ5hQ";
        let auth = encode(&format!("{license}:{license}"));
        let config = json!({"auths": {"proxy.example": {"auth": auth}}}).to_string();
        let secret = json!({
            "kind": "Secret",
            "metadata": {"name": "pull"},
            "data": {".dockerconfigjson": encode(&config)},
        });
        let message = format!(
            "admission webhook \"audit\" denied the request: {} / {config} / {auth} / user {license}",
            secret
        );
        let redacted = redact_secret_values(&secret, false, &message);
        assert!(!redacted.contains(license), "{redacted}");
        assert!(!redacted.contains(&auth), "{redacted}");
        assert!(!redacted.contains(&encode(&config)), "{redacted}");
        assert!(redacted.starts_with("admission webhook \"audit\" denied the request: "));
        assert!(redacted.contains("<redacted>"));
    }

    #[test]
    fn string_data_is_redacted_and_other_kinds_are_untouched() {
        let secret = json!({"kind": "Secret", "stringData": {"password": "hunter22", "x": "no"}});
        assert_eq!(
            redact_secret_values(&secret, false, "bad value hunter22 for x: no"),
            "bad value <redacted> for x: no"
        );
        let config_map = json!({"kind": "ConfigMap", "data": {"password": "hunter22"}});
        assert_eq!(
            redact_secret_values(&config_map, false, "bad value hunter22"),
            "bad value hunter22"
        );
        // Rendered from a password item: its values are secret too.
        assert_eq!(
            redact_secret_values(&config_map, true, "bad value hunter22"),
            "bad value <redacted>"
        );
    }

    #[test]
    fn a_value_cut_off_by_a_shortened_message_is_redacted_too() {
        let secret =
            json!({"kind": "Secret", "stringData": {"token": "qs-2Yw8xT4mK9pLr7VbN3cJ5hQ"}});
        assert_eq!(
            redact_secret_values(
                &secret,
                false,
                "refused: token qs-2Yw8xT4mK9pLr7V... (13 more bytes left out)"
            ),
            "refused: token <redacted>... (13 more bytes left out)"
        );
        assert_eq!(
            redact_secret_values(
                &secret,
                false,
                "refused: nothing secret... (9 more bytes left out)"
            ),
            "refused: nothing secret... (9 more bytes left out)"
        );
    }
}
