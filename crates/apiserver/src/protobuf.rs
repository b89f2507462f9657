//! The little of Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`)
//! this server reads: kubectl's typed clients send SelfSubjectAccessReviews that way
//! (`kubectl auth can-i`). A body is the magic `k8s\0` and a `runtime.Unknown`
//! (field 1 TypeMeta, field 2 the object's own bytes); the review becomes the JSON
//! object a JSON client would have sent, so one code path answers both.

use serde_json::{Map, Value, json};

use crate::status::ApiError;

pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";
const MAGIC: &[u8] = b"k8s\0";

/// One field of a message: its number and, for length-delimited fields, the bytes
/// (varint and fixed-width values are skipped; no field read here has one).
struct Field<'a> {
    number: u64,
    bytes: Option<&'a [u8]>,
}

fn bad(why: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("invalid protobuf body: {why}"))
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, ApiError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or_else(|| bad("truncated varint"))?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(bad("varint longer than 64 bits"))
}

fn fields(buf: &[u8]) -> Result<Vec<Field<'_>>, ApiError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let number = key >> 3;
        let bytes = match key & 7 {
            0 => {
                varint(buf, &mut pos)?;
                None
            }
            1 | 5 => {
                pos += if key & 7 == 1 { 8 } else { 4 };
                None
            }
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).map_err(bad)?;
                let end = pos
                    .checked_add(len)
                    .filter(|&e| e <= buf.len())
                    .ok_or_else(|| bad(format!("field {number} runs past the end")))?;
                let b = &buf[pos..end];
                pos = end;
                Some(b)
            }
            t => return Err(bad(format!("field {number} has wire type {t}"))),
        };
        if pos > buf.len() {
            return Err(bad(format!("field {number} runs past the end")));
        }
        out.push(Field { number, bytes });
    }
    Ok(out)
}

/// The length-delimited field `number` (the last one, as protobuf merges).
fn get(buf: &[u8], number: u64) -> Result<Option<&[u8]>, ApiError> {
    Ok(fields(buf)?
        .into_iter()
        .rev()
        .find(|f| f.number == number)
        .and_then(|f| f.bytes))
}

fn string(buf: &[u8], number: u64) -> Result<String, ApiError> {
    let b = get(buf, number)?.unwrap_or_default();
    String::from_utf8(b.to_vec()).map_err(|e| bad(format!("field {number}: {e}")))
}

/// A message's string fields by name, leaving out empty ones as JSON encoding does.
fn strings(buf: &[u8], names: &[(u64, &str)]) -> Result<Value, ApiError> {
    let mut m = Map::new();
    for (n, name) in names {
        let s = string(buf, *n)?;
        if !s.is_empty() {
            m.insert(name.to_string(), json!(s));
        }
    }
    Ok(Value::Object(m))
}

/// A protobuf SelfSubjectAccessReview as its JSON form (kind, apiVersion, spec with
/// resourceAttributes or nonResourceAttributes; field and label selectors are not
/// read).
pub fn self_subject_access_review(body: &[u8]) -> Result<Value, ApiError> {
    let unknown = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad("no k8s\\0 prefix"))?;
    let type_meta = get(unknown, 1)?.unwrap_or_default();
    let raw = get(unknown, 2)?.unwrap_or_default();
    let spec = get(raw, 2)?.unwrap_or_default();
    let mut out = json!({
        "kind": string(type_meta, 2)?,
        "apiVersion": string(type_meta, 1)?,
        "metadata": {},
        "spec": {},
    });
    if let Some(res) = get(spec, 1)? {
        out["spec"]["resourceAttributes"] = strings(
            res,
            &[
                (1, "namespace"),
                (2, "verb"),
                (3, "group"),
                (4, "version"),
                (5, "resource"),
                (6, "subresource"),
                (7, "name"),
            ],
        )?;
    }
    if let Some(non) = get(spec, 2)? {
        out["spec"]["nonResourceAttributes"] = strings(non, &[(1, "path"), (2, "verb")])?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_what_kubectl_auth_can_i_sends() {
        // `kubectl auth can-i create pods/exec -n prod` (kubectl 1.32, from -v=9).
        let body: &[u8] =
            b"k8s\x00\x0a\x32\x0a\x17authorization.k8s.io/v1\x12\x17SelfSubjectAccessReview\
\x12\x40\x0a\x10\x0a\x00\x12\x00\x1a\x00\x22\x00\x2a\x00\x32\x00\x38\x00\x42\x00\
\x12\x22\x0a\x20\x0a\x04prod\x12\x06create\x1a\x00\x22\x00\x2a\x04pods\x32\x00\x3a\x04exec\
\x1a\x08\x08\x00\x12\x00\x1a\x00\x20\x00\x1a\x00\x22\x00";
        assert_eq!(
            self_subject_access_review(body).unwrap(),
            json!({
                "kind": "SelfSubjectAccessReview",
                "apiVersion": "authorization.k8s.io/v1",
                "metadata": {},
                "spec": {"resourceAttributes": {
                    "namespace": "prod", "verb": "create", "resource": "pods", "name": "exec"}},
            })
        );
    }

    #[test]
    fn refuses_truncated_and_foreign_bodies() {
        let e = self_subject_access_review(b"{}").unwrap_err();
        assert_eq!(e.message, "invalid protobuf body: no k8s\\0 prefix");
        let e = self_subject_access_review(b"k8s\x00\x0a\x32\x0a").unwrap_err();
        assert_eq!(
            e.message,
            "invalid protobuf body: field 1 runs past the end"
        );
    }
}
