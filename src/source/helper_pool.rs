//! The pool of `--via node` helper pods, one per node (and namespace) shared by
//! every capture there: the first capture that needs one creates it, the others
//! wait for the same pod, and the last one to finish deletes it. 32 pods on two
//! nodes need two privileged pods, not 32 (fewer pods to start, to admit and to
//! clean up). Every helper the API accepted is told to the [`Reaper`], so it is
//! deleted even if kcap is killed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kcap_kube::Error as KubeError;
use kcap_kube::methods::{self, HelperPod};
use tokio::sync::OnceCell;

use crate::reaper::Reaper;

/// How long kcap itself tries to delete a helper pod; after that (the API is
/// unreachable?) the reaper keeps trying once kcap has ended.
const DELETE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// (namespace, node): helpers live in the captured pods' namespace, so
/// namespace-scoped RBAC is enough.
type Key = (String, String);

pub struct HelperPool {
    client: kube::Client,
    image: String,
    reaper: Arc<Reaper>,
    /// Each slot with the number of leases on it.
    slots: Mutex<HashMap<Key, (Arc<Slot>, usize)>>,
}

#[derive(Default)]
struct Slot {
    /// The running helper, or why it could not be started: every waiter gets the
    /// same answer (a helper that did not start is not tried once per pod).
    ready: OnceCell<Result<HelperPod, KubeError>>,
    /// Set as soon as the API accepted the pod, so a helper that never started, or
    /// whose start was interrupted, is still deleted.
    created: Mutex<Option<HelperPod>>,
}

/// One capture's claim on a node's helper; give it back with [`HelperPool::release`].
pub struct Lease {
    key: Key,
    slot: Arc<Slot>,
}

impl HelperPool {
    pub fn new(client: kube::Client, image: String, reaper: Arc<Reaper>) -> HelperPool {
        HelperPool {
            client,
            image,
            reaper,
            slots: Mutex::default(),
        }
    }

    /// Claims the helper of `node` in `namespace` (not started yet: see [`HelperPool::ready`]).
    pub fn lease(&self, namespace: &str, node: &str) -> Lease {
        let key = (namespace.to_string(), node.to_string());
        let mut slots = self.slots.lock().expect("not poisoned");
        let (slot, users) = slots.entry(key.clone()).or_default();
        *users += 1;
        Lease {
            key,
            slot: slot.clone(),
        }
    }

    /// The running helper pod of `lease`, created by the first capture that asks.
    pub async fn ready(&self, lease: &Lease) -> Result<HelperPod, KubeError> {
        let (namespace, node) = &lease.key;
        let record = |h: &HelperPod| {
            self.reaper.made(h);
            *lease.slot.created.lock().expect("not poisoned") = Some(h.clone());
        };
        lease
            .slot
            .ready
            .get_or_init(|| {
                methods::create_helper(&self.client, namespace, node, &self.image, record)
            })
            .await
            .clone()
    }

    /// Gives a lease back; the last one deletes the helper.
    pub async fn release(&self, lease: Lease) {
        if let Some(helper) = self.last_out(lease) {
            self.delete(&helper).await;
        }
    }

    /// Drops a lease; returns the helper to delete when it was the last one.
    fn last_out(&self, lease: Lease) -> Option<HelperPod> {
        let mut slots = self.slots.lock().expect("not poisoned");
        let entry = slots.get_mut(&lease.key).expect("leased slot exists");
        entry.1 -= 1;
        if entry.1 > 0 {
            return None;
        }
        slots.remove(&lease.key);
        lease.slot.created.lock().expect("not poisoned").take()
    }

    async fn delete(&self, helper: &HelperPod) {
        let result = tokio::time::timeout(DELETE_TIMEOUT, helper.delete(&self.client))
            .await
            .unwrap_or_else(|_| {
                Err(KubeError::Unreachable(Arc::new(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {DELETE_TIMEOUT:?}"),
                ))))
            });
        match result {
            Ok(()) => self.reaper.dealt_with(helper),
            Err(e) => tracing::warn!(
                "kcap: warning: cannot delete helper pod {}/{}: {e} (kcap's reaper keeps trying after kcap ends)",
                helper.namespace,
                helper.name
            ),
        }
    }

    /// The helpers currently leased, for tests: (namespace, node, leases).
    #[cfg(test)]
    fn leases(&self) -> Vec<(String, String, usize)> {
        let slots = self.slots.lock().expect("not poisoned");
        let mut all: Vec<_> = slots
            .iter()
            .map(|((ns, node), (_, n))| (ns.clone(), node.clone(), *n))
            .collect();
        all.sort();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client that is never called: these tests only lease and release slots
    /// whose helper was never created, which needs no API.
    fn pool() -> HelperPool {
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let client = kube::Client::try_from(config).unwrap();
        HelperPool::new(client, "img".into(), Arc::new(Reaper::disabled()))
    }

    fn helper(name: &str) -> HelperPod {
        HelperPod {
            namespace: "prod".into(),
            name: name.into(),
        }
    }

    #[tokio::test]
    async fn one_slot_per_node_and_namespace_shared_until_the_last_lease() {
        let pool = pool();
        let a1 = pool.lease("prod", "node-a");
        let a2 = pool.lease("prod", "node-a");
        let b = pool.lease("prod", "node-b");
        let other_ns = pool.lease("dev", "node-a");
        assert!(Arc::ptr_eq(&a1.slot, &a2.slot));
        assert!(!Arc::ptr_eq(&a1.slot, &b.slot));
        assert_eq!(
            pool.leases(),
            vec![
                ("dev".into(), "node-a".into(), 1),
                ("prod".into(), "node-a".into(), 2),
                ("prod".into(), "node-b".into(), 1),
            ]
        );
        *a1.slot.created.lock().unwrap() = Some(helper("kcap-helper-x"));
        // The first release keeps the helper for the other capture on node-a.
        assert_eq!(pool.last_out(a1), None);
        // The last one gets it to delete.
        assert_eq!(pool.last_out(a2), Some(helper("kcap-helper-x")));
        // Nothing created on node-b: nothing to delete.
        assert_eq!(pool.last_out(b), None);
        assert_eq!(pool.leases(), vec![("dev".into(), "node-a".into(), 1)]);
        pool.release(other_ns).await;
        assert_eq!(pool.leases(), vec![]);
        // A new lease after the last release starts a fresh slot.
        let again = pool.lease("prod", "node-a");
        assert!(again.slot.created.lock().unwrap().is_none());
    }
}
