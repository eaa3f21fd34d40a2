import { describe, expect, test } from 'vitest';
import { Btf } from '../btf/btf.js';
import { BtfBuilder } from '../btf/builder.js';
import type { TypeId } from '../btf/types.js';
import { type CalcOutcome, type Candidate, calcReloInsn } from './calc.js';
import { findCandidates } from './candidates.js';
import { RELO_KIND } from './kinds.js';
import { INSN_SIZE, Instructions, patchInsn } from './patch.js';

/**
 * Expected values below are worked out by hand from the C layouts in the comments, not taken from
 * the code under test.
 */

type Build = (b: BtfBuilder) => Record<string, TypeId>;

function make(build: Build): { btf: Btf; ids: Record<string, TypeId> } {
  const b = new BtfBuilder();
  const ids = build(b);
  return { btf: Btf.parse(b.encode()), ids };
}

function relocate(
  local: { btf: Btf; ids: Record<string, TypeId> },
  root: string,
  kind: number,
  access: string,
  target: Btf,
  candidates?: readonly Candidate[],
): CalcOutcome {
  const typeId = local.ids[root]!;
  const cands =
    candidates ?? findCandidates(local.btf, typeId, { vmlinux: target, modules: [], vmlinuxOverride: true });
  return calcReloInsn({ insnOff: 0, typeId, accessStrOff: 0, kind }, local.btf, access, cands);
}

function ok(outcome: CalcOutcome) {
  if (outcome.kind !== 'ok') throw new Error(`expected ok, got error: ${outcome.message}`);
  return outcome.result;
}

// local:  struct s { int a; int b; };                       b at byte 4
// target: struct s { long x; int a; char pad; int b; };     a at 8, b at 16
const localS = make((b) => {
  const int = b.int('int', 4, { signed: true });
  const s = b.struct('s', 8, [
    { name: 'a', type: int, bitOffset: 0 },
    { name: 'b', type: int, bitOffset: 32 },
  ]);
  return { int, s };
});
const targetS = make((b) => {
  const int = b.int('int', 4, { signed: true });
  const long = b.int('long', 8, { signed: true });
  const char = b.int('char', 1, { signed: true, char: true });
  const s = b.struct('s', 24, [
    { name: 'x', type: long, bitOffset: 0 },
    { name: 'a', type: int, bitOffset: 64 },
    { name: 'pad', type: char, bitOffset: 96 },
    { name: 'b', type: int, bitOffset: 128 },
  ]);
  return { int, s };
});

describe('candidate verdicts (as in libbpf debug log, one line per candidate)', () => {
  test('a matching candidate shows its spec, one that does not match only its root', () => {
    // Target: a second "struct s" (id 3) without a member b comes first and does not match.
    const twoTargets = make((b) => {
      const int = b.int('int', 4, { signed: true });
      const lacking = b.struct('s', 4, [{ name: 'a', type: int, bitOffset: 0 }]);
      const s = b.struct('s', 8, [
        { name: 'b', type: int, bitOffset: 0 },
        { name: 'a', type: int, bitOffset: 32 },
      ]);
      return { int, lacking, s };
    });
    const outcome = relocate(localS, 's', RELO_KIND.FIELD_BYTE_OFFSET, '0:1', twoTargets.btf);
    expect(outcome.verdicts.map((v) => [v.candidate.id, v.matched, v.spec])).toEqual([
      // bpf_core_format_spec of a spec with no accessors: the root, then an empty raw spec.
      [2, false, '<byte_off> [2] struct s ( @ offset 0)'],
      [3, true, '<byte_off> [3] struct s.b (0:0 @ offset 0)'],
    ]);
  });
});

describe('field relocations', () => {
  test('byte offset follows the member to its new place', () => {
    const r = ok(relocate(localS, 's', RELO_KIND.FIELD_BYTE_OFFSET, '0:1', targetS.btf));
    expect([r.origVal, r.newVal, r.poison]).toEqual([4n, 16n, false]);
  });

  test('byte size, signedness and the shifts of a plain int field', () => {
    expect(ok(relocate(localS, 's', RELO_KIND.FIELD_BYTE_SIZE, '0:1', targetS.btf)).newVal).toBe(4n);
    expect(ok(relocate(localS, 's', RELO_KIND.FIELD_SIGNED, '0:1', targetS.btf)).newVal).toBe(1n);
    // A non-bitfield of 4 bytes is loaded whole: shifts 64 - 32.
    expect(ok(relocate(localS, 's', RELO_KIND.FIELD_LSHIFT_U64, '0:1', targetS.btf)).newVal).toBe(32n);
    expect(ok(relocate(localS, 's', RELO_KIND.FIELD_RSHIFT_U64, '0:1', targetS.btf)).newVal).toBe(32n);
  });

  test('pointer-as-array first index scales by the root size', () => {
    // &s[2].b: 2 * sizeof(struct s) + offsetof(b): local 2*8+4 = 20, target 2*24+16 = 64.
    const r = ok(relocate(localS, 's', RELO_KIND.FIELD_BYTE_OFFSET, '2:1', targetS.btf));
    expect([r.origVal, r.newVal]).toEqual([20n, 64n]);
  });

  test('a missing field: exists is 0, everything else is poisoned', () => {
    const noB = make((b) => {
      const int = b.int('int', 4, { signed: true });
      return { s: b.struct('s', 4, [{ name: 'a', type: int, bitOffset: 0 }]) };
    });
    const exists = ok(relocate(localS, 's', RELO_KIND.FIELD_EXISTS, '0:1', noB.btf));
    expect([exists.origVal, exists.newVal, exists.poison]).toEqual([1n, 0n, false]);
    expect(ok(relocate(localS, 's', RELO_KIND.FIELD_BYTE_OFFSET, '0:1', noB.btf)).poison).toBe(true);
    expect(ok(relocate(localS, 's', RELO_KIND.FIELD_SIGNED, '0:1', noB.btf)).poison).toBe(true);
  });

  test('a member of an incompatible kind does not match (int vs struct)', () => {
    const structB = make((b) => {
      const int = b.int('int', 4, { signed: true });
      const inner = b.struct('inner', 4, [{ name: 'v', type: int, bitOffset: 0 }]);
      return { s: b.struct('s', 8, [{ name: 'b', type: inner, bitOffset: 0 }]) };
    });
    expect(ok(relocate(localS, 's', RELO_KIND.FIELD_BYTE_OFFSET, '0:1', structB.btf)).poison).toBe(true);
  });

  test('members of anonymous structs and unions are found through them', () => {
    // target: struct s { int a; union { long u; struct { int pad; int b; }; }; };
    // The union starts at byte 8 (aligned for long), the inner struct at 8, so b is at 8 + 4 = 12.
    const anon = make((b) => {
      const int = b.int('int', 4, { signed: true });
      const long = b.int('long', 8, { signed: true });
      const inner = b.struct('', 8, [
        { name: 'pad', type: int, bitOffset: 0 },
        { name: 'b', type: int, bitOffset: 32 },
      ]);
      const u = b.union('', 8, [
        { name: 'u', type: long, bitOffset: 0 },
        { type: inner, bitOffset: 0 },
      ]);
      return {
        s: b.struct('s', 16, [
          { name: 'a', type: int, bitOffset: 0 },
          { type: u, bitOffset: 64 },
        ]),
      };
    });
    const out = relocate(localS, 's', RELO_KIND.FIELD_BYTE_OFFSET, '0:1', anon.btf);
    expect(ok(out).newVal).toBe(12n);
    if (out.kind === 'ok') expect(out.targetSpec?.rawSpec).toEqual([0, 1, 1, 1]);
  });

  test('array elements: bounds are checked in the target, flexible arrays are not bounded', () => {
    // local: struct arr { int n; int v[4]; }, access v[3] = 0:1:3 → 4 + 12 = 16
    const build =
      (nelems: number): Build =>
      (b) => {
        const int = b.int('int', 4, { signed: true });
        const idx = b.int('unsigned int', 4);
        const arr = b.array(int, idx, nelems);
        return {
          arr: b.struct('arr', 4 + 4 * nelems, [
            { name: 'n', type: int, bitOffset: 0 },
            { name: 'v', type: arr, bitOffset: 32 },
          ]),
        };
      };
    const local = make(build(4));
    expect(ok(relocate(local, 'arr', RELO_KIND.FIELD_BYTE_OFFSET, '0:1:3', make(build(8)).btf)).newVal).toBe(
      16n,
    );
    // Only two elements in the target: element 3 does not exist.
    expect(ok(relocate(local, 'arr', RELO_KIND.FIELD_BYTE_OFFSET, '0:1:3', make(build(2)).btf)).poison).toBe(
      true,
    );
    // A trailing zero-length array is flexible: any index goes.
    expect(ok(relocate(local, 'arr', RELO_KIND.FIELD_BYTE_OFFSET, '0:1:3', make(build(0)).btf)).newVal).toBe(
      16n,
    );
  });
});

describe('bitfields', () => {
  // struct bf { unsigned int x:3; unsigned int y:5; unsigned long long z:40; int w:3; } (kind_flag)
  // bit offsets x 0, y 3, z 8, w 48 — target moves y to bit 43 (so it straddles bytes 5..6).
  const build =
    (yOffset: number): Build =>
    (b) => {
      const uint = b.int('unsigned int', 4);
      const ull = b.int('unsigned long long', 8);
      const sint = b.int('int', 4, { signed: true });
      return {
        bf: b.struct('bf', 8, [
          { name: 'x', type: uint, bitOffset: 0, bitfieldSize: 3 },
          { name: 'y', type: uint, bitOffset: yOffset, bitfieldSize: 5 },
          { name: 'z', type: ull, bitOffset: 8, bitfieldSize: 35 },
          { name: 'w', type: sint, bitOffset: 50, bitfieldSize: 3 },
        ]),
      };
    };
  const local = make(build(3));
  const target = make(build(43));

  test('load offset and width: the smallest aligned load of the member type covering the bits', () => {
    // y at 43..47: a 4-byte load at byte 4 covers bits 32..63 → off 4, size 4.
    expect(ok(relocate(local, 'bf', RELO_KIND.FIELD_BYTE_OFFSET, '0:1', target.btf)).newVal).toBe(4n);
    expect(ok(relocate(local, 'bf', RELO_KIND.FIELD_BYTE_SIZE, '0:1', target.btf)).newVal).toBe(4n);
    // lshift = 64 - (43 + 5 - 32) = 48; rshift = 64 - 5 = 59
    expect(ok(relocate(local, 'bf', RELO_KIND.FIELD_LSHIFT_U64, '0:1', target.btf)).newVal).toBe(48n);
    expect(ok(relocate(local, 'bf', RELO_KIND.FIELD_RSHIFT_U64, '0:1', target.btf)).newVal).toBe(59n);
  });

  test('a bitfield that does not fit its type size doubles the load: z (35 bits at 8) needs 8 bytes', () => {
    expect(ok(relocate(local, 'bf', RELO_KIND.FIELD_BYTE_SIZE, '0:2', target.btf)).newVal).toBe(8n);
    expect(ok(relocate(local, 'bf', RELO_KIND.FIELD_LSHIFT_U64, '0:2', target.btf)).newVal).toBe(64n - 43n);
  });

  test('bitfield offsets and sizes are not validated, signedness and rshift are', () => {
    expect(ok(relocate(local, 'bf', RELO_KIND.FIELD_BYTE_OFFSET, '0:1', target.btf)).validate).toBe(false);
    expect(ok(relocate(local, 'bf', RELO_KIND.FIELD_LSHIFT_U64, '0:1', target.btf)).validate).toBe(false);
    expect(ok(relocate(local, 'bf', RELO_KIND.FIELD_RSHIFT_U64, '0:1', target.btf)).validate).toBe(true);
    const signed = ok(relocate(local, 'bf', RELO_KIND.FIELD_SIGNED, '0:3', target.btf));
    expect([signed.newVal, signed.validate]).toEqual([1n, true]);
  });
});

describe('candidates: flavors, ambiguity, pruning', () => {
  test('a local flavor matches the kernel type by essential name', () => {
    const flavored = make((b) => {
      const int = b.int('int', 4, { signed: true });
      return {
        s: b.struct('s___old', 8, [
          { name: 'a', type: int, bitOffset: 0 },
          { name: 'b', type: int, bitOffset: 32 },
        ]),
      };
    });
    expect(ok(relocate(flavored, 's', RELO_KIND.FIELD_BYTE_OFFSET, '0:1', targetS.btf)).newVal).toBe(16n);
  });

  // Two target structs named s that disagree about b.
  const twoS = make((b) => {
    const int = b.int('int', 4, { signed: true });
    const long = b.int('long', 8, { signed: true });
    const s1 = b.struct('s', 8, [
      { name: 'a', type: int, bitOffset: 0 },
      { name: 'b', type: int, bitOffset: 32 },
    ]);
    const s2 = b.struct('s', 16, [
      { name: 'b', type: long, bitOffset: 0 },
      { name: 'c', type: int, bitOffset: 64 },
    ]);
    return { s1, s2 };
  });

  test('candidates that put the field at different offsets are an error (field offset ambiguity)', () => {
    const out = relocate(localS, 's', RELO_KIND.FIELD_BYTE_OFFSET, '0:1', twoS.btf);
    expect(out.kind).toBe('error');
    if (out.kind === 'error') expect(out.message).toMatch(/field offset ambiguity: 0 != 32/);
  });

  test('only matching candidates survive for later relocations of the same type', () => {
    // Relocating `a` first: only s1 has it, so s2 is pruned; then `b` resolves unambiguously.
    const cands = findCandidates(localS.btf, localS.ids.s!, {
      vmlinux: twoS.btf,
      modules: [],
      vmlinuxOverride: true,
    });
    expect(cands.map((c) => c.id)).toEqual([twoS.ids.s1, twoS.ids.s2]);
    const first = relocate(localS, 's', RELO_KIND.FIELD_BYTE_OFFSET, '0:0', twoS.btf, cands);
    expect(first.candidates.map((c) => c.id)).toEqual([twoS.ids.s1]);
    const second = relocate(localS, 's', RELO_KIND.FIELD_BYTE_OFFSET, '0:1', twoS.btf, first.candidates);
    expect(ok(second).newVal).toBe(4n);
  });

  test('module BTFs are searched only when vmlinux has no candidate', () => {
    const base = make((b) => ({ int: b.int('int', 4, { signed: true }) }));
    const mb = new BtfBuilder({ base: base.btf });
    const s = mb.struct('s', 8, [
      { name: 'a', type: base.ids.int!, bitOffset: 32 },
      { name: 'b', type: base.ids.int!, bitOffset: 0 },
    ]);
    const mod = Btf.parse(mb.encode(), { base: base.btf });
    const targets = { vmlinux: base.btf, modules: [{ name: 'mod', btf: mod }], vmlinuxOverride: false };
    const cands = findCandidates(localS.btf, localS.ids.s!, targets);
    expect(cands).toEqual([{ btf: mod, id: s, btfName: 'mod' }]);
    expect(findCandidates(localS.btf, localS.ids.s!, { ...targets, vmlinuxOverride: true })).toEqual([]);
  });
});

describe('type-based and enum relocations', () => {
  const local = make((b) => {
    const long = b.int('long long', 8, { signed: true });
    const ts = b.struct('timespec64', 16, [
      { name: 'tv_sec', type: long, bitOffset: 0 },
      { name: 'tv_nsec', type: long, bitOffset: 64 },
    ]);
    const e = b.enum('state', { RUNNING: 0, STOPPED: 4 });
    const e64 = b.enum64('big', { HUGE: 1n << 40n });
    return { ts, e, e64 };
  });
  // The kernel built by GCC names the same ints "long long int".
  const kernel = make((b) => {
    const long = b.int('long long int', 8, { signed: true });
    const ts = b.struct('timespec64', 16, [
      { name: 'tv_sec', type: long, bitOffset: 0 },
      { name: 'tv_nsec', type: long, bitOffset: 64 },
    ]);
    const e = b.enum64('state', { STOPPED: 8, RUNNING: 0 }, { size: 4 });
    const e64 = b.enum('big', { HUGE: -2 });
    return { ts, e, e64 };
  });

  test('type exists and size use compatibility; type matches also compares int names', () => {
    expect(ok(relocate(local, 'ts', RELO_KIND.TYPE_EXISTS, '0', kernel.btf)).newVal).toBe(1n);
    expect(ok(relocate(local, 'ts', RELO_KIND.TYPE_SIZE, '0', kernel.btf)).newVal).toBe(16n);
    expect(ok(relocate(local, 'ts', RELO_KIND.TYPE_ID_TARGET, '0', kernel.btf)).newVal).toBe(
      BigInt(kernel.ids.ts!),
    );
    expect(ok(relocate(local, 'ts', RELO_KIND.TYPE_MATCHES, '0', kernel.btf)).newVal).toBe(0n);
    expect(ok(relocate(local, 'ts', RELO_KIND.TYPE_MATCHES, '0', local.btf)).newVal).toBe(1n);
  });

  test('a missing type gives 0 for exists, size and target id', () => {
    const empty = make((b) => ({ int: b.int('int', 4) }));
    for (const kind of [
      RELO_KIND.TYPE_EXISTS,
      RELO_KIND.TYPE_SIZE,
      RELO_KIND.TYPE_ID_TARGET,
      RELO_KIND.TYPE_MATCHES,
    ]) {
      const r = ok(relocate(local, 'ts', kind, '0', empty.btf));
      expect([r.newVal, r.poison]).toEqual([0n, false]);
    }
  });

  test('local type id needs no target', () => {
    const r = ok(relocate(local, 'ts', RELO_KIND.TYPE_ID_LOCAL, '0', kernel.btf, []));
    expect([r.origVal, r.newVal, r.validate]).toEqual([BigInt(local.ids.ts!), BigInt(local.ids.ts!), false]);
  });

  test('enumerators match by name across enum and enum64; 32-bit values sign-extend', () => {
    expect(ok(relocate(local, 'e', RELO_KIND.ENUMVAL_VALUE, '1', kernel.btf)).newVal).toBe(8n);
    expect(ok(relocate(local, 'e', RELO_KIND.ENUMVAL_EXISTS, '1', kernel.btf)).newVal).toBe(1n);
    const big = ok(relocate(local, 'e64', RELO_KIND.ENUMVAL_VALUE, '0', kernel.btf));
    expect([big.origVal, big.newVal]).toEqual([1n << 40n, (1n << 64n) - 2n]);
  });

  test('a missing enumerator: exists 0, value poisoned', () => {
    const other = make((b) => ({ e: b.enum('state', { RUNNING: 0 }) }));
    expect(ok(relocate(local, 'e', RELO_KIND.ENUMVAL_EXISTS, '1', other.btf)).newVal).toBe(0n);
    expect(ok(relocate(local, 'e', RELO_KIND.ENUMVAL_VALUE, '1', other.btf)).poison).toBe(true);
  });
});

describe('malformed specs are errors', () => {
  test.each([
    ['', 'empty'],
    [':1', 'leading colon'],
    ['0:-1', 'negative index'],
    ['0:2', 'member out of range'],
    ['0:x', 'not a number'],
    [Array(65).fill('0').join(':'), 'too long'],
  ])('%s (%s)', (access) => {
    const out = relocate(localS, 's', RELO_KIND.FIELD_BYTE_OFFSET, access, targetS.btf);
    expect(out.kind).toBe('error');
  });

  test('type-based kinds want exactly "0"', () => {
    expect(relocate(localS, 's', RELO_KIND.TYPE_EXISTS, '0:1', targetS.btf).kind).toBe('error');
  });

  test('an anonymous root cannot be searched for', () => {
    const anon = make((b) => {
      const int = b.int('int', 4);
      return { s: b.struct('', 4, [{ name: 'a', type: int, bitOffset: 0 }]) };
    });
    expect(() =>
      findCandidates(anon.btf, anon.ids.s!, { vmlinux: targetS.btf, modules: [], vmlinuxOverride: true }),
    ).toThrow();
    expect(relocate(anon, 's', RELO_KIND.FIELD_BYTE_OFFSET, '0:0', targetS.btf, []).kind).toBe('error');
  });
});

describe('patching instructions', () => {
  const insn = (code: number, dst: number, src: number, off: number, imm: number) => {
    const b = new Uint8Array(INSN_SIZE);
    const v = new DataView(b.buffer);
    b[0] = code;
    b[1] = (src << 4) | dst;
    v.setInt16(2, off, true);
    v.setInt32(4, imm, true);
    return b;
  };
  const program = (...insns: Uint8Array[]) => {
    const bytes = new Uint8Array(insns.length * INSN_SIZE);
    insns.forEach((b, i) => {
      bytes.set(b, i * INSN_SIZE);
    });
    return new Instructions(bytes, true);
  };
  const res = (over: Partial<Parameters<typeof patchInsn>[2]>) => ({
    origVal: 4n,
    newVal: 16n,
    poison: false,
    validate: true,
    failMemszAdjust: false,
    origSize: 0,
    newSize: 0,
    origTypeId: 0,
    newTypeId: 0,
    ...over,
  });

  test('LDX offset, with the load narrowed from u64 to u32 when the field shrank', () => {
    const p = program(insn(0x79 /* ldxdw */, 1, 2, 4, 0));
    const rec = patchInsn(p, 0, res({ origSize: 8, newSize: 4 }));
    expect(rec).toMatchObject({ action: 'patched', old: 4n, new: 16n, memSize: { old: 8, new: 4 } });
    expect([p.code(0), p.off(0)]).toEqual([0x61 /* ldxw */, 16]);
  });

  test('an unsafe size change poisons the load instead', () => {
    const p = program(insn(0x79, 1, 2, 4, 0));
    expect(patchInsn(p, 0, res({ origSize: 8, newSize: 4, failMemszAdjust: true })).action).toBe('poisoned');
    expect([p.code(0), p.imm(0)]).toEqual([0x85, 0xbad2310]);
  });

  test('ALU immediate, and 64-bit immediates split across both halves', () => {
    const alu = program(insn(0xb7 /* mov64 imm */, 1, 0, 0, 4));
    patchInsn(alu, 0, res({}));
    expect(alu.imm(0)).toBe(16);
    const ld = program(insn(0x18, 1, 0, 0, 4), insn(0, 0, 0, 0, 0));
    patchInsn(ld, 0, res({ newVal: (3n << 32n) | 7n }));
    expect([ld.imm(0), ld.imm(1)]).toEqual([7, 3]);
  });

  test('poisoning a 64-bit load poisons both halves', () => {
    const ld = program(insn(0x18, 1, 0, 0, 4), insn(0, 0, 0, 0, 0));
    patchInsn(ld, 0, res({ poison: true }));
    expect([ld.code(0), ld.code(1), ld.imm(1)]).toEqual([0x85, 0x85, 0xbad2310]);
  });

  test('an instruction that does not hold the local value is refused', () => {
    expect(() => patchInsn(program(insn(0xb7, 1, 0, 0, 5)), 0, res({}))).toThrow(/unexpected insn #0/);
    expect(() => patchInsn(program(insn(0x79, 1, 2, 4, 0)), 0, res({ newVal: 40000n }))).toThrow(/too big/);
    expect(() => patchInsn(program(insn(0x0f /* add64 reg */, 1, 2, 0, 0)), 0, res({}))).toThrow();
    expect(() => patchInsn(program(insn(0x95 /* exit */, 0, 0, 0, 0)), 0, res({}))).toThrow(
      /unrecognized insn/,
    );
  });
});
