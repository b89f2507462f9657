//! Just enough of an eBPF assembler for the attribution programs: the
//! instructions they use, and forward jumps to named labels.
//!
//! The programs are assembled at run time rather than compiled by clang: the
//! field offsets they read come from the running kernel's BTF (see `btf`), so one
//! agent binary works on every kernel, and building kcap needs no clang or libbpf.

/// One instruction, as the kernel reads it (`struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

/// Registers: R0 return value, R1-R5 arguments, R6-R9 kept across calls, R10
/// the frame pointer (read only).
pub type Reg = u8;
pub const R0: Reg = 0;
pub const R1: Reg = 1;
pub const R2: Reg = 2;
pub const R3: Reg = 3;
pub const R4: Reg = 4;
pub const R6: Reg = 6;
pub const R7: Reg = 7;
pub const R8: Reg = 8;
pub const FP: Reg = 10;

/// Access sizes.
#[derive(Debug, Clone, Copy)]
pub enum Size {
    B = 0x10,
    H = 0x08,
    W = 0x00,
    DW = 0x18,
}

const LDX_MEM: u8 = 0x01 | 0x60;
const ST_MEM: u8 = 0x02 | 0x60;
const STX_MEM: u8 = 0x03 | 0x60;
const ALU64: u8 = 0x07;
const JMP: u8 = 0x05;
const ADD: u8 = 0x00;
const MOV: u8 = 0xb0;
const K: u8 = 0x00;
const X: u8 = 0x08;
const JA: u8 = 0x00;
const JEQ: u8 = 0x10;
const JNE: u8 = 0x50;
const CALL: u8 = 0x80;
const EXIT: u8 = 0x90;
const PSEUDO_MAP_FD: u8 = 1;

/// A program being written.
#[derive(Debug, Default)]
pub struct Asm {
    insns: Vec<Insn>,
    /// (instruction index, label) of each jump still to be resolved.
    jumps: Vec<(usize, &'static str)>,
    labels: Vec<(&'static str, usize)>,
}

impl Asm {
    fn emit(&mut self, code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> &mut Self {
        self.insns.push(Insn {
            code,
            regs: (src << 4) | (dst & 0x0f),
            off,
            imm,
        });
        self
    }

    pub fn mov_imm(&mut self, dst: Reg, imm: i32) -> &mut Self {
        self.emit(ALU64 | MOV | K, dst, 0, 0, imm)
    }

    pub fn mov(&mut self, dst: Reg, src: Reg) -> &mut Self {
        self.emit(ALU64 | MOV | X, dst, src, 0, 0)
    }

    pub fn add_imm(&mut self, dst: Reg, imm: i32) -> &mut Self {
        self.emit(ALU64 | ADD | K, dst, 0, 0, imm)
    }

    /// `dst = *(size *)(src + off)`
    pub fn load(&mut self, size: Size, dst: Reg, src: Reg, off: i16) -> &mut Self {
        self.emit(LDX_MEM | size as u8, dst, src, off, 0)
    }

    /// `*(size *)(dst + off) = src`
    pub fn store(&mut self, size: Size, dst: Reg, off: i16, src: Reg) -> &mut Self {
        self.emit(STX_MEM | size as u8, dst, src, off, 0)
    }

    /// `*(size *)(dst + off) = imm`
    pub fn store_imm(&mut self, size: Size, dst: Reg, off: i16, imm: i32) -> &mut Self {
        self.emit(ST_MEM | size as u8, dst, 0, off, imm)
    }

    /// `dst = FP + off`: a pointer to the stack.
    pub fn stack_ptr(&mut self, dst: Reg, off: i16) -> &mut Self {
        self.mov(dst, FP).add_imm(dst, off.into())
    }

    /// `dst = ` the map with descriptor `fd` (a two-slot instruction).
    pub fn map(&mut self, dst: Reg, fd: i32) -> &mut Self {
        self.emit(0x18, dst, PSEUDO_MAP_FD, 0, fd);
        self.emit(0, 0, 0, 0, 0)
    }

    pub fn call(&mut self, helper: i32) -> &mut Self {
        self.emit(JMP | CALL, 0, 0, 0, helper)
    }

    pub fn exit(&mut self) -> &mut Self {
        self.emit(JMP | EXIT, 0, 0, 0, 0)
    }

    fn jump(&mut self, code: u8, dst: Reg, imm: i32, label: &'static str) -> &mut Self {
        self.jumps.push((self.insns.len(), label));
        self.emit(code, dst, 0, 0, imm)
    }

    pub fn goto(&mut self, label: &'static str) -> &mut Self {
        self.jump(JMP | JA, 0, 0, label)
    }

    pub fn if_eq(&mut self, dst: Reg, imm: i32, label: &'static str) -> &mut Self {
        self.jump(JMP | JEQ | K, dst, imm, label)
    }

    pub fn if_ne(&mut self, dst: Reg, imm: i32, label: &'static str) -> &mut Self {
        self.jump(JMP | JNE | K, dst, imm, label)
    }

    /// The next instruction is `label`.
    pub fn label(&mut self, label: &'static str) -> &mut Self {
        self.labels.push((label, self.insns.len()));
        self
    }

    /// The finished program.
    ///
    /// # Panics
    /// On a jump to a label never placed, or placed before the jump: a bug in
    /// the program, not in its input.
    pub fn finish(mut self) -> Vec<Insn> {
        for &(at, label) in &self.jumps {
            let target = self
                .labels
                .iter()
                .find(|&&(l, _)| l == label)
                .map(|&(_, t)| t)
                .unwrap_or_else(|| panic!("no label {label}"));
            assert!(target > at, "jump back to {label}");
            self.insns[at].off = (target - at - 1) as i16;
        }
        self.insns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_are_encoded_as_the_kernel_reads_them() {
        let mut a = Asm::default();
        a.mov_imm(R0, 0)
            .if_eq(R1, 10, "end")
            .map(R1, 5)
            .store(Size::DW, FP, -8, R6)
            .label("end")
            .exit();
        let p = a.finish();
        assert_eq!(p.len(), 6);
        assert_eq!((p[0].code, p[0].regs, p[0].imm), (0xb7, 0, 0));
        // The jump skips the map's two slots and the store.
        assert_eq!((p[1].code, p[1].regs, p[1].off, p[1].imm), (0x15, 1, 3, 10));
        assert_eq!((p[2].code, p[2].regs, p[2].imm), (0x18, 0x11, 5));
        assert_eq!((p[4].code, p[4].regs, p[4].off), (0x7b, 0x6a, -8));
        assert_eq!(p[5].code, 0x95);
    }
}
