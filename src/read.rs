//! `-r FILE`: a capture file read back instead of a capture, one record at a
//! time (memory does not grow with the file): printed by the lines sink, or
//! rewritten by the file sink (`-o`: pcap <-> pcapng, a subset of interfaces).
//! kcap's interface descriptions (pod, node, container, method) are shown, and
//! the file's address names (pcapng name records) are used and kept; a
//! file that ends inside a packet prints up to the last complete one and says so.
//!
//! `--connect URL` reads a capture another kcap serves the same way, live: its
//! output is flushed whenever the stream has nothing more waiting, it can go to
//! Wireshark (`--wireshark`), and Ctrl-C ends it with the output complete.

use std::io::Read;

use kcap_pcap::{CaptureFileReader, InterfaceInfo};
use kcap_serve::Watch;

use crate::config::{Config, ReadSettings};
use crate::event::SourceInfo;
use crate::names::NameTable;
use crate::sink::file::FileSink;
use crate::sink::lines::LinesSink;
use crate::sink::records::RecordsSink;
use crate::sink::{Interface, Sink, SinkError, SourceEnd};
use crate::stop::Stop;

/// Why a file could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot open {name}")]
    Open {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{name} is not a pcap or pcapng file")]
    NotACapture {
        name: String,
        #[source]
        source: kcap_pcap::Error,
    },
    /// `--connect`: the served stream broke off (exit code 12).
    #[error("the stream from {name} broke off after {packets} complete packets")]
    Lost {
        name: String,
        packets: u64,
        #[source]
        source: kcap_pcap::Error,
    },
    #[error("{name} ends inside a packet after {packets} complete packets")]
    Truncated {
        name: String,
        packets: u64,
        #[source]
        source: kcap_pcap::Error,
    },
}

/// Reads the file to its end (or `-c`) into the sinks. On a read error the sinks
/// are finished first, so a rewritten file is complete up to there.
/// Returns what became of `--callback`'s records, when it was asked for.
pub fn replay(
    config: &Config,
    read: &ReadSettings,
) -> Result<Option<kcap_callback::CallbackReport>, Box<dyn std::error::Error>> {
    let callback = crate::sink::records::CallbackReportHandle::default();
    let stop = Stop::default();
    // Wireshark found first: a missing one fails before connecting.
    let viewer = config
        .wireshark
        .as_ref()
        .map(crate::wireshark::Prepared::find)
        .transpose()?;
    let (input, name, watch): (Box<dyn Read>, String, Option<Watch>) =
        match (&read.connect, &read.path) {
            (Some(options), _) => {
                let connection = kcap_serve::Connection::open(options.clone())?;
                let watch = connection.watch();
                (Box::new(connection), redacted(&options.url), Some(watch))
            }
            (None, None) => (Box::new(std::io::stdin().lock()), "stdin".to_string(), None),
            (None, Some(p)) => {
                let name = p.display().to_string();
                match std::fs::File::open(p) {
                    Ok(f) => (
                        Box::new(std::io::BufReader::with_capacity(1 << 16, f)),
                        name,
                        None,
                    ),
                    Err(source) => return Err(Box::new(ReadError::Open { name, source })),
                }
            }
        };
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    if let Some(output) = &config.output {
        let open = crate::sink::file::open(output)?;
        sinks.push(Box::new(FileSink::new(open, output.format)?));
    }
    if let Some(print) = config.print {
        sinks.push(Box::new(LinesSink::stdout(print)));
    }
    if let Some(viewer) = viewer {
        sinks.push(viewer.start(&stop)?);
    }
    if let Some(records) = &config.records {
        let quiet = config.verbosity == crate::config::Verbosity::Quiet;
        sinks.push(Box::new(RecordsSink::open(records, quiet, &callback)?));
    }
    let mut replay = Replay {
        sinks,
        read,
        shown: Vec::new(),
        quiet: config.verbosity == crate::config::Verbosity::Quiet,
        watch,
        stop,
    };
    let result = replay.run(input, &name, config.count);
    if read.connect.is_some() && !replay.quiet {
        let why = match (&result, replay.interrupted()) {
            (_, true) => " (interrupted)",
            (Ok(n), false) if config.count.is_some_and(|c| *n >= c) => " (count reached)",
            (Ok(_), false) if replay.stop.reason().is_some() => " (Wireshark closed)",
            (Ok(_), false) => " (the capture ended)",
            (Err(_), false) => "",
        };
        let packets = match &result {
            Ok(n) => *n,
            Err(Failure::Read(ReadError::Lost { packets, .. })) => *packets,
            Err(_) => 0,
        };
        let to = config
            .output
            .as_ref()
            .map(|o| format!(" to {}", o.target_name()))
            .unwrap_or_default();
        eprintln!("kcap: wrote {packets} packets{to} from {name}{why}");
    }
    match result {
        Ok(_) => Ok(callback.lock().expect("callback report").take()),
        Err(Failure::Read(e)) => {
            let _ = replay.finish();
            Err(Box::new(e))
        }
        Err(Failure::Sink(e)) => Err(Box::new(e)),
    }
}

/// A URL as it may be shown: without its query (`?token=` is a secret).
fn redacted(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?…"),
        None => url.to_string(),
    }
}

enum Failure {
    Read(ReadError),
    Sink(SinkError),
}

impl From<SinkError> for Failure {
    fn from(e: SinkError) -> Failure {
        Failure::Sink(e)
    }
}

struct Replay<'a> {
    sinks: Vec<Box<dyn Sink>>,
    read: &'a ReadSettings,
    /// Per interface of the file: whether it is selected (once it was announced).
    shown: Vec<Option<bool>>,
    quiet: bool,
    /// `--connect`: when the stream has nothing waiting, and whether Ctrl-C ended it.
    watch: Option<Watch>,
    /// Set when Wireshark (`--wireshark`) went away.
    stop: Stop,
}

impl Replay<'_> {
    fn interrupted(&self) -> bool {
        self.watch.as_ref().is_some_and(Watch::interrupted)
    }

    /// The packets given to the sinks.
    fn run(
        &mut self,
        input: Box<dyn Read>,
        name: &str,
        count: Option<u64>,
    ) -> Result<u64, Failure> {
        let mut reader = CaptureFileReader::new(input).map_err(|source| {
            Failure::Read(ReadError::NotACapture {
                name: name.into(),
                source,
            })
        })?;
        let mut packets = 0u64;
        while count.is_none_or(|c| packets < c) && self.stop.reason().is_none() {
            let record = match reader.next() {
                None => break,
                Some(Ok(record)) => record,
                // Ctrl-C cut the stream: what came before is the capture.
                Some(Err(_)) if self.interrupted() => break,
                Some(Err(source)) => {
                    let name = name.into();
                    return Err(Failure::Read(match self.watch {
                        Some(_) => ReadError::Lost {
                            name,
                            packets,
                            source,
                        },
                        None => ReadError::Truncated {
                            name,
                            packets,
                            source,
                        },
                    }));
                }
            };
            // The file's name records (pcapng), before the packets that need them.
            let names = reader.take_names();
            if !names.is_empty() {
                let names = NameTable::from_file(names);
                self.sinks.iter_mut().try_for_each(|s| s.names(&names))?;
            }
            let id = record.interface_id as usize;
            if !self.announce(id, &reader.interfaces()[id])? {
                continue;
            }
            for sink in &mut self.sinks {
                sink.packet(id, &record.packet, record.comment.as_deref())?;
            }
            packets += 1;
            // Live: what has arrived reaches the file and Wireshark before kcap waits.
            if self.watch.as_ref().is_some_and(Watch::is_idle) {
                self.sinks.iter_mut().try_for_each(|s| s.flush())?;
            }
        }
        for stats in reader.statistics() {
            let id = stats.interface_id as usize;
            if self.shown.get(id).copied().flatten() == Some(true) {
                let end = SourceEnd {
                    source: id,
                    statistics: None,
                    first_ts: stats.statistics.start_nanos,
                    last_ts: stats.statistics.end_nanos,
                };
                for sink in &mut self.sinks {
                    sink.source_end(end)?;
                }
            }
        }
        self.finish()?;
        Ok(packets)
    }

    /// Tells the sinks about interface `id` the first time one of its packets
    /// comes; returns whether it is selected.
    fn announce(&mut self, id: usize, iface: &InterfaceInfo) -> Result<bool, SinkError> {
        if self.shown.len() <= id {
            self.shown.resize(id + 1, None);
        }
        if let Some(selected) = self.shown[id] {
            return Ok(selected);
        }
        let name = iface
            .name
            .clone()
            .unwrap_or_else(|| format!("interface {id}"));
        let selected =
            self.read.select.is_empty() || self.read.select.iter().any(|t| matches(t, &name));
        self.shown[id] = Some(selected);
        if !selected {
            return Ok(false);
        }
        if !self.quiet {
            match &iface.description {
                Some(d) => eprintln!("kcap: {name}: {d}"),
                None => eprintln!("kcap: {name}: {}", iface.link_type.name()),
            }
        }
        let info = SourceInfo {
            label: name.clone(),
            point: point(&name),
            interface_name: name.clone(),
            description: iface.description.clone().unwrap_or_default(),
            comment: None,
            names: Vec::new(),
        };
        let interface = Interface {
            source: id,
            info: &info,
            link_type: iface.link_type,
            snaplen: iface.snaplen,
        };
        for sink in &mut self.sinks {
            sink.interface(interface)?;
        }
        Ok(true)
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.sinks.iter_mut().try_for_each(|s| s.finish())
    }
}

/// kcap's interface names are `NS/POD/IFACE`, `node/NODE/IFACE` and `HOST:IFACE`;
/// the capture point of a line is the pod, or the node with its interface.
fn point(name: &str) -> String {
    match name.rsplit_once('/') {
        Some((rest, iface)) if rest.starts_with("node/") => {
            format!("{}:{iface}", &rest["node/".len()..])
        }
        Some((pod, _)) if pod.contains('/') => pod.to_string(),
        _ => name.to_string(),
    }
}

/// Whether `name` (one of kcap's interface names) is the interface of `target`.
fn matches(target: &kcap_kube::target::Target, name: &str) -> bool {
    use kcap_kube::target::Kind;
    let point = point(name);
    match target.kind {
        Kind::Node => point.split(':').next() == Some(target.name.as_str()),
        _ => match point.split_once('/') {
            Some((ns, pod)) => {
                pod == target.name && target.namespace.as_deref().is_none_or(|n| n == ns)
            }
            None => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use kcap_kube::target::Target;

    use super::*;

    #[test]
    fn points_and_selection_from_kcaps_interface_names() {
        assert_eq!(point("prod/web-0/any"), "prod/web-0");
        assert_eq!(point("node/worker-1/eth0"), "worker-1:eth0");
        assert_eq!(point("node-a:any"), "node-a:any");
        let pod = Target::parse("pod/web-0").unwrap();
        assert!(matches(&pod, "prod/web-0/any"));
        assert!(!matches(&pod, "prod/web-01/any"));
        let mut in_dev = pod.clone();
        in_dev.namespace = Some("dev".into());
        assert!(!matches(&in_dev, "prod/web-0/any"));
        assert!(matches(&in_dev, "dev/web-0/any"));
        let node = Target::parse("node/node-a").unwrap();
        assert!(matches(&node, "node-a:eth0"));
        assert!(matches(&node, "node/node-a/any"));
        assert!(!matches(&node, "prod/node-a/any"));
    }
}
