//! The [`ParsedCache`]: parsed YAML documents by the blake3 hash of their exact text, kept in the
//! engine's memo so that a document `fetch_base` parsed is not parsed again by `probe_images` or
//! the native build, and [`Reuse`], how [`crate::documents::parse_documents_with`] uses it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::documents::{parse_piece, split_documents};

/// Parsed documents by the blake3 hash of their exact text. Parsing is the largest cost of a big
/// release and the same text is parsed by `fetch_base`, `probe_images` and the native build; with
/// this cache only the first of them parses. Only documents that parsed are kept, and only up to
/// [`ParsedCache::MAX_TEXT_BYTES`] of text at once.
#[derive(Debug, Default)]
pub struct ParsedCache {
    held: Mutex<Held>,
    reused: AtomicUsize,
}

/// The documents a [`ParsedCache`] holds, each with the length of its text, and their total.
#[derive(Debug, Default)]
struct Held {
    documents: HashMap<[u8; 32], (Arc<serde_json::Value>, usize)>,
    text_bytes: usize,
}

impl ParsedCache {
    /// The most document text (in bytes) whose parsed form is held at once.
    pub const MAX_TEXT_BYTES: usize = 256 * 1024 * 1024;

    pub(crate) fn key(text: &str) -> [u8; 32] {
        *blake3::hash(text.as_bytes()).as_bytes()
    }

    fn held(&self) -> MutexGuard<'_, Held> {
        // A panic elsewhere cannot leave the map half-changed (each change is one step).
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The document whose text has blake3 hash `hash` (a blob id of the text names the same
    /// hash), if held: a stage working from recorded blobs finds parsed documents without reading
    /// their text back.
    pub fn get_by_text_hash(&self, hash: &[u8; 32]) -> Option<Arc<serde_json::Value>> {
        self.get(hash)
    }

    pub(crate) fn get(&self, key: &[u8; 32]) -> Option<Arc<serde_json::Value>> {
        let found = self
            .held()
            .documents
            .get(key)
            .map(|(value, _)| value.clone());
        self.count_reuse(found.is_some());
        found
    }

    pub(crate) fn take(&self, key: &[u8; 32]) -> Option<Arc<serde_json::Value>> {
        let mut held = self.held();
        let found = held.documents.remove(key).map(|(value, text_len)| {
            held.text_bytes -= text_len;
            value
        });
        drop(held);
        self.count_reuse(found.is_some());
        found
    }

    fn count_reuse(&self, found: bool) {
        if found {
            self.reused.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many times a document was reused instead of parsed.
    pub fn reused(&self) -> usize {
        self.reused.load(Ordering::Relaxed)
    }

    pub(crate) fn insert(&self, key: [u8; 32], text_len: usize, value: &Arc<serde_json::Value>) {
        let mut held = self.held();
        if held.text_bytes + text_len <= Self::MAX_TEXT_BYTES && !held.documents.contains_key(&key)
        {
            held.documents.insert(key, (value.clone(), text_len));
            held.text_bytes += text_len;
        }
    }

    /// Remembers `values` as the documents of `text`, which this process has just serialised from
    /// them, so that whoever parses `text` next can take them instead (one value per document as
    /// [`split_documents`] cuts the text; if they do not pair up, nothing is remembered). Debug
    /// builds check that each piece parses back to its value.
    pub fn remember_written(&self, text: &str, values: Vec<serde_json::Value>) {
        let pieces = split_documents(text);
        if pieces.len() != values.len() {
            return;
        }
        for ((line, piece), value) in pieces.into_iter().zip(values) {
            debug_assert_eq!(
                parse_piece(&piece, line).ok().as_ref(),
                Some(&value),
                "{piece:?} does not parse back to the value it was written from"
            );
            self.insert(Self::key(&piece), piece.len(), &Arc::new(value));
        }
    }

    /// How many documents are held.
    pub fn len(&self) -> usize {
        self.held().documents.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How [`parse_documents_with`](crate::documents::parse_documents_with) uses a [`ParsedCache`].
#[derive(Debug, Clone, Copy)]
pub enum Reuse<'a> {
    /// Parse everything.
    Nothing,
    /// Share documents found in the cache and add those parsed.
    Share(&'a ParsedCache),
    /// Take documents out of the cache (for their last reader, which may then own them without a
    /// copy); add nothing.
    Take(&'a ParsedCache),
}
