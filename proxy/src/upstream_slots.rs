//! [`UpstreamSlots`]: a separate cap of requests in flight for each upstream, so one upstream that
//! hangs can fill only its own slots. A request waits a short, configured time for a slot of its
//! upstream and then fails fast ([`SlotsBusy`]) instead of queueing behind the hung requests; a
//! request to another upstream never waits on it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Every slot of one upstream stayed busy for the whole wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SlotsBusy {
    /// How many requests the upstream may have in flight.
    pub(crate) slots: usize,
}

/// The request slots of every upstream, by host.
#[derive(Debug)]
pub(crate) struct UpstreamSlots {
    by_host: BTreeMap<String, (Arc<Semaphore>, usize)>,
    wait: Duration,
}

impl UpstreamSlots {
    /// `caps` holds each upstream's host and cap; a request waits at most `wait` for a slot.
    pub(crate) fn new(caps: impl IntoIterator<Item = (String, usize)>, wait: Duration) -> Self {
        let by_host = caps
            .into_iter()
            .map(|(host, cap)| {
                let cap = cap.max(1);
                (host, (Arc::new(Semaphore::new(cap)), cap))
            })
            .collect();
        UpstreamSlots { by_host, wait }
    }

    /// A slot of `host`, held until the permit is dropped (after the response body is consumed).
    /// `None` for a host without slots (an unknown upstream, refused before this is asked).
    pub(crate) async fn acquire(
        &self,
        host: &str,
    ) -> Option<Result<OwnedSemaphorePermit, SlotsBusy>> {
        let (semaphore, slots) = self.by_host.get(host)?;
        let busy = SlotsBusy { slots: *slots };
        if let Ok(permit) = semaphore.clone().try_acquire_owned() {
            return Some(Ok(permit));
        }
        Some(
            match tokio::time::timeout(self.wait, semaphore.clone().acquire_owned()).await {
                Ok(Ok(permit)) => Ok(permit),
                // The semaphore is never closed; count a closed one as busy all the same.
                Ok(Err(_)) | Err(_) => Err(busy),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_upstream_fails_fast_and_leaves_the_others_free() {
        let slots = UpstreamSlots::new(
            [
                ("stuck.example".to_string(), 2),
                ("fine.example".to_string(), 2),
            ],
            Duration::from_millis(50),
        );
        let held: Vec<_> = [
            slots.acquire("stuck.example").await,
            slots.acquire("stuck.example").await,
        ]
        .into_iter()
        .map(|slot| slot.expect("known host").expect("free slot"))
        .collect();
        assert_eq!(
            slots
                .acquire("stuck.example")
                .await
                .expect("known host")
                .unwrap_err(),
            SlotsBusy { slots: 2 }
        );
        assert!(
            slots
                .acquire("fine.example")
                .await
                .expect("known host")
                .is_ok()
        );
        assert!(slots.acquire("unknown.example").await.is_none());
        drop(held);
        assert!(
            slots
                .acquire("stuck.example")
                .await
                .expect("known host")
                .is_ok()
        );
    }
}
