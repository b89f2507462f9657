//! `--via node` helper pods, one per node (and namespace) shared by every capture
//! there: the first capture that needs one creates it, the others wait for the
//! same pod, and the last one to finish deletes it. 32 pods on two nodes need two
//! privileged pods, not 32 (fewer pods to start, to admit and to clean up).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kcap_kube::Error as KubeError;
use kcap_kube::methods::{self, HelperPod};
use tokio::sync::OnceCell;

use super::pod::KubeContext;

/// How long kcap itself tries to delete a helper pod; after that (the API is
/// unreachable?) the reaper keeps trying once kcap has ended.
const DELETE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// (namespace, node): helpers live in the captured pods' namespace, so
/// namespace-scoped RBAC is enough.
type Key = (String, String);

#[derive(Default)]
pub struct HelperPool {
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
    /// Claims the helper of `node` in `namespace` (not started yet: see [`Lease::ready`]).
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

    /// Gives a lease back; the last one deletes the helper.
    pub async fn release(&self, ctx: &KubeContext, lease: Lease) {
        let last = {
            let mut slots = self.slots.lock().expect("not poisoned");
            let entry = slots.get_mut(&lease.key).expect("leased slot exists");
            entry.1 -= 1;
            entry.1 == 0 && slots.remove(&lease.key).is_some()
        };
        if !last {
            return;
        }
        let created = lease.slot.created.lock().expect("not poisoned").take();
        if let Some(helper) = created {
            delete(ctx, &helper).await;
        }
    }
}

impl Lease {
    /// The running helper pod, created by the first capture that asks.
    pub async fn ready(&self, ctx: &KubeContext) -> Result<HelperPod, KubeError> {
        let (namespace, node) = &self.key;
        let record = |h: &HelperPod| {
            ctx.reaper.created(h);
            *self.slot.created.lock().expect("not poisoned") = Some(h.clone());
        };
        self.slot
            .ready
            .get_or_init(|| {
                methods::create_helper(&ctx.client, namespace, node, &ctx.settings.image, record)
            })
            .await
            .clone()
    }
}

async fn delete(ctx: &KubeContext, helper: &HelperPod) {
    let result = tokio::time::timeout(DELETE_TIMEOUT, helper.delete(&ctx.client))
        .await
        .unwrap_or_else(|_| {
            Err(KubeError::Unreachable(Arc::new(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {DELETE_TIMEOUT:?}"),
            ))))
        });
    match result {
        Ok(()) => ctx.reaper.deleted(helper),
        Err(e) => tracing::warn!(
            "kcap: warning: cannot delete helper pod {}/{}: {e} (kcap's reaper keeps trying after kcap ends)",
            helper.namespace,
            helper.name
        ),
    }
}
