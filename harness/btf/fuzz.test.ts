/**
 * Malformed-input fuzzing of the BTF reader: valid blobs (random types, both byte orders, split
 * BTF) mutated by bit flips, truncation, splices and random header fields. For every input,
 * Btf.parse either throws a ParseError, or succeeds and then every type decodes, every name is
 * found again by findByName, and the chain walkers finish (with a result or a ParseError). Any
 * other exception fails the test, and so does a hang: the whole run executes under a watchdog.
 */
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isParseError } from '../errors.js';
import { Btf } from './btf.js';
import { BtfBuilder } from './builder.js';
import { resolveSize, resolveType, skipModsAndTypedefs } from './resolve.js';
import { allKinds, HDR } from './test-support/btf-fixtures.js';
import type { Member, NewType } from './types.js';

/** Milliseconds each fuzz run may take before it counts as a hang. */
const WATCHDOG_MS = 30_000;
/** One input taking longer than this is a near-hang (a walk that should be bounded is not). */
const SLOW_INPUT_MS = 250;

type Outcome = 'accepted' | 'rejected';

/** Parses and exercises one input; returns what happened, throws anything that is not a ParseError. */
function exercise(blob: Uint8Array, base?: Btf): Outcome {
  let btf: Btf;
  try {
    btf = Btf.parse(blob, base === undefined ? {} : { base });
  } catch (e) {
    if (isParseError(e)) return 'rejected';
    throw e;
  }
  for (let id = 0; id < btf.typeCount; id++) {
    // A BTF that parsed has nothing left to fail on in decoding.
    const t = btf.type(id);
    const name = btf.name(id);
    if (t.name !== name || btf.kind(id) !== t.kind) throw new Error(`type [${id}]: name or kind disagree`);
    if (id >= btf.firstId) btf.recordBytes(id);
    // Names that are valid UTF-8 (no U+FFFD from decoding) are found again by name.
    if (name !== '' && !name.includes('\ufffd') && !btf.findByName(name).includes(id)) {
      throw new Error(`type [${id}] ${JSON.stringify(name)} not found by name`);
    }
    // Walks may meet loops or sizes past 32 bits: those are ParseErrors.
    tolerateParseError(() => resolveSize(btf, id));
    tolerateParseError(() => skipModsAndTypedefs(btf, id));
    tolerateParseError(() => resolveType(btf, id));
  }
  for (const name of ['int', 'task_struct', 'x', '\u00e9']) btf.findByName(name);
  // What decoded is a consistent model: the builder encodes it, and that parses to the same types.
  const copy = new BtfBuilder(base === undefined ? { littleEndian: btf.littleEndian } : { base });
  copy.addAll(btf);
  const again = Btf.parse(copy.encode(), base === undefined ? {} : { base });
  for (let id = btf.firstId; id < btf.typeCount; id++) {
    if (key(again.type(id)) !== key(btf.type(id))) throw new Error(`type [${id}] changed in a round trip`);
  }
  return 'accepted';
}

function key(value: unknown): string {
  return JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? `${v}n` : v));
}

function tolerateParseError(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!isParseError(e)) throw e;
  }
}

/** xorshift32: small, seedable, reproducible. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

const INTERESTING = [
  0, 1, 2, 3, 4, 8, 12, 16, 24, 0x7f, 0x80, 0xff, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff,
];

/** One random mutation of `blob` (which stays untouched); `other` is a donor for splices. */
function mutate(blob: Uint8Array, other: Uint8Array, random: () => number): Uint8Array {
  const pick = (n: number) => Math.floor(random() * n);
  let out = blob.slice();
  const view = () => new DataView(out.buffer, out.byteOffset, out.byteLength);
  const littleEndian = out[0] === 0x9f;
  const rounds = 1 + pick(3);
  for (let r = 0; r < rounds && out.length > 0; r++) {
    switch (pick(8)) {
      case 0: // flip a few bits anywhere
        for (let i = 1 + pick(8); i > 0; i--) out[pick(out.length)]! ^= 1 << pick(8);
        break;
      case 1: // an aligned word of the type section or header set to an interesting value
        if (out.length >= 4) {
          const at = pick(out.length >>> 2) * 4;
          const value = random() < 0.7 ? INTERESTING[pick(INTERESTING.length)]! : pick(64);
          view().setUint32(at, value, littleEndian);
        }
        break;
      case 2: // truncate
        out = out.slice(0, pick(out.length + 1));
        break;
      case 3: {
        // splice a run of bytes from the donor over this blob
        const len = 1 + pick(32);
        const from = pick(Math.max(1, other.length - len));
        const to = pick(Math.max(1, out.length - len));
        out.set(other.subarray(from, from + len).subarray(0, out.length - to), to);
        break;
      }
      case 4: // a header field set to something near the sizes involved
        if (out.length >= 24) {
          const field = [HDR.hdrLen, HDR.typeOff, HDR.typeLen, HDR.strOff, HDR.strLen][pick(5)]!;
          const near = [0, 24, out.length, out.length - 24, view().getUint32(field, littleEndian)][pick(5)]!;
          view().setUint32(field, (near + pick(9) - 4) >>> 0, littleEndian);
        }
        break;
      case 5: // an info word with another kind and vlen
        if (out.length >= 28) {
          const at = 24 + pick((out.length - 24) >>> 2) * 4 + 4;
          if (at + 4 <= out.length) {
            view().setUint32(at, ((pick(2) << 31) | (pick(32) << 24) | pick(6)) >>> 0, littleEndian);
          }
        }
        break;
      case 6: // insert or delete a few bytes
        if (random() < 0.5) {
          const at = pick(out.length);
          out = Uint8Array.from([...out.subarray(0, at), ...out.subarray(at + 1 + pick(8))]);
        } else {
          const at = pick(out.length);
          const extra = Array.from({ length: 1 + pick(8) }, () => pick(256));
          out = Uint8Array.from([...out.subarray(0, at), ...extra, ...out.subarray(at)]);
        }
        break;
      default: // a byte of the string section area made non-ASCII or NUL
        out[pick(out.length)] = random() < 0.5 ? 0 : 0x80 + pick(128);
        break;
    }
  }
  return out;
}

/** Arbitrary well-formed-for-the-builder types, with references anywhere in [0, count + 2). */
function typesArbitrary(): fc.Arbitrary<NewType[]> {
  const name = fc.constantFrom(
    '',
    'a',
    'int',
    'task_struct',
    'x',
    '\u00e9t\u00e9',
    'long unsigned int',
    'pid',
  );
  return fc.integer({ min: 1, max: 24 }).chain((count) => {
    const ref = fc.oneof(
      { weight: 9, arbitrary: fc.integer({ min: 0, max: count }) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: count + 2 }) },
    );
    const flag = fc.boolean();
    const member = (kindFlag: boolean): fc.Arbitrary<Member> =>
      fc.record({
        name,
        type: ref,
        bitOffset: fc.integer({ min: 0, max: kindFlag ? 0xffffff : 0xffffffff }),
        bitfieldSize: kindFlag ? fc.integer({ min: 0, max: 255 }) : fc.constant(0),
      });
    // Each branch is one kind's NewType; the union of their literal types is wider than TS can match.
    const type = fc.oneof(
      fc.constantFrom(1, 2, 4, 8, 16).chain((size) =>
        fc.record({
          kind: fc.constant('int' as const),
          name,
          kindFlag: fc.constant(false),
          size: fc.constant(size),
          encoding: fc.constantFrom(0, 1, 2, 4),
          bitsOffset: fc.constant(0),
          bits: fc.integer({ min: 0, max: size * 8 }),
        }),
      ),
      fc.record({
        kind: fc.constantFrom('ptr', 'typedef', 'volatile', 'const', 'restrict', 'type_tag'),
        name,
        kindFlag: fc.constant(false),
        type: ref,
      }),
      fc.record({
        kind: fc.constant('array' as const),
        name: fc.constant(''),
        kindFlag: fc.constant(false),
        type: ref,
        indexType: ref,
        nelems: fc.constantFrom(0, 1, 2, 16, 0xffffffff),
      }),
      flag.chain((kindFlag) =>
        fc.record({
          kind: fc.constantFrom('struct', 'union'),
          name,
          kindFlag: fc.constant(kindFlag),
          size: fc.integer({ min: 0, max: 64 }),
          members: fc.array(member(kindFlag), { maxLength: 4 }),
        }),
      ),
      flag.chain((signed) =>
        fc.record({
          kind: fc.constant('enum' as const),
          name,
          kindFlag: fc.constant(signed),
          size: fc.constant(4),
          signed: fc.constant(signed),
          values: fc.array(
            fc.record({
              name,
              value: signed
                ? fc.bigInt({ min: -(1n << 31n), max: (1n << 31n) - 1n })
                : fc.bigInt({ min: 0n, max: (1n << 32n) - 1n }),
            }),
            { maxLength: 3 },
          ),
        }),
      ),
      flag.chain((signed) =>
        fc.record({
          kind: fc.constant('enum64' as const),
          name,
          kindFlag: fc.constant(signed),
          size: fc.constant(8),
          signed: fc.constant(signed),
          values: fc.array(
            fc.record({
              name,
              value: signed
                ? fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n })
                : fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
            }),
            {
              maxLength: 3,
            },
          ),
        }),
      ),
      flag.map((kindFlag) => ({
        kind: 'fwd' as const,
        name: 'f',
        kindFlag,
        fwdKind: kindFlag ? ('union' as const) : ('struct' as const),
      })),
      fc.record({
        kind: fc.constant('func_proto' as const),
        name: fc.constant(''),
        kindFlag: fc.constant(false),
        returnType: ref,
        params: fc.array(fc.record({ name, type: ref }), { maxLength: 3 }),
      }),
      fc.record({
        kind: fc.constant('func' as const),
        name,
        kindFlag: fc.constant(false),
        type: ref,
        linkage: fc.constant('static' as const),
        linkageRaw: fc.constant(0),
      }),
      fc.record({
        kind: fc.constant('var' as const),
        name,
        kindFlag: fc.constant(false),
        type: ref,
        linkage: fc.constant('global' as const),
        linkageRaw: fc.constant(1),
      }),
      fc.record({
        kind: fc.constant('datasec' as const),
        name,
        kindFlag: fc.constant(false),
        size: fc.nat(64),
        vars: fc.array(fc.record({ type: ref, offset: fc.nat(64), size: fc.nat(8) }), { maxLength: 3 }),
      }),
      fc.record({
        kind: fc.constant('float' as const),
        name,
        kindFlag: fc.constant(false),
        size: fc.constantFrom(4, 8),
      }),
      fc.record({
        kind: fc.constant('decl_tag' as const),
        name,
        kindFlag: fc.constant(false),
        type: ref,
        componentIdx: fc.integer({ min: -1, max: 3 }),
      }),
    );
    return fc.array(type as fc.Arbitrary<NewType>, { minLength: count, maxLength: count });
  });
}

function encode(types: NewType[], littleEndian: boolean): Uint8Array {
  const b = new BtfBuilder({ littleEndian });
  for (const t of types) b.add(t);
  return b.encode();
}

/** Runs `body` under a watchdog: a hang inside it (even in synchronous code) ends it with an error. */
function withWatchdog<T>(body: () => T): T {
  try {
    return runInNewContext('body()', { body }, { timeout: WATCHDOG_MS }) as T;
  } catch (e) {
    if ((e as { code?: string }).code !== 'ERR_SCRIPT_EXECUTION_TIMEOUT') throw e;
    throw new Error(`hang: ${current.label}\ninput: ${Buffer.from(current.blob).toString('hex')}`, {
      cause: e,
    });
  }
}

/** The input being exercised, to name it when the watchdog fires. */
const current: { label: string; blob: Uint8Array } = { label: '', blob: new Uint8Array(0) };

/** Exercises an input, turning anything but a ParseError (or a slow input) into a reproducible failure. */
function check(blob: Uint8Array, base: Btf | undefined, label: string): Outcome {
  current.label = label;
  current.blob = blob;
  const started = performance.now();
  let outcome: Outcome;
  try {
    outcome = exercise(blob, base);
  } catch (e) {
    throw new Error(`${label}: ${String(e)}\ninput: ${Buffer.from(blob).toString('hex')}`, { cause: e });
  }
  const took = performance.now() - started;
  if (took > SLOW_INPUT_MS)
    throw new Error(`${label}: took ${took.toFixed(0)} ms\ninput: ${Buffer.from(blob).toString('hex')}`);
  return outcome;
}

describe('fuzzing Btf.parse and what follows it', () => {
  it('random valid BTFs parse, and everything in them decodes', () => {
    withWatchdog(() =>
      fc.assert(
        fc.property(typesArbitrary(), fc.boolean(), (types, littleEndian) => {
          const blob = encode(types, littleEndian);
          // References past the last type are the only way these can be malformed.
          const outcome = check(blob, undefined, 'random BTF');
          const maxRef = Math.max(0, ...types.flatMap(refsOf));
          if (maxRef < types.length + 1 && !types.some(funcWithoutProto(types)))
            expect(outcome).toBe('accepted');
        }),
        { numRuns: 1500, seed: 0x5eed },
      ),
    );
  });

  it('mutated random BTFs give a ParseError or a BTF that fully decodes', () => {
    let rejected = 0;
    let accepted = 0;
    withWatchdog(() =>
      fc.assert(
        fc.property(
          typesArbitrary(),
          fc.boolean(),
          fc.integer({ min: 1, max: 0x7fffffff }),
          (types, littleEndian, seed) => {
            const blob = encode(types, littleEndian);
            const random = rng(seed);
            for (let i = 0; i < 4; i++) {
              if (check(mutate(blob, blob, random), undefined, `seed ${seed}`) === 'rejected') rejected++;
              else accepted++;
            }
          },
        ),
        { numRuns: 1500, seed: 0xb7f },
      ),
    );
    // Both outcomes happen, or the mutations are not reaching the interesting parts.
    expect(rejected).toBeGreaterThan(100);
    expect(accepted).toBeGreaterThan(100);
  });

  it('mutated all-kinds BTFs, base and split, in both byte orders', () => {
    const le = allKinds({ littleEndian: true }).b.encode();
    const be = allKinds({ littleEndian: false }).b.encode();
    const base = Btf.parse(le);
    const sb = new BtfBuilder({ base });
    const p = sb.ptr(base.findByNameKind('point', 'struct')!);
    sb.struct('module_thing', 16, [
      { name: 'p', type: p, bitOffset: 0 },
      { name: 'bits', type: base.findByNameKind('int', 'int')!, bitOffset: 64, bitfieldSize: 5 },
    ]);
    sb.func('module_fn', sb.funcProto(0, [p]), 'static');
    const split = sb.encode();
    const random = rng(0xc0ffee);
    let inputs = 0;
    withWatchdog(() => {
      for (let i = 0; i < 3000; i++) {
        check(mutate(le, be, random), undefined, `le #${i}`);
        check(mutate(be, le, random), undefined, `be #${i}`);
        check(mutate(split, le, random), base, `split #${i}`);
        inputs += 3;
      }
    });
    expect(inputs).toBe(9000);
  });
});

function refsOf(t: NewType): number[] {
  switch (t.kind) {
    case 'ptr':
    case 'typedef':
    case 'volatile':
    case 'const':
    case 'restrict':
    case 'type_tag':
    case 'func':
    case 'var':
    case 'decl_tag':
      return [t.type];
    case 'array':
      return [t.type, t.indexType];
    case 'struct':
    case 'union':
      return t.members.map((m) => m.type);
    case 'func_proto':
      return [t.returnType, ...t.params.map((p) => p.type)];
    case 'datasec':
      return t.vars.map((v) => v.type);
    default:
      return [];
  }
}

/** A FUNC whose type is not a FUNC_PROTO: libbpf rejects those, so Btf.parse does too. */
function funcWithoutProto(types: NewType[]): (t: NewType) => boolean {
  return (t) => t.kind === 'func' && types[t.type - 1]?.kind !== 'func_proto';
}
