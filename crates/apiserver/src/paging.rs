//! `limit` and `continue` on lists, as the API defines them: at most `limit`
//! items, and a `continue` token in the list's metadata when more follow.
//!
//! The bed gives at most [`PAGE_CAP`] items per page whatever the limit (the API
//! lets a server return fewer than asked), so any test listing more objects than
//! that exercises its client's paging (kcap's, kubectl's, kube-rs's watcher's). A
//! list without `limit` is whole, as on a real server. The token is the last
//! item's namespace and name; the next page starts after it. Unlike etcd, the
//! store keeps no old versions: objects changed between pages are read as they
//! are when their page is.

use serde_json::Value;

use crate::status::ApiError;

/// The most items the bed puts in one page.
pub const PAGE_CAP: usize = 16;

/// One page of a list.
#[derive(Debug)]
pub struct Page {
    pub items: Vec<Value>,
    /// Where the next page starts; `None` on the last.
    pub next: Option<String>,
}

/// The page of `items` (sorted by namespace, then name, as the store lists them)
/// that `limit` and `token` (the query's `limit` and `continue`) ask for.
pub fn page(items: Vec<Value>, limit: Option<&str>, token: Option<&str>) -> Result<Page, ApiError> {
    let limit = match limit.unwrap_or("") {
        "" | "0" => None,
        s => Some(
            s.parse::<usize>()
                .map_err(|_| ApiError::bad_request(format!("invalid limit {s:?}")))?,
        ),
    };
    let after = match token.unwrap_or("") {
        "" => None,
        t => Some(
            t.split_once('/')
                .ok_or_else(|| ApiError::bad_request(format!("invalid continue token {t:?}")))?,
        ),
    };
    let mut rest = items
        .into_iter()
        .filter(|o| after.is_none_or(|(ns, name)| key(o) > (ns, name)))
        .peekable();
    let Some(limit) = limit else {
        return Ok(Page {
            items: rest.collect(),
            next: None,
        });
    };
    let items: Vec<Value> = rest.by_ref().take(limit.min(PAGE_CAP)).collect();
    let next = match (rest.peek(), items.last()) {
        (Some(_), Some(last)) => {
            let (ns, name) = key(last);
            Some(format!("{ns}/{name}"))
        }
        _ => None,
    };
    Ok(Page { items, next })
}

fn key(o: &Value) -> (&str, &str) {
    let meta = &o["metadata"];
    (
        meta["namespace"].as_str().unwrap_or(""),
        meta["name"].as_str().unwrap_or(""),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn objects(n: usize) -> Vec<Value> {
        (0..n)
            .map(|i| json!({"metadata": {"namespace": "prod", "name": format!("pod-{i:03}")}}))
            .collect()
    }

    fn names(page: &Page) -> Vec<&str> {
        page.items.iter().map(|o| key(o).1).collect()
    }

    #[test]
    fn pages_cover_every_item_once() {
        let whole = page(objects(40), None, None).unwrap();
        assert_eq!(whole.items.len(), 40);
        assert!(whole.next.is_none());
        let mut seen = Vec::new();
        let mut token = None;
        loop {
            let p = page(objects(40), Some("500"), token.as_deref()).unwrap();
            assert!(p.items.len() <= PAGE_CAP);
            seen.extend(names(&p).into_iter().map(String::from));
            match p.next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        let expected: Vec<String> = (0..40).map(|i| format!("pod-{i:03}")).collect();
        assert_eq!(seen, expected);
        let small = page(objects(40), Some("3"), Some("prod/pod-036")).unwrap();
        assert_eq!(names(&small), ["pod-037", "pod-038", "pod-039"]);
        assert!(small.next.is_none());
        assert!(page(objects(1), Some("x"), None).is_err());
        assert!(page(objects(1), Some("1"), Some("no-slash")).is_err());
    }
}
