//! The object store: every object as JSON under (resource, namespace, name), one global
//! resourceVersion counter, and an event history plus broadcast that watches read from.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::status::ApiError;
use crate::util;

/// How many events a watch can resume from; older resourceVersions get 410 Expired.
const HISTORY: usize = 20_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

#[derive(Debug)]
pub struct Event {
    pub rv: u64,
    pub kind: EventType,
    pub resource: &'static str,
    pub namespace: String,
    pub object: Value,
}

type Key = (&'static str, String, String);

struct Inner {
    rv: u64,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<Arc<Event>>,
}

pub struct Store {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Arc<Event>>,
}

/// What a watch starts from: the events to send first and the live feed after them.
pub struct WatchStart {
    pub backlog: Vec<Arc<Event>>,
    pub feed: broadcast::Receiver<Arc<Event>>,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    pub fn new() -> Self {
        Store {
            inner: Mutex::new(Inner {
                rv: 1000,
                objects: BTreeMap::new(),
                history: VecDeque::new(),
            }),
            tx: broadcast::channel(65_536).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    pub fn get(&self, resource: &'static str, ns: &str, name: &str) -> Option<Value> {
        self.lock()
            .objects
            .get(&(resource, ns.to_string(), name.to_string()))
            .cloned()
    }

    /// Objects of one resource, in one namespace or all; with the list's resourceVersion.
    pub fn list(&self, resource: &'static str, ns: Option<&str>) -> (Vec<Value>, u64) {
        let inner = self.lock();
        let items = inner
            .objects
            .range((resource, String::new(), String::new())..)
            .take_while(|((r, _, _), _)| *r == resource)
            .filter(|((_, n, _), _)| ns.is_none_or(|ns| ns == n))
            .map(|(_, v)| v.clone())
            .collect();
        (items, inner.rv)
    }

    /// Stores a new object, filling in the metadata the server owns.
    pub fn create(
        &self,
        resource: &'static str,
        ns: &str,
        mut obj: Value,
        display: &str,
    ) -> Result<Value, ApiError> {
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        if name.is_empty() {
            return Err(ApiError::new(
                422,
                "Invalid",
                format!(
                    "{display} \"\" is invalid: metadata.name: Required value: name or generateName is required"
                ),
            ));
        }
        let mut inner = self.lock();
        let key = (resource, ns.to_string(), name.clone());
        if inner.objects.contains_key(&key) {
            return Err(ApiError::already_exists(display, &name));
        }
        inner.rv += 1;
        let rv = inner.rv;
        let meta = obj["metadata"]
            .as_object_mut()
            .expect("metadata is an object");
        meta.insert("uid".into(), json!(util::new_uid()));
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
        meta.insert("creationTimestamp".into(), json!(util::now_rfc3339()));
        meta.insert("generation".into(), json!(1));
        if !ns.is_empty() {
            meta.insert("namespace".into(), json!(ns));
        }
        inner.objects.insert(key, obj.clone());
        self.emit(&mut inner, EventType::Added, resource, ns, obj.clone());
        Ok(obj)
    }

    /// Changes an object in place; sends MODIFIED only when something changed. Bumps
    /// `metadata.generation` when the spec changed, as the real server does.
    pub fn update(
        &self,
        resource: &'static str,
        ns: &str,
        name: &str,
        display: &str,
        f: impl FnOnce(&mut Value) -> Result<(), ApiError>,
    ) -> Result<Value, ApiError> {
        let mut inner = self.lock();
        let key = (resource, ns.to_string(), name.to_string());
        let Some(old) = inner.objects.get(&key) else {
            return Err(ApiError::not_found(display, name));
        };
        let mut new = old.clone();
        f(&mut new)?;
        // The server owns identity fields: keep them whatever the patch said.
        for field in ["uid", "creationTimestamp", "name", "namespace"] {
            if let Some(v) = old["metadata"].get(field) {
                new["metadata"][field] = v.clone();
            }
        }
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        if new == *old {
            return Ok(new);
        }
        if new.get("spec") != old.get("spec") {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(1);
            new["metadata"]["generation"] = json!(g + 1);
        }
        inner.rv += 1;
        new["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
        inner.objects.insert(key, new.clone());
        self.emit(&mut inner, EventType::Modified, resource, ns, new.clone());
        Ok(new)
    }

    pub fn remove(&self, resource: &'static str, ns: &str, name: &str) -> Option<Value> {
        let mut inner = self.lock();
        let mut obj = inner
            .objects
            .remove(&(resource, ns.to_string(), name.to_string()))?;
        inner.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
        self.emit(&mut inner, EventType::Deleted, resource, ns, obj.clone());
        Some(obj)
    }

    fn emit(
        &self,
        inner: &mut Inner,
        kind: EventType,
        resource: &'static str,
        ns: &str,
        object: Value,
    ) {
        let ev = Arc::new(Event {
            rv: inner.rv,
            kind,
            resource,
            namespace: ns.to_string(),
            object,
        });
        if inner.history.len() >= HISTORY {
            inner.history.pop_front();
        }
        inner.history.push_back(ev.clone());
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(ev);
    }

    /// Starts a watch of `resource`. `from` None means "current state first" (ADDED for
    /// every object, like resourceVersion=0); Some(rv) replays what happened after rv.
    pub fn watch(
        &self,
        resource: &'static str,
        ns: Option<&str>,
        from: Option<u64>,
    ) -> Result<WatchStart, ApiError> {
        let inner = self.lock();
        // Subscribing under the lock means no event falls between backlog and feed.
        let feed = self.tx.subscribe();
        let backlog = match from {
            None => inner
                .objects
                .iter()
                .filter(|((r, n, _), _)| *r == resource && ns.is_none_or(|ns| ns == n))
                .map(|((_, n, _), v)| {
                    Arc::new(Event {
                        rv: inner.rv,
                        kind: EventType::Added,
                        resource,
                        namespace: n.clone(),
                        object: v.clone(),
                    })
                })
                .collect(),
            Some(rv) => {
                let oldest = inner.history.front().map(|e| e.rv).unwrap_or(inner.rv + 1);
                if rv + 1 < oldest && inner.history.len() >= HISTORY {
                    return Err(ApiError::new(
                        410,
                        "Expired",
                        format!("too old resource version: {rv} ({})", oldest - 1),
                    ));
                }
                inner
                    .history
                    .iter()
                    .filter(|e| e.rv > rv && e.resource == resource)
                    .filter(|e| ns.is_none_or(|ns| ns == e.namespace))
                    .cloned()
                    .collect()
            }
        };
        Ok(WatchStart { backlog, feed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_update_remove_and_history() {
        let s = Store::new();
        let rv0 = s.current_rv();
        s.create(
            "pods",
            "default",
            json!({"metadata": {"name": "a"}, "spec": {}}),
            "pods",
        )
        .unwrap();
        assert!(
            s.create(
                "pods",
                "default",
                json!({"metadata": {"name": "a"}}),
                "pods"
            )
            .is_err()
        );
        s.update("pods", "default", "a", "pods", |o| {
            o["spec"]["x"] = json!(1);
            Ok(())
        })
        .unwrap();
        s.remove("pods", "default", "a");
        let w = s.watch("pods", Some("default"), Some(rv0)).unwrap();
        let kinds: Vec<_> = w.backlog.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [EventType::Added, EventType::Modified, EventType::Deleted]
        );
        assert_eq!(w.backlog[1].object["metadata"]["generation"], 2);
    }
}
