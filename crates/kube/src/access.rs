//! Asking before doing: whether this account may do something (SelfSubjectAccessReview,
//! what `kubectl auth can-i` asks) and which Pod Security level a namespace enforces.
//! Used by `--dry-run`, which must know what a capture would meet without trying it.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::PostParams;

use crate::Error;

/// The namespace label that sets the Pod Security level admission enforces.
pub const ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";

/// The review asking whether the caller may `verb` `resource[/subresource]` in `namespace`.
pub fn review(
    verb: &str,
    resource: &str,
    subresource: Option<&str>,
    namespace: &str,
) -> SelfSubjectAccessReview {
    SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                resource: Some(resource.into()),
                subresource: subresource.map(str::to_string),
                namespace: Some(namespace.into()),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    }
}

/// `kubectl auth can-i VERB RESOURCE[/SUBRESOURCE] -n NAMESPACE`.
pub async fn can_i(
    client: &kube::Client,
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

/// The level namespace `namespace` enforces (`privileged`, `baseline`, `restricted`),
/// or `None` when it has no label (then the cluster default applies: privileged
/// unless the API server was configured otherwise).
pub async fn pod_security_enforce(
    client: &kube::Client,
    namespace: &str,
) -> Result<Option<String>, Error> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns = api
        .get(namespace)
        .await
        .map_err(|e| Error::from_kube(e, "get", "namespaces", ""))?;
    Ok(ns
        .metadata
        .labels
        .and_then(|mut labels| labels.remove(ENFORCE_LABEL)))
}

/// Whether the API server offers ephemeral containers (Kubernetes 1.23 and later):
/// the `pods/ephemeralcontainers` subresource in core/v1 discovery.
pub async fn has_ephemeral_containers(client: &kube::Client) -> Result<bool, Error> {
    let resources = client
        .list_core_api_resources("v1")
        .await
        .map_err(|e| Error::from_kube(e, "list", "api resources", ""))?;
    Ok(resources
        .resources
        .iter()
        .any(|r| r.name == "pods/ephemeralcontainers"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn review_names_verb_resource_and_subresource() {
        let r = review("create", "pods", Some("exec"), "prod");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json["spec"]["resourceAttributes"],
            serde_json::json!({"verb": "create", "resource": "pods", "subresource": "exec", "namespace": "prod"})
        );
        assert_eq!(json["kind"], "SelfSubjectAccessReview");
        assert_eq!(json["apiVersion"], "authorization.k8s.io/v1");
    }
}
