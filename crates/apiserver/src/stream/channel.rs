//! The Kubernetes remote-command channel protocol over WebSocket: subprotocol
//! negotiation and the channel bytes that prefix every binary message.

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
#[allow(dead_code)] // documented for completeness; resizes are ignored
pub const RESIZE: u8 = 4;
/// v5 only: `[CLOSE, n]` closes stream n (kubectl sends `FF 00` at the end of its stdin).
pub const CLOSE: u8 = 0xFF;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `channel.k8s.io`: the error channel carries plain text.
    V1,
    V4,
    V5,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::V1 => "channel.k8s.io",
            Protocol::V4 => "v4.channel.k8s.io",
            Protocol::V5 => "v5.channel.k8s.io",
        }
    }

    /// Picks the best protocol the client offered (`Sec-WebSocket-Protocol`, comma
    /// separated, possibly over several headers).
    pub fn negotiate<'a>(offers: impl Iterator<Item = &'a str>) -> Option<Protocol> {
        let offered: Vec<String> = offers
            .flat_map(|h| h.split(','))
            .map(|s| s.trim().to_string())
            .collect();
        [Protocol::V5, Protocol::V4, Protocol::V1]
            .into_iter()
            .find(|p| offered.iter().any(|o| o == p.name()))
    }
}

/// A message for one channel: the channel byte then the payload.
pub fn frame(channel: u8, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(data.len() + 1);
    v.push(channel);
    v.extend_from_slice(data);
    v
}

/// What goes on the error channel for a Status: JSON from v4 on, the message before.
pub fn status_frame(proto: Protocol, status: &serde_json::Value) -> Vec<u8> {
    match proto {
        Protocol::V1 => {
            let ok = status["status"] == "Success";
            let msg = if ok {
                String::new()
            } else {
                status["message"].as_str().unwrap_or("").to_string()
            };
            frame(ERROR, msg.as_bytes())
        }
        _ => frame(ERROR, status.to_string().as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_prefers_v5() {
        let p = Protocol::negotiate(["v4.channel.k8s.io, v5.channel.k8s.io"].into_iter());
        assert_eq!(p, Some(Protocol::V5));
        assert_eq!(
            Protocol::negotiate(["base64.channel.k8s.io"].into_iter()),
            None
        );
    }
}
