//! The capture filter: `--port`/`--protocol` turned into BPF and joined with the user's
//! own `--filter` as `(generated) and (user)`, as the design specifies.

use std::fmt;

/// `--protocol`: which transport the generated filter selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    Tcp,
    Udp,
    #[default]
    All,
}

impl Protocol {
    pub fn parse(input: &str) -> Option<Protocol> {
        match input.to_ascii_lowercase().as_str() {
            "tcp" => Some(Protocol::Tcp),
            "udp" => Some(Protocol::Udp),
            "all" | "any" => Some(Protocol::All),
            _ => None,
        }
    }

    fn bpf(self) -> Option<&'static str> {
        match self {
            Protocol::Tcp => Some("tcp"),
            Protocol::Udp => Some("udp"),
            Protocol::All => None,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.bpf().unwrap_or("all"))
    }
}

/// Everything the user said about which packets to keep.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterSpec {
    pub ports: Vec<u16>,
    pub protocol: Protocol,
    /// The user's own BPF expression, passed through untouched (the remote tool judges it).
    pub expression: Option<String>,
}

impl FilterSpec {
    /// The part generated from `--port` and `--protocol`, if any:
    /// `tcp port 443`, `udp and (port 53 or port 5353)`, `port 80`, `tcp`.
    pub fn generated(&self) -> Option<String> {
        let ports = match self.ports.as_slice() {
            [] => None,
            [port] => Some(format!("port {port}")),
            many => Some(format!(
                "({})",
                many.iter()
                    .map(|p| format!("port {p}"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            )),
        };
        match (self.protocol.bpf(), ports) {
            (None, ports) => {
                ports.map(|p| p.trim_start_matches('(').trim_end_matches(')').to_string())
            }
            (Some(proto), None) => Some(proto.to_string()),
            (Some(proto), Some(p)) if self.ports.len() == 1 => Some(format!("{proto} {p}")),
            (Some(proto), Some(p)) => Some(format!("{proto} and {p}")),
        }
    }

    /// The whole expression handed to the remote tool, or `None` to capture everything.
    pub fn to_bpf(&self) -> Option<String> {
        let user = self
            .expression
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty());
        match (self.generated(), user) {
            (None, None) => None,
            (Some(g), None) => Some(g),
            (None, Some(u)) => Some(u.to_string()),
            (Some(g), Some(u)) => Some(format!("({g}) and ({u})")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ports: &[u16], protocol: Protocol, expression: Option<&str>) -> FilterSpec {
        FilterSpec {
            ports: ports.to_vec(),
            protocol,
            expression: expression.map(str::to_string),
        }
    }

    #[test]
    fn design_examples() {
        assert_eq!(
            spec(&[443], Protocol::All, None).to_bpf().as_deref(),
            Some("port 443")
        );
        assert_eq!(
            spec(&[443], Protocol::Tcp, None).to_bpf().as_deref(),
            Some("tcp port 443")
        );
        assert_eq!(
            spec(&[53], Protocol::Udp, None).to_bpf().as_deref(),
            Some("udp port 53")
        );
        assert_eq!(
            spec(&[443], Protocol::All, Some("host 10.0.0.5"))
                .to_bpf()
                .as_deref(),
            Some("(port 443) and (host 10.0.0.5)")
        );
    }

    #[test]
    fn several_ports_and_no_filter() {
        assert_eq!(
            spec(&[80, 443], Protocol::Tcp, None).to_bpf().as_deref(),
            Some("tcp and (port 80 or port 443)")
        );
        assert_eq!(
            spec(&[80, 443], Protocol::All, None).to_bpf().as_deref(),
            Some("port 80 or port 443")
        );
        assert_eq!(
            spec(&[80, 443], Protocol::All, Some("tcp"))
                .to_bpf()
                .as_deref(),
            Some("(port 80 or port 443) and (tcp)")
        );
        assert_eq!(
            spec(&[], Protocol::Udp, None).to_bpf().as_deref(),
            Some("udp")
        );
        assert_eq!(spec(&[], Protocol::All, Some("  ")).to_bpf(), None);
        assert_eq!(spec(&[], Protocol::All, None).to_bpf(), None);
    }

    #[test]
    fn protocol_names() {
        assert_eq!(Protocol::parse("TCP"), Some(Protocol::Tcp));
        assert_eq!(Protocol::parse("all"), Some(Protocol::All));
        assert_eq!(Protocol::parse("icmp"), None);
    }
}
