//! Keyed fingerprints: how windlass refers to a credential without storing it. A fingerprint is a
//! blake3 keyed hash of the credential under a random key kept in the state directory (mode 0600),
//! so the same license always gets the same fingerprint in one state directory, but a fingerprint
//! copied out of the log cannot be checked against guessed license IDs without that key.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use windlass_files::ReadError;

use crate::durable;
use crate::secret::SecretString;

/// The size of a fingerprint key, and so the most that is read of `fingerprint.key`.
const KEY_BYTES: u64 = 32;

/// The 32-byte key behind every fingerprint in one state directory.
pub struct FingerprintKey([u8; 32]);

impl std::fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FingerprintKey(<redacted>)")
    }
}

impl FingerprintKey {
    /// Reads the key at `path`, creating it (mode 0600) from the OS random source if absent.
    ///
    /// The key is read as a regular file of at most its 32 bytes, so a FIFO or a device planted
    /// there is refused at once instead of blocking or filling memory. A new key is written to
    /// `<path>.creating`, fsynced, linked into place and the directory fsynced, all under the
    /// directory's lock ([`crate::durable::DirectoryLock`]): a process killed meanwhile leaves no
    /// key file at all, or a whole one, and the `.creating` file it left is removed by the next
    /// creator.
    pub fn load_or_create(path: &Path) -> std::io::Result<FingerprintKey> {
        if let Some(key) = FingerprintKey::load(path)? {
            return Ok(key);
        }
        let directory = durable::parent_directory(path);
        let _lock = durable::DirectoryLock::acquire(directory)?;
        // Another process may have created it while this one waited for the lock.
        if let Some(key) = FingerprintKey::load(path)? {
            return Ok(key);
        }
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|error| std::io::Error::other(error.to_string()))?;
        let creating = durable::creating_name(path);
        // A creator holds the lock: one found now was left by a killed one.
        durable::remove_if_present(&creating)?;
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&creating)?;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(&key)?;
        file.sync_all()?;
        // Linking never replaces a key, whatever made one meanwhile (a windlass that took no lock).
        let linked = fs::hard_link(&creating, path);
        fs::remove_file(&creating)?;
        durable::sync_directory(directory)?;
        match linked {
            Ok(()) => Ok(FingerprintKey(key)),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                FingerprintKey::load(path)?.ok_or(error)
            }
            Err(error) => Err(error),
        }
    }

    /// The key at `path`, or `None` when there is no file there.
    fn load(path: &Path) -> std::io::Result<Option<FingerprintKey>> {
        let invalid = |problem: String| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("fingerprint key {}: {problem}", path.display()),
            )
        };
        let bytes = match windlass_files::read_regular_file(path, KEY_BYTES) {
            Ok(bytes) => bytes,
            Err(ReadError::Io { error }) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(None);
            }
            Err(ReadError::Io { error }) => {
                return Err(std::io::Error::new(
                    error.kind(),
                    format!("fingerprint key {}: {error}", path.display()),
                ));
            }
            Err(problem) => return Err(invalid(problem.to_string())),
        };
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| invalid(format!("{} bytes, not 32", bytes.len())))?;
        Ok(Some(FingerprintKey(key)))
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
