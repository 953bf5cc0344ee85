//! [`SecretString`]: a credential held in memory only. It cannot be printed, logged or serialized
//! by accident: `Debug` shows a placeholder, and there is no `Display` or `Serialize`.

use std::fmt;

/// A credential such as a license ID. Read it with [`SecretString::expose`], deliberately.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> SecretString {
        SecretString(value.into())
    }

    /// The credential itself. Callers must not log, store or print it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}
