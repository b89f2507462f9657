//! `Status` objects: the body of every error reply (and of the exec error channel), in
//! the shape kubectl decodes to print messages such as `pods "x" not found`.

use serde_json::{Value, json};

/// An error the API answers with; rendered as a `v1 Status` with the HTTP code.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// `details` (name, kind, group), when the error is about one object.
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    /// `pods "x" not found`.
    pub fn not_found(resource: &str, name: &str) -> Self {
        let (group, kind) = split_group(resource);
        ApiError {
            details: Some(json!({"name": name, "group": group, "kind": kind})),
            ..Self::new(404, "NotFound", format!("{resource} \"{name}\" not found"))
        }
    }

    pub fn already_exists(resource: &str, name: &str) -> Self {
        let (group, kind) = split_group(resource);
        ApiError {
            details: Some(json!({"name": name, "group": group, "kind": kind})),
            ..Self::new(
                409,
                "AlreadyExists",
                format!("{resource} \"{name}\" already exists"),
            )
        }
    }

    /// `pods "x" is forbidden: WHY`: an admission plugin's refusal of one object.
    pub fn forbidden_object(resource: &str, name: &str, why: impl std::fmt::Display) -> Self {
        let (group, kind) = split_group(resource);
        ApiError {
            details: Some(json!({"name": name, "group": group, "kind": kind})),
            ..Self::new(
                403,
                "Forbidden",
                format!("{resource} \"{name}\" is forbidden: {why}"),
            )
        }
    }

    /// What the API server answers for a path it does not serve (e.g. the
    /// `pods/ephemeralcontainers` subresource of an old cluster): empty details, so
    /// clients can tell it from a missing object.
    pub fn path_not_found() -> Self {
        ApiError {
            details: Some(json!({})),
            ..Self::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            )
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// The authorizer's refusal, worded as the real one.
    pub fn forbidden(
        user: &str,
        verb: &str,
        resource: &str,
        subresource: Option<&str>,
        group: &str,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> Self {
        let full = match subresource {
            Some(s) => format!("{resource}/{s}"),
            None => resource.to_string(),
        };
        let who = match name {
            Some(n) => format!("{resource} \"{n}\" is forbidden"),
            None => format!("{resource} is forbidden"),
        };
        let scope = match namespace {
            Some(ns) => format!(" in the namespace \"{ns}\""),
            None => " at the cluster scope".to_string(),
        };
        ApiError {
            details: Some(json!({"name": name.unwrap_or(""), "group": group, "kind": resource})),
            ..Self::new(
                403,
                "Forbidden",
                format!(
                    "{who}: User \"{user}\" cannot {verb} resource \"{full}\" in API group \"{group}\"{scope}"
                ),
            )
        }
    }

    /// The authorizer's refusal of a non-resource path (`/api`, `/version`, ...).
    pub fn forbidden_path(user: &str, verb: &str, path: &str) -> Self {
        ApiError {
            details: Some(json!({})),
            ..Self::new(
                403,
                "Forbidden",
                format!("forbidden: User \"{user}\" cannot {verb} path \"{path}\""),
            )
        }
    }

    pub fn to_status(&self) -> Value {
        let mut v = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            v["details"] = d.clone();
        }
        v
    }
}

/// `deployments.apps` -> (`apps`, `deployments`); `pods` -> (``, `pods`).
fn split_group(resource: &str) -> (&str, &str) {
    match resource.split_once('.') {
        Some((r, g)) => (g, r),
        None => ("", resource),
    }
}

/// The exec/attach error-channel message for a finished process.
pub fn exit_status(code: i32, argv: &[String]) -> Value {
    if code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!(
            "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
            argv.join(" ")
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

/// The exec error-channel message for anything that failed before the process ran.
pub fn exec_failure(message: impl Into<String>) -> Value {
    json!({
        "metadata": {},
        "status": "Failure",
        "message": message.into(),
        "reason": "InternalError",
        "code": 500,
    })
}
