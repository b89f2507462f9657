//! Bearer-token authentication and the server's one authorizer ([`decide`]) for two
//! users: `admin` may do anything, `restricted` only reads (get, list, watch), like a
//! viewer role. Requests ([`authorize`]) and SelfSubjectAccessReviews both ask it.

use crate::status::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum User {
    Admin,
    Restricted,
}

impl User {
    pub fn name(self) -> &'static str {
        match self {
            User::Admin => "admin",
            User::Restricted => "restricted",
        }
    }

    /// How RBAC's reasons name the user: `User "admin"`.
    fn subject(self) -> String {
        format!("User \"{}\"", self.name())
    }
}

pub struct Tokens {
    pub admin: String,
    pub restricted: String,
}

impl Tokens {
    pub fn generate() -> Self {
        Tokens {
            admin: format!("admin-{}", crate::util::random_hex(16)),
            restricted: format!("restricted-{}", crate::util::random_hex(16)),
        }
    }

    /// Who the `Authorization` header says the caller is.
    pub fn authenticate(&self, header: Option<&str>) -> Result<User, ApiError> {
        let token = header
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(ApiError::unauthorized)?;
        // Constant-time-ish comparison is unnecessary in a test bed; plain equality.
        if token == self.admin {
            Ok(User::Admin)
        } else if token == self.restricted {
            Ok(User::Restricted)
        } else {
            Err(ApiError::unauthorized())
        }
    }
}

/// One request as the authorizer sees it: a request to the API, or the
/// `resourceAttributes` of a SelfSubjectAccessReview.
pub struct Attributes<'a> {
    pub verb: &'a str,
    pub group: &'a str,
    pub resource: &'a str,
    pub subresource: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
}

/// The authorizer's answer. Like RBAC it never denies outright: a refusal is "no
/// rule allows it" (so a review's `status.denied` stays unset and `reason` empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed, and by which (emulated) binding, worded as RBAC's reason.
    Allowed {
        reason: String,
    },
    NoRuleAllows,
}

/// The one permission model: `admin` is bound to `cluster-admin`; `restricted` to
/// `view` (reads, but no exec/attach/portforward subresource, whatever the verb:
/// those are "create" even over a GET upgrade); every user may ask the server
/// what it may do (`system:basic-user`). The bindings are emulated, not objects.
pub fn decide(user: User, a: &Attributes<'_>) -> Decision {
    let read = matches!(a.verb, "get" | "list" | "watch");
    let streaming = matches!(a.subresource, Some("exec" | "attach" | "portforward"));
    let review = a.group == "authorization.k8s.io"
        && a.resource == "selfsubjectaccessreviews"
        && a.subresource.is_none()
        && a.verb == "create";
    if user == User::Admin {
        allowed_by("kcap-testbed-admin", "cluster-admin", user.subject())
    } else if review {
        allowed_by(
            "system:basic-user",
            "system:basic-user",
            AUTHENTICATED.into(),
        )
    } else if read && !streaming {
        allowed_by("kcap-testbed-restricted", "view", user.subject())
    } else {
        Decision::NoRuleAllows
    }
}

/// Non-resource paths (`/api`, `/version`, ...), by lowercase HTTP method: this
/// server serves only discovery there, which every authenticated user may read
/// (`system:discovery`); other methods are for admin only.
pub fn decide_path(user: User, verb: &str) -> Decision {
    if user == User::Admin {
        allowed_by("kcap-testbed-admin", "cluster-admin", user.subject())
    } else if verb == "get" {
        allowed_by("system:discovery", "system:discovery", AUTHENTICATED.into())
    } else {
        Decision::NoRuleAllows
    }
}

const AUTHENTICATED: &str = "Group \"system:authenticated\"";

fn allowed_by(binding: &str, role: &str, subject: String) -> Decision {
    Decision::Allowed {
        reason: format!(
            "RBAC: allowed by ClusterRoleBinding \"{binding}\" of ClusterRole \"{role}\" to {subject}"
        ),
    }
}

/// [`decide`] for a request: the 403 the real server answers when no rule allows it.
pub fn authorize(user: User, a: &Attributes<'_>) -> Result<(), ApiError> {
    if let Decision::Allowed { .. } = decide(user, a) {
        return Ok(());
    }
    // exec/attach/portforward are "create" on the subresource even over a GET upgrade.
    let streaming = matches!(a.subresource, Some("exec" | "attach" | "portforward"));
    Err(ApiError::forbidden(
        user.name(),
        if streaming { "create" } else { a.verb },
        a.resource,
        a.subresource,
        a.group,
        a.namespace,
        a.name,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs<'a>(verb: &'a str, resource: &'a str, sub: Option<&'a str>) -> Attributes<'a> {
        Attributes {
            verb,
            group: "",
            resource,
            subresource: sub,
            namespace: Some("prod"),
            name: None,
        }
    }

    #[test]
    fn restricted_reads_but_neither_streams_nor_writes() {
        let allowed = |u, v, r, s| matches!(decide(u, &attrs(v, r, s)), Decision::Allowed { .. });
        assert!(allowed(User::Restricted, "list", "pods", None));
        assert!(allowed(User::Restricted, "get", "pods", Some("log")));
        assert!(!allowed(User::Restricted, "get", "pods", Some("exec")));
        assert!(!allowed(User::Restricted, "create", "pods", Some("exec")));
        assert!(!allowed(
            User::Restricted,
            "patch",
            "pods",
            Some("ephemeralcontainers")
        ));
        assert!(!allowed(User::Restricted, "create", "pods", None));
        assert!(allowed(User::Admin, "create", "pods", Some("exec")));
        assert_eq!(
            decide(
                User::Restricted,
                &Attributes {
                    group: "authorization.k8s.io",
                    namespace: None,
                    ..attrs("create", "selfsubjectaccessreviews", None)
                }
            ),
            Decision::Allowed {
                reason: r#"RBAC: allowed by ClusterRoleBinding "system:basic-user" of ClusterRole "system:basic-user" to Group "system:authenticated""#.into()
            }
        );
    }
}
