//! The agent's command line: a small subset of tcpdump's, plus what only the
//! wrapper passes (`--bpf`, `--remove`).

use std::path::PathBuf;

/// tcpdump's `-Q in|out|inout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    InOut,
    In,
    Out,
}

impl Direction {
    /// Whether a packet of this `sll_pkttype` is kept. As libpcap: PACKET_OUTGOING
    /// is out, every other type (host, broadcast, multicast, otherhost) is in.
    pub fn keeps(self, pkttype: u8) -> bool {
        let outgoing = pkttype == PACKET_OUTGOING;
        match self {
            Direction::InOut => true,
            Direction::In => !outgoing,
            Direction::Out => outgoing,
        }
    }
}

/// `--process`: attribute packets to processes; `Auto` captures without them
/// where this node refuses eBPF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    Off,
    On,
    Auto,
}

/// `PACKET_OUTGOING` in linux/if_packet.h.
pub const PACKET_OUTGOING: u8 = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// `any`, or one interface.
    pub interface: String,
    pub snaplen: u32,
    /// Ring size in KiB.
    pub buffer_kib: u32,
    /// Stop after this many packets; 0 for no limit.
    pub count: u64,
    /// tcpdump's `-Q`: which way the packets kept went.
    pub direction: Direction,
    /// The filter as `tcpdump -ddd` prints it; `None`: no filter.
    pub bpf: Option<String>,
    /// The link type `bpf` was compiled for (tcpdump's `-y` name).
    pub linktype: Option<String>,
    /// A directory holding the agent's own binary: removed at start, so nothing is
    /// left on the host whatever ends the agent.
    pub remove: Option<PathBuf>,
    pub process: Process,
}

pub fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        interface: "any".into(),
        snaplen: 262_144,
        buffer_kib: 16 << 10,
        count: 0,
        direction: Direction::InOut,
        bpf: None,
        linktype: None,
        remove: None,
        process: Process::Off,
    };
    while let Some(flag) = argv.next() {
        let mut value = |name: &str| argv.next().ok_or_else(|| format!("{name} needs a value"));
        match flag.as_str() {
            "-y" => args.linktype = Some(value("-y")?),
            "-i" => args.interface = value("-i")?,
            "-s" => args.snaplen = number(&value("-s")?, "-s")?,
            "-B" => args.buffer_kib = number(&value("-B")?, "-B")?,
            "-c" => args.count = number(&value("-c")?, "-c")?,
            "-Q" => {
                args.direction = match value("-Q")?.as_str() {
                    "in" => Direction::In,
                    "out" => Direction::Out,
                    "inout" => Direction::InOut,
                    other => return Err(format!("-Q: {other:?} is not in, out or inout")),
                }
            }
            "--bpf" => args.bpf = Some(value("--bpf")?),
            "--remove" => args.remove = Some(value("--remove")?.into()),
            "--process" => {
                args.process = match value("--process")?.as_str() {
                    "on" => Process::On,
                    "auto" => Process::Auto,
                    "off" => Process::Off,
                    other => return Err(format!("--process: {other:?} is not on, auto or off")),
                }
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if args.snaplen == 0 {
        args.snaplen = 262_144;
    }
    Ok(args)
}

fn number<T: std::str::FromStr>(text: &str, flag: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{flag}: {text:?} is not a number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Broadcast, multicast and another host's packets count as in, as in libpcap.
    #[test]
    fn direction_keeps_by_packet_type() {
        // PACKET_HOST, BROADCAST, MULTICAST, OTHERHOST, OUTGOING
        let kept = |d: Direction| (0..=4).filter(|&t| d.keeps(t)).collect::<Vec<u8>>();
        assert_eq!(kept(Direction::In), [0, 1, 2, 3]);
        assert_eq!(kept(Direction::Out), [4]);
        assert_eq!(kept(Direction::InOut), [0, 1, 2, 3, 4]);
    }

    fn parse_all(words: &[&str]) -> Result<Args, String> {
        parse(words.iter().map(|w| w.to_string()))
    }

    #[test]
    fn flags_become_args() {
        let args = parse_all(&[
            "-i", "eth0", "-s", "0", "-B", "4096", "-c", "5", "-y", "EN10MB",
        ])
        .unwrap();
        assert_eq!(args.linktype.as_deref(), Some("EN10MB"));
        assert_eq!(args.interface, "eth0");
        assert_eq!(args.snaplen, 262_144);
        assert_eq!(args.buffer_kib, 4096);
        assert_eq!(args.count, 5);
        assert_eq!(args.direction, Direction::InOut);
        assert_eq!(parse_all(&["-Q", "out"]).unwrap().direction, Direction::Out);
        assert!(parse_all(&["-Q", "both"]).is_err());
        assert_eq!(
            parse_all(&["--process", "auto"]).unwrap().process,
            Process::Auto
        );
        assert_eq!(parse_all(&[]).unwrap().process, Process::Off);
        assert!(parse_all(&["--process", "yes"]).is_err());
        assert!(parse_all(&["-x"]).is_err());
        assert!(parse_all(&["-s", "big"]).is_err());
        assert!(parse_all(&["-i"]).is_err());
    }
}
