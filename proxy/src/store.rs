//! [`ProxyStore`]: the proxy's embedded store in its state directory — the licenses it accepts and
//! the append-only pull log. Licenses are keyed by a keyed hash of the license ID (key in
//! `<state>/fingerprint.key`, mode 0600), as a password store would keep them; the license ID itself
//! is never written. The redb file is opened in multi-writer mode so `windlass proxy license
//! add|revoke|list` work while the proxy runs, and the proxy reads the license table on every
//! request, so a revoke takes effect at the next request.

use std::path::{Path, PathBuf};

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use windlass_kots::{LicenseError, LicenseFile};
use windlass_state::{FingerprintKey, SecretString};

/// The fingerprint purpose of license IDs in the proxy's store.
pub const LICENSE_ID_PURPOSE: &str = "proxy-license-id";

const LICENSES: TableDefinition<&str, &[u8]> = TableDefinition::new("licenses");
pub(crate) const PULLS: TableDefinition<u64, &[u8]> = TableDefinition::new("pulls");

/// A problem with the store or a license file. Messages never contain a license ID.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The state directory or its key cannot be read or created.
    #[error("proxy state {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The embedded database failed (including: another process holds it in single-writer mode).
    #[error("proxy state {path}: {detail}")]
    Database {
        /// The database file.
        path: String,
        /// What failed.
        detail: String,
    },
    /// A license file cannot be read or is not a valid KOTS License (see [`windlass_kots::license`]).
    #[error(transparent)]
    License(#[from] LicenseError),
    /// `revoke` was given a license the store does not hold.
    #[error("no license with fingerprint {fingerprint} in the proxy's store")]
    UnknownLicense {
        /// The fingerprint looked for.
        fingerprint: String,
    },
    /// `add` was given a license that was revoked: only [`ProxyStore::reinstate`] accepts it again.
    #[error("license {fingerprint} was revoked at {revoked_at}")]
    Revoked {
        /// The license's fingerprint.
        fingerprint: String,
        /// When it was revoked (RFC 3339).
        revoked_at: String,
    },
}

/// A license as the proxy's store keeps it: everything but the ID.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct StoredLicense {
    /// The keyed fingerprint of the license ID (`fp1:` and 32 hex digits).
    pub fingerprint: String,
    /// `spec.appSlug`: the only app this license may pull.
    pub app_slug: String,
    /// `spec.entitlements.expires_at.value` (RFC 3339), if the license expires.
    pub expires_at: Option<String>,
    /// Whether the license was revoked.
    pub revoked: bool,
    /// When it was added (RFC 3339).
    pub added_at: String,
    /// When it was revoked (RFC 3339).
    pub revoked_at: Option<String>,
}

/// What a license allows at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LicenseStatus {
    /// It pulls.
    Active,
    /// Its expiry has passed.
    Expired,
    /// It was revoked (whatever its expiry).
    Revoked,
}

impl LicenseStatus {
    /// `active`, `expired` or `revoked`, as `license list` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            LicenseStatus::Active => "active",
            LicenseStatus::Expired => "expired",
            LicenseStatus::Revoked => "revoked",
        }
    }
}

impl StoredLicense {
    /// Whether the license is active, expired or revoked at `now`.
    pub fn status(&self, now: OffsetDateTime) -> LicenseStatus {
        if self.revoked {
            LicenseStatus::Revoked
        } else if self.is_expired(now) {
            LicenseStatus::Expired
        } else {
            LicenseStatus::Active
        }
    }

    /// Whether the license has expired at `now`.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        match &self.expires_at {
            None => false,
            // Stored values were checked when added; an unreadable one counts as expired.
            Some(text) => OffsetDateTime::parse(text, &Rfc3339).map_or(true, |at| at <= now),
        }
    }
}

/// One entry of the pull log. Never contains a license ID. Text fields are at most
/// [`crate::MAX_LOGGED_BYTES`] long. An aggregated record (refused or malformed requests, counted
/// in memory and written once per interval) has `count`, `source`, `first_time` and a sample
/// `path`; `time` is then the last request's time.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct PullRecord {
    /// Position in the log, from 1.
    pub seq: u64,
    /// When the request was answered (RFC 3339).
    pub time: String,
    /// The keyed fingerprint of the license ID presented, if any credentials were presented.
    pub license_fingerprint: Option<String>,
    /// The app slug of the path.
    pub app: Option<String>,
    /// `<upstream host>/<repository>` of the path.
    pub image: Option<String>,
    /// `manifest` or `blob`.
    pub kind: Option<String>,
    /// `GET` or `HEAD`.
    pub method: String,
    /// The reference requested (tag or digest).
    pub reference: Option<String>,
    /// The digest served (verified), if known.
    pub digest: Option<String>,
    /// Bytes of body sent to the client.
    pub bytes: u64,
    /// `served`, or why not: `unauthenticated`, `revoked`, `expired`, `wrong_app`, `unknown_upstream`,
    /// `app_not_bound_to_upstream`, `repository_not_allowed`, `upstream_status_<code>`,
    /// `upstream_unreachable`, `upstream_busy`, `digest_mismatch`, `bad_request`, `not_found`,
    /// `method_not_allowed`.
    pub result: String,
    /// The client's address (`other` for requests counted past the aggregation's key limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// How many requests an aggregated record stands for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// When the first request of an aggregated record came (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_time: Option<String>,
    /// The path of an aggregated record's first request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The `User-Agent` of an aggregated record's first request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Whether a text field was cut to [`crate::MAX_LOGGED_BYTES`] (it then ends in
    /// `...[truncated]`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// Reads a KOTS license file with the one License reader ([`windlass_kots::read_license_file`]):
/// problems are reported with the file and line, and a file holding other documents is refused.
pub fn read_license_file(path: &Path) -> Result<LicenseFile, StoreError> {
    Ok(windlass_kots::read_license_file(path)?)
}

/// The proxy's store: `<state>/proxy.redb` and `<state>/fingerprint.key`.
pub struct ProxyStore {
    db: redb::Database,
    path: PathBuf,
    key: FingerprintKey,
    /// The pull log's cap in JSON bytes (see [`crate::pull_log`]).
    pull_log_max_bytes: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for ProxyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyStore")
            .field("path", &self.path)
            .finish()
    }
}

fn now_text() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| "unknown".into())
}

impl ProxyStore {
    /// Opens (creating if needed) the store in the state directory `state`.
    pub fn open(state: &Path) -> Result<ProxyStore, StoreError> {
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| StoreError::Io { path, source }
        };
        windlass_state::durable::create_directories(state).map_err(io(state))?;
        let key_path = state.join("fingerprint.key");
        let key = FingerprintKey::load_or_create(&key_path).map_err(io(&key_path))?;
        let path = state.join("proxy.redb");
        let mut builder = redb::Database::builder();
        builder.set_concurrency_mode(redb::ConcurrencyMode::MultiWriter);
        // Created whole under a temporary name and renamed into place, as the state directory's
        // databases are, so a proxy killed while creating it never leaves a file it cannot open.
        let db =
            windlass_state::durable::create_or_open_database(&path, &builder).map_err(|error| {
                StoreError::Database {
                    path: path.display().to_string(),
                    detail: error.to_string(),
                }
            })?;
        let store = ProxyStore {
            db,
            path,
            key,
            pull_log_max_bytes: std::sync::atomic::AtomicU64::new(
                crate::config::Limits::default().pull_log_max_bytes,
            ),
        };
        // Create both tables, so readers never meet a missing one.
        store.write(|transaction| {
            transaction.open_table(LICENSES)?;
            transaction.open_table(PULLS)?;
            Ok(())
        })?;
        Ok(store)
    }

    fn database_error(&self, error: impl std::fmt::Display) -> StoreError {
        StoreError::Database {
            path: self.path.display().to_string(),
            detail: error.to_string(),
        }
    }

    pub(crate) fn write<T>(
        &self,
        body: impl FnOnce(&redb::WriteTransaction) -> Result<T, redb::Error>,
    ) -> Result<T, StoreError> {
        let transaction = self
            .db
            .begin_write()
            .map_err(|error| self.database_error(error))?;
        let value = body(&transaction).map_err(|error| self.database_error(error))?;
        transaction
            .commit()
            .map_err(|error| self.database_error(error))?;
        Ok(value)
    }

    /// The keyed fingerprint of a license ID in this state directory.
    pub fn fingerprint(&self, license_id: &SecretString) -> String {
        self.key.fingerprint(LICENSE_ID_PURPOSE, license_id)
    }

    /// Adds (or replaces) the license in the KOTS License file at `path`; a revoked license is
    /// refused ([`StoreError::Revoked`]).
    pub fn add_license(&self, path: &Path) -> Result<StoredLicense, StoreError> {
        let license = read_license_file(path)?;
        self.add(&license)
    }

    /// Adds (or replaces) a license already read; a revoked license is refused
    /// ([`StoreError::Revoked`]), so re-adding an old file never silently reactivates it.
    pub fn add(&self, license: &LicenseFile) -> Result<StoredLicense, StoreError> {
        self.put(license, false)
    }

    /// Adds a license, reactivating it if it was revoked.
    pub fn reinstate(&self, license: &LicenseFile) -> Result<StoredLicense, StoreError> {
        self.put(license, true)
    }

    fn put(&self, license: &LicenseFile, reinstate: bool) -> Result<StoredLicense, StoreError> {
        let record = StoredLicense {
            fingerprint: self.fingerprint(&license.license_id),
            app_slug: license.app_slug.clone(),
            expires_at: license.expires_at.clone(),
            revoked: false,
            added_at: now_text(),
            revoked_at: None,
        };
        let bytes = serde_json::to_vec(&record).map_err(|error| self.database_error(error))?;
        // Checked and written in one transaction, so a concurrent revoke is never undone.
        let revoked = self.write(|transaction| {
            let mut table = transaction.open_table(LICENSES)?;
            let existing = table
                .get(record.fingerprint.as_str())?
                .and_then(|value| serde_json::from_slice::<StoredLicense>(value.value()).ok());
            if let Some(existing) = existing
                && existing.revoked
                && !reinstate
            {
                return Ok(Some(existing));
            }
            table.insert(record.fingerprint.as_str(), bytes.as_slice())?;
            Ok(None)
        })?;
        match revoked {
            Some(existing) => Err(StoreError::Revoked {
                fingerprint: existing.fingerprint,
                revoked_at: existing
                    .revoked_at
                    .unwrap_or_else(|| "an unknown time".into()),
            }),
            None => Ok(record),
        }
    }

    /// Revokes the license with this ID; its pulls stop at the next request.
    pub fn revoke(&self, license_id: &SecretString) -> Result<StoredLicense, StoreError> {
        self.revoke_fingerprint(&self.fingerprint(license_id))
    }

    /// Revokes the license with this fingerprint (as `license list` prints it).
    pub fn revoke_fingerprint(&self, fingerprint: &str) -> Result<StoredLicense, StoreError> {
        let mut record =
            self.get_by_fingerprint(fingerprint)?
                .ok_or_else(|| StoreError::UnknownLicense {
                    fingerprint: fingerprint.to_string(),
                })?;
        record.revoked = true;
        record.revoked_at = Some(now_text());
        let bytes = serde_json::to_vec(&record).map_err(|error| self.database_error(error))?;
        self.write(|transaction| {
            let mut table = transaction.open_table(LICENSES)?;
            table.insert(fingerprint, bytes.as_slice())?;
            Ok(())
        })?;
        Ok(record)
    }

    /// The license with this ID, if the store holds it.
    pub fn get(&self, license_id: &SecretString) -> Result<Option<StoredLicense>, StoreError> {
        self.get_by_fingerprint(&self.fingerprint(license_id))
    }

    fn get_by_fingerprint(&self, fingerprint: &str) -> Result<Option<StoredLicense>, StoreError> {
        let transaction = self
            .db
            .begin_read()
            .map_err(|error| self.database_error(error))?;
        let table = transaction
            .open_table(LICENSES)
            .map_err(|error| self.database_error(error))?;
        let Some(value) = table
            .get(fingerprint)
            .map_err(|error| self.database_error(error))?
        else {
            return Ok(None);
        };
        serde_json::from_slice(value.value())
            .map(Some)
            .map_err(|error| self.database_error(error))
    }

    /// Every license the store holds, ordered by fingerprint.
    pub fn list(&self) -> Result<Vec<StoredLicense>, StoreError> {
        self.read_all(LICENSES)
    }

    /// Appends `record` to the pull log, setting its `seq` and `time` and cutting long text
    /// fields; the oldest records go when the log outgrows its cap. Returns the stored record.
    pub fn record_pull(&self, mut record: PullRecord) -> Result<PullRecord, StoreError> {
        record.time = String::new();
        let mut stored = crate::pull_log::append(self, vec![record])?;
        stored
            .pop()
            .ok_or_else(|| self.database_error("nothing was appended"))
    }

    /// Sets the pull log's cap: the JSON bytes of the records it keeps (`limits.pull_log_max_mib`).
    pub fn set_pull_log_max_bytes(&self, bytes: u64) {
        self.pull_log_max_bytes
            .store(bytes.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// The pull log's cap in JSON bytes.
    pub fn pull_log_max_bytes(&self) -> u64 {
        self.pull_log_max_bytes
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The whole pull log, oldest first.
    pub fn pulls(&self) -> Result<Vec<PullRecord>, StoreError> {
        self.read_all(PULLS)
    }

    /// Every JSON value of `definition`, in key order.
    fn read_all<K: redb::Key + 'static, T: serde::de::DeserializeOwned>(
        &self,
        definition: TableDefinition<K, &[u8]>,
    ) -> Result<Vec<T>, StoreError> {
        let transaction = self
            .db
            .begin_read()
            .map_err(|error| self.database_error(error))?;
        let table = transaction
            .open_table(definition)
            .map_err(|error| self.database_error(error))?;
        let mut records = Vec::new();
        for entry in table.iter().map_err(|error| self.database_error(error))? {
            let (_, value) = entry.map_err(|error| self.database_error(error))?;
            records.push(
                serde_json::from_slice(value.value())
                    .map_err(|error| self.database_error(error))?,
            );
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    const ID: &str = "abc123-the-license-id";

    fn license_file(directory: &Path, expires: &str) -> PathBuf {
        let path = directory.join("license.yaml");
        std::fs::write(
            &path,
            format!(
                "apiVersion: kots.io/v1beta1\nkind: License\nspec:\n  appSlug: my-app\n  licenseID: {ID}\n  entitlements:\n    expires_at:\n      value: \"{expires}\"\n"
            ),
        )
        .unwrap();
        path
    }

    #[test]
    fn licenses_are_added_revoked_and_listed_without_their_id() {
        let directory = tempfile::tempdir().unwrap();
        let state = directory.path().join("state");
        let store = ProxyStore::open(&state).unwrap();
        let added = store
            .add_license(&license_file(directory.path(), ""))
            .unwrap();
        assert_eq!(added.app_slug, "my-app");
        assert_eq!(added.expires_at, None);
        assert!(!added.revoked);
        assert_eq!(store.list().unwrap(), vec![added.clone()]);
        assert_eq!(store.get(&SecretString::new(ID)).unwrap(), Some(added));

        let revoked = store.revoke(&SecretString::new(ID)).unwrap();
        assert!(revoked.revoked && revoked.revoked_at.is_some());
        assert!(matches!(
            store.revoke(&SecretString::new("other")),
            Err(StoreError::UnknownLicense { .. })
        ));
        // Re-adding the revoked license does not reactivate it; reinstating does.
        let license = read_license_file(&license_file(directory.path(), "")).unwrap();
        assert!(matches!(
            store.add(&license),
            Err(StoreError::Revoked { fingerprint, .. }) if fingerprint == revoked.fingerprint
        ));
        assert!(store.list().unwrap()[0].revoked);
        assert!(!store.reinstate(&license).unwrap().revoked);
        assert!(!store.list().unwrap()[0].revoked);
        store.revoke_fingerprint(&revoked.fingerprint).unwrap();
        assert_eq!(
            store.list().unwrap()[0].status(OffsetDateTime::now_utc()),
            LicenseStatus::Revoked
        );
        store
            .record_pull(PullRecord {
                seq: 0,
                time: String::new(),
                license_fingerprint: Some(revoked.fingerprint.clone()),
                app: Some("my-app".into()),
                image: None,
                kind: None,
                method: "GET".into(),
                reference: None,
                digest: None,
                bytes: 0,
                result: "revoked".into(),
                ..PullRecord::default()
            })
            .unwrap();
        assert_eq!(store.pulls().unwrap()[0].seq, 1);
        drop(store);

        let key = state.join("fingerprint.key");
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        for entry in std::fs::read_dir(&state).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            assert!(
                !bytes
                    .windows(ID.len())
                    .any(|window| window == ID.as_bytes())
            );
        }
    }

    #[test]
    fn expiry_is_checked_and_bad_files_never_quote_the_id() {
        let directory = tempfile::tempdir().unwrap();
        let store = ProxyStore::open(directory.path()).unwrap();
        let added = store
            .add_license(&license_file(directory.path(), "2020-01-01T00:00:00Z"))
            .unwrap();
        assert!(added.is_expired(OffsetDateTime::now_utc()));
        assert_eq!(
            added.status(OffsetDateTime::now_utc()),
            LicenseStatus::Expired
        );

        let error = store
            .add_license(&license_file(directory.path(), "next tuesday"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("expires_at") && !error.contains(ID),
            "{error}"
        );

        let path = directory.path().join("broken.yaml");
        std::fs::write(&path, format!("kind: License\nspec: [{ID}\n")).unwrap();
        let error = store.add_license(&path).unwrap_err().to_string();
        assert!(
            error.contains("broken.yaml") && !error.contains(ID),
            "{error}"
        );
    }

    /// What a proxy killed while redb was initialising a new store leaves (the file sized, no
    /// header yet) is under the temporary name, never `proxy.redb`: the next open creates the
    /// store and removes it.
    #[test]
    fn a_store_killed_while_first_created_opens_again() {
        let directory = tempfile::tempdir().unwrap();
        let state = directory.path().join("proxy-state");
        std::fs::create_dir(&state).unwrap();
        std::fs::File::create(state.join("proxy.redb.creating"))
            .and_then(|file| file.set_len(1024 * 1024))
            .unwrap();
        let store = ProxyStore::open(&state).expect("open after an interrupted creation");
        assert!(store.list().unwrap().is_empty());
        drop(store);
        let mut names: Vec<String> = std::fs::read_dir(&state)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["fingerprint.key", "proxy.redb"]);
    }
}
