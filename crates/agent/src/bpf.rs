//! The classic BPF program the kernel runs on each packet: read from
//! `tcpdump -ddd` text, and rewritten for cooked captures.
//!
//! tcpdump compiles a filter for the link type it would see, with the cooked
//! (LINUX_SLL2) header in front of each packet. The kernel runs the filter on a
//! `SOCK_DGRAM` packet socket before any such header exists: data starts at the
//! network header and the header's fields are ancillary loads. [`for_cooked`]
//! rewrites the program accordingly, as libpcap does for its own `any` captures.

/// One instruction, as the kernel's `struct sock_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// Length of the LINUX_SLL2 header.
pub const SLL2_HEADER: u32 = 20;

// Opcode fields (linux/filter.h).
const CLASS_LD: u16 = 0x00;
const CLASS_LDX: u16 = 0x01;
const MODE_ABS: u16 = 0x20;
const MODE_IND: u16 = 0x40;
const MODE_MSH: u16 = 0xa0;
/// The kernel's ancillary data area: loads at `AD_OFF + field`.
const AD_OFF: u32 = (-0x1000i32) as u32;
const AD_PROTOCOL: u32 = 0;
const AD_PKTTYPE: u32 = 4;
const AD_IFINDEX: u32 = 8;
const AD_HATYPE: u32 = 28;

/// Parses `tcpdump -ddd` output: a count line, then `code jt jf k` per line.
/// tcpdump's chatter mixed in (`tcpdump: data link type ...`) is skipped.
pub fn parse(text: &str) -> Result<Vec<Insn>, String> {
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()));
    let Some(first) = lines.next() else {
        return Err("bpf: no program (tcpdump -ddd printed no instruction count)".into());
    };
    let count: usize = first
        .parse()
        .map_err(|_| format!("bpf: first line {first:?} is not an instruction count"))?;
    let program = lines
        .map(|line| {
            let fields: Vec<u64> = line
                .split_whitespace()
                .map(|w| {
                    w.parse::<u64>()
                        .map_err(|_| format!("bpf: bad line {line:?}"))
                })
                .collect::<Result<_, _>>()?;
            match fields[..] {
                [code, jt, jf, k]
                    if code <= 0xffff && jt <= 0xff && jf <= 0xff && k <= 0xffff_ffff =>
                {
                    Ok(Insn {
                        code: code as u16,
                        jt: jt as u8,
                        jf: jf as u8,
                        k: k as u32,
                    })
                }
                _ => Err(format!("bpf: bad line {line:?}")),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    if program.len() != count || count == 0 || count > 4096 {
        return Err(format!(
            "bpf: {count} instructions announced, {} read",
            program.len()
        ));
    }
    Ok(program)
}

/// Rewrites a program compiled for LINUX_SLL2 to run on a `SOCK_DGRAM` socket.
/// `Err` names the header field the kernel cannot see (the caller then falls back
/// to tcpdump, which filters such packets in user space).
pub fn for_cooked(program: &[Insn]) -> Result<Vec<Insn>, String> {
    program
        .iter()
        .map(|&insn| {
            let class = insn.code & 0x07;
            let mode = insn.code & 0xe0;
            let loads_packet = (class == CLASS_LD && (mode == MODE_ABS || mode == MODE_IND))
                || (class == CLASS_LDX && mode == MODE_MSH);
            if !loads_packet || insn.k >= AD_OFF {
                return Ok(insn);
            }
            let k = match insn.k {
                k if k >= SLL2_HEADER => k - SLL2_HEADER,
                0 => AD_OFF + AD_PROTOCOL,
                4 => AD_OFF + AD_IFINDEX,
                8 => AD_OFF + AD_HATYPE,
                10 => AD_OFF + AD_PKTTYPE,
                k => return Err(format!("the filter reads byte {k} of the cooked header")),
            };
            Ok(Insn { k, ..insn })
        })
        .collect()
}

/// `program` behind a guard that refuses the copy of each loopback packet the
/// kernel shows as sent (the same packet then shows as received), so it takes no
/// room in the ring and is not counted twice. libpcap skips it after the fact.
pub fn without_loopback_echo(program: &[Insn], loopback_ifindex: u32, snaplen: u32) -> Vec<Insn> {
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    const PACKET_OUTGOING: u32 = 4;
    let mut guarded = vec![
        Insn {
            code: LD_W_ABS,
            jt: 0,
            jf: 0,
            k: AD_OFF + AD_PKTTYPE,
        },
        Insn {
            code: JEQ_K,
            jt: 0,
            jf: 3,
            k: PACKET_OUTGOING,
        },
        Insn {
            code: LD_W_ABS,
            jt: 0,
            jf: 0,
            k: AD_OFF + AD_IFINDEX,
        },
        Insn {
            code: JEQ_K,
            jt: 0,
            jf: 1,
            k: loopback_ifindex,
        },
        Insn {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: 0,
        },
    ];
    if program.is_empty() {
        guarded.push(Insn {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: snaplen,
        });
    }
    guarded.extend_from_slice(program);
    guarded
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tcpdump -ddd -y LINUX_SLL2 -i any udp port 53` (tcpdump 4.99, Debian 12), cut
    /// to its first instructions.
    const UDP53: &str = "4\n40 0 0 0\n21 0 1 34525\n48 0 0 26\n6 0 0 262144\n";

    #[test]
    fn reads_tcpdump_ddd_text() {
        let program = parse(UDP53).unwrap();
        assert_eq!(program.len(), 4);
        assert_eq!(
            program[0],
            Insn {
                code: 40,
                jt: 0,
                jf: 0,
                k: 0
            }
        );
        assert_eq!(
            program[1],
            Insn {
                code: 21,
                jt: 0,
                jf: 1,
                k: 34525
            }
        );
        assert!(parse("3\n6 0 0 1\n").is_err());
        assert!(parse("1\n6 0 x 1\n").is_err());
        assert!(parse("1\n6 0 0\n").is_err());
        let chatty = format!("tcpdump: data link type LINUX_SLL2\n{UDP53}");
        assert_eq!(parse(&chatty).unwrap(), program);
        assert!(parse("").is_err());
        assert!(parse("Welcome to node-a!\n").is_err());
    }

    #[test]
    fn loopback_guard_goes_in_front() {
        let program = parse(UDP53).unwrap();
        let guarded = without_loopback_echo(&program, 1, 100);
        assert_eq!(guarded.len(), 5 + program.len());
        assert_eq!(&guarded[5..], &program[..]);
        // Not outgoing, or not loopback: jump to the program's first instruction.
        assert_eq!(1 + 1 + guarded[1].jf as usize, 5);
        assert_eq!(3 + 1 + guarded[3].jf as usize, 5);
        assert_eq!(guarded[4].k, 0);
        assert_eq!(without_loopback_echo(&[], 1, 100)[5].k, 100);
    }

    #[test]
    fn cooked_header_loads_become_ancillary_loads() {
        let fixed = for_cooked(&parse(UDP53).unwrap()).unwrap();
        // ldh [0] (protocol) -> ldh [protocol]
        assert_eq!(fixed[0].k, AD_OFF + AD_PROTOCOL);
        // jeq is not a load: untouched
        assert_eq!(fixed[1].k, 34525);
        // ldb [26] (IPv6 next header at 20 + 6) -> ldb [6]
        assert_eq!(fixed[2].k, 6);
        assert_eq!(fixed[3].k, 262_144);
        // ldb [10] (packet type) and ldxb 4*([20]&0xf)
        let fixed = for_cooked(&[
            Insn {
                code: 0x30,
                jt: 0,
                jf: 0,
                k: 10,
            },
            Insn {
                code: 0xb1,
                jt: 0,
                jf: 0,
                k: 20,
            },
        ])
        .unwrap();
        assert_eq!(fixed[0].k, AD_OFF + AD_PKTTYPE);
        assert_eq!(fixed[1].k, 0);
        // The link-layer address (byte 12) has no ancillary twin.
        assert!(
            for_cooked(&[Insn {
                code: 0x20,
                jt: 0,
                jf: 0,
                k: 12
            }])
            .is_err()
        );
    }
}
