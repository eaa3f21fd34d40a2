import { describe, expect, it } from 'vitest';
import { POISON_IMM } from '../core/calc.js';
import { buildCfg, decodeInsns } from './cfg.js';
import { type ConstPropInput, propagateConstants } from './constprop.js';

/** A tiny BPF assembler: each helper returns one or two raw instructions. */
type Raw = [code: number, dst: number, src: number, off: number, imm: number];
const A = {
  mov: (dst: number, imm: number): Raw[] => [[0xb7, dst, 0, 0, imm]],
  mov32: (dst: number, imm: number): Raw[] => [[0xb4, dst, 0, 0, imm]],
  movr: (dst: number, src: number): Raw[] => [[0xbf, dst, src, 0, 0]],
  add: (dst: number, imm: number): Raw[] => [[0x07, dst, 0, 0, imm]],
  add32: (dst: number, imm: number): Raw[] => [[0x04, dst, 0, 0, imm]],
  ld64: (dst: number, v: bigint, src = 0): Raw[] => [
    [0x18, dst, src, 0, Number(BigInt.asIntN(32, v))],
    [0, 0, 0, 0, Number(BigInt.asIntN(32, v >> 32n))],
  ],
  jeq: (dst: number, imm: number, off: number): Raw[] => [[0x15, dst, 0, off, imm]],
  jne: (dst: number, imm: number, off: number): Raw[] => [[0x55, dst, 0, off, imm]],
  jeq32: (dst: number, imm: number, off: number): Raw[] => [[0x16, dst, 0, off, imm]],
  jeqr: (dst: number, src: number, off: number): Raw[] => [[0x1d, dst, src, off, 0]],
  jgt: (dst: number, imm: number, off: number): Raw[] => [[0x25, dst, 0, off, imm]],
  jsgt: (dst: number, imm: number, off: number): Raw[] => [[0x65, dst, 0, off, imm]],
  jset: (dst: number, imm: number, off: number): Raw[] => [[0x45, dst, 0, off, imm]],
  ja: (off: number): Raw[] => [[0x05, 0, 0, off, 0]],
  call: (imm: number): Raw[] => [[0x85, 0, 0, 0, imm]],
  callsub: (rel: number): Raw[] => [[0x85, 0, 1, 0, rel]],
  exit: (): Raw[] => [[0x95, 0, 0, 0, 0]],
  stx: (dst: number, src: number, off: number): Raw[] => [[0x7b, dst, src, off, 0]],
  ldx: (dst: number, src: number, off: number): Raw[] => [[0x79, dst, src, off, 0]],
  ldxw: (dst: number, src: number, off: number): Raw[] => [[0x61, dst, src, off, 0]],
  poison: (): Raw[] => [[0x85, 0, 0, 0, POISON_IMM]],
};

function asm(parts: Raw[][], le = true): Uint8Array {
  const raws = parts.flat();
  const out = new Uint8Array(raws.length * 8);
  const v = new DataView(out.buffer);
  raws.forEach(([code, dst, src, off, imm], i) => {
    out[i * 8] = code;
    out[i * 8 + 1] = le ? (src << 4) | dst : (dst << 4) | src;
    v.setInt16(i * 8 + 2, off, le);
    v.setInt32(i * 8 + 4, imm, le);
  });
  return out;
}

/** Reachable instruction indexes. */
function reach(parts: Raw[][], extra: Omit<ConstPropInput, 'insns'> = {}, le = true): number[] {
  const insns = decodeInsns(asm(parts, le), le);
  const r = propagateConstants({ ...extra, insns, littleEndian: le });
  return insns.flatMap((x, i) => (r.reachable(i) && x.filler !== true ? [i] : []));
}

const tail = [A.mov(0, 0), A.exit()];

describe('constant propagation', () => {
  it('guarded: exists = 0 jumps over the poisoned instruction', () => {
    const prog = [A.mov(1, 0), A.jeq(1, 0, 1), A.poison(), ...tail];
    expect(reach(prog)).toEqual([0, 1, 3, 4]);
    const insns = decodeInsns(asm(prog));
    expect(propagateConstants({ insns }).deadEdges).toEqual([{ from: 1, to: 2 }]);
  });

  it('unguarded: the poisoned instruction is reachable', () => {
    expect(reach([A.mov(1, 1), A.jeq(1, 0, 1), A.poison(), ...tail])).toEqual([0, 1, 2, 3, 4]);
    // An unknown value (from ctx) decides nothing.
    expect(reach([A.ldx(1, 1, 0), A.jeq(1, 0, 1), A.poison(), ...tail])).toEqual([0, 1, 2, 3, 4]);
    // JNE falls through to the poison when the field is missing.
    expect(reach([A.mov(1, 0), A.jne(1, 0, 1), A.poison(), ...tail])).toEqual([0, 1, 2, 3, 4]);
  });

  it('decodes big-endian instructions alike', () => {
    const prog = [A.mov(1, 0), A.jeq(1, 0, 1), A.poison(), ...tail];
    expect(reach(prog, {}, false)).toEqual([0, 1, 3, 4]);
    const be = decodeInsns(asm(prog, false), false);
    expect(be[1]).toMatchObject({ code: 0x15, dst: 1, src: 0, off: 1, imm: 0 });
  });

  it('guard through a subprogram: the exists value passed as r1 into a static callee', () => {
    const prog = [
      A.mov(1, 0),
      A.callsub(2), // → 4
      ...tail,
      A.jeq(1, 0, 1), // 4
      A.poison(), // 5
      ...tail, // 6, 7
    ];
    const cfg = buildCfg(decodeInsns(asm(prog)));
    expect(cfg.functions.map((f) => [f.start, f.end])).toEqual([
      [0, 4],
      [4, 8],
    ]);
    expect(cfg.calls.get(1)).toBe(4);
    expect(reach(prog)).toEqual([0, 1, 2, 3, 4, 6, 7]);
    // A global function is verified with unknown arguments.
    expect(reach(prog, { globalFunctions: new Set([4]) })).toContain(5);
    // Two call sites with different arguments: the callee sees r1 unknown.
    const two = [
      A.mov(1, 0),
      A.callsub(4),
      A.mov(1, 1),
      A.callsub(2),
      ...tail,
      A.jeq(1, 0, 1),
      A.poison(),
      ...tail,
    ];
    expect(reach(two)).toContain(7);
    // r0 after a call is unknown, r6 survives it.
    const after = [A.mov(6, 0), A.mov(0, 0), A.callsub(4), A.jeq(6, 0, 1), A.poison(), ...tail, ...tail];
    expect(reach(after)).not.toContain(4);
    const r0 = [A.mov(0, 0), A.callsub(4), A.jeq(0, 0, 1), A.poison(), ...tail, ...tail];
    expect(reach(r0)).toContain(3);
  });

  it('callbacks (ld_imm64 BPF_PSEUDO_FUNC) are functions, reachable with unknown arguments', () => {
    const prog = [
      A.ld64(2, 4n, 4), // 0-1: r2 = callback at 0+1+4 = 5
      A.call(164), // 2: bpf_loop
      ...tail, // 3, 4
      A.jeq(1, 0, 1), // 5
      A.poison(), // 6
      ...tail,
    ];
    const cfg = buildCfg(decodeInsns(asm(prog)));
    expect(cfg.functions.map((f) => [f.start, f.callback])).toEqual([
      [0, false],
      [5, true],
    ]);
    expect(reach(prog)).toContain(6);
  });

  it('guard through a stack spill: spilled to r10-8, a helper call, reloaded', () => {
    const prog = [
      A.mov(1, 0),
      A.stx(10, 1, -8),
      A.call(5), // ktime_get_ns clobbers r1-r5, not the stack
      A.ldx(1, 10, -8),
      A.jeq(1, 0, 1),
      A.poison(), // 5
      ...tail,
    ];
    expect(reach(prog)).not.toContain(5);
    // Through a pointer to the slot (r2 = r10; r2 += -8).
    const viaPtr = [
      A.mov(1, 0),
      A.movr(2, 10),
      A.add(2, -8),
      A.stx(2, 1, 0),
      A.ldx(3, 10, -8),
      A.jeq(3, 0, 1),
    ];
    expect(reach([...viaPtr, A.poison(), ...tail])).not.toContain(6);
    // A helper given a pointer to the slot may overwrite it.
    const clobbered = [
      A.mov(1, 0),
      A.stx(10, 1, -8),
      A.movr(1, 10),
      A.add(1, -8),
      A.call(113), // probe_read_kernel(r10-8, …)
      A.ldx(1, 10, -8),
      A.jeq(1, 0, 1),
      A.poison(), // 7
      ...tail,
    ];
    expect(reach(clobbered)).toContain(7);
    // A 4-byte store into the slot forgets it.
    const partial = [
      A.mov(1, 0),
      A.stx(10, 1, -8),
      [[0x63, 10, 2, -4, 0] as const].map((r) => [...r] as Raw),
    ];
    expect(reach([...partial, A.ldx(1, 10, -8), A.jeq(1, 0, 1), A.poison(), ...tail])).toContain(5);
  });

  it('guard through a .kconfig extern: a load from a frozen read-only map value', () => {
    const prog = [
      A.ld64(1, 0n, 2), // 0-1: r1 = &map[3] + 4
      A.ldxw(1, 1, 0), // 2
      A.jeq(1, 0, 1), // 3
      A.poison(), // 4
      ...tail,
    ];
    const mapValues = new Map([[0, { map: 3, offset: 4 }]]);
    const value = (v: number) => {
      const b = new Uint8Array(12);
      new DataView(b.buffer).setUint32(4, v, true);
      return new Map([[3, b]]);
    };
    expect(reach(prog, { mapValues, readOnlyValues: value(0) })).not.toContain(4);
    expect(reach(prog, { mapValues, readOnlyValues: value(1) })).toContain(4);
    // A writable map (no known value) decides nothing.
    expect(reach(prog, { mapValues })).toContain(4);
    // Out of the value's bounds: unknown.
    expect(
      reach(prog, { mapValues: new Map([[0, { map: 3, offset: 10 }]]), readOnlyValues: value(0) }),
    ).toContain(4);
  });

  it('JMP32 compares the low 32 bits, JMP all 64; ALU32 zero-extends', () => {
    const wide = A.ld64(1, 0x1_0000_0000n); // 0-1
    expect(reach([wide, A.jeq32(1, 0, 1), A.poison(), ...tail])).not.toContain(3);
    expect(reach([wide, A.jeq(1, 0, 1), A.poison(), ...tail])).toContain(3);
    // mov32 -1 gives 0x00000000ffffffff: not equal to the sign-extended 64-bit imm -1.
    expect(reach([A.mov32(1, -1), A.jeq(1, -1, 1), A.poison(), ...tail])).toContain(2);
    expect(reach([A.mov32(1, -1), A.jeq32(1, -1, 1), A.poison(), ...tail])).not.toContain(2);
    // w1 += 1 wraps to 0 and clears the upper half.
    expect(reach([A.mov(1, -1), A.add32(1, 1), A.jeq(1, 0, 1), A.poison(), ...tail])).not.toContain(3);
    // Signed vs unsigned: -1 > 5 unsigned, not signed.
    expect(reach([A.mov(1, -1), A.jgt(1, 5, 1), A.poison(), ...tail])).not.toContain(2);
    expect(reach([A.mov(1, -1), A.jsgt(1, 5, 1), A.poison(), ...tail])).toContain(2);
    expect(reach([A.mov(1, 6), A.jset(1, 2, 1), A.poison(), ...tail])).not.toContain(2);
  });

  it('a join makes a register unknown unless equal on every path', () => {
    const join = (other: number) => [
      A.ldx(2, 1, 0), // 0: unknown
      A.mov(3, 0), // 1
      A.jeq(2, 0, 1), // 2 → 4
      A.mov(3, other), // 3
      A.jeq(3, 0, 1), // 4 → 6
      A.poison(), // 5
      ...tail,
    ];
    expect(reach(join(1))).toContain(5);
    expect(reach(join(0))).not.toContain(5);
  });

  it('learns equality on the taken JEQ edge; X forms compare registers', () => {
    const prog = [A.ldx(1, 1, 0), A.jne(1, 7, 3), A.mov(2, 7), A.jeqr(1, 2, 1), A.poison(), ...tail];
    expect(reach(prog)).not.toContain(4);
  });

  it('a stack pointer is never NULL', () => {
    expect(reach([A.movr(1, 10), A.jeq(1, 0, 1), A.poison(), ...tail])).toContain(2);
    expect(reach([A.movr(1, 10), A.jne(1, 0, 1), A.poison(), ...tail])).not.toContain(2);
  });

  it('loops reach a fixpoint', () => {
    const prog = [A.mov(1, 0), A.add(1, 1), A.jgt(1, 10, 1), A.ja(-3), ...tail];
    expect(reach(prog)).toEqual([0, 1, 2, 3, 4, 5]);
  });
});
