import { UsageError } from '../errors.js';
import type { Btf } from './btf.js';
import type { Linkage, Member, NewType, Param, TypeId, VarSecinfo } from './types.js';
import { LINKAGE_BY_NUMBER } from './types.js';
import {
  BTF_HEADER_LEN,
  BTF_MAGIC,
  BTF_VERSION,
  INT_BOOL,
  INT_CHAR,
  INT_SIGNED,
  KIND,
  makeInfo,
} from './wire.js';

export interface BtfBuilderOptions {
  /** Build split BTF continuing this base: ids start at its typeCount, string offsets after its strings. */
  base?: Btf;
  /** Byte order of the encoded blob; this machine's by default... which is little-endian everywhere Node runs. */
  littleEndian?: boolean;
}

export interface IntOptions {
  signed?: boolean;
  char?: boolean;
  bool?: boolean;
  /** BTF_INT_BITS; size * 8 by default. */
  bits?: number;
}

/** A member for the `struct`/`union` helpers: bitfieldSize > 0 makes the struct a kind_flag one. */
export interface NewMember {
  name?: string;
  type: TypeId;
  bitOffset: number;
  bitfieldSize?: number;
}

const MAX_VLEN = 0xffff;
const U32_MAX = 0xffffffff;
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Builds BTF blobs: header, type section and string section, in either byte order, as base or
 * split BTF. Types go in as the decoded model (`NewType`, a `BtfType` without its id), so any type
 * `Btf.type()` returns can be copied verbatim: `add(btf.type(id))`. Referenced ids are not checked
 * here (types may refer forward); `Btf.parse` of the result checks them.
 *
 * Every field of the type section is a 32-bit word, so records are collected as native words and
 * swapped once, at encode time, when the other byte order is asked for.
 */
export class BtfBuilder {
  readonly base: Btf | undefined;
  readonly littleEndian: boolean;
  /** The id the first added type gets. */
  readonly firstId: TypeId;

  private words = new Uint32Array(1024);
  private wordCount = 0;
  private typeCountOwn = 0;
  /** This builder's own strings, NUL-terminated, starting at `strStart`. */
  private strBytes = new Uint8Array(1024);
  private strLen = 0;
  private readonly strStart: number;
  private readonly strIndex = new Map<string, number>();
  private readonly encoder = new TextEncoder();

  constructor(options: BtfBuilderOptions = {}) {
    this.base = options.base;
    this.littleEndian = options.littleEndian ?? HOST_LITTLE_ENDIAN;
    this.firstId = this.base === undefined ? 1 : this.base.typeCount;
    this.strStart = this.base === undefined ? 0 : this.base.strings.end;
    this.strIndex.set('', 0);
    // Base BTF's string section starts with the empty string; split BTF uses its base's.
    if (this.base === undefined) this.strLen = 1;
  }

  /** The id the next added type gets. */
  get nextId(): TypeId {
    return this.firstId + this.typeCountOwn;
  }

  /**
   * The offset of `s` in the string section, adding it if new. Deduplicated: '' is 0, and split
   * BTF reuses its base's strings, as libbpf's btf__add_str does.
   */
  addString(s: string): number {
    const known = this.strIndex.get(s);
    if (known !== undefined) return known;
    if (s.includes('\0')) throw new UsageError(`BTF strings cannot contain NUL: ${JSON.stringify(s)}`);
    const inBase = this.base?.strings.find(s);
    if (inBase !== undefined) {
      this.strIndex.set(s, inBase);
      return inBase;
    }
    const off = this.strStart + this.strLen;
    // At most 3 bytes of UTF-8 per UTF-16 unit, plus the NUL.
    this.reserveStrings(s.length * 3 + 1);
    const { written } = this.encoder.encodeInto(s, this.strBytes.subarray(this.strLen));
    this.strBytes[this.strLen + written] = 0;
    this.strLen += written + 1;
    this.strIndex.set(s, off);
    return off;
  }

  /** Adds a type (any decoded `BtfType` works too; its id is ignored) and returns its id. */
  add(t: NewType): TypeId {
    const nameOff = this.addString(t.name);
    const kindFlag = t.kindFlag;
    switch (t.kind) {
      case 'void':
        throw new UsageError('void is type id 0 and cannot be added');
      case 'int': {
        checkField(t.encoding, 0x0f, 'INT encoding');
        checkField(t.bitsOffset, 0xff, 'INT bits offset');
        checkField(t.bits, 0xff, 'INT bits');
        this.header(nameOff, KIND.INT, 0, kindFlag, t.size);
        this.push(((t.encoding << 24) | (t.bitsOffset << 16) | t.bits) >>> 0);
        break;
      }
      case 'ptr':
      case 'typedef':
      case 'volatile':
      case 'const':
      case 'restrict':
      case 'type_tag':
        this.header(nameOff, REF_KINDS[t.kind], 0, kindFlag, t.type);
        break;
      case 'array':
        this.header(nameOff, KIND.ARRAY, 0, kindFlag, 0);
        this.push(u32(t.type, 'array element type'), u32(t.indexType, 'array index type'));
        this.push(u32(t.nelems, 'array length'));
        break;
      case 'struct':
      case 'union': {
        const kind = t.kind === 'struct' ? KIND.STRUCT : KIND.UNION;
        this.header(nameOff, kind, vlen(t.members.length, 'members'), kindFlag, t.size);
        for (const m of t.members) this.member(m, kindFlag);
        break;
      }
      case 'enum':
      case 'enum64': {
        if (t.signed !== kindFlag) {
          throw new UsageError(`${t.kind} ${t.name}: signed (${t.signed}) must equal kindFlag (${kindFlag})`);
        }
        const is64 = t.kind === 'enum64';
        this.header(
          nameOff,
          is64 ? KIND.ENUM64 : KIND.ENUM,
          vlen(t.values.length, 'values'),
          kindFlag,
          t.size,
        );
        const bits = is64 ? 64 : 32;
        const [min, max] = t.signed
          ? [-(1n << BigInt(bits - 1)), (1n << BigInt(bits - 1)) - 1n]
          : [0n, (1n << BigInt(bits)) - 1n];
        for (const v of t.values) {
          if (typeof v.value !== 'bigint' || v.value < min || v.value > max) {
            throw new UsageError(
              `${t.kind} ${t.name}: value ${v.name} = ${v.value} does not fit a ${t.signed ? 'signed' : 'unsigned'} ${bits}-bit enum`,
            );
          }
          const raw = BigInt.asUintN(64, v.value);
          this.push(this.addString(v.name), Number(raw & 0xffffffffn));
          if (is64) this.push(Number(raw >> 32n));
        }
        break;
      }
      case 'fwd':
        if ((t.fwdKind === 'union') !== kindFlag) {
          throw new UsageError(`fwd ${t.name}: fwdKind ${t.fwdKind} needs kindFlag ${!kindFlag}`);
        }
        this.header(nameOff, KIND.FWD, 0, kindFlag, 0);
        break;
      case 'func':
        checkLinkage(t.linkage, t.linkageRaw, MAX_VLEN, `func ${t.name}`);
        this.header(nameOff, KIND.FUNC, t.linkageRaw, kindFlag, t.type);
        break;
      case 'func_proto':
        this.header(nameOff, KIND.FUNC_PROTO, vlen(t.params.length, 'params'), kindFlag, t.returnType);
        for (const p of t.params) this.push(this.addString(p.name), u32(p.type, 'param type'));
        break;
      case 'var':
        checkLinkage(t.linkage, t.linkageRaw, U32_MAX, `var ${t.name}`);
        this.header(nameOff, KIND.VAR, 0, kindFlag, t.type);
        this.push(t.linkageRaw);
        break;
      case 'datasec':
        this.header(nameOff, KIND.DATASEC, vlen(t.vars.length, 'vars'), kindFlag, t.size);
        for (const v of t.vars) {
          this.push(u32(v.type, 'var type'), u32(v.offset, 'var offset'), u32(v.size, 'var size'));
        }
        break;
      case 'float':
        this.header(nameOff, KIND.FLOAT, 0, kindFlag, t.size);
        break;
      case 'decl_tag':
        if (!Number.isInteger(t.componentIdx) || t.componentIdx < -1 || t.componentIdx > 0x7fffffff) {
          throw new UsageError(`decl_tag ${t.name}: component index ${t.componentIdx} is not -1 or an index`);
        }
        this.header(nameOff, KIND.DECL_TAG, 0, kindFlag, t.type);
        this.push(t.componentIdx >>> 0);
        break;
      default:
        throw new UsageError(`unknown kind ${(t as { kind: unknown }).kind}`);
    }
    return this.firstId + this.typeCountOwn++;
  }

  /** Adds every own type of `btf` in order, so that the copy keeps its ids (when bases match). */
  addAll(btf: Btf): void {
    for (let id = btf.firstId; id < btf.typeCount; id++) this.add(btf.type(id));
  }

  // Helpers that keep tests readable; each adds one type and returns its id.

  int(name: string, size: number, options: IntOptions = {}): TypeId {
    const encoding =
      (options.signed ? INT_SIGNED : 0) | (options.char ? INT_CHAR : 0) | (options.bool ? INT_BOOL : 0);
    const bits = options.bits ?? size * 8;
    return this.add({ kind: 'int', name, kindFlag: false, size, encoding, bitsOffset: 0, bits });
  }
  ptr(type: TypeId): TypeId {
    return this.add({ kind: 'ptr', name: '', kindFlag: false, type });
  }
  typedef(name: string, type: TypeId): TypeId {
    return this.add({ kind: 'typedef', name, kindFlag: false, type });
  }
  const(type: TypeId): TypeId {
    return this.add({ kind: 'const', name: '', kindFlag: false, type });
  }
  volatile(type: TypeId): TypeId {
    return this.add({ kind: 'volatile', name: '', kindFlag: false, type });
  }
  restrict(type: TypeId): TypeId {
    return this.add({ kind: 'restrict', name: '', kindFlag: false, type });
  }
  typeTag(name: string, type: TypeId): TypeId {
    return this.add({ kind: 'type_tag', name, kindFlag: false, type });
  }
  array(type: TypeId, indexType: TypeId, nelems: number): TypeId {
    return this.add({ kind: 'array', name: '', kindFlag: false, type, indexType, nelems });
  }
  struct(name: string, size: number, members: NewMember[]): TypeId {
    return this.composite('struct', name, size, members);
  }
  union(name: string, size: number, members: NewMember[]): TypeId {
    return this.composite('union', name, size, members);
  }
  enum(
    name: string,
    values: Record<string, number | bigint>,
    options: { size?: number; signed?: boolean } = {},
  ): TypeId {
    const signed = options.signed ?? Object.values(values).some((v) => v < 0);
    const list = Object.entries(values).map(([n, v]) => ({ name: n, value: BigInt(v) }));
    return this.add({ kind: 'enum', name, kindFlag: signed, size: options.size ?? 4, signed, values: list });
  }
  enum64(
    name: string,
    values: Record<string, number | bigint>,
    options: { size?: number; signed?: boolean } = {},
  ): TypeId {
    const signed = options.signed ?? Object.values(values).some((v) => v < 0);
    const list = Object.entries(values).map(([n, v]) => ({ name: n, value: BigInt(v) }));
    return this.add({
      kind: 'enum64',
      name,
      kindFlag: signed,
      size: options.size ?? 8,
      signed,
      values: list,
    });
  }
  fwd(name: string, fwdKind: 'struct' | 'union' = 'struct'): TypeId {
    return this.add({ kind: 'fwd', name, kindFlag: fwdKind === 'union', fwdKind });
  }
  funcProto(returnType: TypeId, params: (TypeId | Param)[]): TypeId {
    const list = params.map((p) => (typeof p === 'number' ? { name: '', type: p } : p));
    return this.add({ kind: 'func_proto', name: '', kindFlag: false, returnType, params: list });
  }
  func(name: string, proto: TypeId, linkage: Linkage = 'global'): TypeId {
    const linkageRaw = LINKAGE_BY_NUMBER.indexOf(linkage);
    return this.add({ kind: 'func', name, kindFlag: false, type: proto, linkage, linkageRaw });
  }
  variable(name: string, type: TypeId, linkage: Linkage = 'global'): TypeId {
    const linkageRaw = LINKAGE_BY_NUMBER.indexOf(linkage);
    return this.add({ kind: 'var', name, kindFlag: false, type, linkage, linkageRaw });
  }
  datasec(name: string, size: number, vars: VarSecinfo[]): TypeId {
    return this.add({ kind: 'datasec', name, kindFlag: false, size, vars });
  }
  float(name: string, size: number): TypeId {
    return this.add({ kind: 'float', name, kindFlag: false, size });
  }
  declTag(name: string, type: TypeId, componentIdx = -1): TypeId {
    return this.add({ kind: 'decl_tag', name, kindFlag: false, type, componentIdx });
  }

  /** The blob: header, then the type section, then the string section (as pahole and libbpf lay it out). */
  encode(): Uint8Array {
    const typeLen = this.wordCount * 4;
    const out = new Uint8Array(BTF_HEADER_LEN + typeLen + this.strLen);
    const view = new DataView(out.buffer);
    const le = this.littleEndian;
    view.setUint16(0, BTF_MAGIC, le);
    view.setUint8(2, BTF_VERSION);
    view.setUint8(3, 0);
    view.setUint32(4, BTF_HEADER_LEN, le);
    view.setUint32(8, 0, le);
    view.setUint32(12, typeLen, le);
    view.setUint32(16, typeLen, le);
    view.setUint32(20, this.strLen, le);
    const words = this.words.subarray(0, this.wordCount);
    if (le === HOST_LITTLE_ENDIAN) {
      out.set(new Uint8Array(words.buffer, 0, typeLen), BTF_HEADER_LEN);
    } else {
      for (let i = 0; i < words.length; i++) view.setUint32(BTF_HEADER_LEN + i * 4, words[i]!, le);
    }
    out.set(this.strBytes.subarray(0, this.strLen), BTF_HEADER_LEN + typeLen);
    return out;
  }

  private composite(kind: 'struct' | 'union', name: string, size: number, members: NewMember[]): TypeId {
    const kindFlag = members.some((m) => (m.bitfieldSize ?? 0) > 0);
    const list: Member[] = members.map((m) => ({
      name: m.name ?? '',
      type: m.type,
      bitOffset: m.bitOffset,
      bitfieldSize: m.bitfieldSize ?? 0,
    }));
    return this.add({ kind, name, kindFlag, size, members: list });
  }

  private member(m: Member, kindFlag: boolean): void {
    const nameOff = this.addString(m.name);
    const type = u32(m.type, `member ${m.name} type`);
    if (kindFlag) {
      // kind_flag: bits 0-23 the bit offset, bits 24-31 the bitfield size (0 for a plain member).
      checkField(m.bitOffset, 0xffffff, `member ${m.name} bit offset`);
      checkField(m.bitfieldSize, 0xff, `member ${m.name} bitfield size`);
      this.push(nameOff, type, ((m.bitfieldSize << 24) | m.bitOffset) >>> 0);
    } else {
      if (m.bitfieldSize !== 0) {
        throw new UsageError(`member ${m.name}: a bitfield size needs a kind_flag struct or union`);
      }
      this.push(nameOff, type, u32(m.bitOffset, `member ${m.name} bit offset`));
    }
  }

  private header(
    nameOff: number,
    kind: number,
    vlenOrLinkage: number,
    kindFlag: boolean,
    sizeOrType: number,
  ): void {
    this.push(nameOff, makeInfo(kind, vlenOrLinkage, kindFlag), u32(sizeOrType, 'size or type'));
  }

  private push(...values: number[]): void {
    if (this.wordCount + values.length > this.words.length) {
      const grown = new Uint32Array(this.words.length * 2 + values.length);
      grown.set(this.words.subarray(0, this.wordCount));
      this.words = grown;
    }
    for (const v of values) this.words[this.wordCount++] = v;
  }

  private reserveStrings(extra: number): void {
    if (this.strLen + extra <= this.strBytes.length) return;
    const grown = new Uint8Array(Math.max(this.strBytes.length * 2, this.strLen + extra));
    grown.set(this.strBytes.subarray(0, this.strLen));
    this.strBytes = grown;
  }
}

const REF_KINDS = {
  ptr: KIND.PTR,
  typedef: KIND.TYPEDEF,
  volatile: KIND.VOLATILE,
  const: KIND.CONST,
  restrict: KIND.RESTRICT,
  type_tag: KIND.TYPE_TAG,
} as const;

function u32(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 0 || value > U32_MAX) {
    throw new UsageError(`${what} ${value} is not a 32-bit unsigned integer`);
  }
  return value;
}

function checkField(value: number, max: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new UsageError(`${what} ${value} does not fit (0..${max})`);
  }
}

function vlen(n: number, what: string): number {
  if (n > MAX_VLEN) throw new UsageError(`too many ${what}: ${n} (BTF allows ${MAX_VLEN})`);
  return n;
}

function checkLinkage(linkage: Linkage, raw: number, max: number, what: string): void {
  checkField(raw, max, `${what} linkage`);
  if ((LINKAGE_BY_NUMBER[raw] ?? 'static') !== linkage) {
    throw new UsageError(`${what}: linkage ${linkage} does not match its raw value ${raw}`);
  }
}
