//! Bearer-token authentication and a two-user authorizer: `admin` may do anything,
//! `restricted` only reads (get, list, watch), like a viewer role.

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

/// One request as the authorizer sees it.
pub struct Attributes<'a> {
    pub verb: &'a str,
    pub group: &'a str,
    pub resource: &'a str,
    pub subresource: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
}

pub fn authorize(user: User, a: &Attributes<'_>) -> Result<(), ApiError> {
    let read = matches!(a.verb, "get" | "list" | "watch");
    // exec/attach/portforward are "create" on the subresource even over a GET upgrade.
    let streaming = matches!(a.subresource, Some("exec" | "attach" | "portforward"));
    if user == User::Admin || (read && !streaming) {
        return Ok(());
    }
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
