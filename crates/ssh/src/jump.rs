//! Jump hosts (`-J`/ProxyJump): each hop's SSH session carries the next hop's TCP
//! connection in a direct-tcpip channel, for chains of any length. Every jump
//! session must stay alive as long as the sessions tunnelled through it.

use russh::client::Handle;

use crate::error::Error;
use crate::hop::{Transport, connect_hop};
use crate::host_keys::ClientHandler;
use crate::options::ConnectOptions;
use crate::resolve::Hop;

/// An established jump session, kept for its tunnel.
pub(crate) struct JumpSession {
    pub label: String,
    pub handle: Handle<ClientHandler>,
}

/// Connects through `hops` in order; an error names the hop that failed.
pub(crate) async fn connect_chain(
    hops: &[Hop],
    opts: &ConnectOptions,
) -> Result<Vec<JumpSession>, Error> {
    let mut chain: Vec<JumpSession> = Vec::with_capacity(hops.len());
    for hop in hops {
        let transport = match chain.last() {
            None => Transport::Direct,
            Some(prev) => Transport::Via(&prev.handle, &prev.label),
        };
        let (handle, _state) = connect_hop(hop, transport, opts)
            .await
            .map_err(|e| e.at_jump(&hop.label))?;
        chain.push(JumpSession {
            label: hop.label.clone(),
            handle,
        });
    }
    Ok(chain)
}
