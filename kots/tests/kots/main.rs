//! The `windlass-kots` suite: the license reader, the classification of documents and the typed
//! custom resources.

mod classify;
mod license;
mod resources;
