//! kcap's capture agent, run on the node (or in the pod's network) instead of
//! `tcpdump --immediate-mode`.
//!
//! Why it exists: in immediate mode libpcap falls back to TPACKET_V2, one ring slot
//! per packet sized for the largest packet, so 16 MiB holds a few hundred packets and
//! bursts are dropped; without immediate mode (TPACKET_V3) tcpdump holds thousands
//! but delivers up to a second late. The agent reads a TPACKET_V3 ring with a short
//! block timeout ([`ring::BLOCK_TIMEOUT_MS`]): variable-size slots (no loss in the
//! same kernel memory) and live delivery.
//!
//! It does one job and leans on tcpdump for the rest: the wrapper compiles the user's
//! filter with `tcpdump -ddd` on the same host, for the link type the agent reports
//! (`--linktype`), and hands the program over (`--bpf`). Output is a pcap stream on
//! stdout and tcpdump's three statistics lines on stderr, so kcap reads it exactly as
//! it reads tcpdump.

pub mod args;
pub mod batch;
pub mod bpf;
pub mod pcap;
pub mod process;
pub mod ring;
mod run;

pub use run::main;
