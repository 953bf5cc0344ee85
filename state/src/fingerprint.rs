//! Keyed fingerprints: how windlass refers to a credential without storing it. A fingerprint is a
//! blake3 keyed hash of the credential under a random key kept in the state directory (mode 0600),
//! so the same license always gets the same fingerprint in one state directory, but a fingerprint
//! copied out of the log cannot be checked against guessed license IDs without that key.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::secret::SecretString;

/// The 32-byte key behind every fingerprint in one state directory.
pub struct FingerprintKey([u8; 32]);

impl std::fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FingerprintKey(<redacted>)")
    }
}

impl FingerprintKey {
    /// Reads the key at `path`, creating it (mode 0600) from the OS random source if absent.
    pub fn load_or_create(path: &Path) -> std::io::Result<FingerprintKey> {
        match fs::read(path) {
            Ok(bytes) => {
                let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{} is not a 32-byte fingerprint key", path.display()),
                    )
                })?;
                Ok(FingerprintKey(key))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                getrandom::fill(&mut key)
                    .map_err(|error| std::io::Error::other(error.to_string()))?;
                // A temporary name of our own, so racing creators never share (and clobber) one.
                let mut nonce = [0u8; 8];
                getrandom::fill(&mut nonce)
                    .map_err(|error| std::io::Error::other(error.to_string()))?;
                let tmp = path.with_extension(format!(
                    "tmp-{}-{}",
                    std::process::id(),
                    u64::from_le_bytes(nonce)
                ));
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&tmp)?;
                file.set_permissions(fs::Permissions::from_mode(0o600))?;
                file.write_all(&key)?;
                file.sync_all()?;
                // Two processes may race to create the key: linking never replaces an existing key,
                // and the loser reads the winner's.
                match fs::hard_link(&tmp, path) {
                    Ok(()) => {
                        let _ = fs::remove_file(&tmp);
                        Ok(FingerprintKey(key))
                    }
                    Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                        let _ = fs::remove_file(&tmp);
                        FingerprintKey::load_or_create(path)
                    }
                    Err(error) => Err(error),
                }
            }
            Err(error) => Err(error),
        }
    }

    /// A key for tests and benchmarks.
    pub fn from_bytes(key: [u8; 32]) -> FingerprintKey {
        FingerprintKey(key)
    }

    /// The fingerprint of `secret` for `purpose` (e.g. `"license-id"`): `fp1:` and 32 hex digits.
    pub fn fingerprint(&self, purpose: &str, secret: &SecretString) -> String {
        let mut hasher = blake3::Hasher::new_keyed(&self.0);
        hasher.update(purpose.as_bytes());
        hasher.update(&[0]);
        hasher.update(secret.expose().as_bytes());
        let hex = hasher.finalize().to_hex();
        format!("fp1:{}", &hex[..32])
    }

    /// A fingerprint of arbitrary bytes that may hold secrets (e.g. a rendered pull secret).
    pub fn fingerprint_bytes(&self, purpose: &str, bytes: &[u8]) -> String {
        let mut hasher = blake3::Hasher::new_keyed(&self.0);
        hasher.update(purpose.as_bytes());
        hasher.update(&[0]);
        hasher.update(bytes);
        let hex = hasher.finalize().to_hex();
        format!("fp1:{}", &hex[..32])
    }
}
