//! Streaming pcap and pcapng with bounded memory: decode a live classic pcap
//! stream (`tcpdump -U -w -` over SSH), merge several streams in time order,
//! write pcap or pcapng files that stay readable if kcap is killed, and read
//! capture files back.

pub mod annotation;
mod buffer;
mod decoder;
mod error;
mod format;
mod merge;
mod packet;
mod pcap_writer;
mod pcapng_writer;
mod reader;
pub mod sll;

pub use decoder::{StreamDecoder, StreamHeader};
pub use error::Error;
pub use merge::Merger;
pub use packet::{LinkType, Packet};
pub use pcap_writer::PcapWriter;
pub use pcapng_writer::{InterfaceDescription, InterfaceStatistics, PcapngWriter};
pub use reader::{
    CaptureFile, CaptureFileReader, Format, InterfaceInfo, Record, SectionInfo, StatisticsRecord,
    open,
};
