/**
 * Shared helpers for BTF tests: small BTFs with every kind, byte patching, the host kernel's BTF,
 * and bpftool's view of a BTF blob for tests that check against the real tool.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { isParseError, type ParseError } from '../../errors.js';
import type { Btf } from '../btf.js';
import { BtfBuilder, type BtfBuilderOptions } from '../builder.js';
import { type BtfType, type EnumType, KIND_BY_NUMBER } from '../types.js';
import { KIND_NAMES } from '../wire.js';

/** Byte offsets of struct btf_header's fields. */
export const HDR = {
  magic: 0,
  version: 2,
  flags: 3,
  hdrLen: 4,
  typeOff: 8,
  typeLen: 12,
  strOff: 16,
  strLen: 20,
};

/** The ids `allKinds` gives its types, by what they are. */
export interface AllKindsIds {
  int: number;
  char: number;
  bool: number;
  sint: number;
  ptr: number;
  arr: number;
  struct: number;
  bitfields: number;
  union: number;
  uenum: number;
  senum: number;
  u64enum: number;
  s64enum: number;
  fwdStruct: number;
  fwdUnion: number;
  typedef: number;
  volatile: number;
  const: number;
  restrict: number;
  proto: number;
  funcStatic: number;
  funcGlobal: number;
  funcExtern: number;
  varStatic: number;
  varGlobal: number;
  datasec: number;
  float: number;
  tagOnType: number;
  tagOnMember: number;
  typeTag: number;
}

/** A builder holding one or more types of every kind, with the kind_flag variants each kind has. */
export function allKinds(options: BtfBuilderOptions = {}): { b: BtfBuilder; ids: AllKindsIds } {
  const b = new BtfBuilder(options);
  const int = b.int('unsigned int', 4);
  const char = b.int('char', 1, { char: true, signed: true });
  const bool = b.int('_Bool', 1, { bool: true, bits: 1 });
  const sint = b.int('int', 4, { signed: true });
  const ptr = b.ptr(char);
  const arr = b.array(char, int, 16);
  const struct = b.struct('point', 8, [
    { name: 'x', type: sint, bitOffset: 0 },
    { name: 'y', type: sint, bitOffset: 32 },
  ]);
  const bitfields = b.struct('flags', 4, [
    { name: 'a', type: int, bitOffset: 0, bitfieldSize: 3 },
    { name: 'b', type: int, bitOffset: 3, bitfieldSize: 29 },
    { name: 'whole', type: char, bitOffset: 0x123456 },
  ]);
  const union = b.union('u', 8, [
    { name: 'p', type: struct, bitOffset: 0 },
    { name: '', type: int, bitOffset: 0 },
  ]);
  const uenum = b.enum('colour', { RED: 0, GREEN: 1, BIG: 0xfffffffe });
  const senum = b.enum('sign', { NEG: -1, MIN: -0x80000000, MAX: 0x7fffffff });
  const u64enum = b.enum64('big', { LOW: 1, HIGH: 0xfedcba9876543210n });
  const s64enum = b.enum64('sbig', { NEG: -2n, MIN: -(1n << 63n) });
  const fwdStruct = b.fwd('later');
  const fwdUnion = b.fwd('maybe', 'union');
  const typedef = b.typedef('u32', int);
  const volatile = b.volatile(typedef);
  const cnst = b.const(volatile);
  const restrict = b.restrict(ptr);
  const proto = b.funcProto(sint, [{ name: 'a', type: int }, { name: 'b', type: ptr }, 0]);
  const funcStatic = b.func('helper', proto, 'static');
  const funcGlobal = b.func('main_prog', proto, 'global');
  const funcExtern = b.func('bpf_thing', proto, 'extern');
  const varStatic = b.variable('counter', int, 'static');
  const varGlobal = b.variable('limit', cnst, 'global');
  const datasec = b.datasec('.data', 8, [
    { type: varStatic, offset: 0, size: 4 },
    { type: varGlobal, offset: 4, size: 4 },
  ]);
  const float = b.float('double', 8);
  const tagOnType = b.declTag('kfunc', funcGlobal);
  const tagOnMember = b.declTag('user', struct, 1);
  const typeTag = b.typeTag('rcu', struct);
  const ids: AllKindsIds = {
    int,
    char,
    bool,
    sint,
    ptr,
    arr,
    struct,
    bitfields,
    union,
    uenum,
    senum,
    u64enum,
    s64enum,
    fwdStruct,
    fwdUnion,
    typedef,
    volatile,
    const: cnst,
    restrict,
    proto,
    funcStatic,
    funcGlobal,
    funcExtern,
    varStatic,
    varGlobal,
    datasec,
    float,
    tagOnType,
    tagOnMember,
    typeTag,
  };
  return { b, ids };
}

/** A copy of `blob` with a u32 (or u16/u8 with `width`) written at `offset`. */
export function patched(
  blob: Uint8Array,
  offset: number,
  value: number,
  littleEndian = true,
  width = 4,
): Uint8Array {
  const copy = blob.slice();
  const view = new DataView(copy.buffer);
  if (width === 4) view.setUint32(offset, value >>> 0, littleEndian);
  else if (width === 2) view.setUint16(offset, value, littleEndian);
  else view.setUint8(offset, value);
  return copy;
}

export function readU32(blob: Uint8Array, offset: number, littleEndian = true): number {
  return new DataView(blob.buffer, blob.byteOffset, blob.byteLength).getUint32(offset, littleEndian);
}

/** Runs `fn`, expects a ParseError and returns it for more checks. */
export function expectParseError(
  fn: () => unknown,
  where: { typeId?: number; offset?: number } = {},
): ParseError {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  if (thrown === undefined) throw new Error('expected a ParseError, nothing was thrown');
  if (!isParseError(thrown)) throw thrown;
  const error = thrown as ParseError;
  expect(error.format).toBe('btf');
  if ('typeId' in where) expect(error.typeId, error.message).toBe(where.typeId);
  if ('offset' in where) expect(error.offset, error.message).toBe(where.offset);
  return error;
}

export const VMLINUX = '/sys/kernel/btf/vmlinux';

/** The host kernel's BTF, or undefined when this machine does not expose it. */
export function hostVmlinux(): Uint8Array | undefined {
  return existsSync(VMLINUX) ? new Uint8Array(readFileSync(VMLINUX)) : undefined;
}

/** Module BTFs under /sys/kernel/btf (split BTF over vmlinux), at most `limit` of them. */
export function hostModules(limit: number): { name: string; bytes: Uint8Array }[] {
  if (!existsSync('/sys/kernel/btf')) return [];
  return readdirSync('/sys/kernel/btf')
    .filter((n) => n !== 'vmlinux')
    .sort()
    .slice(0, limit)
    .map((name) => ({ name, bytes: new Uint8Array(readFileSync(join('/sys/kernel/btf', name))) }));
}

export function haveBpftool(): boolean {
  try {
    execFileSync('bpftool', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** One type as `bpftool -j btf dump file` prints it (enum values kept as bigint). */
export type BpftoolType = Record<string, unknown> & { id: number; kind: string; name: string };

/** bpftool's JSON dump of a BTF blob (raw BTF file; split over `base` when given). */
export function bpftoolDump(blob: Uint8Array, base?: Uint8Array): BpftoolType[] {
  const dir = mkdtempSync(join(tmpdir(), 'corematrix-btf-'));
  try {
    const file = join(dir, 'btf.raw');
    writeFileSync(file, blob);
    const args = ['-j', 'btf', 'dump', 'file', file];
    if (base !== undefined) {
      const baseFile = join(dir, 'base.raw');
      writeFileSync(baseFile, base);
      args.splice(1, 0, '-B', baseFile);
    }
    return parseBpftoolJson(execFileSync('bpftool', args, { maxBuffer: 1 << 30, encoding: 'utf8' }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** bpftool's JSON, with enum values (which may exceed 2^53) read as bigint. */
export function parseBpftoolJson(text: string): BpftoolType[] {
  const quoted = text.replace(/"val":(-?\d+)/g, '"val":"$1"');
  const parsed = JSON.parse(quoted) as { types: BpftoolType[] };
  for (const t of parsed.types) {
    const values = t.values as { name: string; val: string | bigint }[] | undefined;
    if (values !== undefined) for (const v of values) v.val = BigInt(v.val as string);
  }
  return parsed.types;
}

const INT_ENCODINGS: Record<number, string> = { 0: '(none)', 1: 'SIGNED', 2: 'CHAR', 4: 'BOOL' };

/** A decoded type in the shape bpftool's JSON dump prints it, to compare the two. */
export function bpftoolShape(t: BtfType): BpftoolType {
  const name = t.name === '' ? '(anon)' : t.name;
  const head = { id: t.id, kind: KIND_NAMES[KIND_BY_NUMBER.indexOf(t.kind)]!, name };
  const anon = (n: string) => (n === '' ? '(anon)' : n);
  switch (t.kind) {
    case 'void':
      return head;
    case 'int':
      return {
        ...head,
        size: t.size,
        bits_offset: t.bitsOffset,
        nr_bits: t.bits,
        encoding: INT_ENCODINGS[t.encoding] ?? 'UNKN',
      };
    case 'ptr':
    case 'typedef':
    case 'volatile':
    case 'const':
    case 'restrict':
    case 'type_tag':
      return { ...head, type_id: t.type };
    case 'array':
      return { ...head, type_id: t.type, index_type_id: t.indexType, nr_elems: t.nelems };
    case 'struct':
    case 'union':
      return {
        ...head,
        size: t.size,
        vlen: t.members.length,
        members: t.members.map((m) => ({
          name: anon(m.name),
          type_id: m.type,
          bits_offset: m.bitOffset,
          ...(m.bitfieldSize !== 0 ? { bitfield_size: m.bitfieldSize } : {}),
        })),
      };
    case 'enum':
    case 'enum64':
      return {
        ...head,
        encoding: t.signed ? 'SIGNED' : 'UNSIGNED',
        size: t.size,
        vlen: t.values.length,
        values: t.values.map((v) => ({ name: anon(v.name), val: bpftoolEnumValue(t, v.value) })),
      };
    case 'fwd':
      return { ...head, fwd_kind: t.fwdKind };
    case 'func':
      return { ...head, type_id: t.type, linkage: t.linkage };
    case 'func_proto':
      return {
        ...head,
        ret_type_id: t.returnType,
        vlen: t.params.length,
        params: t.params.map((p) => ({ name: anon(p.name), type_id: p.type })),
      };
    case 'var':
      return { ...head, type_id: t.type, linkage: t.linkage };
    case 'datasec':
      return {
        ...head,
        size: t.size,
        vlen: t.vars.length,
        vars: t.vars.map((v) => ({ type_id: v.type, offset: v.offset, size: v.size })),
      };
    case 'float':
      return { ...head, size: t.size };
    case 'decl_tag':
      return { ...head, type_id: t.type, component_idx: t.componentIdx };
  }
}

/**
 * bpftool prints an unsigned 32-bit enum value through the s32 field of struct btf_enum widened to
 * u64, so 0xfffffffe comes out as 2^64 - 2. The value itself is 0xfffffffe (libbpf's btf_enum_value
 * reads it unsigned); this reproduces bpftool's printing to compare with it.
 */
function bpftoolEnumValue(t: EnumType, value: bigint): bigint {
  if (t.kind === 'enum' && !t.signed) return BigInt.asUintN(64, BigInt.asIntN(32, value));
  return value;
}

/** Compares every own type of `btf` with bpftool's dump of it; returns how many were compared. */
export function expectMatchesBpftool(btf: Btf, dump: BpftoolType[]): number {
  expect(dump.length).toBe(btf.typeCount - btf.firstId);
  const key = (o: unknown) => JSON.stringify(o, (_, v) => (typeof v === 'bigint' ? `${v}n` : v));
  for (const theirs of dump) {
    const ours = bpftoolShape(btf.type(theirs.id));
    // Strings first (cheap); a full diff only for a mismatch.
    if (key(ours) !== key(theirs)) expect(ours).toEqual(theirs);
  }
  return dump.length;
}
