//! The ways kcap reaches a pod's network (`--via`), named once so that the
//! command line, the summary line and the errors all say them the same way.

/// Which way kcap reached a pod's network (`--via`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Exec,
    Ephemeral,
    Node,
    Ssh,
}

/// The order `--via auto` tries: the least intrusive first (exec leaves nothing
/// behind, an ephemeral container stays in the pod spec, a helper pod needs a
/// privileged pod in the namespace). SSH is never tried automatically: it needs
/// SSH access to the nodes, which a cluster user usually does not have.
pub const AUTO_ORDER: [Method; 3] = [Method::Exec, Method::Ephemeral, Method::Node];

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Exec => "exec",
            Method::Ephemeral => "ephemeral",
            Method::Node => "node",
            Method::Ssh => "ssh",
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
