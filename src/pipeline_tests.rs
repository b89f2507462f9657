//! The pipeline with the real file sink writing into memory, read back with
//! kcap-pcap's reader: interfaces per source, merge order, annotations,
//! statistics, `--count`, `--linktype LINUX_SLL` and what a pcap file refuses.

use std::io::Write;
use std::sync::{Arc, Mutex};

use kcap_capture::outcome::ToolStatistics;
use kcap_pcap::{
    CaptureFile, CaptureFileReader, Format as FileFormat, LinkType, Packet, StreamHeader,
};
use tokio::sync::mpsc;

use super::*;
use crate::config::Format;
use crate::process::ProcessFilter;
use crate::sink::file::FileSink;
use crate::stop::{Progress, Stop, StopReason};

/// A writer whose bytes the test keeps after the sink is gone.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn info(label: &str, comment: Option<&str>) -> SourceInfo {
    SourceInfo {
        label: label.into(),
        point: label.into(),
        interface_name: format!("{label}/any"),
        description: format!("{label} described"),
        comment: comment.map(str::to_string),
        names: Vec::new(),
    }
}

fn header(link_type: LinkType) -> StreamHeader {
    StreamHeader {
        link_type,
        snaplen: 65535,
        nanosecond: true,
        big_endian: false,
    }
}

fn packet(ts_nanos: u64, byte: u8) -> Packet {
    Packet {
        ts_nanos,
        orig_len: 4,
        data: vec![byte; 4].into(),
        comment: None,
    }
}

/// Runs a pipeline over `events` into one file sink; returns the file, the
/// report and why the capture was told to stop.
fn run(
    format: Format,
    initial: Vec<SourceInfo>,
    count: Option<u64>,
    cooked_v1: bool,
    events: Vec<Event>,
) -> (CaptureFile, PipelineReport, Option<StopReason>) {
    run_filtered(
        format,
        initial,
        count,
        cooked_v1,
        ProcessFilter::default(),
        events,
    )
}

/// [`run`] with the process filters.
fn run_filtered(
    format: Format,
    initial: Vec<SourceInfo>,
    count: Option<u64>,
    cooked_v1: bool,
    filter: ProcessFilter,
    events: Vec<Event>,
) -> (CaptureFile, PipelineReport, Option<StopReason>) {
    let out = Shared::default();
    let sink = FileSink::with_writer(out.clone(), format, "memory".into()).unwrap();
    let stop = Stop::default();
    let progress = Progress::new(stop.clone(), initial.len(), count);
    let pipeline = Pipeline::new(
        initial,
        vec![Box::new(sink)],
        progress,
        false,
        cooked_v1,
        NameTable::default(),
    )
    .with_process_filter(filter);
    let (tx, rx) = mpsc::channel(events.len() + 1);
    for e in events {
        tx.try_send(e).unwrap();
    }
    drop(tx);
    let report = pipeline.run(rx);
    let bytes = out.0.lock().unwrap().clone();
    let file = CaptureFile::from_reader(CaptureFileReader::new(&bytes[..]).unwrap()).unwrap();
    (file, report, stop.reason())
}

fn started(source: SourceId, link: LinkType, info: SourceInfo) -> Event {
    Event::Started {
        source,
        header: header(link),
        info,
    }
}

#[test]
fn pcapng_one_interface_per_source_merged_in_time_order_with_comments() {
    let stats = ToolStatistics {
        captured: Some(2),
        received: Some(3),
        dropped_by_kernel: Some(1),
        dropped_by_interface: None,
    };
    let events = vec![
        started(0, LinkType::ETHERNET, info("node-a", None)),
        started(
            1,
            LinkType::LINUX_SLL2,
            info("prod/web-0", Some("PodName: web-0")),
        ),
        Event::Packets {
            source: 0,
            packets: vec![packet(10, 1), packet(30, 3)],
        },
        Event::Packets {
            source: 1,
            packets: vec![packet(20, 2), packet(40, 4)],
        },
        Event::Ended {
            source: 0,
            statistics: Some(stats),
        },
        Event::Ended {
            source: 1,
            statistics: None,
        },
    ];
    let initial = vec![info("node-a", None), info("prod/web-0", None)];
    let (file, report, stop) = run(Format::Pcapng, initial, None, false, events);
    assert_eq!(file.format, FileFormat::Pcapng);
    let names: Vec<_> = file
        .interfaces
        .iter()
        .map(|i| i.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["node-a/any", "prod/web-0/any"]);
    assert_eq!(
        file.interfaces[1].description.as_deref(),
        Some("prod/web-0 described")
    );
    assert_eq!(
        file.interfaces
            .iter()
            .map(|i| i.link_type)
            .collect::<Vec<_>>(),
        [LinkType::ETHERNET, LinkType::LINUX_SLL2]
    );
    let seen: Vec<(u32, u64, Option<&str>)> = file
        .records
        .iter()
        .map(|r| (r.interface_id, r.packet.ts_nanos, r.comment.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            (0, 10, None),
            (1, 20, Some("PodName: web-0")),
            (0, 30, None),
            (1, 40, Some("PodName: web-0")),
        ]
    );
    // Statistics only for the source whose tool printed them, spanning its packets.
    assert_eq!(file.statistics.len(), 1);
    let isb = &file.statistics[0];
    assert_eq!(isb.interface_id, 0);
    assert_eq!(
        (
            isb.statistics.received,
            isb.statistics.dropped,
            isb.statistics.start_nanos
        ),
        (Some(3), Some(1), Some(10))
    );
    assert_eq!(
        report.per_source,
        [
            Delivered {
                packets: 2,
                bytes: 8,
                refused: None,
                ..Delivered::default()
            },
            Delivered {
                packets: 2,
                bytes: 8,
                refused: None,
                ..Delivered::default()
            }
        ]
    );
    assert!(report.error.is_none());
    assert_eq!(stop, None);
}

#[test]
fn pcap_refuses_a_second_link_type_and_keeps_the_first() {
    let events = vec![
        started(0, LinkType::ETHERNET, info("node-a", None)),
        started(1, LinkType::LINUX_SLL2, info("node-b", None)),
        Event::Packets {
            source: 0,
            packets: vec![packet(1, 1)],
        },
        Event::Packets {
            source: 1,
            packets: vec![packet(2, 2)],
        },
    ];
    let initial = vec![info("node-a", None), info("node-b", None)];
    let (file, report, _) = run(Format::Pcap, initial, None, false, events);
    assert_eq!(file.format, FileFormat::Pcap);
    assert_eq!(file.interfaces[0].link_type, LinkType::ETHERNET);
    assert_eq!(file.records.len(), 1);
    assert_eq!(file.records[0].packet.data[..], [1; 4]);
    assert_eq!(report.per_source[0].packets, 1);
    assert_eq!(report.per_source[1].packets, 0);
    assert_eq!(
        report.per_source[1].refused.as_deref(),
        Some(
            "node-b captures link type LINUX_SLL2 but the pcap file already holds EN10MB: \
             pcap holds one link type; use --format pcapng (or the same --iface on every node)"
        )
    );
}

#[test]
fn count_writes_exactly_n_packets_then_asks_to_stop() {
    let events = vec![
        started(0, LinkType::ETHERNET, info("a", None)),
        Event::Packets {
            source: 0,
            packets: (0..5).map(|i| packet(i, i as u8)).collect(),
        },
    ];
    let (file, report, stop) = run(
        Format::Pcapng,
        vec![info("a", None)],
        Some(3),
        false,
        events,
    );
    assert_eq!(
        file.records
            .iter()
            .map(|r| r.packet.ts_nanos)
            .collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert_eq!(report.per_source[0].packets, 3);
    assert_eq!(stop, Some(StopReason::Count));
}

#[test]
fn linktype_sll_rewrites_cooked_v2_and_a_source_added_later_gets_its_interface() {
    // A LINUX_SLL2 header (20 bytes) with protocol 0x0800, interface 2, ARPHRD 1,
    // packet type 4 (outgoing), address length 6, then 2 payload bytes.
    let mut sll2 = vec![
        0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 4, 6, 1, 2, 3, 4, 5, 6, 0, 0,
    ];
    sll2.extend_from_slice(&[0xaa, 0xbb]);
    let events = vec![
        Event::Added {
            source: 0,
            info: info("prod/late", None),
        },
        started(0, LinkType::LINUX_SLL2, info("prod/late", None)),
        Event::Packets {
            source: 0,
            packets: vec![Packet {
                ts_nanos: 5,
                orig_len: sll2.len() as u32,
                data: sll2.into(),
                comment: None,
            }],
        },
    ];
    let (file, _, _) = run(Format::Pcapng, vec![], None, true, events);
    assert_eq!(file.interfaces.len(), 1);
    assert_eq!(file.interfaces[0].link_type, LinkType::LINUX_SLL);
    // LINUX_SLL: packet type, ARPHRD, address length, 8 address bytes, protocol.
    assert_eq!(
        file.records[0].packet.data[..],
        [
            0, 4, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00, 0xaa, 0xbb
        ]
    );
}

/// `--max-size`: the packet that makes the files reach the size is the last one
/// written; the capture is asked to stop, and the pipeline's counts (the summary)
/// are what the files hold.
#[test]
fn max_size_stops_after_the_packet_that_reaches_it() {
    use crate::limits::Rotation;
    use crate::sink::rotate::RotatingSink;
    let dir = tempfile::tempdir().unwrap();
    let files = crate::sink::FileReportHandle::default();
    let rotation = Rotation {
        size: Some(300),
        every: None,
        ring: None,
    };
    let sink = RotatingSink::open(
        &dir.path().join("max.pcapng"),
        Format::Pcapng,
        Some(rotation),
        Some(1000),
        files.clone(),
    )
    .unwrap();
    let stop = Stop::default();
    let progress = Progress::new(stop.clone(), 1, None);
    let pipeline = Pipeline::new(
        vec![info("a", None)],
        vec![Box::new(sink)],
        progress,
        false,
        false,
        NameTable::default(),
    );
    let (tx, rx) = mpsc::channel(4);
    tx.try_send(started(0, LinkType::ETHERNET, info("a", None)))
        .unwrap();
    let big = |i: u64| Packet {
        ts_nanos: i,
        orig_len: 100,
        data: vec![i as u8; 100].into(),
        comment: None,
    };
    tx.try_send(Event::Packets {
        source: 0,
        packets: (0..50).map(big).collect(),
    })
    .unwrap();
    drop(tx);
    let report = pipeline.run(rx);
    assert_eq!(stop.reason(), Some(StopReason::MaxSize));
    let written = files.lock().unwrap().clone();
    assert!(written.bytes >= 1000 && written.bytes < 1200, "{written:?}");
    assert!(written.files >= 3, "{written:?}");
    assert_eq!(report.per_source[0].packets, written.packets);
    let mut in_files = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        in_files += kcap_pcap::CaptureFile::read(&entry.unwrap().path())
            .unwrap()
            .records
            .len() as u64;
    }
    assert_eq!(in_files, written.packets);
}

/// The names known at the start go into the file before anything else; a pod
/// that joins later brings its own, written once, before its packets.
#[test]
fn names_reach_the_file_before_the_packets_that_need_them() {
    use kcap_kube::names::AddressName;
    let pod = |name: &str| AddressName::Pod {
        namespace: "prod".into(),
        name: name.into(),
    };
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    let initial_names = [
        (ip("10.244.0.5"), pod("web-0")),
        (
            ip("10.96.0.10"),
            AddressName::Service {
                namespace: "kube-system".into(),
                name: "kube-dns".into(),
            },
        ),
    ];
    let mut joined = info("prod/web-1", None);
    // Its own address and one already known: only the new one is written.
    joined.names = vec![
        (ip("10.244.0.6"), pod("web-1")),
        (ip("10.244.0.5"), pod("web-0")),
    ];
    let out = Shared::default();
    let sink = FileSink::with_writer(out.clone(), Format::Pcapng, "memory".into()).unwrap();
    let progress = Progress::new(Stop::default(), 1, None);
    let pipeline = Pipeline::new(
        vec![info("prod/web-0", None)],
        vec![Box::new(sink)],
        progress,
        false,
        false,
        NameTable::new(&initial_names),
    );
    let (tx, rx) = mpsc::channel(8);
    tx.try_send(started(0, LinkType::ETHERNET, info("prod/web-0", None)))
        .unwrap();
    tx.try_send(Event::Packets {
        source: 0,
        packets: vec![packet(10, 1)],
    })
    .unwrap();
    tx.try_send(Event::Added {
        source: 1,
        info: joined.clone(),
    })
    .unwrap();
    tx.try_send(started(1, LinkType::ETHERNET, joined)).unwrap();
    tx.try_send(Event::Packets {
        source: 1,
        packets: vec![packet(20, 2)],
    })
    .unwrap();
    drop(tx);
    pipeline.run(rx);
    let bytes = out.0.lock().unwrap().clone();
    let mut reader = CaptureFileReader::new(&bytes[..]).unwrap();
    let mut seen = Vec::new();
    let record = |reader: &mut CaptureFileReader<&[u8]>, seen: &mut Vec<String>| {
        // Names read on the way to the next packet.
        let ts = reader.next().map(|r| r.unwrap().packet.ts_nanos);
        for (ip, name) in reader.take_names() {
            seen.push(format!("{ip}={name}"));
        }
        ts
    };
    assert_eq!(record(&mut reader, &mut seen), Some(10));
    assert_eq!(
        seen[..2],
        ["10.96.0.10=kube-dns.kube-system", "10.244.0.5=web-0.prod"]
    );
    assert_eq!(record(&mut reader, &mut seen), Some(20));
    // web-1's name is in before its packet, and no name twice.
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[2], "10.244.0.6=web-1.prod");
    assert_eq!(record(&mut reader, &mut seen), None);
    assert_eq!(seen.len(), 3);
}

/// Packets with their process: the filters leave the others out (counted), and
/// the file's comment is the process text then the source's keys it lacks.
#[test]
fn processes_are_filtered_before_the_merge_and_merged_into_the_comment() {
    let curl: Arc<str> = Arc::from("PID: 42\nCmd: /usr/bin/curl\nPodName: client-0");
    let nginx: Arc<str> = Arc::from("PID: 7\nCmd: /usr/sbin/nginx");
    let with = |ts, text: Option<&Arc<str>>| Packet {
        comment: text.cloned(),
        ..packet(ts, ts as u8)
    };
    let pod = "PodName: web-0\nPodNamespace: prod\nNodeName: node-a";
    let filter = ProcessFilter {
        names: vec!["curl".into()],
        ..ProcessFilter::default()
    };
    let (file, report, _) = run_filtered(
        Format::Pcapng,
        vec![info("a", Some(pod))],
        None,
        false,
        filter,
        vec![
            started(0, LinkType::ETHERNET, info("a", Some(pod))),
            Event::Packets {
                source: 0,
                packets: vec![
                    with(1, Some(&curl)),
                    with(2, Some(&nginx)),
                    with(3, None),
                    with(4, Some(&curl)),
                ],
            },
            Event::Ended {
                source: 0,
                statistics: None,
            },
        ],
    );
    // The captured pod's keys are not the process's: only NodeName is added.
    let merged = "PID: 42\nCmd: /usr/bin/curl\nPodName: client-0\nNodeName: node-a";
    let written: Vec<_> = file
        .records
        .iter()
        .map(|r| (r.packet.ts_nanos, r.comment.as_deref()))
        .collect();
    assert_eq!(written, [(1, Some(merged)), (4, Some(merged))]);
    let delivered = &report.per_source[0];
    assert_eq!(
        (
            delivered.packets,
            delivered.with_process,
            delivered.other_processes
        ),
        (2, 2, 2)
    );
}
