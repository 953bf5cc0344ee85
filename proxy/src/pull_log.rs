//! The pull log's limits: what one request may cost on disk.
//!
//! - [`append`] writes records to the pull log in one transaction and keeps the log under its size
//!   cap: the JSON bytes of all records are counted in the `pull_log_size` table, and the oldest
//!   records are deleted as new ones push the total over the cap (redb reuses the freed pages, so
//!   the file stops growing near the cap).
//! - Every text field of a record is cut to [`MAX_LOGGED_BYTES`] and the record marked
//!   `truncated`, so a 4 KiB path costs at most a few hundred bytes.
//! - [`DeniedRequests`] counts the requests anyone can send without a license the store holds
//!   (anonymous, unknown credentials) and malformed ones in memory, per client address, reason
//!   and (for known licenses) fingerprint, and [`DeniedRequests::flush`] writes one
//!   aggregated record per such key with its count and first and last time. The server flushes
//!   every `limits.denied_log_interval_seconds`, so a flood of anonymous requests costs one
//!   durable write per interval, not one per request.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use redb::{ReadableTable, ReadableTableMetadata, TableDefinition};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::store::{PULLS, ProxyStore, PullRecord, StoreError};

/// Longest text (path, user agent, reason, image, reference...) written to the pull log, in bytes.
pub const MAX_LOGGED_BYTES: usize = 256;

/// Distinct (address, reason, fingerprint) keys counted between two flushes; beyond it, requests
/// are counted under their reason alone (no address), so memory stays bounded.
const MAX_DENIAL_KEYS: usize = 4096;

/// What ends a cut text.
const TRUNCATED_MARK: &str = "...[truncated]";

/// The running total of the pull log's JSON bytes, under [`TOTAL_BYTES_KEY`].
const PULL_LOG_SIZE: TableDefinition<&str, u64> = TableDefinition::new("pull_log_size");

const TOTAL_BYTES_KEY: &str = "total_bytes";

/// `text` cut to [`MAX_LOGGED_BYTES`] (on a character boundary, ending in `...[truncated]`), and
/// whether it was cut.
pub(crate) fn cap_text(text: &str) -> (String, bool) {
    if text.len() <= MAX_LOGGED_BYTES {
        return (text.to_string(), false);
    }
    let mut end = MAX_LOGGED_BYTES - TRUNCATED_MARK.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (format!("{}{TRUNCATED_MARK}", &text[..end]), true)
}

/// Cuts every text field of `record` to [`MAX_LOGGED_BYTES`], marking it `truncated` if any was.
fn cap_record(record: &mut PullRecord) {
    let mut truncated = record.truncated;
    let mut cap = |field: &mut String| {
        if field.len() > MAX_LOGGED_BYTES {
            *field = cap_text(field).0;
            truncated = true;
        }
    };
    cap(&mut record.method);
    cap(&mut record.result);
    for field in [
        &mut record.license_fingerprint,
        &mut record.app,
        &mut record.image,
        &mut record.kind,
        &mut record.reference,
        &mut record.digest,
        &mut record.source,
        &mut record.path,
        &mut record.user_agent,
    ]
    .into_iter()
    .flatten()
    {
        cap(field);
    }
    record.truncated = truncated;
}

fn now_text(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_else(|_| "unknown".into())
}

fn to_redb_error(error: impl std::fmt::Display) -> redb::Error {
    redb::Error::Io(std::io::Error::other(error.to_string()))
}

/// Appends `records` (fields capped, `seq` and `time` set unless `time` is already set) in one
/// transaction, then deletes the oldest records while the log's JSON total exceeds the store's
/// cap (the newest record is always kept). Returns the stored records.
pub(crate) fn append(
    store: &ProxyStore,
    records: Vec<PullRecord>,
) -> Result<Vec<PullRecord>, StoreError> {
    let max_bytes = store.pull_log_max_bytes();
    let now = now_text(OffsetDateTime::now_utc());
    store.write(|transaction| {
        let mut table = transaction.open_table(PULLS)?;
        let mut sizes = transaction.open_table(PULL_LOG_SIZE)?;
        let known_total = sizes.get(TOTAL_BYTES_KEY)?.map(|total| total.value());
        let mut total = match known_total {
            Some(total) => total,
            // A log written before the cap existed: count it once.
            None => {
                let mut total = 0u64;
                for entry in table.iter()? {
                    total += entry?.1.value().len() as u64;
                }
                total
            }
        };
        let first_seq = table.last()?.map_or(1, |(key, _)| key.value() + 1);
        let mut stored = Vec::with_capacity(records.len());
        for (seq, mut record) in (first_seq..).zip(records) {
            cap_record(&mut record);
            record.seq = seq;
            if record.time.is_empty() {
                record.time = now.clone();
            }
            let bytes = serde_json::to_vec(&record).map_err(to_redb_error)?;
            table.insert(seq, bytes.as_slice())?;
            total += bytes.len() as u64;
            stored.push(record);
        }
        while total > max_bytes && table.len()? > 1 {
            let Some((_, value)) = table.pop_first()? else {
                break;
            };
            total = total.saturating_sub(value.value().len() as u64);
        }
        sizes.insert(TOTAL_BYTES_KEY, total)?;
        Ok(stored)
    })
}

/// One refused or malformed request, as [`DeniedRequests::count`] takes it.
pub(crate) struct DeniedRequest<'a> {
    /// The client's address, when known.
    pub(crate) source: Option<IpAddr>,
    /// Why it was refused: `unauthenticated`, `unknown_license`, `revoked`, `expired`,
    /// `bad_request`, `not_found`, `method_not_allowed`.
    pub(crate) reason: &'static str,
    /// The fingerprint of a license the store holds (revoked or expired), if any.
    pub(crate) fingerprint: Option<String>,
    /// The request's method.
    pub(crate) method: &'a str,
    /// The request's path.
    pub(crate) path: &'a str,
    /// The request's `User-Agent`, if any.
    pub(crate) user_agent: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct DenialKey {
    source: Option<IpAddr>,
    reason: &'static str,
    fingerprint: Option<String>,
}

#[derive(Debug)]
struct DenialCount {
    count: u64,
    first: OffsetDateTime,
    last: OffsetDateTime,
    /// The method, path and user agent of the first request counted (already capped).
    method: String,
    path: String,
    user_agent: Option<String>,
    truncated: bool,
}

/// In-memory counts of refused and malformed requests, written as aggregated records by
/// [`DeniedRequests::flush`].
#[derive(Debug)]
pub(crate) struct DeniedRequests {
    store: Arc<ProxyStore>,
    counts: Mutex<HashMap<DenialKey, DenialCount>>,
}

impl DeniedRequests {
    /// Counts for `store`'s pull log.
    pub(crate) fn new(store: Arc<ProxyStore>) -> DeniedRequests {
        DeniedRequests {
            store,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Counts `request` in memory (nothing is written).
    pub(crate) fn count(&self, request: DeniedRequest<'_>) {
        let now = OffsetDateTime::now_utc();
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let mut key = DenialKey {
            source: request.source,
            reason: request.reason,
            fingerprint: request.fingerprint,
        };
        if counts.len() >= MAX_DENIAL_KEYS && !counts.contains_key(&key) {
            key.source = None;
            key.fingerprint = None;
        }
        counts
            .entry(key)
            .and_modify(|counted| {
                counted.count += 1;
                counted.last = now;
            })
            .or_insert_with(|| {
                let (method, method_cut) = cap_text(request.method);
                let (path, path_cut) = cap_text(request.path);
                let (user_agent, agent_cut) = match request.user_agent.map(cap_text) {
                    Some((agent, cut)) => (Some(agent), cut),
                    None => (None, false),
                };
                DenialCount {
                    count: 1,
                    first: now,
                    last: now,
                    method,
                    path,
                    user_agent,
                    truncated: method_cut || path_cut || agent_cut,
                }
            });
    }

    /// Writes one aggregated record per key counted since the last flush, in one transaction.
    pub(crate) async fn flush(&self) {
        let counted = std::mem::take(
            &mut *self
                .counts
                .lock()
                .unwrap_or_else(|poison| poison.into_inner()),
        );
        if counted.is_empty() {
            return;
        }
        let mut records: Vec<PullRecord> = counted
            .into_iter()
            .map(|(key, counted)| PullRecord {
                time: now_text(counted.last),
                first_time: Some(now_text(counted.first)),
                count: Some(counted.count),
                source: Some(
                    key.source
                        .map_or_else(|| "other".to_string(), |source| source.to_string()),
                ),
                license_fingerprint: key.fingerprint,
                method: counted.method,
                path: Some(counted.path),
                user_agent: counted.user_agent,
                truncated: counted.truncated,
                result: key.reason.to_string(),
                ..PullRecord::default()
            })
            .collect();
        records.sort_by(|left, right| left.first_time.cmp(&right.first_time));
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || append(&store, records)).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::error!(%error, "cannot append to the pull log"),
            Err(error) => tracing::error!(%error, "pull log task failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(image: &str) -> PullRecord {
        PullRecord {
            method: "GET".into(),
            image: Some(image.into()),
            result: "served".into(),
            ..PullRecord::default()
        }
    }

    #[test]
    fn long_texts_are_cut_on_a_character_boundary_and_marked() {
        let (short, cut) = cap_text("team/app");
        assert_eq!((short.as_str(), cut), ("team/app", false));
        let long = "é".repeat(300);
        let (capped, cut) = cap_text(&long);
        assert!(cut && capped.len() <= MAX_LOGGED_BYTES, "{}", capped.len());
        assert!(capped.ends_with(TRUNCATED_MARK));
    }

    #[test]
    fn the_log_keeps_its_newest_records_under_the_cap() {
        let directory = tempfile::tempdir().unwrap();
        let store = ProxyStore::open(directory.path()).unwrap();
        store.set_pull_log_max_bytes(20_000);
        for index in 0..400 {
            let image = format!("vendor.example/{}/{index}", "x".repeat(1000));
            let stored = append(&store, vec![record(&image)]).unwrap();
            assert!(stored[0].truncated);
            assert_eq!(stored[0].seq, index + 1);
        }
        let kept = store.pulls().unwrap();
        let bytes: usize = kept
            .iter()
            .map(|record| serde_json::to_vec(record).unwrap().len())
            .sum();
        assert!(bytes <= 20_000, "{bytes} bytes kept");
        assert!(kept.len() > 10, "only {} records kept", kept.len());
        assert_eq!(kept.last().unwrap().seq, 400);
        assert!(kept.windows(2).all(|pair| pair[1].seq == pair[0].seq + 1));
    }

    #[tokio::test]
    async fn denied_requests_are_aggregated_per_source_and_reason() {
        let directory = tempfile::tempdir().unwrap();
        let store = Arc::new(ProxyStore::open(directory.path()).unwrap());
        let denied = DeniedRequests::new(store.clone());
        let long_path = format!(
            "/v2/proxy/app/vendor.example/{}/manifests/v1",
            "a".repeat(4000)
        );
        for source in ["127.0.0.1", "127.0.0.1", "127.0.0.1", "10.0.0.7"] {
            denied.count(DeniedRequest {
                source: Some(source.parse().unwrap()),
                reason: "unauthenticated",
                fingerprint: None,
                method: "GET",
                path: &long_path,
                user_agent: Some("flood/1.0"),
            });
        }
        assert!(store.pulls().unwrap().is_empty());
        denied.flush().await;
        let records = store.pulls().unwrap();
        assert_eq!(records.len(), 2);
        let local = records
            .iter()
            .find(|record| record.source.as_deref() == Some("127.0.0.1"))
            .unwrap();
        assert_eq!(local.count, Some(3));
        assert_eq!(local.result, "unauthenticated");
        assert!(local.truncated && local.path.as_ref().unwrap().len() <= MAX_LOGGED_BYTES);
        denied.flush().await;
        assert_eq!(store.pulls().unwrap().len(), 2);
    }
}
