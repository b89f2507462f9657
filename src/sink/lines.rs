//! `--print`: one tcpdump-style line per packet on stdout, in the merged time
//! order: the time (tcpdump's `-t` formats), the capture point, then
//! [`kcap_lines`]' text with names after addresses, a packet's own comment (read
//! back from a file), and `-x`/`-X`/`--ascii` dumps.

use std::io::{BufWriter, Write};

use kcap_lines::{Printer, dump};
use kcap_pcap::Packet;

use super::{Interface, Points, Sink, SinkError, SourceEnd};
use crate::config::{PrintSettings, TimeFormat};
use crate::event::SourceId;
use crate::names::NameTable;

pub struct LinesSink<W: Write = std::io::Stdout> {
    out: BufWriter<W>,
    printer: Printer,
    settings: PrintSettings,
    /// Empty with `--no-names`.
    names: NameTable,
    sources: Points,
    first_ts: Option<u64>,
    prev_ts: Option<u64>,
}

impl LinesSink<std::io::Stdout> {
    pub fn stdout(settings: PrintSettings) -> Self {
        LinesSink::new(std::io::stdout(), settings)
    }
}

impl<W: Write + Send> LinesSink<W> {
    pub fn new(out: W, settings: PrintSettings) -> Self {
        LinesSink {
            out: BufWriter::with_capacity(64 << 10, out),
            printer: Printer::new(),
            settings,
            names: NameTable::default(),
            sources: Points::default(),
            first_ts: None,
            prev_ts: None,
        }
    }

    /// The time column, as tcpdump's `-t` options print it.
    fn time(&mut self, ts: u64) -> String {
        let first = *self.first_ts.get_or_insert(ts);
        let prev = self.prev_ts.replace(ts).unwrap_or(ts);
        let fraction = |nanos: u64| {
            if self.settings.nanos {
                format!("{nanos:09}")
            } else {
                format!("{:06}", nanos / 1000)
            }
        };
        let (secs, nanos) = (ts / 1_000_000_000, ts % 1_000_000_000);
        let span = |d: u64| {
            let (s, n) = (d / 1_000_000_000, d % 1_000_000_000);
            format!(
                "{:02}:{:02}:{:02}.{}",
                s / 3600,
                s / 60 % 60,
                s % 60,
                fraction(n)
            )
        };
        match self.settings.time {
            TimeFormat::None => String::new(),
            TimeFormat::Epoch => format!("{secs}.{} ", fraction(nanos)),
            TimeFormat::Clock => {
                let t = crate::time::local(secs as i64);
                format!(
                    "{:02}:{:02}:{:02}.{} ",
                    t.hour,
                    t.minute,
                    t.second,
                    fraction(nanos)
                )
            }
            TimeFormat::Date => {
                let t = crate::time::local(secs as i64);
                format!(
                    "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{} ",
                    t.year,
                    t.month,
                    t.day,
                    t.hour,
                    t.minute,
                    t.second,
                    fraction(nanos)
                )
            }
            TimeFormat::Delta => format!("{} ", span(ts.saturating_sub(prev))),
            TimeFormat::SinceFirst => format!("{} ", span(ts.saturating_sub(first))),
        }
    }

    fn error(&self, source: std::io::Error) -> SinkError {
        SinkError::Write {
            target: "stdout".into(),
            source,
        }
    }
}

/// A packet's own comment (its process, or a file's comment read with `-r`), one
/// indented line per line of it, without kcap's pod keys and the process's (the
/// capture point and the process label on the line say those already).
fn noted(comment: &str) -> String {
    const SAID_BY_THE_POINT: [&str; 1] = ["NodeName"];
    let said = |line: &str| {
        let key = line.split_once(':').map_or("", |(k, _)| k);
        SAID_BY_THE_POINT.contains(&key) || crate::process::KEYS.contains(&key)
    };
    comment
        .lines()
        .filter(|l| !l.trim().is_empty() && !said(l))
        .map(|l| format!("\n    {l}"))
        .collect()
}

/// The process in a packet's comment as ptcpdump shows it: `curl.4242 ` after the
/// capture point, and `, ParentProc [sh.4100]` at the end of the line.
fn process(comment: Option<&str>) -> (String, String) {
    let Some(text) = comment else {
        return Default::default();
    };
    let own = crate::process::label(text, "PID", "Cmd").map(|p| format!("{p} "));
    let parent = crate::process::label(text, "ParentPID", "ParentCmd")
        .map(|p| format!(", ParentProc [{p}]"));
    (own.unwrap_or_default(), parent.unwrap_or_default())
}

impl<W: Write + Send> Sink for LinesSink<W> {
    fn names(&mut self, names: &NameTable) -> Result<(), SinkError> {
        if self.settings.names {
            self.names.merge(names);
        }
        Ok(())
    }

    fn interface(&mut self, interface: Interface<'_>) -> Result<(), SinkError> {
        self.sources.started(interface);
        Ok(())
    }

    fn packet(
        &mut self,
        source: SourceId,
        packet: &Packet,
        comment: Option<&str>,
    ) -> Result<(), SinkError> {
        let Some((link, point)) = self.sources.get(source) else {
            return Ok(());
        };
        let point = point.to_string();
        let time = self.time(packet.ts_nanos);
        let line = self
            .printer
            .describe(link, &packet.data, packet.orig_len, &self.names);
        let dumped = match self.settings.dump {
            Some(kind) => dump(kind, packet.data.get(line.link_header_len..).unwrap_or(&[])),
            None => String::new(),
        };
        let noted = comment.map(noted).unwrap_or_default();
        let (process, parent) = process(comment);
        let result = writeln!(
            self.out,
            "{time}{point} {process}{}{parent}{noted}{dumped}",
            line.text
        );
        result.map_err(|e| self.error(e))
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        let result = self.out.flush();
        result.map_err(|e| self.error(e))
    }

    fn source_end(&mut self, _: SourceEnd<'_>) -> Result<(), SinkError> {
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TimeFormat;
    use crate::event::SourceInfo;
    use kcap_pcap::LinkType;

    fn printed(comment: Option<&str>) -> String {
        let settings = PrintSettings {
            time: TimeFormat::None,
            nanos: false,
            dump: None,
            names: true,
        };
        let mut sink = LinesSink::new(Vec::new(), settings);
        let info = SourceInfo {
            label: "node-a".into(),
            point: "node-a:eth0".into(),
            interface_name: "node-a:eth0".into(),
            description: "node-a via ssh".into(),
            comment: None,
            names: Vec::new(),
        };
        sink.interface(Interface {
            source: 0,
            info: &info,
            link_type: LinkType::ETHERNET,
            snaplen: 65535,
        })
        .unwrap();
        let packet = Packet {
            ts_nanos: 1,
            orig_len: 4,
            data: vec![0; 4].into(),
            comment: None,
        };
        sink.packet(0, &packet, comment).unwrap();
        sink.flush().unwrap();
        String::from_utf8(sink.out.get_ref().clone()).unwrap()
    }

    /// The process after the capture point, its parent at the end, and neither
    /// again as indented comment lines (nor the pod keys); other keys stay.
    #[test]
    fn the_process_is_shown_as_ptcpdump_shows_it() {
        let plain = printed(None);
        let text = plain.trim_end().strip_prefix("node-a:eth0 ").unwrap();
        let comment = "PID: 4242\nCmd: /usr/bin/curl\nArgs: curl -s http://web\n\
                       ParentPID: 4100\nParentCmd: /bin/sh\nContainerName: client\n\
                       ContainerId: 3f2a\nPodName: client-0\nPodNamespace: prod\n\
                       NodeName: node-a\nNote: kept";
        assert_eq!(
            printed(Some(comment)),
            format!("node-a:eth0 curl.4242 {text}, ParentProc [sh.4100]\n    Note: kept\n")
        );
        assert_eq!(
            printed(Some("PID: 7\nCmd: nginx")),
            format!("node-a:eth0 nginx.7 {text}\n")
        );
        // A file's pod comment, without a process: as before.
        assert_eq!(
            printed(Some("PodName: web-0\nNodeName: node-a")),
            format!("node-a:eth0 {text}\n")
        );
    }
}
