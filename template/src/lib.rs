//! KOTS templates, as KOTS renders them: every release file's text goes through two passes of Go
//! `text/template` (`{{repl …}}`, then `repl{{ … }}`) before it is parsed as YAML ([`engine`]),
//! with KOTS's and sprig's functions ([`functions`]) over what the install knows ([`context`]):
//! the effective value of every `Config` item, computed from the release's `Config` and the
//! user's `ConfigValues` as KOTS computes it ([`config`]). Time and randomness come from an
//! injected [`entropy::Entropy`], recorded so that a render can be repeated byte for byte.
//! [`annotations`] decides `kots.io/exclude` and `kots.io/when` for a rendered document.
//!
//! This crate knows nothing about stages, events or the state directory; it reads the KOTS model
//! from `windlass-kots`.

pub mod annotations;
pub mod config;
pub mod config_values;
pub mod context;
pub mod engine;
pub mod entropy;
pub mod functions;

pub use context::{Credential, ItemValue, LocalRegistry, TemplateContext, Usage};
pub use engine::{RenderError, Rendered, render};
pub use entropy::{Entropy, Recorded, Recorder, Replay};
pub use functions::{Scope, function_map};
