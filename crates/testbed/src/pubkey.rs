//! OpenSSH public key files (`*.pub`): the `type base64` line that known_hosts
//! entries and host key checks compare. Shared by key generation and hosts.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

/// `type base64` of a `.pub` file (the comment is dropped).
pub(crate) fn public_key_line(pub_path: &Path) -> Result<String> {
    let text =
        fs::read_to_string(pub_path).with_context(|| format!("read {}", pub_path.display()))?;
    let mut parts = text.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some(kind), Some(b64)) => Ok(format!("{kind} {b64}")),
        _ => anyhow::bail!("malformed public key {}", pub_path.display()),
    }
}
