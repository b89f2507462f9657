//! PATCH bodies: JSON merge patch (RFC 7386), a strategic merge patch good enough for
//! kubectl (lists of named objects merge by `name`), and JSON patch (RFC 6902).

use serde_json::Value;

use crate::status::ApiError;

pub fn apply(target: &mut Value, content_type: &str, body: &[u8]) -> Result<(), ApiError> {
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid patch body: {e}")))?;
    if content_type.starts_with("application/json-patch+json") {
        json_patch(target, &patch)
    } else if content_type.starts_with("application/merge-patch+json") {
        merge(target, &patch, false);
        Ok(())
    } else if content_type.starts_with("application/strategic-merge-patch+json") {
        merge(target, &patch, true);
        Ok(())
    } else {
        Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json; got {content_type:?}"
            ),
        ))
    }
}

fn is_named_list(v: &Value) -> bool {
    v.as_array().is_some_and(|a| {
        !a.is_empty()
            && a.iter()
                .all(|e| e.get("name").is_some_and(Value::is_string))
    })
}

fn merge(target: &mut Value, patch: &Value, strategic: bool) {
    let Some(p) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    let t = target.as_object_mut().expect("made an object");
    for (k, v) in p {
        if k.starts_with("$") {
            continue;
        }
        if v.is_null() {
            t.remove(k);
        } else if strategic && is_named_list(v) && t.get(k).is_some_and(Value::is_array) {
            let list = t.get_mut(k).and_then(Value::as_array_mut).expect("checked");
            for item in v.as_array().into_iter().flatten() {
                match list.iter_mut().find(|e| e["name"] == item["name"]) {
                    Some(existing) => merge(existing, item, true),
                    None => list.push(item.clone()),
                }
            }
        } else {
            merge(t.entry(k.clone()).or_insert(Value::Null), v, strategic);
        }
    }
}

fn json_patch(target: &mut Value, ops: &Value) -> Result<(), ApiError> {
    let bad = |m: String| ApiError::new(422, "Invalid", m);
    for op in ops
        .as_array()
        .ok_or_else(|| bad("json patch must be a list".into()))?
    {
        let path = op["path"]
            .as_str()
            .ok_or_else(|| bad("op without path".into()))?;
        let tokens: Vec<String> = path
            .split('/')
            .skip(1)
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect();
        let Some((last, parents)) = tokens.split_last() else {
            return Err(bad(format!("invalid path {path:?}")));
        };
        let mut cur = &mut *target;
        for t in parents {
            cur = match cur {
                Value::Object(m) => m.get_mut(t),
                Value::Array(a) => t.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
                _ => None,
            }
            .ok_or_else(|| bad(format!("path {path:?} not found")))?;
        }
        match (op["op"].as_str().unwrap_or(""), cur) {
            ("add" | "replace", Value::Object(m)) => {
                m.insert(last.clone(), op["value"].clone());
            }
            ("add", Value::Array(a)) if last == "-" => a.push(op["value"].clone()),
            ("add", Value::Array(a)) => {
                let i = last
                    .parse::<usize>()
                    .map_err(|_| bad(format!("bad index in {path:?}")))?;
                if i > a.len() {
                    return Err(bad(format!("index out of range in {path:?}")));
                }
                a.insert(i, op["value"].clone());
            }
            ("replace", Value::Array(a)) => {
                let slot = last.parse::<usize>().ok().and_then(|i| a.get_mut(i));
                *slot.ok_or_else(|| bad(format!("bad index in {path:?}")))? = op["value"].clone();
            }
            ("remove", Value::Object(m)) => {
                m.remove(last);
            }
            ("remove", Value::Array(a)) => {
                let i = last
                    .parse::<usize>()
                    .map_err(|_| bad(format!("bad index in {path:?}")))?;
                if i < a.len() {
                    a.remove(i);
                }
            }
            ("test", _) => {}
            (other, _) => {
                return Err(bad(format!(
                    "unsupported json patch op {other:?} at {path:?}"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_appends_named() {
        let mut pod = json!({"spec": {"ephemeralContainers": [{"name": "a", "image": "x"}]}});
        let body = br#"{"spec":{"ephemeralContainers":[{"name":"b","image":"y"}]}}"#;
        apply(&mut pod, "application/strategic-merge-patch+json", body).unwrap();
        assert_eq!(
            pod["spec"]["ephemeralContainers"].as_array().unwrap().len(),
            2
        );
    }

    #[test]
    fn json_patch_ops() {
        let mut v = json!({"spec": {"replicas": 1, "list": [1]}});
        let body = br#"[{"op":"replace","path":"/spec/replicas","value":3},{"op":"add","path":"/spec/list/-","value":2}]"#;
        apply(&mut v, "application/json-patch+json", body).unwrap();
        assert_eq!(v, json!({"spec": {"replicas": 3, "list": [1, 2]}}));
    }
}
