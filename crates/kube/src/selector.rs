//! Label selectors as the API's `labelSelector` query parameter: `matchLabels` and
//! `matchExpressions` (In, NotIn, Exists, DoesNotExist) joined with commas, the
//! form `kubectl get -l` takes.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::Error;

/// `None` for an empty selector, which would select every pod: a workload with one
/// is refused by the caller rather than capturing the whole namespace.
pub fn to_query(selector: &LabelSelector) -> Result<Option<String>, Error> {
    let mut terms: Vec<String> = Vec::new();
    for (k, v) in selector.match_labels.iter().flatten() {
        terms.push(format!("{k}={v}"));
    }
    for expr in selector.match_expressions.iter().flatten() {
        let values = expr.values.clone().unwrap_or_default().join(",");
        terms.push(match expr.operator.as_str() {
            "In" => format!("{} in ({values})", expr.key),
            "NotIn" => format!("{} notin ({values})", expr.key),
            "Exists" => expr.key.clone(),
            "DoesNotExist" => format!("!{}", expr.key),
            other => {
                return Err(Error::BadTarget(format!(
                    "unknown label selector operator {other:?} for key {}",
                    expr.key
                )));
            }
        });
    }
    Ok((!terms.is_empty()).then(|| terms.join(",")))
}

/// A service's `spec.selector` (plain equality).
pub fn from_map(labels: &BTreeMap<String, String>) -> Option<String> {
    (!labels.is_empty()).then(|| {
        labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn req(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
        }
    }

    #[test]
    fn labels_and_expressions() {
        let selector = LabelSelector {
            match_labels: Some(BTreeMap::from([("app".to_string(), "web".to_string())])),
            match_expressions: Some(vec![
                req("tier", "In", &["a", "b"]),
                req("env", "NotIn", &["dev"]),
                req("canary", "DoesNotExist", &[]),
                req("team", "Exists", &[]),
            ]),
        };
        assert_eq!(
            to_query(&selector).unwrap().unwrap(),
            "app=web,tier in (a,b),env notin (dev),!canary,team"
        );
        assert_eq!(to_query(&LabelSelector::default()).unwrap(), None);
        assert!(
            to_query(&LabelSelector {
                match_expressions: Some(vec![req("x", "Gt", &["1"])]),
                ..Default::default()
            })
            .is_err()
        );
    }
}
