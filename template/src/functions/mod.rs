//! The functions templates call: Go's builtins (the engine's), KOTS's ([`kots`]) and sprig's
//! ([`sprig`]). The map is built once per process ([`function_map`]); a function reads what it
//! needs from the [`Scope`] of the render running on its thread — the install's
//! [`TemplateContext`], the [`Entropy`] the render draws time and randomness from, and the
//! [`Usage`] it notes what it read in — which [`crate::engine::render`] sets for the render.

pub mod args;
mod go_base64;
mod go_time;
pub mod kots;
mod random;
pub mod sprig;

use std::cell::RefCell;
use std::sync::{Arc, LazyLock};

use gotmpl::{FuncMap, TemplateError};

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

/// Every function KOTS templates can call (built once).
pub fn function_map() -> &'static FuncMap {
    static MAP: LazyLock<FuncMap> = LazyLock::new(|| {
        let mut map = FuncMap::new();
        sprig::add(&mut map);
        kots::add(&mut map);
        map
    });
    &MAP
}

thread_local! {
    /// The scope of the render running on this thread.
    static CURRENT: RefCell<Option<Scope>> = const { RefCell::new(None) };
}

/// `read` applied to the scope of the render running on this thread.
pub(crate) fn with_scope<R>(read: impl FnOnce(&Scope) -> R) -> Result<R, TemplateError> {
    CURRENT.with(|current| {
        current.borrow().as_ref().map(read).ok_or_else(|| {
            TemplateError::Exec("a template function was called outside a render".into())
        })
    })
}

/// Makes `scope` the current one on this thread until the guard is dropped (the previous one
/// comes back).
pub(crate) fn enter(scope: &Scope) -> ScopeGuard {
    let previous = CURRENT.with(|current| current.replace(Some(scope.clone())));
    ScopeGuard { previous }
}

/// Restores the previous scope when dropped.
pub(crate) struct ScopeGuard {
    previous: Option<Scope>,
}

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|current| *current.borrow_mut() = previous);
    }
}

pub use go_time::format as format_go_time;
