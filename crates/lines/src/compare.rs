//! How a kcap line is checked against tcpdump's for the same packet (used by the
//! tests that run real tcpdump): the same text, except two things kcap does on
//! purpose. tcpdump goes on after the transport part with application-layer
//! decodes (`: HTTP: GET / HTTP/1.1`; DNS instead of `UDP, length N`), which kcap
//! leaves out; and in a Linux cooked v2 line tcpdump names the interface from the
//! reading machine's own interface table (`?`, or a local name that happens to
//! share the index), where kcap prints the capturing node's index (`if2`).

/// `tcpdump` and `ours` are lines without their timestamps.
pub fn agrees_with_tcpdump(tcpdump: &str, ours: &str) -> bool {
    let (t, o) = (without_ifname(tcpdump), without_ifname(ours));
    if t == o {
        return true;
    }
    if let Some(rest) = t.strip_prefix(o) {
        return rest.starts_with(": ");
    }
    // UDP whose payload tcpdump decoded: the same up to the payload.
    match o.rfind(": UDP, length ") {
        Some(at) => t.starts_with(&o[..at + 2]),
        None => false,
    }
}

/// Drops a cooked v2 line's interface column (`%-5s ` before the direction).
fn without_ifname(line: &str) -> &str {
    match line.get(6..) {
        Some(rest)
            if ["In  ", "Out ", "P   ", "B   ", "M   "]
                .iter()
                .any(|d| rest.starts_with(d)) =>
        {
            rest
        }
        _ => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_may_differ_and_what_may_not() {
        let ours =
            "if2   In  IP 10.0.0.1.80 > 10.0.0.2.5000: Flags [P.], seq 1:5, ack 1, win 5, length 4";
        assert!(agrees_with_tcpdump(
            "?     In  IP 10.0.0.1.80 > 10.0.0.2.5000: Flags [P.], seq 1:5, ack 1, win 5, length 4: HTTP",
            ours
        ));
        assert!(!agrees_with_tcpdump(
            "?     In  IP 10.0.0.1.80 > 10.0.0.2.5000: Flags [P.], seq 1:6, ack 1, win 5, length 4",
            ours
        ));
        assert!(!agrees_with_tcpdump(
            "?     Out IP 10.0.0.1.80 > 10.0.0.2.5000: Flags [P.], seq 1:5, ack 1, win 5, length 4",
            ours
        ));
        assert!(agrees_with_tcpdump(
            "IP 10.0.0.1.5353 > 10.0.0.2.5353: 3365+ A (QM)? probe.kcap.test. (33)",
            "IP 10.0.0.1.5353 > 10.0.0.2.5353: UDP, length 33"
        ));
        assert!(!agrees_with_tcpdump(
            "IP 10.0.0.1.5353 > 10.0.0.9.5353: 3365+ A (QM)? probe.kcap.test. (33)",
            "IP 10.0.0.1.5353 > 10.0.0.2.5353: UDP, length 33"
        ));
    }
}
