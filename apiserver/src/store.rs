//! The object store: every object by group, resource, namespace and name, one global
//! monotonically increasing `resourceVersion`, and the recent history of changes that watches
//! replay from (older changes are compacted away: a watch from before the window gets 410
//! Expired). Every change is also broadcast to open watches.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast;

/// Where an object is stored.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// API group.
    pub group: String,
    /// Plural resource name.
    pub resource: String,
    /// Namespace (`""` for cluster-scoped objects).
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// The kind of change a watch reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeType {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Deleted.
    Deleted,
}

impl ChangeType {
    /// The watch event type.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Added => "ADDED",
            ChangeType::Modified => "MODIFIED",
            ChangeType::Deleted => "DELETED",
        }
    }
}

/// One change, as watches see it.
#[derive(Clone, Debug)]
pub struct Change {
    /// The resourceVersion the change made.
    pub revision: u64,
    /// What happened.
    pub kind: ChangeType,
    /// Which object.
    pub key: ObjectKey,
    /// The object after the change (before it, for deletions, with the new resourceVersion),
    /// shared with the store: a change costs no copy of its object.
    pub object: Arc<Value>,
}

/// Objects, revisions and history.
pub struct Store {
    objects: BTreeMap<ObjectKey, Arc<Value>>,
    revision: u64,
    history: VecDeque<Arc<Change>>,
    history_limit: usize,
    /// The oldest revision a watch can start after.
    compacted: u64,
    sender: broadcast::Sender<Arc<Change>>,
}

impl Store {
    /// An empty store keeping `history_limit` changes for watches.
    pub fn new(history_limit: usize) -> Self {
        let (sender, _) = broadcast::channel(65_536);
        Self {
            objects: BTreeMap::new(),
            revision: 1,
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted: 1,
            sender,
        }
    }

    /// The latest resourceVersion.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The oldest resourceVersion a watch may resume from.
    pub fn compacted(&self) -> u64 {
        self.compacted
    }

    /// Drops every change from the history (a test forcing 410 Expired).
    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted = self.revision;
    }

    /// The next resourceVersion, consumed.
    pub fn next_revision(&mut self) -> u64 {
        self.revision += 1;
        self.revision
    }

    /// The object at `key`.
    pub fn get(&self, key: &ObjectKey) -> Option<&Value> {
        self.objects.get(key).map(|object| &**object)
    }

    /// Every object of a resource (in one namespace, or all when `namespace` is None), by
    /// namespace then name.
    pub fn list(
        &self,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
    ) -> Vec<(&ObjectKey, &Value)> {
        let start = ObjectKey {
            group: group.to_owned(),
            resource: resource.to_owned(),
            namespace: namespace.unwrap_or("").to_owned(),
            name: String::new(),
        };
        self.objects
            .range(start..)
            .take_while(|(key, _)| {
                key.group == group
                    && key.resource == resource
                    && namespace.is_none_or(|namespace| key.namespace == namespace)
            })
            .map(|(key, object)| (key, &**object))
            .collect()
    }

    /// Every object in a namespace, of any resource.
    pub fn in_namespace(&self, namespace: &str) -> Vec<ObjectKey> {
        self.objects
            .keys()
            .filter(|key| key.namespace == namespace)
            .cloned()
            .collect()
    }

    /// Every key.
    pub fn keys(&self) -> Vec<ObjectKey> {
        self.objects.keys().cloned().collect()
    }

    /// Stores `object` (whose resourceVersion the caller set to `revision`) and records the change.
    pub fn put(&mut self, key: ObjectKey, object: Value, revision: u64) {
        self.put_shared(key, Arc::new(object), revision);
    }

    /// [`Store::put`] of an object the caller keeps a reference to.
    pub fn put_shared(&mut self, key: ObjectKey, object: Arc<Value>, revision: u64) {
        let kind = if self.objects.contains_key(&key) {
            ChangeType::Modified
        } else {
            ChangeType::Added
        };
        self.objects.insert(key.clone(), object.clone());
        self.record(Change {
            revision,
            kind,
            key,
            object,
        });
    }

    /// Removes the object; `last` is its final state (carrying the deletion's resourceVersion).
    pub fn remove(&mut self, key: &ObjectKey, last: Value, revision: u64) -> Option<Value> {
        let removed = self.objects.remove(key)?;
        self.record(Change {
            revision,
            kind: ChangeType::Deleted,
            key: key.clone(),
            object: Arc::new(last),
        });
        Some(Arc::unwrap_or_clone(removed))
    }

    fn record(&mut self, change: Change) {
        let change = Arc::new(change);
        self.history.push_back(change.clone());
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.compacted = dropped.revision;
            }
        }
        let _ = self.sender.send(change);
    }

    /// The changes after `revision`, and a receiver for the ones to come (subscribed while the
    /// caller holds the store, so nothing is missed or seen twice).
    pub fn changes_since(
        &self,
        revision: u64,
    ) -> (Vec<Arc<Change>>, broadcast::Receiver<Arc<Change>>) {
        let past = self
            .history
            .iter()
            .filter(|change| change.revision > revision)
            .cloned()
            .collect();
        (past, self.sender.subscribe())
    }

    /// A receiver for changes to come.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.sender.subscribe()
    }
}
