//! `--http` and `--dns`: the merged stream decoded into records ([`kcap_records`]),
//! one JSON object per line on stdout or in `--http-out FILE`, each end named
//! with the pod, service or node kcap knows for its address, and the capture
//! point of the source whose packets started the exchange. `--summary`: the same
//! records counted per pod, shown at the end.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use kcap_kube::names::AddressName;
use kcap_pcap::Packet;
use kcap_records::{Decoder, Limits, PeerName, Record, Settings, Summary};

use super::{Interface, Points, Sink, SinkError, SourceEnd};
use crate::cli::Cli;
use crate::config::UsageError;
use crate::event::SourceId;
use crate::names::{Name, NameTable};

/// DNS's own port and mDNS's (the test bed's pods answer there).
const DNS_PORTS: [u16; 2] = [53, 5353];

/// What `--http`, `--dns`, `--http-out`, `--http-body` and `--dns-port` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSettings {
    pub http: bool,
    pub dns: bool,
    pub dns_ports: Vec<u16>,
    pub body_bytes: usize,
    /// `None`: stdout.
    pub out: Option<PathBuf>,
    /// Write the records (not with `--summary` alone).
    pub write: bool,
    pub summary: Option<SummaryFormat>,
    /// `--callback`: where every record is POSTed too.
    pub callback: Option<CallbackSettings>,
}

/// `--callback` and its companions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackSettings {
    pub options: kcap_callback::CallbackOptions,
    /// How long the end waits for the queue to empty.
    pub drain: std::time::Duration,
}

/// Records the queue holds while the collector is slow or down.
const CALLBACK_QUEUE: usize = 10_000;
const CALLBACK_DRAIN: std::time::Duration = std::time::Duration::from_secs(30);

impl CallbackSettings {
    fn from_cli(cli: &Cli, write: bool) -> Result<Option<CallbackSettings>, UsageError> {
        let Some(url) = &cli.callback else {
            if cli.callback_batch.is_some()
                || cli.callback_ca.is_some()
                || cli.callback_drain.is_some()
            {
                return Err(UsageError(
                    "--callback-batch, --callback-ca and --callback-drain go with --callback"
                        .into(),
                ));
            }
            return Ok(None);
        };
        if !write {
            return Err(UsageError(
                "--callback POSTs --http/--dns records: add --http or --dns".into(),
            ));
        }
        kcap_callback::check_url(url).map_err(|e| UsageError(e.to_string()))?;
        let batch = match cli.callback_batch {
            Some(0) => return Err(UsageError("--callback-batch must be at least 1".into())),
            Some(n) => n,
            None => 1,
        };
        let drain = match &cli.callback_drain {
            Some(d) => crate::config::parse_duration(d)?,
            None => CALLBACK_DRAIN,
        };
        Ok(Some(CallbackSettings {
            options: kcap_callback::CallbackOptions {
                url: url.clone(),
                ca: cli.callback_ca.clone(),
                batch,
                queue: CALLBACK_QUEUE,
            },
            drain,
        }))
    }
}

/// Filled in by the records sink at its end, read by the report (exit code 17).
pub type CallbackReportHandle =
    std::sync::Arc<std::sync::Mutex<Option<kcap_callback::CallbackReport>>>;

/// `--summary` (a table on stderr) or `--summary=json` (an object on stdout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryFormat {
    Text,
    Json,
}

impl RecordSettings {
    /// `print`: `--print` lines go to stdout (asked, or implied by `-r` alone).
    pub fn from_cli(cli: &Cli, print: bool) -> Result<Option<RecordSettings>, UsageError> {
        let summary = match cli.summary.as_deref() {
            None => None,
            Some("text") => Some(SummaryFormat::Text),
            Some("json") => Some(SummaryFormat::Json),
            Some(other) => {
                return Err(UsageError(format!(
                    "unknown --summary={other:?}: use --summary (a table) or --summary=json"
                )));
            }
        };
        let write = cli.http || cli.dns;
        let callback = CallbackSettings::from_cli(cli, write)?;
        if !write {
            let stray =
                cli.http_out.is_some() || cli.http_body.is_some() || !cli.dns_port.is_empty();
            if stray {
                return Err(UsageError(
                    "--http-out, --http-body and --dns-port shape --http/--dns records: add --http or --dns"
                        .into(),
                ));
            }
            if summary.is_none() {
                return Ok(None);
            }
        }
        let on_stdout = write && cli.http_out.as_ref().is_none_or(|p| p.as_os_str() == "-");
        if summary == Some(SummaryFormat::Json) && (on_stdout || print) {
            return Err(UsageError(
                "--summary=json writes on stdout, and so would the records or --print lines: \
                 give the records --http-out FILE, or leave --print out"
                    .into(),
            ));
        }
        if on_stdout && print {
            return Err(UsageError(
                "--http/--dns records and --print lines would share stdout: \
                 give the records a file with --http-out FILE, or leave --print out"
                    .into(),
            ));
        }
        if on_stdout && cli.output.as_ref().is_some_and(|o| o.as_os_str() == "-") {
            return Err(UsageError(
                "--http/--dns write records on stdout, so the capture cannot go there too: \
                 give -o a file, or the records --http-out FILE"
                    .into(),
            ));
        }
        let mut dns_ports = DNS_PORTS.to_vec();
        dns_ports.extend(cli.dns_port.iter().filter(|p| !DNS_PORTS.contains(p)));
        Ok(Some(RecordSettings {
            // --summary alone counts both.
            http: cli.http || !write,
            dns: cli.dns || !write,
            dns_ports,
            body_bytes: cli.http_body.unwrap_or(0),
            out: cli.http_out.clone().filter(|p| p.as_os_str() != "-"),
            write,
            summary,
            callback,
        }))
    }
}

/// `--summary=json`: the rows, and what the decoder counted (dropped things included).
#[derive(serde::Serialize)]
struct SummaryJson {
    pods: Vec<kcap_records::summary::Row>,
    counters: kcap_records::Counters,
}

pub struct RecordsSink {
    out: BufWriter<Box<dyn Write + Send>>,
    target: String,
    decoder: Decoder,
    names: NameTable,
    sources: Points,
    records: Vec<Record>,
    quiet: bool,
    write: bool,
    summary: Option<(SummaryFormat, Summary)>,
    /// `--callback`: the sender, its drain time, and where its report goes.
    callback: Option<(
        kcap_callback::Callback,
        std::time::Duration,
        CallbackReportHandle,
    )>,
}

impl RecordsSink {
    /// Opens `--http-out FILE` (created or truncated), else writes to stdout.
    /// `callback`: where `--callback`'s report goes at the end.
    pub fn open(
        settings: &RecordSettings,
        quiet: bool,
        callback: &CallbackReportHandle,
    ) -> Result<RecordsSink, SinkError> {
        let sender = match &settings.callback {
            None => None,
            Some(c) => {
                let started = kcap_callback::Callback::start(c.options.clone());
                let sender = started.map_err(|e| SinkError::Write {
                    target: "--callback".into(),
                    source: std::io::Error::other(crate::exit::chain(&e)),
                })?;
                Some((sender, c.drain, callback.clone()))
            }
        };
        let (out, target): (Box<dyn Write + Send>, String) = match &settings.out {
            None => (Box::new(std::io::stdout()), "stdout".into()),
            Some(path) => {
                let target = path.display().to_string();
                let file = std::fs::File::create(path).map_err(|source| SinkError::Write {
                    target: target.clone(),
                    source,
                })?;
                (Box::new(file), target)
            }
        };
        Ok(RecordsSink {
            out: BufWriter::with_capacity(64 << 10, out),
            target,
            decoder: Decoder::new(Settings {
                http: settings.http,
                dns: settings.dns,
                dns_ports: settings.dns_ports.clone(),
                body_bytes: settings.body_bytes,
                limits: Limits::default(),
            }),
            names: NameTable::default(),
            sources: Points::default(),
            records: Vec::new(),
            quiet,
            write: settings.write,
            summary: settings.summary.map(|f| (f, Summary::default())),
            callback: sender,
        })
    }

    fn count_troubles(&mut self) {
        let troubles = self.decoder.take_tcp_troubles();
        let Some((_, summary)) = self.summary.as_mut() else {
            return;
        };
        for trouble in troubles {
            let mut server = kcap_records::Peer::from(trouble.server);
            server.name = self.names.get(server.ip).map(peer_name);
            summary.add_tcp(trouble.kind, &server);
        }
    }

    fn write_records(&mut self) -> Result<(), SinkError> {
        self.count_troubles();
        for mut record in self.records.drain(..) {
            for peer in record.peers_mut() {
                peer.name = self.names.get(peer.ip).map(peer_name);
            }
            if let Some((_, summary)) = self.summary.as_mut() {
                summary.add(&record);
            }
            if !self.write {
                continue;
            }
            if let Some((callback, ..)) = &self.callback {
                let json = serde_json::to_vec(&record).expect("a record serializes");
                callback.send(bytes::Bytes::from(json));
            }
            let written = serde_json::to_writer(&mut self.out, &record)
                .map_err(std::io::Error::from)
                .and_then(|()| self.out.write_all(b"\n"));
            written.map_err(|source| SinkError::Write {
                target: self.target.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// One line on stderr: what was written, and every count of something dropped.
    fn report(&self) {
        let counters = self.decoder.counters();
        let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(&counters) else {
            return;
        };
        let shown: Vec<String> = fields
            .iter()
            .filter(|(_, v)| v.as_u64().is_some_and(|n| n > 0))
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        eprintln!("kcap: records: {}", shown.join(", "));
    }
}

/// How a record names an address: the API's kind when known, else a file's host name.
fn peer_name(name: &Name) -> PeerName {
    match &name.address {
        Some(AddressName::Pod { namespace, name }) => PeerName {
            kind: "pod",
            namespace: Some(namespace.clone()),
            name: name.clone(),
        },
        Some(AddressName::Service { namespace, name }) => PeerName {
            kind: "service",
            namespace: Some(namespace.clone()),
            name: name.clone(),
        },
        Some(AddressName::Node(node)) => PeerName {
            kind: "node",
            namespace: None,
            name: node.clone(),
        },
        None => PeerName {
            kind: "host",
            namespace: None,
            name: name.host.clone(),
        },
    }
}

impl Sink for RecordsSink {
    fn names(&mut self, names: &NameTable) -> Result<(), SinkError> {
        self.names.merge(names);
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
        _: Option<&str>,
    ) -> Result<(), SinkError> {
        let Some((link, point)) = self.sources.get(source) else {
            return Ok(());
        };
        if packet.is_watermark() {
            return Ok(());
        }
        self.decoder.packet(
            point,
            link,
            packet.ts_nanos,
            &packet.data,
            &mut self.records,
        );
        self.write_records()
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        let flushed = self.out.flush();
        flushed.map_err(|source| SinkError::Write {
            target: self.target.clone(),
            source,
        })
    }

    fn source_end(&mut self, _: SourceEnd<'_>) -> Result<(), SinkError> {
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.decoder.finish(&mut self.records);
        self.write_records()?;
        if let Some((callback, drain, handle)) = self.callback.take() {
            let report = callback.finish(drain);
            if !self.quiet || report.lost() > 0 {
                eprintln!("kcap: {}", callback_line(&report, drain));
            }
            *handle.lock().expect("callback report") = Some(report);
        }
        if !self.quiet {
            self.report();
        }
        self.flush()?;
        match &self.summary {
            Some((SummaryFormat::Text, summary)) => eprint!("{}", summary.text()),
            Some((SummaryFormat::Json, summary)) => {
                let json = serde_json::to_string(&SummaryJson {
                    pods: summary.rows(),
                    counters: self.decoder.counters(),
                })
                .expect("plain data serializes");
                let mut stdout = std::io::stdout().lock();
                let written = writeln!(stdout, "{json}").and_then(|()| stdout.flush());
                written.map_err(|source| SinkError::Write {
                    target: "stdout".into(),
                    source,
                })?;
            }
            None => {}
        }
        Ok(())
    }
}

/// The summary's line about `--callback`.
fn callback_line(report: &kcap_callback::CallbackReport, drain: std::time::Duration) -> String {
    let mut line = format!(
        "--callback: {} records delivered ({} retries)",
        report.delivered, report.retries
    );
    if report.lost() == 0 {
        line.push_str(", none lost");
        return line;
    }
    line.push_str(&format!(", {} LOST:", report.lost()));
    if report.dropped > 0 {
        line.push_str(&format!(" {} dropped with the queue full", report.dropped));
    }
    if report.refused > 0 {
        line.push_str(&format!(" {} refused by the collector", report.refused));
    }
    if report.undelivered > 0 {
        line.push_str(&format!(
            " {} undelivered after {}s of --callback-drain",
            report.undelivered,
            drain.as_secs()
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use crate::config::from_args as config;

    #[test]
    fn records_and_print_lines_never_share_stdout() {
        let e = config(&["--ssh-host", "n", "--http", "--print"]).unwrap_err();
        assert!(e.0.contains("would share stdout"), "{}", e.0);
        let e = config(&["--ssh-host", "n", "--dns", "-o", "-"]).unwrap_err();
        assert!(e.0.contains("cannot go there too"), "{}", e.0);
        let e = config(&["--ssh-host", "n", "--http-body", "10"]).unwrap_err();
        assert!(e.0.ends_with("add --http or --dns"), "{}", e.0);
        let c = config(&[
            "--ssh-host",
            "n",
            "--http",
            "--print",
            "--http-out",
            "r.json",
        ])
        .unwrap();
        assert!(c.print.is_some() && c.records.unwrap().out.is_some());
    }

    #[test]
    fn summary_alone_decodes_both_and_json_needs_stdout_to_itself() {
        let c = config(&["--ssh-host", "n", "--summary"]).unwrap();
        let r = c.records.unwrap();
        assert!(r.http && r.dns && !r.write && c.output.is_none());
        let e = config(&["--ssh-host", "n", "--summary=json", "--http"]).unwrap_err();
        assert!(
            e.0.starts_with("--summary=json writes on stdout"),
            "{}",
            e.0
        );
        let e = config(&["-r", "f", "--summary=yaml"]).unwrap_err();
        assert!(e.0.starts_with("unknown --summary=\"yaml\""), "{}", e.0);
        let c = config(&[
            "--ssh-host",
            "n",
            "--summary=json",
            "--http",
            "--http-out",
            "r",
        ])
        .unwrap();
        assert!(c.records.unwrap().write);
    }

    #[test]
    fn records_without_o_write_no_file_and_r_prints_no_lines() {
        let c = config(&[
            "--ssh-host",
            "n",
            "--http",
            "--dns-port",
            "5300",
            "--dns-port",
            "53",
        ])
        .unwrap();
        assert!(c.output.is_none() && c.print.is_none());
        assert_eq!(c.records.unwrap().dns_ports, [53, 5353, 5300]);
        let c = config(&["--ssh-host", "n", "--dns", "-o", "x.pcapng"]).unwrap();
        assert!(c.output.is_some());
        let c = config(&["-r", "x.pcapng", "--http"]).unwrap();
        assert!(c.print.is_none() && c.output.is_none() && c.records.is_some());
    }
}
