//! The object names Kubernetes accepts, checked before anything is recorded, so that a name the API
//! server would refuse (or one that could climb out of a directory once it becomes a file name:
//! `../x`, `a/b`, a NUL byte) is refused with the file, document and line where it is written.
//!
//! What is checked, as the API server's validation does it:
//! - every `metadata.name` and `metadata.namespace`: at most 253 characters, no NUL byte;
//! - `metadata.namespace`, and the name of a `Namespace`: a DNS-1123 label (at most 63 lowercase
//!   letters, digits and `-`, starting and ending with a letter or digit);
//! - the name of a core `Service`: a DNS-1035 label (a DNS-1123 label starting with a letter);
//! - the names of the RBAC kinds (`Role`, `ClusterRole`, `RoleBinding`, `ClusterRoleBinding` of
//!   `rbac.authorization.k8s.io`): only the generic path-segment rule (not `.` or `..`, no `/`,
//!   no `%`), since Kubernetes allows names such as `system:controller:x` there;
//! - every other kind, custom resources included: a DNS-1123 subdomain (lowercase letters, digits,
//!   `-` and `.`, each dot-separated part starting and ending with a letter or digit).

use std::fmt;

/// Longest object name Kubernetes accepts (a DNS-1123 subdomain).
pub const MAX_NAME_LENGTH: usize = 253;
/// Longest DNS label (namespaces, services).
pub const MAX_LABEL_LENGTH: usize = 63;

/// Why a name is refused; the message names the rule, never more than the start of the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameProblem(String);

impl fmt::Display for NameProblem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// The name as messages show it: quoted with escapes (a NUL shows as `\0`), and cut after 64
/// characters with the full length said.
pub fn shown(name: &str) -> String {
    const SHOWN: usize = 64;
    let count = name.chars().count();
    if count <= SHOWN {
        format!("{name:?}")
    } else {
        let start: String = name.chars().take(SHOWN).collect();
        format!("{start:?}... ({count} characters)")
    }
}

fn problem(text: impl Into<String>) -> Result<(), NameProblem> {
    Err(NameProblem(text.into()))
}

fn common(name: &str, max: usize) -> Result<(), NameProblem> {
    if name.is_empty() {
        return problem("it is empty");
    }
    if name.contains('\0') {
        return problem("it contains a NUL byte");
    }
    let length = name.chars().count();
    if length > max {
        return problem(format!(
            "it is {length} characters long, over the limit of {max}"
        ));
    }
    Ok(())
}

fn is_label_shaped(part: &str) -> bool {
    let bytes = part.as_bytes();
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// A DNS-1123 label: what namespaces (and `Namespace` objects) are named.
pub fn check_dns_label(name: &str) -> Result<(), NameProblem> {
    common(name, MAX_LABEL_LENGTH)?;
    if !is_label_shaped(name) {
        return problem(
            "a DNS-1123 label must consist of lowercase letters, digits and '-', \
             and start and end with a letter or digit",
        );
    }
    Ok(())
}

/// A DNS-1035 label: what a `Service` is named.
pub fn check_dns_1035_label(name: &str) -> Result<(), NameProblem> {
    check_dns_label(name).map_err(|_| {
        NameProblem(format!(
            "a Service name must be a DNS-1035 label: at most {MAX_LABEL_LENGTH} lowercase \
             letters, digits and '-', starting with a letter and ending with a letter or digit"
        ))
    })?;
    if !name.as_bytes()[0].is_ascii_lowercase() {
        return problem("a Service name must start with a letter (a DNS-1035 label)");
    }
    Ok(())
}

/// A DNS-1123 subdomain: what most kinds, custom resources included, are named.
pub fn check_dns_subdomain(name: &str) -> Result<(), NameProblem> {
    common(name, MAX_NAME_LENGTH)?;
    if name.contains('/') {
        return problem("it contains '/'");
    }
    if !name.split('.').all(is_label_shaped) {
        return problem(
            "a DNS-1123 subdomain must consist of lowercase letters, digits, '-' and '.', \
             and each '.'-separated part must start and end with a letter or digit",
        );
    }
    Ok(())
}

/// The generic rule every name must pass to be a segment of an API path.
pub fn check_path_segment(name: &str) -> Result<(), NameProblem> {
    common(name, MAX_NAME_LENGTH)?;
    if name == "." || name == ".." {
        return problem(format!("it may not be {name:?}"));
    }
    for forbidden in ['/', '%'] {
        if name.contains(forbidden) {
            return problem(format!("it may not contain '{forbidden}'"));
        }
    }
    Ok(())
}

/// The rule for `metadata.name` of an object of `kind` in API group `group` (`""` for the core
/// group); see the module documentation.
pub fn check_object_name(group: &str, kind: &str, name: &str) -> Result<(), NameProblem> {
    match (group, kind) {
        ("", "Namespace") => check_dns_label(name),
        ("", "Service") => check_dns_1035_label(name),
        (
            "rbac.authorization.k8s.io",
            "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding",
        ) => check_path_segment(name),
        _ => check_dns_subdomain(name),
    }
}

/// The API group of an `apiVersion` (`""` for the core group's `v1`).
pub fn api_group(api_version: &str) -> &str {
    api_version
        .rsplit_once('/')
        .map(|(group, _)| group)
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_kubernetes_refuses_are_refused() {
        for bad in [
            "../x",
            "a/b",
            "x\0y",
            "Upper",
            "-lead",
            "trail-",
            "a..b",
            ".",
            "",
            "under_score",
        ] {
            assert!(check_object_name("", "ConfigMap", bad).is_err(), "{bad:?}");
        }
        assert!(check_object_name("apps", "Deployment", &"a".repeat(254)).is_err());
        assert!(check_object_name("apps", "Deployment", &"a".repeat(253)).is_ok());
        assert!(check_object_name("", "ConfigMap", "a.b-c.d1").is_ok());
        assert!(check_object_name("", "Namespace", "a.b").is_err());
        assert!(check_object_name("", "Namespace", &"a".repeat(64)).is_err());
        assert!(check_object_name("", "Service", "1abc").is_err());
        assert!(check_object_name("", "Service", "abc-1").is_ok());
        assert!(check_object_name("example.com", "Service", "1abc").is_ok());
    }

    #[test]
    fn rbac_names_follow_the_path_segment_rule() {
        let group = "rbac.authorization.k8s.io";
        assert!(check_object_name(group, "ClusterRole", "system:controller:Some_Thing").is_ok());
        for bad in ["..", ".", "a/b", "a%2f", "x\0"] {
            assert!(check_object_name(group, "Role", bad).is_err(), "{bad:?}");
        }
        assert!(check_object_name(group, "Role", &"r".repeat(254)).is_err());
    }

    #[test]
    fn long_names_are_shown_cut() {
        let long = "a".repeat(300);
        let shown = shown(&long);
        assert!(shown.ends_with("... (300 characters)"), "{shown}");
        assert!(shown.len() < 100, "{shown}");
        assert_eq!(super::shown("x\0"), "\"x\\0\"");
    }
}
