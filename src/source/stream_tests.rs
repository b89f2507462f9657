//! [`drive`] against a scripted process: the stream decoded across odd chunk
//! boundaries, the tool's refusal classified (its informational lines left out),
//! a stop closing stdin, a lost transport, and the wrapper's heartbeat-lost marker.

use std::collections::VecDeque;

use kcap_capture::command::{DEFAULT_BUFFER_KIB, FULL_SNAPLEN, Tool};
use kcap_pcap::LinkType;
use tokio::sync::mpsc;

use super::*;
use crate::stop::StopReason;

/// Plays `script`, then either ends (`Ok(None)`) or, with `hang`, waits until
/// stdin is closed and ends then. Records what kcap wrote to stdin.
struct Scripted {
    script: VecDeque<Result<Option<Chunk>, String>>,
    hang: bool,
    stdin: Vec<u8>,
    stdin_closed: bool,
}

impl Scripted {
    fn new(script: Vec<Result<Option<Chunk>, String>>) -> Scripted {
        Scripted {
            script: script.into(),
            hang: false,
            stdin: Vec::new(),
            stdin_closed: false,
        }
    }
}

impl Process for Scripted {
    async fn next(&mut self) -> Result<Option<Chunk>, String> {
        if let Some(next) = self.script.pop_front() {
            return next;
        }
        if self.hang && !self.stdin_closed {
            std::future::pending::<()>().await;
        }
        Ok(None)
    }
    async fn write_stdin(&mut self, bytes: &[u8]) {
        self.stdin.extend_from_slice(bytes);
    }
    async fn close_stdin(&mut self) {
        self.stdin_closed = true;
        self.hang = false;
    }
}

fn command() -> CaptureCommand {
    CaptureCommand {
        tool: Tool::Auto,
        interface: "any".into(),
        snaplen: FULL_SNAPLEN,
        buffer_kib: DEFAULT_BUFFER_KIB,
        count: None,
        direction: kcap_capture::command::Direction::InOut,
        filter: Some("port 80 and frobnicate".into()),
        sudo: false,
        agent: None,
        process: kcap_capture::command::ProcessMode::Off,
    }
}

fn info() -> SourceInfo {
    SourceInfo {
        label: "node-a".into(),
        point: "node-a:any".into(),
        interface_name: "node-a:any".into(),
        description: "node-a via ssh".into(),
        comment: None,
        names: Vec::new(),
    }
}

/// A little-endian microsecond pcap stream: header (Ethernet) and two packets.
fn pcap_stream() -> Vec<u8> {
    let mut s = Vec::new();
    s.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    s.extend_from_slice(&2u16.to_le_bytes());
    s.extend_from_slice(&4u16.to_le_bytes());
    s.extend_from_slice(&[0; 8]);
    s.extend_from_slice(&65535u32.to_le_bytes());
    s.extend_from_slice(&1u32.to_le_bytes());
    for (sec, byte) in [(100u32, 0xaau8), (101, 0xbb)] {
        s.extend_from_slice(&sec.to_le_bytes());
        s.extend_from_slice(&7u32.to_le_bytes());
        s.extend_from_slice(&3u32.to_le_bytes());
        s.extend_from_slice(&3u32.to_le_bytes());
        s.extend_from_slice(&[byte; 3]);
    }
    s
}

async fn drive_script(process: &mut Scripted, stop: &Stop) -> (Ended, Vec<Event>) {
    let (tx, mut rx) = mpsc::channel(64);
    let info = info();
    let command = command();
    let feed = Feed {
        source: 3,
        info: &info,
        command: &command,
        events: &tx,
        stop,
    };
    let ended = drive(process, &feed).await;
    drop(tx);
    let mut events = Vec::new();
    while let Some(e) = rx.recv().await {
        events.push(e);
    }
    (ended, events)
}

#[tokio::test]
async fn a_stream_in_odd_chunks_becomes_a_header_and_its_packets() {
    let stream = pcap_stream();
    let mut script: Vec<_> = stream
        .chunks(5)
        .map(|c| Ok(Some(Chunk::Stdout(c.to_vec()))))
        .collect();
    script.push(Ok(Some(Chunk::Stderr(
        b"kcap-remote: tool: tcpdump\n2 packets captured\n2 packets received by filter\n0 packets dropped by kernel\n".to_vec(),
    ))));
    script.push(Ok(Some(Chunk::Exit(None))));
    let mut process = Scripted::new(script);
    let (ended, events) = drive_script(&mut process, &Stop::default()).await;
    assert!(ended.result.is_ok(), "{:?}", ended.result);
    assert!(ended.started);
    assert_eq!(ended.tool.as_deref(), Some("tcpdump"));
    let stats = ended.statistics.unwrap();
    assert_eq!(
        (stats.captured, stats.dropped_by_kernel),
        (Some(2), Some(0))
    );
    let Event::Started {
        source: 3,
        header,
        info: started_info,
    } = &events[0]
    else {
        panic!("first event: {:?}", events[0]);
    };
    assert_eq!(header.link_type, LinkType::ETHERNET);
    assert_eq!(started_info, &info());
    let packets: Vec<(u64, Vec<u8>)> = events[1..]
        .iter()
        .flat_map(|e| match e {
            Event::Packets { source: 3, packets } => packets.clone(),
            other => panic!("unexpected {other:?}"),
        })
        .map(|p| (p.ts_nanos, p.data.to_vec()))
        .collect();
    assert_eq!(
        packets,
        [
            (100_000_007_000, vec![0xaa; 3]),
            (101_000_007_000, vec![0xbb; 3])
        ]
    );
}

#[tokio::test]
async fn a_rejected_filter_is_classified_without_the_tools_chatter() {
    let mut process = Scripted::new(vec![
        Ok(Some(Chunk::Stderr(
            b"kcap-remote: tool: tcpdump\ntcpdump: data link type LINUX_SLL2\ntcpdump: can't parse filter expression: syntax error\n".to_vec(),
        ))),
        Ok(Some(Chunk::Exit(Some("exit code 1".into())))),
    ]);
    let (ended, events) = drive_script(&mut process, &Stop::default()).await;
    assert!(events.is_empty(), "{events:?}");
    let Err(StreamError::Capture { failure, command }) = ended.result else {
        panic!("{:?}", ended.result);
    };
    assert_eq!(
        failure,
        Failure::BadFilter {
            message: "tcpdump: can't parse filter expression: syntax error".into()
        }
    );
    assert_eq!(command.filter.as_deref(), Some("port 80 and frobnicate"));
}

#[tokio::test]
async fn a_stop_closes_stdin_and_the_end_is_clean() {
    let mut process = Scripted::new(
        pcap_stream()
            .chunks(24)
            .map(|c| Ok(Some(Chunk::Stdout(c.to_vec()))))
            .collect(),
    );
    process.hang = true;
    let stop = Stop::default();
    let stopper = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        stopper.stop(StopReason::Interrupted);
    });
    let (ended, _) = drive_script(&mut process, &stop).await;
    assert!(ended.result.is_ok(), "{:?}", ended.result);
    assert!(process.stdin_closed);
    // The heartbeat went out at once (the interval's first tick).
    assert!(process.stdin.starts_with(HEARTBEAT), "{:?}", process.stdin);
}

#[tokio::test]
async fn a_lost_transport_and_a_lost_heartbeat_are_lost_connections() {
    let mut stream: Vec<_> = vec![Ok(Some(Chunk::Stdout(pcap_stream())))];
    stream.push(Err("connection reset".into()));
    let (ended, _) = drive_script(&mut Scripted::new(stream), &Stop::default()).await;
    assert!(
        matches!(&ended.result, Err(StreamError::ConnectionLost(why)) if why == "connection reset"),
        "{:?}",
        ended.result
    );

    let script = vec![
        Ok(Some(Chunk::Stdout(pcap_stream()))),
        Ok(Some(Chunk::Stderr(
            format!("{MARKER_HEARTBEAT_LOST}\n").into_bytes(),
        ))),
        Ok(Some(Chunk::Exit(None))),
    ];
    let (ended, _) = drive_script(&mut Scripted::new(script), &Stop::default()).await;
    assert!(
        matches!(&ended.result, Err(StreamError::ConnectionLost(why)) if why.contains("heartbeat")),
        "{:?}",
        ended.result
    );
}

/// The pcap header may overtake stderr (they travel apart): the packets wait for
/// the wrapper's tool line, so `Started` says how the node-side script found the
/// pod's network, and a veth capture is named after the interface.
#[tokio::test]
async fn started_waits_for_the_way_the_pod_was_found() {
    let mut script: Vec<_> = vec![Ok(Some(Chunk::Stdout(pcap_stream())))];
    script.push(Ok(Some(Chunk::Stderr(
        b"kcap-netns: way: veth cali1a2b3c4d5e6\nkcap-remote: tool: tcpdump\n".to_vec(),
    ))));
    script.push(Ok(Some(Chunk::Exit(None))));
    let mut process = Scripted::new(script);
    let (ended, events) = drive_script(&mut process, &Stop::default()).await;
    assert!(ended.result.is_ok(), "{:?}", ended.result);
    assert_eq!(ended.way.as_deref(), Some("veth cali1a2b3c4d5e6"));
    let Event::Started { info: started, .. } = &events[0] else {
        panic!("first event: {:?}", events[0]);
    };
    let want = crate::plan::found_by(&info(), "veth cali1a2b3c4d5e6");
    assert_eq!(started, &want);
    assert_eq!(
        want.description,
        format!("{} (veth cali1a2b3c4d5e6)", info().description)
    );
    let packets: usize = events[1..]
        .iter()
        .map(|e| match e {
            Event::Packets { packets, .. } => packets.len(),
            other => panic!("unexpected {other:?}"),
        })
        .sum();
    assert_eq!(packets, 2);
}

#[test]
fn a_veth_capture_is_named_after_its_interface() {
    let pod = SourceInfo {
        label: "prod/web-0".into(),
        point: "prod/web-0".into(),
        interface_name: "prod/web-0/any".into(),
        description: "pod prod/web-0 on node node-b, via ssh".into(),
        comment: None,
        names: Vec::new(),
    };
    let veth = crate::plan::found_by(&pod, "veth cali1a2b3c4d5e6");
    assert_eq!(veth.interface_name, "prod/web-0/cali1a2b3c4d5e6");
    assert_eq!(
        veth.description,
        "pod prod/web-0 on node node-b, via ssh (veth cali1a2b3c4d5e6)"
    );
    let netns = crate::plan::found_by(&pod, "netns by IP");
    assert_eq!(netns.interface_name, "prod/web-0/any");
    assert_eq!(
        netns.description,
        "pod prod/web-0 on node node-b, via ssh (netns by IP)"
    );
}

/// The agent's annotation records name the process of the packet after them:
/// they are taken out (never a packet, never a watermark), the named packet
/// carries the text, the next one (no `NEXT` before it) none. Chunks of 7 bytes
/// split records, so the annotator's state lasts across chunks.
#[tokio::test]
async fn annotation_records_become_the_next_packets_process() {
    use kcap_pcap::annotation::Annotation;
    let plain = pcap_stream();
    let (header, records) = plain.split_at(24);
    let mut stream = header.to_vec();
    Annotation::Define {
        id: 5,
        text: "PID: 4242\nCmd: /usr/bin/curl",
    }
    .write_record(&mut stream);
    Annotation::Next { id: 5 }.write_record(&mut stream);
    stream.extend_from_slice(records);
    let mut script: Vec<_> = stream
        .chunks(7)
        .map(|c| Ok(Some(Chunk::Stdout(c.to_vec()))))
        .collect();
    script.push(Ok(Some(Chunk::Stderr(
        b"kcap-remote: tool: agent\n".to_vec(),
    ))));
    script.push(Ok(Some(Chunk::Exit(None))));
    let (ended, events) = drive_script(&mut Scripted::new(script), &Stop::default()).await;
    assert!(ended.result.is_ok(), "{:?}", ended.result);
    let mut packets = Vec::new();
    for event in &events[1..] {
        match event {
            Event::Packets { packets: batch, .. } => packets.extend(batch.iter().cloned()),
            other => panic!("unexpected {other:?}"),
        }
    }
    let seen: Vec<_> = packets
        .iter()
        .map(|p| (p.data.to_vec(), p.comment.as_deref().map(str::to_string)))
        .collect();
    assert_eq!(
        seen,
        [
            (
                vec![0xaa; 3],
                Some("PID: 4242\nCmd: /usr/bin/curl".to_string())
            ),
            (vec![0xbb; 3], None),
        ]
    );
}

/// `--process on` where the node cannot: the agent's reason, classified, with
/// the command it was given; `auto`'s reason is kept and the capture is fine.
#[tokio::test]
async fn the_agents_process_refusals() {
    let script = vec![
        Ok(Some(Chunk::Stderr(
            b"kcap-remote: tool: agent\nkcap-remote: process-unusable: no BTF\n".to_vec(),
        ))),
        Ok(Some(Chunk::Exit(Some("exit code 4".into())))),
    ];
    let (ended, events) = drive_script(&mut Scripted::new(script), &Stop::default()).await;
    assert!(events.is_empty(), "{events:?}");
    let Err(StreamError::Capture { failure, .. }) = ended.result else {
        panic!("{:?}", ended.result);
    };
    assert_eq!(
        failure.message(),
        "--process: cannot attribute packets to processes on this node: no BTF"
    );

    let mut script: Vec<_> = vec![Ok(Some(Chunk::Stderr(
        b"kcap-remote: process-unavailable: not root\nkcap-remote: tool: agent\n".to_vec(),
    )))];
    script.push(Ok(Some(Chunk::Stdout(pcap_stream()))));
    script.push(Ok(Some(Chunk::Exit(None))));
    let (ended, _) = drive_script(&mut Scripted::new(script), &Stop::default()).await;
    assert!(ended.result.is_ok(), "{:?}", ended.result);
    assert_eq!(ended.process_unavailable.as_deref(), Some("not root"));
}
