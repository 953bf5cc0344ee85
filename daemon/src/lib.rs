//! `windlass watch`: a daemon that installs every release dropped into a directory, once per
//! release digest, one at a time, through the same install API as `windlass install`, and serves
//! its status, Prometheus metrics and a read-only web console.

pub mod api;
pub mod console;
pub mod content;
pub mod daemon;
pub mod events;
pub mod ledger;
pub mod metrics;
pub mod namespaces;
pub mod reads;
pub mod watch;
