//! The lists behind the Kubernetes dialog's reload buttons, read from the API:
//! the namespaces, and the capturable targets of the chosen namespace (pods,
//! deployments, statefulsets, daemonsets, services, as `TYPE/NAME`).

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use kube::api::{Api, ListParams};
use kube::{Client, Resource, ResourceExt};

use kcap_kube::client::ClientOptions;

/// The values of the option `call` (`namespace` or `target`); `namespace` is the
/// dialog's current one (empty: the context's).
pub async fn values(
    context: &str,
    call: &str,
    namespace: Option<&str>,
) -> Result<Vec<String>, kcap_kube::Error> {
    let cluster = kcap_kube::client::connect(&ClientOptions {
        kubeconfig: None,
        context: Some(context.to_string()),
    })
    .await?;
    let client = cluster.client;
    let namespace = namespace
        .filter(|n| !n.is_empty())
        .unwrap_or(&cluster.default_namespace);
    match call {
        "namespace" => names::<Namespace>(Api::all(client), None)
            .await
            .map_err(|e| kcap_kube::Error::from_kube(e, "list", "namespaces", "")),
        "target" => targets(&client, namespace)
            .await
            .map_err(|e| kcap_kube::Error::from_kube(e, "list", "workloads and pods", namespace)),
        _ => Ok(Vec::new()),
    }
}

async fn targets(client: &Client, namespace: &str) -> Result<Vec<String>, kube::Error> {
    let mut all = Vec::new();
    all.extend(
        names::<Deployment>(Api::namespaced(client.clone(), namespace), Some("deploy")).await?,
    );
    all.extend(
        names::<StatefulSet>(Api::namespaced(client.clone(), namespace), Some("sts")).await?,
    );
    all.extend(names::<DaemonSet>(Api::namespaced(client.clone(), namespace), Some("ds")).await?);
    all.extend(names::<Service>(Api::namespaced(client.clone(), namespace), Some("svc")).await?);
    all.extend(names::<Pod>(Api::namespaced(client.clone(), namespace), Some("pod")).await?);
    Ok(all)
}

/// The objects' names, as `PREFIX/NAME` when a prefix is given.
async fn names<K>(api: Api<K>, prefix: Option<&str>) -> Result<Vec<String>, kube::Error>
where
    K: Resource + Clone + std::fmt::Debug + k8s_openapi::serde::de::DeserializeOwned,
{
    let list = kcap_kube::paged::list_all(&api, &ListParams::default()).await?;
    let mut names: Vec<String> = list
        .iter()
        .map(|o| match prefix {
            Some(p) => format!("{p}/{}", o.name_any()),
            None => o.name_any(),
        })
        .collect();
    names.sort();
    Ok(names)
}
