//! The one error type of this crate: input that must not reach a remote shell.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error(
        "invalid interface name {0:?}: use letters, digits and . _ - : @ + (at most 15 characters), or `any`"
    )]
    Interface(String),
    #[error("{what} contains a NUL byte, which cannot be passed to a remote command")]
    Nul { what: &'static str },
    #[error("{what} contains a line break; write the expression on one line")]
    LineBreak { what: &'static str },
}
