//! Identifiers the way a container runtime makes them: random hex from the
//! kernel (no RNG crate needed), container IDs of 64 hex digits.

use std::fs::File;
use std::io::Read;

/// `len` random lowercase hex digits.
pub(crate) fn random_hex(len: usize) -> String {
    let mut bytes = vec![0u8; len.div_ceil(2)];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("read /dev/urandom");
    let mut hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    hex.truncate(len);
    hex
}

/// A containerd container or sandbox ID.
pub(crate) fn container_id() -> String {
    random_hex(64)
}
