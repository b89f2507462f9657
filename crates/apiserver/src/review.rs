//! SelfSubjectAccessReview (`POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`):
//! the caller asks whether it may do something (`kubectl auth can-i`, kcap's preflight)
//! and the authorizer that judges its real requests ([`auth::decide`]) answers. Nothing
//! is stored.

use serde_json::{Value, json};

use crate::auth::{self, Attributes, Decision, User};
use crate::discovery::AUTHORIZATION_GROUP;
use crate::request_log::AccessQuestion;
use crate::status::ApiError;

pub const PATH: &str = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
pub const RESOURCE: &str = "selfsubjectaccessreviews";
const KIND: &str = "SelfSubjectAccessReview";

/// The review echoed back with `status` filled in (the 201 body), and what was asked.
pub fn answer(user: User, review: Value) -> Result<(Value, AccessQuestion), ApiError> {
    if !review.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    if let Some(kind) = review["kind"].as_str()
        && kind != KIND
    {
        return Err(ApiError::bad_request(format!(
            "the kind of the body is {kind:?}, not {KIND:?}"
        )));
    }
    let spec = &review["spec"];
    let (res, non_res) = (&spec["resourceAttributes"], &spec["nonResourceAttributes"]);
    let str_of = |v: &Value, k: &str| v[k].as_str().unwrap_or("").to_string();
    let (question, decision) = match (res.is_object(), non_res.is_object()) {
        (true, false) => {
            let q = AccessQuestion {
                verb: str_of(res, "verb"),
                group: str_of(res, "group"),
                resource: str_of(res, "resource"),
                subresource: non_empty(str_of(res, "subresource")),
                namespace: non_empty(str_of(res, "namespace")),
                name: non_empty(str_of(res, "name")),
                path: None,
                allowed: false,
            };
            let decision = auth::decide(
                user,
                &Attributes {
                    verb: &q.verb,
                    group: &q.group,
                    resource: &q.resource,
                    subresource: q.subresource.as_deref(),
                    namespace: q.namespace.as_deref(),
                    name: q.name.as_deref(),
                },
            );
            (q, decision)
        }
        (false, true) => {
            let q = AccessQuestion {
                verb: str_of(non_res, "verb"),
                path: Some(str_of(non_res, "path")),
                ..AccessQuestion::default()
            };
            let decision = auth::decide_path(user, &q.verb);
            (q, decision)
        }
        (both, _) => {
            let (field, why) = if both {
                (
                    "nonResourceAttributes",
                    "cannot be specified in combination with resourceAttributes",
                )
            } else {
                (
                    "resourceAttributes",
                    "exactly one of nonResourceAttributes or resourceAttributes must be specified",
                )
            };
            return Err(ApiError::new(
                422,
                "Invalid",
                format!(
                    "{KIND}.{AUTHORIZATION_GROUP} \"\" is invalid: spec.{field}: Invalid value: {}: {why}",
                    spec
                ),
            ));
        }
    };
    let status = match &decision {
        Decision::Allowed { reason } => json!({"allowed": true, "reason": reason}),
        // RBAC has no opinion rather than a denial: no reason, no `denied`.
        Decision::NoRuleAllows => json!({"allowed": false}),
    };
    let mut out = review;
    out["kind"] = json!(KIND);
    out["apiVersion"] = json!(format!("{AUTHORIZATION_GROUP}/v1"));
    if !out["metadata"].is_object() {
        out["metadata"] = json!({});
    }
    out["status"] = status;
    let question = AccessQuestion {
        allowed: matches!(decision, Decision::Allowed { .. }),
        ..question
    };
    Ok((out, question))
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(user: User, attrs: Value) -> (Value, AccessQuestion) {
        answer(
            user,
            json!({"kind": KIND, "apiVersion": "authorization.k8s.io/v1", "metadata": {}, "spec": attrs}),
        )
        .unwrap()
    }

    #[test]
    fn answers_from_the_authorizer_and_echoes_the_spec() {
        let spec = json!({"resourceAttributes": {"verb": "create", "resource": "pods", "subresource": "exec", "namespace": "prod"}});
        let (out, q) = ask(User::Restricted, spec.clone());
        assert_eq!(out["status"], json!({"allowed": false}));
        assert_eq!(out["spec"], spec);
        assert_eq!(
            q,
            AccessQuestion {
                verb: "create".into(),
                resource: "pods".into(),
                subresource: Some("exec".into()),
                namespace: Some("prod".into()),
                ..AccessQuestion::default()
            }
        );
        let (out, q) = ask(User::Admin, spec);
        assert_eq!(
            out["status"],
            json!({"allowed": true, "reason": r#"RBAC: allowed by ClusterRoleBinding "kcap-testbed-admin" of ClusterRole "cluster-admin" to User "admin""#})
        );
        assert!(q.allowed);
        let (out, _) = ask(
            User::Restricted,
            json!({"nonResourceAttributes": {"verb": "get", "path": "/api"}}),
        );
        assert_eq!(out["status"]["allowed"], true);
    }

    #[test]
    fn exactly_one_kind_of_attributes() {
        let e = answer(User::Admin, json!({"spec": {}})).unwrap_err();
        assert_eq!((e.code, e.reason), (422, "Invalid"));
        assert!(
            e.message.ends_with(
                "exactly one of nonResourceAttributes or resourceAttributes must be specified"
            ),
            "{}",
            e.message
        );
    }
}
