//! The rotating sink writing real files in a scratch directory, read back with
//! kcap-pcap's reader: every file complete with every interface (same ids), no
//! packet lost or doubled across files, the `-W` ring, `--max-size`, pcap.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kcap_pcap::{CaptureFile, LinkType, Packet};

use super::*;
use crate::event::SourceInfo;
use crate::sink::FileReport;

fn info(label: &str) -> SourceInfo {
    SourceInfo {
        label: label.into(),
        point: label.into(),
        interface_name: format!("{label}:any"),
        description: format!("{label} described"),
        comment: None,
        names: Vec::new(),
    }
}

fn packet(i: u64) -> Packet {
    Packet {
        ts_nanos: 1_000_000_000 + i * 1000,
        orig_len: 100,
        data: i.to_le_bytes().repeat(12).into(),
        comment: None,
    }
}

fn rotation(size: u64, ring: Option<usize>) -> Option<Rotation> {
    Some(Rotation {
        size: Some(size),
        every: None,
        ring,
    })
}

struct Setup {
    dir: tempfile::TempDir,
    report: FileReportHandle,
}

fn setup() -> Setup {
    Setup {
        dir: tempfile::tempdir().unwrap(),
        report: Arc::new(Mutex::new(FileReport::default())),
    }
}

fn interface(source: SourceId, info: &SourceInfo, link_type: LinkType) -> Interface<'_> {
    Interface {
        source,
        info,
        link_type,
        snaplen: 65535,
    }
}

/// The files of the directory, by name.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn every_file_is_complete_with_every_interface_and_no_packet_is_lost_or_doubled() {
    let s = setup();
    let template = s.dir.path().join("cap.pcapng");
    let mut sink = RotatingSink::open(
        &template,
        Format::Pcapng,
        rotation(1000, None),
        None,
        s.report.clone(),
    )
    .unwrap();
    let (a, b) = (info("node-a"), info("node-b"));
    sink.interface(interface(0, &a, LinkType::LINUX_SLL2))
        .unwrap();
    for i in 0..20 {
        sink.packet(0, &packet(i), None).unwrap();
    }
    // A source joining later (--follow) is appended to the current file and is in
    // every file after it.
    sink.interface(interface(1, &b, LinkType::ETHERNET))
        .unwrap();
    for i in 20..40 {
        sink.packet((i % 2) as usize, &packet(i), None).unwrap();
    }
    sink.finish().unwrap();
    let names = files(s.dir.path());
    assert!(names.len() >= 5, "{names:?}");
    for (n, name) in names.iter().enumerate() {
        assert_eq!(*name, s.dir.path().join(format!("cap-{:05}.pcapng", n + 1)));
    }
    let mut seen = Vec::new();
    let mut with_b = 0;
    for name in &names {
        let file = CaptureFile::read(name).unwrap();
        assert!(!file.records.is_empty(), "{} has no packet", name.display());
        assert_eq!(file.interfaces[0].name.as_deref(), Some("node-a:any"));
        assert_eq!(file.interfaces[0].link_type, LinkType::LINUX_SLL2);
        if file.interfaces.len() == 2 {
            with_b += 1;
            assert_eq!(file.interfaces[1].name.as_deref(), Some("node-b:any"));
        }
        // Rotated once the file reached the size: only its last packet goes past it.
        let len = std::fs::metadata(name).unwrap().len();
        assert!(len < 1000 + 200, "{} is {len} bytes", name.display());
        for r in &file.records {
            let i = (r.packet.ts_nanos - 1_000_000_000) / 1000;
            assert_eq!(r.packet, packet(i));
            assert_eq!(r.interface_id as u64, if i < 20 { 0 } else { i % 2 });
            seen.push(i);
        }
    }
    assert!(with_b >= 2, "node-b is in every file after it joined");
    assert_eq!(seen, (0..40).collect::<Vec<_>>());
    let report = s.report.lock().unwrap().clone();
    assert_eq!(report.packets, 40);
    assert_eq!(report.files, names.len() as u64);
    let on_disk: u64 = names
        .iter()
        .map(|n| std::fs::metadata(n).unwrap().len())
        .sum();
    assert_eq!(report.bytes, on_disk);
    assert!(!sink.full());
}

#[test]
fn the_ring_keeps_the_last_files_and_deletes_the_oldest() {
    let s = setup();
    let template = s.dir.path().join("ring.pcap");
    let mut sink = RotatingSink::open(
        &template,
        Format::Pcap,
        rotation(300, Some(3)),
        None,
        s.report.clone(),
    )
    .unwrap();
    let a = info("node-a");
    sink.interface(interface(0, &a, LinkType::ETHERNET))
        .unwrap();
    for i in 0..50 {
        sink.packet(0, &packet(i), None).unwrap();
        assert!(files(s.dir.path()).len() <= 3);
    }
    sink.finish().unwrap();
    let report = s.report.lock().unwrap().clone();
    let names = files(s.dir.path());
    assert_eq!(names.len(), 3);
    assert_eq!(report.deleted, report.files - 3);
    assert_eq!(names.last(), report.last.as_ref());
    assert_eq!(names.first(), report.first.as_ref(), "the oldest file kept");
    let mut kept = Vec::new();
    for name in &names {
        let file = CaptureFile::read(name).unwrap();
        assert_eq!(file.format, kcap_pcap::Format::Pcap);
        assert_eq!(file.interfaces[0].link_type, LinkType::ETHERNET);
        kept.extend(file.records.iter().map(|r| r.packet.ts_nanos));
    }
    // The newest packets, in order, none twice, up to the last one written.
    assert!(kept.windows(2).all(|w| w[1] == w[0] + 1000));
    assert_eq!(*kept.last().unwrap(), packet(49).ts_nanos);
}

#[test]
fn time_rotation_starts_a_file_at_the_first_packet_after_the_interval() {
    let s = setup();
    let template = s.dir.path().join("t.pcapng");
    let every = Some(Rotation {
        size: None,
        every: Some(Duration::from_millis(200)),
        ring: None,
    });
    let mut sink =
        RotatingSink::open(&template, Format::Pcapng, every, None, s.report.clone()).unwrap();
    let a = info("node-a");
    sink.interface(interface(0, &a, LinkType::ETHERNET))
        .unwrap();
    sink.packet(0, &packet(0), None).unwrap();
    sink.packet(0, &packet(1), None).unwrap();
    std::thread::sleep(Duration::from_millis(250));
    // No file without a packet: a quiet interval makes none.
    sink.flush().unwrap();
    assert_eq!(files(s.dir.path()).len(), 1);
    sink.packet(0, &packet(2), None).unwrap();
    sink.finish().unwrap();
    let counts: Vec<usize> = files(s.dir.path())
        .iter()
        .map(|n| CaptureFile::read(n).unwrap().records.len())
        .collect();
    assert_eq!(counts, [2, 1]);
}

#[test]
fn max_size_is_full_once_the_files_reach_it() {
    let s = setup();
    let template = s.dir.path().join("max.pcapng");
    let mut sink = RotatingSink::open(
        &template,
        Format::Pcapng,
        rotation(500, None),
        Some(2000),
        s.report.clone(),
    )
    .unwrap();
    let a = info("node-a");
    sink.interface(interface(0, &a, LinkType::ETHERNET))
        .unwrap();
    let mut written = 0;
    while !sink.full() {
        sink.packet(0, &packet(written), None).unwrap();
        written += 1;
        assert!(written < 100);
    }
    sink.finish().unwrap();
    let report = s.report.lock().unwrap().clone();
    assert!(
        report.bytes >= 2000 && report.bytes < 2000 + 200,
        "{report:?}"
    );
    assert_eq!(report.packets, written);
    let in_files: usize = files(s.dir.path())
        .iter()
        .map(|n| CaptureFile::read(n).unwrap().records.len())
        .sum();
    assert_eq!(in_files as u64, written);
}

#[test]
fn a_bad_directory_fails_at_once() {
    let s = setup();
    let template = s.dir.path().join("missing/cap.pcapng");
    let e = RotatingSink::open(
        &template,
        Format::Pcapng,
        rotation(10, None),
        None,
        s.report,
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("missing/cap-00001.pcapng"), "{e}");
}

#[test]
fn max_size_alone_writes_one_file_with_its_time_fields_filled_in() {
    let s = setup();
    let template = s.dir.path().join("one-%Y.pcapng");
    let mut sink =
        RotatingSink::open(&template, Format::Pcapng, None, Some(600), s.report.clone()).unwrap();
    let a = info("node-a");
    sink.interface(interface(0, &a, LinkType::ETHERNET))
        .unwrap();
    while !sink.full() {
        sink.packet(0, &packet(0), None).unwrap();
    }
    sink.finish().unwrap();
    let names = files(s.dir.path());
    let year = crate::time::local(naming::now_secs()).year;
    assert_eq!(names, [s.dir.path().join(format!("one-{year}.pcapng"))]);
    assert_eq!(s.report.lock().unwrap().files, 1);
}
