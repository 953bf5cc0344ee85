//! The functions of one render: Go's builtins (the engine's), KOTS's ([`kots`]) and sprig's
//! ([`sprig`]), each bound to a [`Scope`] — the install's [`TemplateContext`], the [`Entropy`] the
//! render draws time and randomness from, and the [`Usage`] it notes what it read in.

pub mod args;
mod go_time;
pub mod kots;
mod random;
pub mod sprig;

use std::sync::Arc;

use gotmpl::FuncMap;

use crate::context::{TemplateContext, Usage};
use crate::entropy::Entropy;

/// What the functions of one render are bound to.
#[derive(Clone)]
pub struct Scope {
    /// What templates can see.
    pub context: Arc<TemplateContext>,
    /// Time and randomness.
    pub entropy: Arc<dyn Entropy>,
    /// What the render read.
    pub usage: Arc<Usage>,
}

/// Every function KOTS templates can call, bound to `scope`.
pub fn function_map(scope: &Scope) -> FuncMap {
    let mut map = FuncMap::new();
    sprig::add(&mut map, scope);
    kots::add(&mut map, scope);
    map
}

pub use go_time::format as format_go_time;
