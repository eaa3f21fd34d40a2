/**
 * Constant propagation over a program's CFG, as far as the verifier goes when it decides that a
 * branch is dead: it walks every path with exact register state, and a conditional jump whose two
 * operands are known constants (is_branch_taken) follows one edge only, so the other side is never
 * verified (and dead code elimination removes it). This analysis merges paths at joins (a register
 * stays constant only if equal on every incoming path), which is coarser than the verifier's
 * path-by-path walk: it may call reachable what the verifier finds dead, never the reverse for
 * what it models.
 *
 * Tracked: constant scalars in r0–r10 and in 8-byte stack slots (spill/fill through r10-relative
 * STX/LDX of 8 bytes), ALU and ALU64 arithmetic (ALU32 zero-extends), ld_imm64 constants (CO-RE
 * patched values among them), loads at constant offsets from frozen read-only maps (.rodata,
 * .kconfig: the verifier reads them as constants), stack pointers (r10 ± constant) and map value
 * pointers. Helper and kfunc calls clobber r0–r5 and whatever stack their pointer arguments reach;
 * bpf-to-bpf calls pass r1–r5 into a static callee (a global one is verified on its own with
 * unknown arguments) and return r0 unknown.
 */

import {
  BPF_ALU,
  BPF_ALU64,
  BPF_JMP,
  BPF_JMP32,
  BPF_LD,
  BPF_LDX,
  BPF_PSEUDO_MAP_VALUE,
  BPF_ST,
  BPF_STX,
  buildCfg,
  type Cfg,
  cls,
  type Insn,
  isCall,
  isCondJump,
  isExit,
  isLdImm64,
  jumpTarget,
} from './cfg.js';

/** A register's or stack slot's value: a constant, a stack pointer, a map value pointer; undefined: unknown. */
export type Val =
  | { k: 'c'; v: bigint }
  | { k: 'fp'; off: number }
  /** A pointer somewhere into the frame's stack (offset unknown). */
  | { k: 'fpAny' }
  | { k: 'map'; map: number; off: number }
  | undefined;

export interface State {
  regs: Val[];
  /** 8-byte slots by offset from r10 (negative multiples of 8). */
  stack: Map<number, Exclude<Val, undefined>>;
}

export interface ConstPropInput {
  cfg?: Cfg;
  insns: Insn[];
  littleEndian?: boolean;
  /** ld_imm64 instruction → the map (index) and offset of a BPF_PSEUDO_MAP_VALUE reference. */
  mapValues?: ReadonlyMap<number, { map: number; offset: number }>;
  /** Frozen read-only maps (BPF_F_RDONLY_PROG, frozen): their value, read as constants. */
  readOnlyValues?: ReadonlyMap<number, Uint8Array>;
  /** Starts of global functions: verified on their own, with unknown arguments. */
  globalFunctions?: ReadonlySet<number>;
}

export interface ConstPropResult {
  cfg: Cfg;
  /** The state on entry to each reachable instruction (undefined: unreachable). */
  states: (State | undefined)[];
  reachable: (i: number) => boolean;
  /** Conditional jumps decided by constants: the edge never taken. */
  deadEdges: { from: number; to: number }[];
}

const U64 = (1n << 64n) - 1n;
const U32 = (1n << 32n) - 1n;
const c = (v: bigint): Val => ({ k: 'c', v: v & U64 });
const s64 = (v: bigint): bigint => BigInt.asIntN(64, v);
const isPtr = (v: Val): boolean => v !== undefined && v.k !== 'c';
const isStackPtr = (v: Val): boolean => v !== undefined && (v.k === 'fp' || v.k === 'fpAny');

function sameVal(a: Val, b: Val): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.k !== b.k) return false;
  switch (a.k) {
    case 'c':
      return a.v === (b as { v: bigint }).v;
    case 'fp':
      return a.off === (b as { off: number }).off;
    case 'fpAny':
      return true;
    case 'map': {
      const m = b as { map: number; off: number };
      return a.map === m.map && a.off === m.off;
    }
  }
}

function joinVal(a: Val, b: Val): Val {
  if (sameVal(a, b)) return a;
  if (isStackPtr(a) || isStackPtr(b)) return { k: 'fpAny' };
  return undefined;
}

function entryState(): State {
  const regs: Val[] = new Array(11).fill(undefined);
  regs[10] = { k: 'fp', off: 0 };
  return { regs, stack: new Map() };
}

function copy(s: State): State {
  return { regs: s.regs.slice(), stack: new Map(s.stack) };
}

/** Joins `b` into `a` (or a copy of b when a is undefined); returns the result and whether a changed. */
function join(a: State | undefined, b: State): { s: State; changed: boolean } {
  if (a === undefined) return { s: copy(b), changed: true };
  let changed = false;
  for (let r = 0; r < 11; r++) {
    const j = joinVal(a.regs[r], b.regs[r]);
    if (!sameVal(j, a.regs[r])) {
      a.regs[r] = j;
      changed = true;
    }
  }
  for (const [off, v] of a.stack) {
    const j = joinVal(v, b.stack.get(off));
    if (j === undefined) {
      a.stack.delete(off);
      changed = true;
    } else if (!sameVal(j, v)) {
      a.stack.set(off, j);
      changed = true;
    }
  }
  return { s: a, changed };
}

/** Forgets the stack a pointer argument may reach (a callee writes upwards from the pointer). */
function clobberThrough(s: State, p: Val): void {
  if (p === undefined) return;
  if (p.k === 'fpAny') s.stack.clear();
  else if (p.k === 'fp') {
    const from = Math.floor(p.off / 8) * 8;
    for (const off of [...s.stack.keys()]) if (off >= from) s.stack.delete(off);
  }
}

/** Forgets the slots overlapping [addr, addr+size). */
function clobberRange(s: State, addr: number, size: number): void {
  for (let off = Math.floor(addr / 8) * 8; off < addr + size; off += 8) s.stack.delete(off);
}

const SIZES: Record<number, number> = { 0: 4, 8: 2, 16: 1, 24: 8 };

function readConst(bytes: Uint8Array, at: number, size: number, le: boolean): bigint | undefined {
  if (at < 0 || at + size > bytes.length) return undefined;
  let v = 0n;
  for (let k = 0; k < size; k++) {
    const b = BigInt(bytes[le ? at + size - 1 - k : at + k]!);
    v = (v << 8n) | b;
  }
  return v;
}

function signExtend(v: bigint, bits: number): bigint {
  return BigInt.asIntN(bits, v) & U64;
}

function bswap(v: bigint, bytes: number): bigint {
  let out = 0n;
  for (let k = 0; k < bytes; k++) out = (out << 8n) | ((v >> BigInt(8 * k)) & 0xffn);
  return out;
}

/** ALU/ALU64 on constants; undefined when not computable. */
function aluConst(op: number, a: bigint, b: bigint, is64: boolean, signed: boolean): bigint | undefined {
  const bits = is64 ? 64 : 32;
  const mask = is64 ? U64 : U32;
  const x = a & mask;
  const y = b & mask;
  const sx = BigInt.asIntN(bits, x);
  const sy = BigInt.asIntN(bits, y);
  switch (op) {
    case 0x00:
      return (x + y) & mask;
    case 0x10:
      return (x - y) & mask;
    case 0x20:
      return (x * y) & mask;
    case 0x30:
      if (y === 0n) return 0n;
      return signed ? (sx / sy) & mask : x / y;
    case 0x90:
      if (y === 0n) return x;
      return signed ? (sx % sy) & mask : x % y;
    case 0x40:
      return x | y;
    case 0x50:
      return x & y;
    case 0xa0:
      return x ^ y;
    case 0x60:
      return (x << (y & BigInt(bits - 1))) & mask;
    case 0x70:
      return x >> (y & BigInt(bits - 1));
    case 0xc0:
      return (sx >> (y & BigInt(bits - 1))) & mask;
    default:
      return undefined;
  }
}

function alu(s: State, x: Insn, le: boolean): void {
  const is64 = cls(x.code) === BPF_ALU64;
  const op = x.code & 0xf0;
  const useReg = (x.code & 0x08) !== 0;
  const a = s.regs[x.dst];
  const b: Val = useReg ? s.regs[x.src] : c(is64 ? BigInt(x.imm) : BigInt(x.imm >>> 0));
  let out: Val;
  if (op === 0xb0) {
    // mov (movsx when off is 8/16/32)
    if (x.off === 0) out = is64 ? b : b?.k === 'c' ? c(b.v & U32) : undefined;
    else if (b?.k === 'c' && (x.off === 8 || x.off === 16 || x.off === 32)) {
      const v = BigInt.asIntN(x.off, b.v);
      out = c(is64 ? v : v & U32);
    } else out = undefined;
  } else if (op === 0x80) {
    out = a?.k === 'c' ? c((is64 ? -a.v : -a.v & U32) & (is64 ? U64 : U32)) : undefined;
  } else if (op === 0xd0) {
    if (a?.k !== 'c') out = undefined;
    else {
      const bytes = x.imm / 8;
      if (bytes !== 2 && bytes !== 4 && bytes !== 8) out = undefined;
      else {
        const toBe = (x.code & 0x08) !== 0;
        const swap = is64 || toBe === le;
        const low = a.v & ((1n << BigInt(x.imm)) - 1n);
        out = c(swap ? bswap(low, bytes) : low);
      }
    }
  } else if (a?.k === 'c' && b?.k === 'c') {
    const v = aluConst(op, a.v, b.v, is64, x.off === 1);
    out = v === undefined ? undefined : c(v);
  } else if (is64 && (op === 0x00 || op === 0x10) && isPtr(a) && b?.k === 'c') {
    const d = Number(s64(op === 0x00 ? b.v : -b.v & U64));
    out = a?.k === 'fp' ? { k: 'fp', off: a.off + d } : a?.k === 'map' ? { ...a, off: a.off + d } : a;
  } else if (is64 && op === 0x00 && a?.k === 'c' && isPtr(b)) {
    const d = Number(s64(a.v));
    out = b?.k === 'fp' ? { k: 'fp', off: b.off + d } : b?.k === 'map' ? { ...b, off: b.off + d } : b;
  } else if (is64 && (isStackPtr(a) || isStackPtr(b))) {
    out = { k: 'fpAny' };
  } else out = undefined;
  s.regs[x.dst] = out;
}

/** A conditional jump's outcome: true/false when decided, undefined when either way. */
function decide(x: Insn, a: Val, b: Val): boolean | undefined {
  const is32 = cls(x.code) === BPF_JMP32;
  const op = x.code & 0xf0;
  if (a?.k === 'c' && b?.k === 'c') {
    const bits = is32 ? 32 : 64;
    const mask = is32 ? U32 : U64;
    const ua = a.v & mask;
    const ub = b.v & mask;
    const sa = BigInt.asIntN(bits, ua);
    const sb = BigInt.asIntN(bits, ub);
    switch (op) {
      case 0x10:
        return ua === ub;
      case 0x50:
        return ua !== ub;
      case 0x20:
        return ua > ub;
      case 0x30:
        return ua >= ub;
      case 0xa0:
        return ua < ub;
      case 0xb0:
        return ua <= ub;
      case 0x60:
        return sa > sb;
      case 0x70:
        return sa >= sb;
      case 0xc0:
        return sa < sb;
      case 0xd0:
        return sa <= sb;
      case 0x40:
        return (ua & ub) !== 0n;
      default:
        return undefined;
    }
  }
  // A stack or map value pointer is never NULL.
  if (!is32 && (op === 0x10 || op === 0x50)) {
    const nonNull = (v: Val) => v !== undefined && v.k !== 'c';
    const zero = (v: Val) => v?.k === 'c' && v.v === 0n;
    if ((nonNull(a) && zero(b)) || (zero(a) && nonNull(b))) return op === 0x50;
  }
  return undefined;
}

/**
 * Runs the propagation from the entry program's first instruction; callees and callbacks are
 * reached through their calls and address loads.
 */
export function propagateConstants(input: ConstPropInput): ConstPropResult {
  const insns = input.insns;
  const cfg = input.cfg ?? buildCfg(insns);
  const le = input.littleEndian ?? true;
  const n = insns.length;
  const states: (State | undefined)[] = new Array(n).fill(undefined);
  const taken = new Map<number, Set<number>>();
  const work: number[] = [];
  const queued = new Uint8Array(n);
  const flow = (to: number, s: State, from?: number) => {
    if (to < 0 || to >= n) return;
    if (from !== undefined) {
      let set = taken.get(from);
      if (set === undefined) {
        set = new Set();
        taken.set(from, set);
      }
      set.add(to);
    }
    const j = join(states[to], s);
    states[to] = j.s;
    if (j.changed && queued[to] === 0) {
      queued[to] = 1;
      work.push(to);
    }
  };
  if (n > 0) flow(0, entryState());

  while (work.length > 0) {
    const i = work.pop()!;
    queued[i] = 0;
    const x = insns[i]!;
    const s = copy(states[i]!);
    const k = cls(x.code);
    const next = isLdImm64(x) ? i + 2 : i + 1;

    if (isCall(x)) {
      const args = [1, 2, 3, 4, 5].map((r) => s.regs[r]);
      const callee = cfg.calls.get(i);
      if (callee !== undefined) {
        const e = entryState();
        if (!input.globalFunctions?.has(callee)) {
          for (let r = 1; r <= 5; r++) e.regs[r] = isStackPtr(s.regs[r]) ? undefined : s.regs[r];
        }
        flow(callee, e);
      }
      for (const p of args) clobberThrough(s, p);
      for (let r = 0; r <= 5; r++) s.regs[r] = undefined;
      flow(next, s, i);
      continue;
    }
    if (isExit(x)) continue;
    if (isCondJump(x)) {
      const useReg = (x.code & 0x08) !== 0;
      const is32 = k === BPF_JMP32;
      const a = s.regs[x.dst];
      const b: Val = useReg ? s.regs[x.src] : c(is32 ? BigInt(x.imm >>> 0) : BigInt(x.imm));
      const t = jumpTarget(x, i);
      const d = decide(x, a, b);
      if (d !== true) {
        const f = copy(s);
        // Falling through a JNE: the operands are equal.
        if ((x.code & 0xf0) === 0x50 && !is32) learnEqual(f, x, useReg, a, b);
        flow(next, f, i);
      }
      if (d !== false) {
        const tk = copy(s);
        if ((x.code & 0xf0) === 0x10 && !is32) learnEqual(tk, x, useReg, a, b);
        flow(t, tk, i);
      }
      continue;
    }
    if (k === BPF_JMP || k === BPF_JMP32) {
      // ja / gotol / may_goto
      for (const t of cfg.succ[i] ?? []) flow(t, s, i);
      continue;
    }

    if (k === BPF_ALU || k === BPF_ALU64) alu(s, x, le);
    else if (k === BPF_LD) {
      if (isLdImm64(x)) {
        const cb = cfg.callbacks.get(i);
        if (cb !== undefined) flow(cb, entryState());
        const mv = input.mapValues?.get(i);
        if (x.src === 0) s.regs[x.dst] = c(x.imm64 ?? 0n);
        else if (x.src === BPF_PSEUDO_MAP_VALUE && mv !== undefined)
          s.regs[x.dst] = { k: 'map', map: mv.map, off: mv.offset };
        else s.regs[x.dst] = undefined;
      } else {
        // LD_ABS / LD_IND: a helper in disguise.
        for (let r = 0; r <= 5; r++) s.regs[r] = undefined;
      }
    } else if (k === BPF_LDX) {
      const size = SIZES[x.code & 0x18]!;
      const mode = x.code & 0xe0;
      const base = s.regs[x.src];
      let v: Val;
      if (mode === 0x60 || mode === 0x80) {
        if (base?.k === 'fp') {
          const addr = base.off + x.off;
          v = size === 8 && addr % 8 === 0 ? s.stack.get(addr) : undefined;
        } else if (base?.k === 'map') {
          const bytes = input.readOnlyValues?.get(base.map);
          const raw = bytes === undefined ? undefined : readConst(bytes, base.off + x.off, size, le);
          v = raw === undefined ? undefined : c(mode === 0x80 ? signExtend(raw, size * 8) : raw);
        }
      }
      s.regs[x.dst] = v;
    } else if (k === BPF_STX || k === BPF_ST) {
      const size = SIZES[x.code & 0x18]!;
      const mode = x.code & 0xe0;
      const base = s.regs[x.dst];
      if (base?.k === 'fp') {
        const addr = base.off + x.off;
        const value: Val = k === BPF_ST ? c(BigInt(x.imm)) : s.regs[x.src];
        if (mode === 0x60 && size === 8 && addr % 8 === 0) {
          if (value === undefined) s.stack.delete(addr);
          else s.stack.set(addr, value);
        } else clobberRange(s, addr, size);
      } else if (base?.k === 'fpAny') s.stack.clear();
      if (k === BPF_STX && mode === 0xc0) {
        if ((x.imm & 0x01) !== 0) s.regs[x.src] = undefined;
        if (x.imm === 0xf1) s.regs[0] = undefined;
      }
    }
    for (const t of cfg.succ[i] ?? []) flow(t, s, i);
  }

  const deadEdges: { from: number; to: number }[] = [];
  for (let i = 0; i < n; i++) {
    if (states[i] === undefined || !isCondJump(insns[i]!)) continue;
    const went = taken.get(i) ?? new Set<number>();
    for (const t of cfg.succ[i] ?? []) if (!went.has(t)) deadEdges.push({ from: i, to: t });
  }
  return { cfg, states, reachable: (i) => states[i] !== undefined, deadEdges };
}

/** On the edge where `dst == src/imm` holds, an unknown side takes the known side's constant. */
function learnEqual(s: State, x: Insn, useReg: boolean, a: Val, b: Val): void {
  if (a === undefined && b?.k === 'c') s.regs[x.dst] = b;
  else if (useReg && b === undefined && a?.k === 'c') s.regs[x.src] = a;
}
