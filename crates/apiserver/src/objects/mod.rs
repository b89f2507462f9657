//! Per-kind object logic: defaults filled in on create, status written by the server,
//! and the translation between pod specs and the runtime's launch types.

pub mod node;
pub mod pod;
pub mod service;
pub mod workload;

use serde_json::{Value, json};

/// Makes sure `metadata` (and its `labels`) are objects and sets kind/apiVersion.
pub fn normalize(obj: &mut Value, kind: &str, api_version: &str) {
    if !obj.is_object() {
        *obj = json!({});
    }
    obj["kind"] = json!(kind);
    obj["apiVersion"] = json!(api_version);
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
}

pub fn name_of(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or("")
}

pub fn uid_of(obj: &Value) -> &str {
    obj["metadata"]["uid"].as_str().unwrap_or("")
}

pub fn is_deleting(obj: &Value) -> bool {
    obj["metadata"]["deletionTimestamp"].is_string()
}

/// The controller ownerReference pointing at `owner`.
pub fn owner_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// Whether `obj` is controlled by the object with this uid.
pub fn owned_by(obj: &Value, uid: &str) -> bool {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
}
