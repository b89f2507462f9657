//! What the programs need to know of the running kernel, from its BTF
//! (`/sys/kernel/btf/vmlinux`): the field offsets they read from a socket, a
//! socket buffer and a task, and the type ids of the tracepoints they attach to
//! (`btf_trace_NAME`).
//!
//! Only what that needs is parsed: structs and unions (members by name, anonymous
//! ones included, as `sock_common` nests its addresses in them) and typedef
//! names. The file is read once at start and dropped.

use std::collections::HashMap;

const MAGIC: u16 = 0xeb9f;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_TYPEDEF: u32 = 8;

/// Where the programs find what they read, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offsets {
    /// `struct sock_common` (at the start of every `struct sock`).
    pub family: i16,
    pub local_port: i16,
    pub local_v4: i16,
    pub local_v6: i16,
    /// `struct sock`.
    pub protocol: i16,
    /// `struct sk_buff`.
    pub skb_sock: i16,
    /// `struct task_struct`.
    pub real_parent: i16,
    pub tgid: i16,
}

/// A struct or union: its members (name, type id, offset in bits).
struct Composite {
    name: u32,
    members: Vec<(u32, u32, u32)>,
}

struct Btf {
    strings: Vec<u8>,
    /// Composites by type id.
    composites: HashMap<u32, Composite>,
    /// Typedefs: (name, type id).
    typedefs: Vec<(u32, u32)>,
}

/// What the programs need: the offsets, and the type ids of the `wanted`
/// tracepoints this kernel has.
pub fn read(wanted: &[&'static str]) -> Result<(Offsets, HashMap<&'static str, u32>), String> {
    let path = "/sys/kernel/btf/vmlinux";
    let data = std::fs::read(path)
        .map_err(|e| format!("the kernel has no BTF ({path}: {e}); kcap needs a kernel built with CONFIG_DEBUG_INFO_BTF (5.8 or later, as most distributions ship)"))?;
    let btf = Btf::parse(&data).ok_or("the kernel's BTF could not be read")?;
    let offsets = offsets_in(&btf)?;
    let mut tracepoints = HashMap::new();
    for &(name, id) in &btf.typedefs {
        let name = btf.name(name);
        if let Some(&w) = wanted
            .iter()
            .find(|w| name.strip_prefix(b"btf_trace_") == Some(w.as_bytes()))
        {
            tracepoints.insert(w, id);
        }
    }
    Ok((offsets, tracepoints))
}

fn offsets_in(btf: &Btf) -> Result<Offsets, String> {
    let field = |st: &str, member: &str| -> Result<i16, String> {
        btf.offset(st, member)
            .and_then(|o| i16::try_from(o).ok())
            .ok_or_else(|| format!("the kernel's BTF has no {st}.{member}"))
    };
    if btf.offset("sock", "__sk_common") != Some(0) {
        return Err("the kernel's struct sock does not start with its sock_common".into());
    }
    Ok(Offsets {
        family: field("sock_common", "skc_family")?,
        local_port: field("sock_common", "skc_num")?,
        local_v4: field("sock_common", "skc_rcv_saddr")?,
        local_v6: field("sock_common", "skc_v6_rcv_saddr")?,
        protocol: field("sock", "sk_protocol")?,
        skb_sock: field("sk_buff", "sk")?,
        real_parent: field("task_struct", "real_parent")?,
        tgid: field("task_struct", "tgid")?,
    })
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(*data.get(at..)?.first_chunk::<4>()?))
}

impl Btf {
    fn parse(data: &[u8]) -> Option<Btf> {
        if u16::from_le_bytes(*data.first_chunk::<2>()?) != MAGIC {
            return None;
        }
        let hdr_len = u32_at(data, 4)? as usize;
        let (type_off, type_len) = (u32_at(data, 8)? as usize, u32_at(data, 12)? as usize);
        let (str_off, str_len) = (u32_at(data, 16)? as usize, u32_at(data, 20)? as usize);
        let types = data.get(hdr_len + type_off..hdr_len + type_off + type_len)?;
        let strings = data
            .get(hdr_len + str_off..hdr_len + str_off + str_len)?
            .to_vec();
        let mut composites = HashMap::new();
        let mut typedefs = Vec::new();
        let (mut at, mut id) = (0usize, 1u32);
        while at + 12 <= types.len() {
            let name = u32_at(types, at)?;
            let info = u32_at(types, at + 4)?;
            let vlen = (info & 0xffff) as usize;
            let kind = (info >> 24) & 0x1f;
            let bitfields = info >> 31 == 1;
            at += 12;
            let extra = match kind {
                1 | 14 | 17 => 4,          // int, var, decl tag
                3 => 12,                   // array
                4 | 5 => 12 * vlen,        // struct, union
                6 | 13 => 8 * vlen,        // enum, func proto
                15 | 19 => 12 * vlen,      // datasec, enum64
                2 | 7..=12 | 16 | 18 => 0, // pointers, modifiers, func, float, tag
                _ => return None,
            };
            if kind == KIND_STRUCT || kind == KIND_UNION {
                let mut members = Vec::with_capacity(vlen);
                for m in 0..vlen {
                    let base = at + 12 * m;
                    let offset = u32_at(types, base + 8)?;
                    let offset = if bitfields {
                        offset & 0x00ff_ffff
                    } else {
                        offset
                    };
                    members.push((u32_at(types, base)?, u32_at(types, base + 4)?, offset));
                }
                composites.insert(id, Composite { name, members });
            } else if kind == KIND_TYPEDEF {
                typedefs.push((name, id));
            }
            at += extra;
            id += 1;
        }
        Some(Btf {
            strings,
            composites,
            typedefs,
        })
    }

    fn name(&self, off: u32) -> &[u8] {
        let rest = self.strings.get(off as usize..).unwrap_or_default();
        &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())]
    }

    /// Byte offset of `member` in struct `st` (the first struct of that name
    /// that has it), looking into anonymous members.
    fn offset(&self, st: &str, member: &str) -> Option<u32> {
        self.composites
            .iter()
            .filter(|(_, c)| self.name(c.name) == st.as_bytes())
            .find_map(|(&id, _)| self.member_bits(id, member.as_bytes(), 0))
            .map(|bits| bits / 8)
    }

    fn member_bits(&self, id: u32, member: &[u8], depth: u32) -> Option<u32> {
        let c = self.composites.get(&id)?;
        if depth > 8 {
            return None;
        }
        for &(name, ty, bits) in &c.members {
            if name != 0 && self.name(name) == member {
                return Some(bits);
            }
            if name == 0
                && let Some(inner) = self.member_bits(ty, member, depth + 1)
            {
                return Some(bits + inner);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On this machine's kernel the well-known layout comes out (x86_64 and
    /// arm64 share it for these fields). Skipped where the kernel has no BTF.
    #[test]
    fn this_kernels_socket_layout_and_tracepoints_are_found() {
        if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
            return;
        }
        let (o, tracepoints) = read(&["inet_sock_set_state", "no_such_tp"]).unwrap();
        assert_eq!((o.local_v4, o.local_port, o.family), (4, 14, 16));
        assert!(o.local_v6 > 16 && o.tgid > 0 && o.real_parent > o.tgid);
        assert!(o.protocol > 16 && o.skb_sock >= 0);
        assert!(tracepoints.contains_key("inet_sock_set_state"));
        assert!(!tracepoints.contains_key("no_such_tp"));
    }

    #[test]
    fn garbage_is_refused() {
        assert!(Btf::parse(b"not btf at all").is_none());
        assert!(Btf::parse(&[0x9f, 0xeb, 1, 0, 24, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]).is_none());
    }
}
