/**
 * Mutation fuzzing of the object model: seeded bit flips, truncations and splices of real clang-19
 * objects must either parse (and dump, and CO-RE-relocate against their own BTF) or fail with a
 * ParseError / NotSupportedError — never another exception, never a hang. Then targeted malformed
 * .BTF.ext records, which the CO-RE engine must report as relocation errors or skip.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { TargetBtfs } from '../core/candidates.js';
import { relocateObject } from '../core/relocate.js';
import { isCorematrixError } from '../errors.js';
import { parseBtfExt } from './btf-ext.js';
import { formatObjectDump } from './dump.js';
import { type BpfObject, parseBpfObject } from './object.js';
import { buildFixture, cleanFixtures } from './testdata/fixtures.js';

afterAll(cleanFixtures);

/** mulberry32: a small seeded PRNG, so every failure can be replayed from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function selfTarget(obj: BpfObject): TargetBtfs | undefined {
  return obj.btf === undefined ? undefined : { vmlinux: obj.btf, modules: [], vmlinuxOverride: true };
}

/** Everything the object model offers, run on one input. Returns 'ok' or the error's code. */
function exercise(bytes: Uint8Array): string {
  try {
    const obj = parseBpfObject(bytes, { path: 'fuzz.bpf.o' });
    formatObjectDump(obj, 'fuzz.bpf.o');
    const target = selfTarget(obj);
    if (target !== undefined) relocateObject(obj, target);
    return 'ok';
  } catch (e) {
    if (isCorematrixError(e) && (e.code === 'parse' || e.code === 'unsupported')) return e.code;
    throw e;
  }
}

type Mutation = (bytes: Uint8Array, rnd: () => number, other: Uint8Array) => Uint8Array;

const int = (rnd: () => number, n: number) => Math.floor(rnd() * n);

const MUTATIONS: [string, Mutation][] = [
  [
    'bit flips',
    (b, rnd) => {
      const out = Uint8Array.from(b);
      for (let i = 1 + int(rnd, 8); i > 0; i--) {
        const p = int(rnd, out.length);
        out[p] = out[p]! ^ (1 << int(rnd, 8));
      }
      return out;
    },
  ],
  [
    'byte sets',
    (b, rnd) => {
      const out = Uint8Array.from(b);
      const values = [0, 0xff, 0x7f, 0x80, 1];
      for (let i = 1 + int(rnd, 4); i > 0; i--) out[int(rnd, out.length)] = values[int(rnd, values.length)]!;
      return out;
    },
  ],
  ['truncation', (b, rnd) => b.slice(0, int(rnd, b.length))],
  [
    'splice',
    (b, rnd, other) => {
      const out = Uint8Array.from(b);
      const len = 1 + int(rnd, 64);
      const from = int(rnd, Math.max(1, other.length - len));
      out.set(
        other.subarray(from, from + len).subarray(0, out.length - Math.min(out.length, int(rnd, out.length))),
        int(rnd, out.length - len),
      );
      return out;
    },
  ],
];

describe('mutated clang-19 objects', () => {
  const objects = [
    buildFixture('maps', { defines: ['NO_PIN'], outName: 'maps' }),
    buildFixture('externs'),
    buildFixture('core'),
  ].map((f) => f.bytes);

  it('the unmutated objects parse, dump and relocate', () => {
    for (const bytes of objects) expect(exercise(bytes)).toBe('ok');
  });

  it.each(MUTATIONS)('%s: parse or fail with a ParseError / NotSupportedError', (name, mutate) => {
    const rnd = prng(0x5eed ^ name.length);
    const outcomes = new Map<string, number>();
    const start = performance.now();
    let slowest = 0;
    let n = 0;
    // Thousands of inputs, bounded in time so the run stays within a few seconds.
    for (; n < 1500 && performance.now() - start < 2500; n++) {
      const base = objects[n % objects.length]!;
      const other = objects[(n + 1) % objects.length]!;
      const input = mutate(base, rnd, other);
      const t0 = performance.now();
      let outcome: string;
      try {
        outcome = exercise(input);
      } catch (e) {
        throw new Error(`${name} #${n}: ${(e as Error).stack ?? e}`);
      }
      slowest = Math.max(slowest, performance.now() - t0);
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
    expect(n).toBeGreaterThan(200);
    expect(slowest).toBeLessThan(1000);
    expect(outcomes.size).toBeGreaterThan(0);
  });
});

/** The file offset of core_relo record `i` of .BTF.ext block `block`. */
function coreReloAt(bytes: Uint8Array, block = 0, i = 0): number {
  const obj = parseBpfObject(bytes);
  const ext = obj.elf.sectionHeader('.BTF.ext')!;
  const parsed = parseBtfExt(obj.elf.contents(ext));
  const sec = parsed.coreRelo.sections[block]!;
  return ext.offset + sec.offset + 8 + i * parsed.coreRelo.recordSize;
}

function patchU32(bytes: Uint8Array, at: number, value: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  new DataView(out.buffer).setUint32(at, value >>> 0, true);
  return out;
}

describe('malformed .BTF.ext records', () => {
  const core = buildFixture('core').bytes;
  const base = parseBpfObject(core);
  const relocate = (bytes: Uint8Array) => {
    const obj = parseBpfObject(bytes);
    return relocateObject(obj, selfTarget(obj)!);
  };
  const count = base.btfExt!.coreRelo.sections.reduce((n, s) => n + s.records.length, 0);
  const strings = base.btf!.strings;
  // An existing string that is no access spec: a type name.
  const typeNameOff = findString(base, 'task');

  it('the object has CO-RE relocations that relocate against its own BTF', () => {
    expect(count).toBeGreaterThan(5);
    const r = relocate(core);
    expect(r.failed).toBeUndefined();
    expect(r.records).toHaveLength(count);
    expect(strings.has(0)).toBe(true);
  });

  it('an instruction offset past its section is skipped (no program holds it)', () => {
    const at = coreReloAt(core);
    const r = relocate(patchU32(core, at, 0x10000));
    expect(r.failed).toBeUndefined();
    expect(r.records).toHaveLength(count - 1);
  });

  it('a misaligned instruction offset is an error', () => {
    const r = relocate(patchU32(core, coreReloAt(core), 3));
    expect(r.failed?.message).toMatch(/not aligned/);
  });

  it('a section name that is no section: its records belong to no program', () => {
    const obj = parseBpfObject(core);
    const ext = obj.elf.sectionHeader('.BTF.ext')!;
    const block = ext.offset + obj.btfExt!.coreRelo.sections[0]!.offset;
    const r = relocate(patchU32(core, block, typeNameOff));
    expect(r.failed).toBeUndefined();
  });

  it.each([
    ['a type name as access string', 8, () => typeNameOff],
    ['an access string offset past the strings', 8, () => 0x7fffffff],
    ['an empty access string', 8, () => 0],
    ['a type id past the last type', 4, () => 99999],
    ['type id 0 (void)', 4, () => 0],
    ['an unknown relocation kind', 12, () => 99],
  ])('%s: reported as a relocation error, nothing thrown', (_name, field, value) => {
    for (let i = 0; i < base.btfExt!.coreRelo.sections[0]!.records.length; i++) {
      const r = relocate(patchU32(core, coreReloAt(core, 0, i) + field, value()));
      // Either libbpf's own leniency (e.g. a spec that still resolves) or an error record.
      if (r.failed !== undefined) {
        expect(r.failed.result).toBe('error');
        expect(r.failed.message ?? '').not.toBe('');
      }
    }
  });

  it('func_info and line_info records outside their sections do not break the object model', () => {
    const obj = parseBpfObject(core);
    const ext = obj.elf.sectionHeader('.BTF.ext')!;
    const func = obj.btfExt!.funcInfo.sections[0]!;
    const line = obj.btfExt!.lineInfo.sections[0]!;
    let bytes = patchU32(core, ext.offset + func.offset + 8, 0xfffffff8);
    bytes = patchU32(bytes, ext.offset + line.offset + 8, 0xfffffff8);
    expect(exercise(bytes)).toBe('ok');
  });
});

/** The offset of `s` in the object's .BTF string section (0 when absent). */
function findString(obj: BpfObject, s: string): number {
  const btf = obj.btf!;
  const needle = new TextEncoder().encode(`\0${s}\0`);
  const strStart = btf.header.hdrLen + btf.header.strOff;
  const strings = btf.raw.subarray(strStart, strStart + btf.header.strLen);
  for (let i = 0; i + needle.length <= strings.length; i++) {
    if (needle.every((b, j) => strings[i + j] === b)) return i + 1;
  }
  return 0;
}
