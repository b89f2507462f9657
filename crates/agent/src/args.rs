//! The agent's command line: a small subset of tcpdump's, plus what only the
//! wrapper passes (`--bpf`, `--remove`).

use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// `any`, or one interface.
    pub interface: String,
    pub snaplen: u32,
    /// Ring size in KiB.
    pub buffer_kib: u32,
    /// Stop after this many packets; 0 for no limit.
    pub count: u64,
    /// The filter as `tcpdump -ddd` prints it; `None`: no filter.
    pub bpf: Option<String>,
    /// The link type `bpf` was compiled for (tcpdump's `-y` name).
    pub linktype: Option<String>,
    /// A directory holding the agent's own binary: removed at start, so nothing is
    /// left on the host whatever ends the agent.
    pub remove: Option<PathBuf>,
}

pub fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        interface: "any".into(),
        snaplen: 262_144,
        buffer_kib: 16 << 10,
        count: 0,
        bpf: None,
        linktype: None,
        remove: None,
    };
    while let Some(flag) = argv.next() {
        let mut value = |name: &str| argv.next().ok_or_else(|| format!("{name} needs a value"));
        match flag.as_str() {
            "-y" => args.linktype = Some(value("-y")?),
            "-i" => args.interface = value("-i")?,
            "-s" => args.snaplen = number(&value("-s")?, "-s")?,
            "-B" => args.buffer_kib = number(&value("-B")?, "-B")?,
            "-c" => args.count = number(&value("-c")?, "-c")?,
            "--bpf" => args.bpf = Some(value("--bpf")?),
            "--remove" => args.remove = Some(value("--remove")?.into()),
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
        assert!(parse_all(&["-x"]).is_err());
        assert!(parse_all(&["-s", "big"]).is_err());
        assert!(parse_all(&["-i"]).is_err());
    }
}
