//! Process-local memory the stages of one runner share: derived data that one stage computed and a
//! later stage may reuse instead of computing again (the built-in stages keep parsed YAML documents
//! here, keyed by the hash of their text). Nothing in a memo is a fact. A stage must record the
//! same facts whether or not it finds anything here, so an install resumed or replayed in another
//! process, where the memo starts empty, behaves the same, only slower.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One value of each type, created on first use and shared from then on.
#[derive(Default)]
pub struct Memo {
    entries: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self
            .entries
            .lock()
            .map(|entries| entries.len())
            .unwrap_or(0);
        formatter
            .debug_struct("Memo")
            .field("entries", &count)
            .finish()
    }
}

impl Memo {
    /// The shared `T`, created with `T::default()` the first time any stage asks for it.
    pub fn get<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        // A poisoned lock only means another stage panicked while holding it; the map itself is
        // always whole (entries are inserted in one step), so it is still safe to use.
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let entry = entries
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(T::default()) as Arc<dyn Any + Send + Sync>)
            .clone();
        drop(entries);
        entry
            .downcast::<T>()
            .unwrap_or_else(|_| unreachable!("entries are keyed by their own type"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Default)]
    struct Counter(AtomicUsize);

    #[test]
    fn each_type_gets_one_shared_value() {
        let memo = Memo::default();
        memo.get::<Counter>().0.fetch_add(2, Ordering::SeqCst);
        memo.get::<Counter>().0.fetch_add(3, Ordering::SeqCst);
        assert_eq!(memo.get::<Counter>().0.load(Ordering::SeqCst), 5);
        assert!(
            memo.get::<Mutex<Vec<u8>>>()
                .lock()
                .expect("lock")
                .is_empty()
        );
    }
}
