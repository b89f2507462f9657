//! Lists read in pages, as kubectl reads them (`--chunk-size`, 500 by default):
//! each answer stays small whatever the cluster's size (far below
//! [`MAX_ANSWER`](crate::answer_limits::MAX_ANSWER)), and the API server never has
//! to build one huge answer. A server that keeps sending pages is cut off after
//! [`MAX_PAGES`], so a lying one cannot hold kcap forever.

use kube::Api;
use kube::api::ListParams;
use serde::de::DeserializeOwned;

use crate::answer_limits::Refused;

/// Items asked for per page (kubectl's default chunk size).
pub const PAGE: u32 = 500;
/// Pages read at most: 500,000 objects of a kind is beyond any cluster's limits.
pub const MAX_PAGES: usize = 1000;

/// Every object `params` selects, read page by page.
pub async fn list_all<K>(api: &Api<K>, params: &ListParams) -> kube::Result<Vec<K>>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut params = params.clone().limit(PAGE);
    let mut items = Vec::new();
    for _ in 0..MAX_PAGES {
        let page = api.list(&params).await?;
        items.extend(page.items);
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => return Ok(items),
        }
    }
    Err(kube::Error::Service(Box::new(Refused::EndlessList(
        api.resource_url().to_string(),
    ))))
}
