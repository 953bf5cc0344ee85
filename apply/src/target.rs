//! Where an apply goes, as the user names it: `none` (render only, the default), `dir:PATH` (one
//! file per object, in apply order, for GitOps tools) or `kube[:CONTEXT]` (server-side apply to a
//! cluster through a kubeconfig context). [`Target::parse`] reads the `--target` syntax and
//! [`Target`]'s `Display` writes it back, so the stage configuration records the same string.

use std::fmt;
use std::path::PathBuf;

/// An apply target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Render only; nothing is applied.
    None,
    /// Write one file per object into this directory, in apply order.
    Dir(PathBuf),
    /// Server-side apply through the kubeconfig context named (the current context when `None`).
    Kube {
        /// The kubeconfig context.
        context: Option<String>,
    },
}

/// Why a `--target` value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The value names no known target kind.
    #[error("unknown target {0:?}: use none, dir:PATH, kube or kube:CONTEXT")]
    Unknown(String),
    /// `dir:` without a path, or `kube:` without a context name.
    #[error("target {0:?} needs a value after the colon")]
    Empty(String),
}

impl Target {
    /// Reads `none`, `dir:PATH`, `kube` or `kube:CONTEXT`.
    pub fn parse(text: &str) -> Result<Target, TargetError> {
        match text.split_once(':') {
            None if text == "none" => Ok(Target::None),
            None if text == "kube" => Ok(Target::Kube { context: None }),
            Some(("dir", "")) | Some(("kube", "")) => Err(TargetError::Empty(text.to_string())),
            Some(("dir", path)) => Ok(Target::Dir(PathBuf::from(path))),
            Some(("kube", context)) => Ok(Target::Kube {
                context: Some(context.to_string()),
            }),
            _ => Err(TargetError::Unknown(text.to_string())),
        }
    }

    /// Whether anything is applied at all.
    pub fn is_none(&self) -> bool {
        matches!(self, Target::None)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::None => f.write_str("none"),
            Target::Dir(path) => write!(f, "dir:{}", path.display()),
            Target::Kube { context: None } => f.write_str("kube"),
            Target::Kube {
                context: Some(context),
            } => write!(f, "kube:{context}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_print_back() {
        for text in [
            "none",
            "kube",
            "kube:staging",
            "dir:/tmp/out",
            "dir:rel/a:b",
        ] {
            assert_eq!(Target::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(
            Target::parse("kube:").unwrap_err(),
            TargetError::Empty("kube:".into())
        );
        assert_eq!(
            Target::parse("cluster").unwrap_err(),
            TargetError::Unknown("cluster".into())
        );
    }
}
