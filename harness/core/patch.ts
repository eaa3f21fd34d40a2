import { POISON_IMM, type RelocationResult } from './calc.js';
import { CoreFailure, EINVAL, ERANGE } from './errno.js';

/** Size of one BPF instruction (struct bpf_insn). */
export const INSN_SIZE = 8;

const BPF_CLASS_MASK = 0x07;
const BPF_LD = 0x00;
const BPF_LDX = 0x01;
const BPF_ST = 0x02;
const BPF_STX = 0x03;
const BPF_ALU = 0x04;
const BPF_JMP = 0x05;
const BPF_ALU64 = 0x07;
const BPF_SRC_X = 0x08;
const BPF_CALL = 0x80;
const BPF_SIZE_MASK = 0x18;
const BPF_MODE_MASK = 0xe0;
/** BPF_LD | BPF_IMM | BPF_DW: the first half of a 64-bit immediate load. */
export const BPF_LD_IMM64 = 0x18;

const SIZE_BYTES: Record<number, number> = { 24: 8, 0: 4, 8: 2, 16: 1 };
const BYTES_SIZE: Record<number, number> = { 8: 0x18, 4: 0x00, 2: 0x08, 1: 0x10 };

/** How libbpf's "patched insn" debug line describes the change, for reports and diffs. */
export type PatchRecord =
  | { action: 'poisoned' }
  | {
      action: 'patched';
      /** 'ALU/ALU64' (imm), 'LDX/ST/STX' (off) or 'LDIMM64' (imm64), as libbpf names them. */
      insnClass: 'ALU/ALU64' | 'LDX/ST/STX' | 'LDIMM64';
      /** The instruction's value before and after, as u64 (libbpf prints them with %llu). */
      old: bigint;
      new: bigint;
      /** Set when a load/store's memory size was changed too. */
      memSize?: { old: number; new: number };
    };

/**
 * An instruction array with the object's byte order. Register nibbles sit in the opposite halves
 * of byte 1 on big-endian BPF.
 */
export class Instructions {
  readonly bytes: Uint8Array;
  readonly littleEndian: boolean;
  private readonly view: DataView;

  constructor(bytes: Uint8Array, littleEndian: boolean) {
    this.bytes = bytes;
    this.littleEndian = littleEndian;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get count(): number {
    return Math.floor(this.bytes.length / INSN_SIZE);
  }
  code(i: number): number {
    return this.bytes[i * INSN_SIZE]!;
  }
  dst(i: number): number {
    const b = this.bytes[i * INSN_SIZE + 1]!;
    return this.littleEndian ? b & 0x0f : b >> 4;
  }
  src(i: number): number {
    const b = this.bytes[i * INSN_SIZE + 1]!;
    return this.littleEndian ? b >> 4 : b & 0x0f;
  }
  off(i: number): number {
    return this.view.getInt16(i * INSN_SIZE + 2, this.littleEndian);
  }
  imm(i: number): number {
    return this.view.getInt32(i * INSN_SIZE + 4, this.littleEndian);
  }
  setCode(i: number, code: number): void {
    this.bytes[i * INSN_SIZE] = code;
  }
  setRegs(i: number, dst: number, src: number): void {
    this.bytes[i * INSN_SIZE + 1] = this.littleEndian ? (src << 4) | dst : (dst << 4) | src;
  }
  setOff(i: number, off: number): void {
    this.view.setInt16(i * INSN_SIZE + 2, off, this.littleEndian);
  }
  setImm(i: number, imm: number): void {
    this.view.setInt32(i * INSN_SIZE + 4, imm | 0, this.littleEndian);
  }
}

function u64(n: number): bigint {
  return BigInt.asUintN(64, BigInt(n));
}

/**
 * bpf_core_poison_insn: turns the instruction into a call of helper 0xbad2310, which the verifier
 * rejects as "invalid func unknown#195896080" if the instruction is reachable and ignores if it is
 * dead code.
 */
function poisonInsn(insns: Instructions, i: number): void {
  insns.setCode(i, BPF_JMP | BPF_CALL);
  insns.setRegs(i, 0, 0);
  insns.setOff(i, 0);
  insns.setImm(i, POISON_IMM);
}

/**
 * bpf_core_patch_insn: writes a relocation result into instruction `i` (in place), after checking
 * that the instruction holds the value the local BTF predicts (when `res.validate`). Supports
 * `rX = imm` / `rX op= imm` (ALU/ALU64, imm), loads and stores (LDX/ST/STX, off, with the memory
 * size adjusted when the field's size changed and that is safe) and 64-bit immediate loads; any
 * other instruction is an error, as in libbpf.
 */
export function patchInsn(insns: Instructions, i: number, res: RelocationResult): PatchRecord {
  if (i < 0 || i >= insns.count) throw new CoreFailure(EINVAL, `insn #${i} out of range`);
  const code = insns.code(i);
  const isLdImm64 = code === BPF_LD_IMM64;
  if (res.poison) return poison(insns, i, isLdImm64);

  const cls = code & BPF_CLASS_MASK;
  switch (cls) {
    case BPF_ALU:
    case BPF_ALU64: {
      if ((code & BPF_SRC_X) !== 0)
        throw new CoreFailure(EINVAL, `insn #${i} (ALU/ALU64) has a register source`);
      const imm = insns.imm(i);
      if (res.validate && u64(imm) !== res.origVal) {
        throw new CoreFailure(
          EINVAL,
          `unexpected insn #${i} (ALU/ALU64) value: got ${imm}, exp ${res.origVal} -> ${res.newVal}`,
        );
      }
      insns.setImm(i, Number(BigInt.asIntN(32, res.newVal)));
      return { action: 'patched', insnClass: 'ALU/ALU64', old: u64(imm), new: res.newVal };
    }
    case BPF_LDX:
    case BPF_ST:
    case BPF_STX: {
      const off = insns.off(i);
      if (res.validate && u64(off) !== res.origVal) {
        throw new CoreFailure(
          EINVAL,
          `unexpected insn #${i} (LDX/ST/STX) value: got ${off}, exp ${res.origVal} -> ${res.newVal}`,
        );
      }
      if (res.newVal > 32767n) {
        throw new CoreFailure(ERANGE, `insn #${i} (LDX/ST/STX) value too big: ${res.newVal}`);
      }
      if (res.failMemszAdjust) {
        // libbpf: "accesses field incorrectly. Make sure you are accessing pointers, unsigned
        // integers, or fields of matching type and size." The instruction is poisoned, not refused.
        return poison(insns, i, isLdImm64);
      }
      insns.setOff(i, Number(res.newVal));
      const record: PatchRecord = {
        action: 'patched',
        insnClass: 'LDX/ST/STX',
        old: u64(off),
        new: res.newVal,
      };
      if (res.newSize !== res.origSize) {
        const size = SIZE_BYTES[code & BPF_SIZE_MASK];
        if (size !== res.origSize) {
          throw new CoreFailure(
            EINVAL,
            `insn #${i} (LDX/ST/STX) unexpected mem size: got ${size}, exp ${res.origSize}`,
          );
        }
        const newSizeBits = BYTES_SIZE[res.newSize];
        if (newSizeBits === undefined) {
          throw new CoreFailure(EINVAL, `insn #${i} (LDX/ST/STX) invalid new mem size: ${res.newSize}`);
        }
        insns.setCode(i, (code & BPF_MODE_MASK) | newSizeBits | cls);
        record.memSize = { old: res.origSize, new: res.newSize };
      }
      return record;
    }
    case BPF_LD: {
      if (
        !isLdImm64 ||
        i + 1 >= insns.count ||
        insns.src(i) !== 0 ||
        insns.off(i) !== 0 ||
        insns.code(i + 1) !== 0 ||
        insns.dst(i + 1) !== 0 ||
        insns.src(i + 1) !== 0 ||
        insns.off(i + 1) !== 0
      ) {
        throw new CoreFailure(EINVAL, `insn #${i} (LDIMM64) has unexpected form`);
      }
      const imm = (BigInt(insns.imm(i + 1) >>> 0) << 32n) | BigInt(insns.imm(i) >>> 0);
      if (res.validate && imm !== res.origVal) {
        throw new CoreFailure(
          EINVAL,
          `unexpected insn #${i} (LDIMM64) value: got ${imm}, exp ${res.origVal} -> ${res.newVal}`,
        );
      }
      insns.setImm(i, Number(BigInt.asIntN(32, res.newVal)));
      insns.setImm(i + 1, Number(BigInt.asIntN(32, res.newVal >> 32n)));
      return { action: 'patched', insnClass: 'LDIMM64', old: imm, new: res.newVal };
    }
    default:
      throw new CoreFailure(
        EINVAL,
        `trying to relocate unrecognized insn #${i}, code:0x${code.toString(16)}, src:0x${insns.src(i).toString(16)}, dst:0x${insns
          .dst(i)
          .toString(
            16,
          )}, off:0x${(insns.off(i) & 0xffff).toString(16)}, imm:0x${(insns.imm(i) >>> 0).toString(16)}`,
      );
  }
}

function poison(insns: Instructions, i: number, isLdImm64: boolean): PatchRecord {
  // Both halves of a 64-bit load, so the verifier does not complain about "unknown opcode 00".
  if (isLdImm64 && i + 1 < insns.count) poisonInsn(insns, i + 1);
  poisonInsn(insns, i);
  return { action: 'poisoned' };
}
