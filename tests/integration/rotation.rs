//! Long captures: files rotated by size (`-C`) and by time (`-G`), the `-W` ring,
//! `--max-size` and `--flight-recorder`, on the real test bed. Every file must be
//! readable by tshark on its own, and the files together hold exactly the packets
//! the summary says were captured, none twice.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

/// Steady extra traffic to node-a (100 pings a second from the client), so sizes
/// are reached in a second or two; stopped when dropped.
struct Pings(Child);

impl Pings {
    fn start(bed: &Bed) -> Pings {
        let netns = bed.bed.host("client").netns.clone();
        let child = Command::new("ip")
            .args(["netns", "exec", &netns, "ping", "-q", "-i", "0.01"])
            .args(["-s", "200", "-w", "60", "198.51.100.10"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ping");
        Pings(child)
    }
}

impl Drop for Pings {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The files in `dir` whose name starts with `prefix`, sorted by name.
fn files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    files.sort();
    files
}

/// `N` in the summary's "kcap: wrote N packets".
fn written(out: &Output) -> u64 {
    let text = stderr(out);
    let rest = text
        .split("kcap: wrote ")
        .nth(1)
        .unwrap_or_else(|| panic!("no 'wrote' summary:\n{text}"));
    rest.split(' ').next().unwrap().parse().unwrap()
}

/// `N` in node-a's summary line "kcap: node-a: N packets": what was captured.
fn captured(out: &Output) -> u64 {
    let text = stderr(out);
    text.lines()
        .filter_map(|l| l.strip_prefix("kcap: node-a: "))
        .find_map(|rest| rest.split_once(" packets, "))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no node-a summary:\n{text}"))
}

/// Every packet of every file as (timestamp, bytes), each file checked with tshark
/// (it reads it alone, the same count) and with kcap's reader (a clean, complete file;
/// pcapng: with node-a's interface).
fn packets_of(files: &[PathBuf]) -> Vec<(u64, Vec<u8>)> {
    let mut all = Vec::new();
    for file in files {
        let capture = read_capture(file);
        if capture.format == kcap_pcap::Format::Pcapng {
            assert_eq!(
                capture.interface_names(),
                ["node-a:any"],
                "{}",
                file.display()
            );
        }
        assert!(!capture.records.is_empty(), "{} is empty", file.display());
        assert_eq!(
            tshark_count(file, None),
            capture.records.len(),
            "{}",
            file.display()
        );
        all.extend(
            capture
                .records
                .into_iter()
                .map(|r| (r.packet.ts_nanos, r.packet.data.to_vec())),
        );
    }
    all
}

fn assert_none_twice(packets: &[(u64, Vec<u8>)]) {
    let unique: HashSet<&(u64, Vec<u8>)> = packets.iter().collect();
    assert_eq!(unique.len(), packets.len(), "a packet is in two files");
    // Not checked: time order. kcap keeps each source's capture order, and one run
    // here saw a packet of tcpdump's `-i any` stream older than the one before it.
}

#[test]
fn size_rotation_writes_every_packet_once_and_the_ring_keeps_the_last_files() {
    let bed = Bed::minimal();
    let _pings = Pings::start(&bed);

    // Every file kept: together exactly what was captured.
    let out = run(
        bed.kcap()
            .args(["--ssh-host", "node-a", "-d", "3s", "-C", "16k", "-o"])
            .arg(bed.path("size.pcapng")),
        Duration::from_secs(60),
    );
    assert_ok(&out);
    let names = files(bed.scratch.path(), "size-");
    assert!(names.len() >= 3, "{names:?}\n{}", stderr(&out));
    for (i, name) in names.iter().enumerate() {
        assert_eq!(*name, bed.path(&format!("size-{:05}.pcapng", i + 1)));
        // Closed at 16 KiB: at most one packet (ping, 270 bytes) past it.
        let len = std::fs::metadata(name).unwrap().len();
        assert!(len < 16 * 1024 + 600, "{} is {len} bytes", name.display());
    }
    let packets = packets_of(&names);
    assert_none_twice(&packets);
    assert_eq!(packets.len() as u64, written(&out), "{}", stderr(&out));
    assert_eq!(packets.len() as u64, captured(&out), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("to {} files", names.len())),
        "{}",
        stderr(&out)
    );

    // -W 3, pcap: three files stay, the newest ones, each with its own header.
    let out = run(
        bed.kcap()
            .args(["--ssh-host", "node-a", "-d", "3s", "-C", "8k", "-W", "3"])
            .arg("-o")
            .arg(bed.path("ring.pcap")),
        Duration::from_secs(60),
    );
    assert_ok(&out);
    let names = files(bed.scratch.path(), "ring-");
    assert_eq!(names.len(), 3, "{names:?}\n{}", stderr(&out));
    let text = stderr(&out);
    let total: usize = text
        .split(" files, ")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no file count:\n{text}"));
    assert!(total > 3, "{text}");
    assert!(
        text.contains(&format!("the last 3 kept ({} deleted by -W)", total - 3)),
        "{text}"
    );
    for (i, name) in names.iter().enumerate() {
        assert_eq!(
            *name,
            bed.path(&format!("ring-{:05}.pcap", total - 2 + i)),
            "the newest files stay"
        );
        assert_eq!(read_capture(name).format, kcap_pcap::Format::Pcap);
    }
    let packets = packets_of(&names);
    assert_none_twice(&packets);
    assert!((packets.len() as u64) < written(&out));
}

#[test]
fn time_rotation_names_files_by_their_start_time_and_keeps_the_ring() {
    let bed = Bed::minimal();
    let _pings = Pings::start(&bed);
    let started = std::time::SystemTime::now();
    let out = run(
        bed.kcap()
            .args(["--ssh-host", "node-a", "-d", "4500ms", "-G", "1", "-W", "2"])
            .arg("-o")
            .arg(bed.path("t-%Y%m%d-%H%M%S.pcapng")),
        Duration::from_secs(60),
    );
    assert_ok(&out);
    let text = stderr(&out);
    let names = files(bed.scratch.path(), "t-");
    assert_eq!(names.len(), 2, "{names:?}\n{text}");
    assert!(text.contains("files, the last 2 kept ("), "{text}");
    let start_secs = started
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut last_stamp = 0;
    let mut numbers = Vec::new();
    for name in &names {
        // t-YYYYMMDD-HHMMSS-NNNNN.pcapng, in the local time the file started: when
        // its first packet arrived, a little after that packet's own time.
        let base = name.file_name().unwrap().to_str().unwrap();
        let fields: Vec<&str> = base.trim_end_matches(".pcapng").split('-').collect();
        assert_eq!(fields.len(), 4, "{base}");
        let stamp = local_secs(fields[1], fields[2]);
        assert!(stamp >= last_stamp && stamp >= start_secs, "{base}");
        last_stamp = stamp;
        numbers.push(fields[3].parse::<u64>().unwrap());
        let first = (read_capture(name).records[0].packet.ts_nanos / 1_000_000_000) as i64;
        assert!(
            (first - 1..=first + 3).contains(&stamp),
            "{base}: first packet at {first}, file named at {stamp}"
        );
    }
    assert_eq!(numbers[1], numbers[0] + 1);
    assert!(
        numbers[0] >= 3,
        "at least 4 files in 4.5 s with -G 1: {names:?}"
    );
    assert_none_twice(&packets_of(&names));
}

/// Seconds since the epoch of local `YYYYMMDD` `HHMMSS`, as `date` reads them.
fn local_secs(date: &str, time: &str) -> i64 {
    let out = Command::new("date")
        .arg("-d")
        .arg(format!(
            "{}-{}-{} {}:{}:{}",
            &date[..4],
            &date[4..6],
            &date[6..],
            &time[..2],
            &time[2..4],
            &time[4..]
        ))
        .arg("+%s")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn max_size_stops_the_capture_once_the_files_reach_it() {
    let bed = Bed::minimal();
    let _pings = Pings::start(&bed);
    let began = Instant::now();
    let out = run(
        bed.kcap()
            .args(["--ssh-host", "node-a", "-d", "30s", "--max-size", "40k"])
            .args(["-C", "16k", "-o"])
            .arg(bed.path("max.pcapng")),
        Duration::from_secs(60),
    );
    assert_ok(&out);
    let text = stderr(&out);
    assert!(text.contains("(--max-size reached)"), "{text}");
    assert!(began.elapsed() < Duration::from_secs(20), "{text}");
    let names = files(bed.scratch.path(), "max-");
    assert_eq!(names.len(), 3, "{names:?}");
    let bytes: u64 = names
        .iter()
        .map(|n| std::fs::metadata(n).unwrap().len())
        .sum();
    // One packet past the size at most, and the statistics block at the end.
    assert!(
        (40 * 1024..40 * 1024 + 700).contains(&bytes),
        "{bytes} bytes"
    );
    let packets = packets_of(&names);
    assert_none_twice(&packets);
    assert_eq!(packets.len() as u64, written(&out), "{text}");
    assert_eq!(packets.len() as u64, captured(&out), "{text}");
}

/// Left running, then Ctrl-C: the file appears only then, with the last 2 s.
#[test]
fn flight_recorder_writes_the_last_window_when_kcap_stops() {
    let bed = Bed::minimal();
    let _pings = Pings::start(&bed);
    let file = bed.path("flight-%H%M%S.pcapng");
    let mut child = bed
        .kcap()
        .args(["--ssh-host", "node-a", "--flight-recorder", "2s", "-o"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        bed.wait_capturing("node-a", Duration::from_secs(20)),
        "capture never started"
    );
    // About 5 s of packets; nothing is written while the capture runs.
    std::thread::sleep(Duration::from_secs(5));
    assert!(child.try_wait().unwrap().is_none(), "kcap ended early");
    assert!(
        files(bed.scratch.path(), "flight-").is_empty(),
        "the flight recorder wrote before the stop"
    );
    // SAFETY: kill(2) of our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let out = wait(child, Duration::from_secs(60));
    assert_ok(&out);
    let text = stderr(&out);
    assert!(text.contains("(interrupted)"), "{text}");
    // Named with the stop time.
    let names = files(bed.scratch.path(), "flight-");
    assert_eq!(names.len(), 1, "{names:?}");
    let file = &names[0];
    let capture = read_capture(file);
    assert_eq!(tshark_count(file, None), capture.records.len());
    let first = capture.records.first().unwrap().packet.ts_nanos;
    let last = capture.records.last().unwrap().packet.ts_nanos;
    let span = Duration::from_nanos(last - first);
    // The last 2 s (100 pings a second fill it), not more.
    assert!(span <= Duration::from_secs(2), "{span:?}");
    assert!(span >= Duration::from_millis(1500), "{span:?}");
    let kept = capture.records.len() as u64;
    assert_eq!(kept, written(&out), "{text}");
    let aged: u64 = text
        .split("flight recorder: ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no aged-out count:\n{text}"));
    assert!(aged > kept / 2, "5 s captured, 2 s kept:\n{text}");
    assert_eq!(kept + aged, captured(&out), "{text}");
    assert_none_twice(&packets_of(&names));
}

#[test]
fn rotation_to_stdout_is_a_bad_flag() {
    for flags in [
        &["-C", "10"][..],
        &["-G", "60"],
        &["--max-size", "1G"],
        &["--flight-recorder", "30s"],
    ] {
        let out = Command::new(KCAP)
            .args(["--ssh-host", "node-a", "-o", "-"])
            .args(flags)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_exit(&out, 2, &["cannot", "rotate or limit -o - (stdout)"]);
    }
}

/// `--follow` with `-G`: a pod created during the capture joins the current file as
/// a new interface and is in every later file; the pods there from the start keep
/// their interface ids in every file.
#[test]
fn with_follow_a_new_pod_joins_the_current_file_and_stays_in_the_next() {
    kcap_testbed::require_kubectl!();
    let bed = crate::kube::cluster();
    let before = bed.pods_of("web");
    let child = bed
        .kcap_kube()
        .args(["-l", "app=web", "--follow", "--via", "node", "-d", "90s"])
        .args(["-G", "2", "-o"])
        .arg(bed.path("f.pcapng"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once the first file is done (the second exists): starting the helper pods
    // takes seconds under load, and the first file holds the first pods only.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while files(bed.scratch.path(), "f-").len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "no rotation within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    bed.kubectl_out(&["scale", "-n", "prod", "deployment/web", "--replicas=4"]);
    // Until the new pod joined a file and a later file was started: a new pod's
    // capture has been seen to take 10 s to start on a loaded machine.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut joined_in = None;
    loop {
        let names = files(bed.scratch.path(), "f-");
        let new: Vec<String> = bed
            .pods_of("web")
            .into_iter()
            .filter(|p| !before.contains(p))
            .collect();
        if joined_in.is_none()
            && let Some(pod) = new.first()
        {
            let joined = format!("prod/{pod}/any");
            joined_in = names
                .iter()
                .position(|f| interface_names_so_far(f).contains(&joined));
        }
        if joined_in.is_some_and(|i| names.len() > i + 2) {
            break;
        }
        if std::time::Instant::now() > deadline {
            send_signal(&child, libc::SIGKILL);
            let out = child.wait_with_output().unwrap();
            panic!("the new pod never joined a file:\n{}", stderr(&out));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    send_signal(&child, libc::SIGINT);
    let out = wait(child, crate::kube::LIMIT);
    assert_ok(&out);
    let text = stderr(&out);
    let new: Vec<String> = bed
        .pods_of("web")
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    assert_eq!(new.len(), 1, "{new:?}");
    let joined = format!("prod/{}/any", new[0]);
    let names = files(bed.scratch.path(), "f-");
    assert!(names.len() >= 3, "{names:?}\n{text}");
    let first = read_capture(&names[0]).interface_names();
    assert_eq!(first.len(), before.len(), "{first:?}");
    let mut total = 0;
    let mut seen_joined = false;
    for name in &names {
        let capture = read_capture(name);
        assert_eq!(tshark_count(name, None), capture.records.len());
        total += capture.records.len();
        let interfaces = capture.interface_names();
        assert_eq!(interfaces[..first.len()], first[..], "{}", name.display());
        if seen_joined {
            assert!(
                interfaces.contains(&joined),
                "{}: {interfaces:?}",
                name.display()
            );
        }
        seen_joined |= interfaces.contains(&joined);
    }
    assert!(seen_joined, "{joined} never joined:\n{text}");
    assert_eq!(total as u64, written(&out), "{text}");
    assert_eq!(bed.helpers_left(Duration::from_secs(5)), "");
}

/// The interface names a file being written holds so far.
fn interface_names_so_far(path: &Path) -> Vec<String> {
    let Ok(mut reader) = kcap_pcap::open(path) else {
        return Vec::new();
    };
    for record in &mut reader {
        if record.is_err() {
            break;
        }
    }
    reader
        .interfaces()
        .iter()
        .filter_map(|i| i.name.clone())
        .collect()
}

fn send_signal(child: &Child, signal: i32) {
    // SAFETY: kill(2) of our own child.
    unsafe { libc::kill(child.id() as i32, signal) };
}

/// The first rotated file is created (the flight recorder's directory checked)
/// before anything connects: a bad path is exit 10 at once, with no test bed.
#[test]
fn a_missing_directory_fails_before_connecting() {
    for (flags, says) in [
        (&["-C", "10"][..], "/nonexistent-kcap/x-00001.pcapng"),
        (&["--max-size", "10"], "/nonexistent-kcap/x.pcapng"),
        (&["--flight-recorder", "1m"], "/nonexistent-kcap/x.pcapng"),
    ] {
        let began = Instant::now();
        let out = Command::new(KCAP)
            .args([
                "--ssh-host",
                "192.0.2.1",
                "-o",
                "/nonexistent-kcap/x.pcapng",
            ])
            .args(flags)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_exit(&out, 10, &[says, "No such file or directory"]);
        assert!(began.elapsed() < Duration::from_secs(5));
    }
}
