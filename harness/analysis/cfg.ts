/**
 * Decoding a program's final instructions (as planned: relocated, subprograms appended, calls
 * linked) and its control-flow graph: successors of each instruction, function boundaries (the
 * entry program at 0, every bpf-to-bpf call target and every callback address taken with
 * ld_imm64 BPF_PSEUDO_FUNC), calls and callbacks.
 */

export const INSN_SIZE = 8;

export const BPF_LD = 0x00;
export const BPF_LDX = 0x01;
export const BPF_ST = 0x02;
export const BPF_STX = 0x03;
export const BPF_ALU = 0x04;
export const BPF_JMP = 0x05;
export const BPF_JMP32 = 0x06;
export const BPF_ALU64 = 0x07;

export const BPF_CALL = 0x80;
export const BPF_EXIT = 0x90;
export const BPF_JA = 0x00;
/** may_goto (BPF_JMP | BPF_JCOND): either way. */
export const BPF_JCOND = 0xe0;

// src_reg values of calls and 64-bit loads (uapi bpf.h), defined once in the loader's uapi table.
import {
  BPF_PSEUDO_BTF_ID,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_FUNC,
  BPF_PSEUDO_KFUNC_CALL,
  BPF_PSEUDO_MAP_FD,
  BPF_PSEUDO_MAP_VALUE,
} from '../loader/uapi.js';

export {
  BPF_PSEUDO_BTF_ID,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_FUNC,
  BPF_PSEUDO_KFUNC_CALL,
  BPF_PSEUDO_MAP_FD,
  BPF_PSEUDO_MAP_VALUE,
};

export interface Insn {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
  /** ld_imm64 (first half): the 64-bit value (imm of both halves). */
  imm64?: bigint;
  /** The second half of an ld_imm64: not an instruction of its own. */
  filler?: true;
}

/** Decodes instructions of either byte order (register nibbles swap on big-endian BPF). */
export function decodeInsns(bytes: Uint8Array, littleEndian = true): Insn[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Math.floor(bytes.length / INSN_SIZE);
  const out: Insn[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const p = i * INSN_SIZE;
    const regs = bytes[p + 1]!;
    out[i] = {
      code: bytes[p]!,
      dst: littleEndian ? regs & 0xf : regs >> 4,
      src: littleEndian ? regs >> 4 : regs & 0xf,
      off: view.getInt16(p + 2, littleEndian),
      imm: view.getInt32(p + 4, littleEndian),
    };
  }
  for (let i = 0; i + 1 < n; i++) {
    const a = out[i]!;
    if (a.code !== 0x18) continue;
    const b = out[i + 1]!;
    a.imm64 = (BigInt(b.imm >>> 0) << 32n) | BigInt(a.imm >>> 0);
    b.filler = true;
    i++;
  }
  return out;
}

export const cls = (code: number): number => code & 0x07;
export const isLdImm64 = (i: Insn): boolean => i.code === 0x18;
export const isCall = (i: Insn): boolean => i.code === (BPF_JMP | BPF_CALL);
export const isExit = (i: Insn): boolean => i.code === (BPF_JMP | BPF_EXIT);
export const isBpfToBpfCall = (i: Insn): boolean => isCall(i) && i.src === BPF_PSEUDO_CALL;
export const isHelperCall = (i: Insn): boolean => isCall(i) && i.src === 0;

/** A conditional jump (JMP or JMP32, any comparison). */
export function isCondJump(i: Insn): boolean {
  const c = cls(i.code);
  if (c !== BPF_JMP && c !== BPF_JMP32) return false;
  const op = i.code & 0xf0;
  return op !== BPF_JA && op !== BPF_CALL && op !== BPF_EXIT && op !== BPF_JCOND;
}

export interface CfgFunction {
  /** First instruction. */
  start: number;
  /** One past the last instruction. */
  end: number;
  /** Entered as a callback (its address taken with ld_imm64 BPF_PSEUDO_FUNC). */
  callback: boolean;
}

export interface Cfg {
  insns: Insn[];
  /** Functions by start, the entry program first. */
  functions: CfgFunction[];
  /** Call instruction → callee start (bpf-to-bpf calls). */
  calls: Map<number, number>;
  /** ld_imm64 BPF_PSEUDO_FUNC instruction → callback start. */
  callbacks: Map<number, number>;
  /** Intra-function successors of each instruction (a call falls through; exit has none). */
  succ: number[][];
  /** Problems in the instruction stream (jumps out of range, …). */
  problems: string[];
}

/** The function holding instruction `i`. */
export function functionAt(cfg: Cfg, i: number): CfgFunction | undefined {
  let found: CfgFunction | undefined;
  for (const f of cfg.functions) if (f.start <= i) found = f;
  return found;
}

/** For a jump: its target (JA of JMP32 takes imm, the others off). */
export function jumpTarget(i: Insn, at: number): number {
  if (cls(i.code) === BPF_JMP32 && (i.code & 0xf0) === BPF_JA) return at + 1 + i.imm;
  return at + 1 + i.off;
}

export function buildCfg(insns: Insn[]): Cfg {
  const n = insns.length;
  const problems: string[] = [];
  const calls = new Map<number, number>();
  const callbacks = new Map<number, number>();
  const starts = new Map<number, boolean>([[0, false]]);
  const inRange = (t: number, at: number): boolean => {
    if (t >= 0 && t < n && insns[t]?.filler !== true) return true;
    problems.push(`insn ${at}: target ${t} out of range`);
    return false;
  };
  for (let i = 0; i < n; i++) {
    const x = insns[i]!;
    if (x.filler === true) continue;
    if (isBpfToBpfCall(x)) {
      const t = i + 1 + x.imm;
      if (inRange(t, i)) {
        calls.set(i, t);
        if (!starts.has(t)) starts.set(t, false);
      }
    } else if (isLdImm64(x) && x.src === BPF_PSEUDO_FUNC) {
      const t = i + 1 + x.imm;
      if (inRange(t, i)) {
        callbacks.set(i, t);
        starts.set(t, true);
      }
    }
  }
  const sorted = [...starts.keys()].sort((a, b) => a - b);
  const functions: CfgFunction[] = sorted.map((start, k) => ({
    start,
    end: sorted[k + 1] ?? n,
    callback: starts.get(start) === true,
  }));

  const succ: number[][] = new Array(n);
  for (let i = 0; i < n; i++) {
    const x = insns[i]!;
    const out: number[] = [];
    succ[i] = out;
    if (x.filler === true) continue;
    const next = isLdImm64(x) ? i + 2 : i + 1;
    const c = cls(x.code);
    if (c === BPF_JMP || c === BPF_JMP32) {
      const op = x.code & 0xf0;
      if (op === BPF_EXIT && c === BPF_JMP) continue;
      if (op === BPF_CALL) {
        if (next < n) out.push(next);
        continue;
      }
      const t = jumpTarget(x, i);
      if (op === BPF_JA) {
        if (inRange(t, i)) out.push(t);
        continue;
      }
      if (next < n) out.push(next);
      if (t !== next && inRange(t, i)) out.push(t);
      continue;
    }
    if (next < n) out.push(next);
  }
  return { insns, functions, calls, callbacks, succ, problems };
}
