//! On-disk constants of classic pcap and pcapng, shared by readers and writers.

/// Classic pcap magic with microsecond timestamps, as read in file byte order.
pub const PCAP_MAGIC_MICROS: u32 = 0xa1b2_c3d4;
/// Classic pcap magic with nanosecond timestamps.
pub const PCAP_MAGIC_NANOS: u32 = 0xa1b2_3c4d;
/// Size of the classic pcap global header.
pub const PCAP_HEADER_LEN: usize = 24;
/// Size of a classic pcap record header.
pub const PCAP_RECORD_HEADER_LEN: usize = 16;

/// Section Header Block type; a palindrome, so it reads the same in either byte order.
pub const BLOCK_SHB: u32 = 0x0a0d_0d0a;
pub const BLOCK_IDB: u32 = 0x0000_0001;
/// Obsolete Packet Block, still produced by old tools.
pub const BLOCK_OPB: u32 = 0x0000_0002;
pub const BLOCK_SPB: u32 = 0x0000_0003;
pub const BLOCK_ISB: u32 = 0x0000_0005;
pub const BLOCK_EPB: u32 = 0x0000_0006;
/// Name Resolution Block: addresses and the names Wireshark shows for them.
pub const BLOCK_NRB: u32 = 0x0000_0004;
pub const NRB_RECORD_END: u16 = 0;
pub const NRB_RECORD_IPV4: u16 = 1;
pub const NRB_RECORD_IPV6: u16 = 2;
/// The SHB byte-order magic, as written by the writer's native order.
pub const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;

pub const OPT_ENDOFOPT: u16 = 0;
pub const OPT_COMMENT: u16 = 1;
pub const SHB_HARDWARE: u16 = 2;
pub const SHB_OS: u16 = 3;
pub const SHB_USERAPPL: u16 = 4;
pub const IF_NAME: u16 = 2;
pub const IF_DESCRIPTION: u16 = 3;
pub const IF_TSRESOL: u16 = 9;
pub const IF_TSOFFSET: u16 = 14;
pub const ISB_STARTTIME: u16 = 2;
pub const ISB_ENDTIME: u16 = 3;
pub const ISB_IFRECV: u16 = 4;
pub const ISB_IFDROP: u16 = 5;

/// Largest captured length tcpdump ever produces (its maximum snaplen);
/// anything above it in a live stream means the stream is corrupt.
pub const MAX_STREAM_CAPLEN: u32 = 256 * 1024;

/// Rounds a length up to the 32-bit alignment pcapng requires.
#[inline]
pub const fn pad4(len: usize) -> usize {
    (len + 3) & !3
}
