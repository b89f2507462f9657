//! Faults injected on the test bed: the output disk fills up (a small tmpfs)
//! in the middle of a pcapng and of a rotation, the reader of stdout goes away
//! (`| head -c 1000`), the SSH link flaps. After each: the exit code as documented,
//! what was written readable up to the last complete packet, nothing left running
//! on the node.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crate::util::*;

/// A tmpfs of `size` at `dir`, unmounted when dropped: a disk that fills up.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: PathBuf, size: &str) -> SmallDisk {
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "kcap-test-full",
            ])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "mount tmpfs: {out:?}");
        SmallDisk(dir)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// tshark reads `file` to its end without an error (a partial block at the end
/// would make it say the file was cut short).
fn tshark_reads_cleanly(file: &Path) -> usize {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(file)
        .output()
        .unwrap();
    let complaints: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.starts_with("Running as user"))
        .map(str::to_string)
        .collect();
    assert!(
        out.status.success() && complaints.is_empty(),
        "tshark on {}: {complaints:?}",
        file.display(),
    );
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[test]
fn a_full_disk_ends_the_capture_and_the_file_reads_to_its_last_packet() {
    let bed = Bed::minimal();
    let disk = SmallDisk::mount(bed.path("disk"), "256k");
    let file = disk.0.join("full.pcapng");
    let out = run(
        bed.kcap()
            .args(["--ssh-host", "node-a", "-d", "60s", "-o"])
            .arg(&file),
        Duration::from_secs(90),
    );
    assert_exit(&out, 10, &["No space left", "free space"]);
    let packets = tshark_reads_cleanly(&file);
    assert!(packets > 100, "{packets} packets before the disk filled");
    assert_eq!(read_capture(&file).records.len(), packets);
    assert!(
        bed.wait_capture_gone("node-a", Duration::from_secs(5))
            .is_empty()
    );
}

#[test]
fn a_full_disk_during_rotation_leaves_every_file_readable() {
    let bed = Bed::minimal();
    let disk = SmallDisk::mount(bed.path("disk"), "256k");
    let template = disk.0.join("ring.pcapng");
    let out = run(
        bed.kcap()
            .args(["--ssh-host", "node-a", "-d", "60s", "-C", "100k", "-o"])
            .arg(&template),
        Duration::from_secs(90),
    );
    assert_exit(&out, 10, &["No space left"]);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&disk.0)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    for file in &files {
        assert!(
            tshark_reads_cleanly(file) > 0,
            "{} is empty",
            file.display()
        );
    }
    assert!(
        bed.wait_capture_gone("node-a", Duration::from_secs(5))
            .is_empty()
    );
}

#[test]
fn a_reader_that_goes_away_ends_the_capture() {
    let bed = Bed::minimal();
    let mut child = bed
        .kcap()
        .args(["--ssh-host", "node-a", "-d", "60s", "-o", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `| head -c 1000`: a reader that takes 1000 bytes and leaves.
    let mut first = vec![0u8; 1000];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    let out = wait(child, Duration::from_secs(20));
    assert_exit(&out, 10, &["stdout", "went away"]);
    assert_eq!(
        &first[..4],
        &0x0a0d0d0au32.to_le_bytes(),
        "pcapng came first"
    );
    assert!(
        bed.wait_capture_gone("node-a", Duration::from_secs(5))
            .is_empty()
    );
}

#[test]
fn a_link_that_flaps_three_times_does_not_end_the_capture() {
    let bed = Bed::minimal();
    let file = bed.path("flap.pcapng");
    let child = bed
        .kcap()
        .args(["--ssh-host", "node-a", "-d", "16s"])
        .spawn_writing(&file);
    assert!(bed.wait_capturing("node-a", Duration::from_secs(20)));
    let mut restored = SystemTime::now();
    for _ in 0..3 {
        std::thread::sleep(Duration::from_secs(1));
        bed.bed.cut_link("node-a").unwrap();
        // Shorter than kcap's keepalive limit (3 x 2 s), as a flapping link is.
        std::thread::sleep(Duration::from_millis(1500));
        bed.bed.restore_link("node-a").unwrap();
        restored = SystemTime::now();
    }
    let started = Instant::now();
    let out = wait(child, Duration::from_secs(40));
    assert_ok(&out);
    assert!(started.elapsed() < Duration::from_secs(15));
    let last_restore = restored
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let capture = read_capture(&file);
    let after = capture
        .records
        .iter()
        .filter(|r| r.packet.ts_nanos > last_restore)
        .count();
    assert!(
        after > 0,
        "no packet after the link came back: {}",
        stderr(&out)
    );
    assert!(
        bed.wait_capture_gone("node-a", Duration::from_secs(5))
            .is_empty()
    );
}
