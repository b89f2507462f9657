//! What this account may do, asked before doing it (for a dry run): RBAC through a
//! `SelfSubjectAccessReview` (the question `kubectl auth can-i` asks), and the Pod
//! Security level a namespace enforces, which decides whether kcap's debug
//! container (NET_RAW/NET_ADMIN) and privileged helper pod would be admitted.
//! Also whether the API server offers ephemeral containers at all.
//!
//! The unit tests here cover the requests as built; `--dry-run`'s integration
//! tests ask the test bed's API server (tests/integration/dry_run.rs).

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::PostParams;
use kube::{Api, Client};

use crate::Error;

/// The namespace label that sets the Pod Security level admission enforces
/// (`privileged`, `baseline` or `restricted`).
pub const ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";

/// Whether this account may `verb` the `resource` in `namespace` (`""`: in every
/// namespace, or a cluster-scoped resource such as `nodes`). `resource` is written
/// as kubectl takes it, `pods` or with its API group, `deployments.apps`;
/// `subresource` is e.g. `exec` or `ephemeralcontainers`.
///
/// An answer without a status allows nothing.
pub async fn can_i(
    client: &Client,
    verb: &str,
    resource: &str,
    subresource: Option<&str>,
    namespace: &str,
) -> Result<bool, Error> {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let answer = api
        .create(
            &PostParams::default(),
            &review(verb, resource, subresource, namespace),
        )
        .await
        .map_err(|e| Error::from_kube(e, "create", "selfsubjectaccessreviews", ""))?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

/// The review [`can_i`] posts: one resource attribute.
pub fn review(
    verb: &str,
    resource: &str,
    subresource: Option<&str>,
    namespace: &str,
) -> SelfSubjectAccessReview {
    let (resource, group) = resource.split_once('.').unwrap_or((resource, ""));
    SelfSubjectAccessReview {
        metadata: Default::default(),
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                // The core group is the empty one; like kubectl, send none.
                group: (!group.is_empty()).then(|| group.into()),
                resource: Some(resource.into()),
                subresource: subresource.map(Into::into),
                namespace: (!namespace.is_empty()).then(|| namespace.into()),
                ..Default::default()
            }),
            non_resource_attributes: None,
        },
        status: None,
    }
}

/// The Pod Security level `namespace` enforces: its [`ENFORCE_LABEL`], `None` when
/// unlabelled (then the cluster's default applies, `privileged` unless the
/// admission configuration sets another). Reading a namespace is a cluster-scoped
/// `get namespaces`, which an account with only namespaced roles may not do
/// ([`Error::Forbidden`]).
pub async fn pod_security_enforce(
    client: &Client,
    namespace: &str,
) -> Result<Option<String>, Error> {
    let api: Api<Namespace> = Api::all(client.clone());
    match api.get_opt(namespace).await {
        Ok(Some(ns)) => Ok(enforce_level(&ns)),
        Ok(None) => Err(Error::NamespaceNotFound {
            namespace: namespace.into(),
            existing: crate::resolve::names(&api).await,
        }),
        Err(e) => Err(Error::from_kube(e, "get", "namespaces", "")),
    }
}

/// Whether the API server offers ephemeral containers (Kubernetes 1.23 and later):
/// the `pods/ephemeralcontainers` subresource in core/v1 discovery.
pub async fn has_ephemeral_containers(client: &Client) -> Result<bool, Error> {
    let resources = client
        .list_core_api_resources("v1")
        .await
        .map_err(|e| Error::from_kube(e, "list", "api resources", ""))?;
    Ok(resources
        .resources
        .iter()
        .any(|r| r.name == "pods/ephemeralcontainers"))
}

fn enforce_level(namespace: &Namespace) -> Option<String> {
    namespace
        .metadata
        .labels
        .as_ref()?
        .get(ENFORCE_LABEL)
        .cloned()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reviews_ask_for_one_resource() {
        let exec = serde_json::to_value(review("create", "pods", Some("exec"), "prod")).unwrap();
        assert_eq!(exec["apiVersion"], "authorization.k8s.io/v1");
        assert_eq!(exec["kind"], "SelfSubjectAccessReview");
        assert_eq!(
            exec["spec"],
            json!({"resourceAttributes": {
                "verb": "create", "resource": "pods", "subresource": "exec", "namespace": "prod",
            }})
        );
        let deployments =
            serde_json::to_value(review("list", "deployments.apps", None, "")).unwrap();
        assert_eq!(
            deployments["spec"],
            json!({"resourceAttributes": {"verb": "list", "group": "apps", "resource": "deployments"}})
        );
        let ingresses =
            serde_json::to_value(review("get", "ingresses.networking.k8s.io", None, "web"))
                .unwrap();
        assert_eq!(
            ingresses["spec"]["resourceAttributes"]["group"],
            "networking.k8s.io"
        );
        // Posted, cluster-scoped, where the API server takes reviews.
        assert_eq!(
            <SelfSubjectAccessReview as kube::Resource>::url_path(&(), None),
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
        );
    }

    #[test]
    fn enforce_level_is_the_label() {
        let ns = |labels: serde_json::Value| -> Namespace {
            serde_json::from_value(json!({"metadata": {"name": "secure", "labels": labels}}))
                .unwrap()
        };
        assert_eq!(
            enforce_level(&ns(json!({ENFORCE_LABEL: "baseline", "team": "a"}))).as_deref(),
            Some("baseline")
        );
        assert_eq!(
            enforce_level(&ns(
                json!({"pod-security.kubernetes.io/warn": "restricted"})
            )),
            None
        );
        assert_eq!(enforce_level(&ns(json!(null))), None);
    }
}
