//! The request log tests and benchmarks read: one record per request (verb, resource,
//! namespace, name, HTTP status, dry run, field manager, user agent), and counts by verb with
//! writes (create, update, patch, delete, deletecollection that are not dry runs) counted
//! separately, so a test can assert "the second apply wrote nothing".

use std::collections::BTreeMap;

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`, or
    /// `discovery` for anything else.
    pub verb: String,
    /// API group of the resource (`""` for core or non-resource requests).
    pub group: String,
    /// Plural resource name (`""` for non-resource requests).
    pub resource: String,
    /// Subresource (`status`), if any.
    pub subresource: String,
    /// Namespace, if any.
    pub namespace: String,
    /// Object name, if any.
    pub name: String,
    /// `dryRun=All`.
    pub dry_run: bool,
    /// The `fieldManager` query parameter.
    pub field_manager: String,
    /// The `Content-Type` of a patch.
    pub content_type: String,
    /// The `User-Agent`.
    pub user_agent: String,
    /// The `Accept` header (which form of the objects the client asked for).
    pub accept: String,
    /// The HTTP status answered (0 while in flight).
    pub status: u16,
}

impl RequestRecord {
    /// Whether the request could change stored objects.
    pub fn is_write(&self) -> bool {
        matches!(
            self.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        ) && !self.dry_run
    }
}

/// Counts of requests so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// Requests by verb.
    pub by_verb: BTreeMap<String, u64>,
    /// Requests that could change stored objects (dry runs excluded).
    pub writes: u64,
    /// Dry-run writes.
    pub dry_runs: u64,
    /// Every request.
    pub total: u64,
}

impl RequestCounts {
    /// The count of one verb.
    pub fn verb(&self, verb: &str) -> u64 {
        self.by_verb.get(verb).copied().unwrap_or(0)
    }
}

/// Records and counts, bounded in memory.
#[derive(Debug, Default)]
pub struct RequestLog {
    records: Vec<RequestRecord>,
    counts: RequestCounts,
    limit: usize,
}

impl RequestLog {
    /// A log keeping at most `limit` records (counts are never dropped).
    pub fn new(limit: usize) -> Self {
        Self {
            records: Vec::new(),
            counts: RequestCounts::default(),
            limit,
        }
    }

    /// Adds a finished request.
    pub fn record(&mut self, record: RequestRecord) {
        *self.counts.by_verb.entry(record.verb.clone()).or_default() += 1;
        self.counts.total += 1;
        if record.is_write() {
            self.counts.writes += 1;
        } else if record.dry_run {
            self.counts.dry_runs += 1;
        }
        if self.records.len() < self.limit {
            self.records.push(record);
        }
    }

    /// The counts so far.
    pub fn counts(&self) -> RequestCounts {
        self.counts.clone()
    }

    /// The records so far (the first `limit`).
    pub fn records(&self) -> Vec<RequestRecord> {
        self.records.clone()
    }

    /// Forgets everything (between phases of a benchmark).
    pub fn reset(&mut self) {
        self.records.clear();
        self.counts = RequestCounts::default();
    }
}
