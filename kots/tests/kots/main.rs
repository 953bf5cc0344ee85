//! The `windlass-kots` suite: the license reader and the classification of documents.

mod classify;
mod license;
