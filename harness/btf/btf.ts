import { ParseError } from '../errors.js';
import { StringTable } from './strings.js';
import type { BtfType, EnumValue, Kind, Member, Param, TypeId, VarSecinfo } from './types.js';
import { KIND_BY_NUMBER, LINKAGE_BY_NUMBER } from './types.js';
import {
  BTF_HEADER_LEN,
  BTF_MAGIC,
  BTF_TYPE_LEN,
  BTF_VERSION,
  INT_SIGNED,
  infoKind,
  infoKindFlag,
  infoVlen,
  KIND,
  trailingSize,
} from './wire.js';

export interface BtfHeader {
  magic: number;
  version: number;
  flags: number;
  hdrLen: number;
  typeOff: number;
  typeLen: number;
  strOff: number;
  strLen: number;
}

export interface ParseBtfOptions {
  /** For split BTF (a module's): the BTF it continues. Type ids and string offsets follow the base's. */
  base?: Btf;
}

/**
 * A parsed BTF blob. Parsing scans the type section once to find where each type starts and to
 * check every record's bounds, referenced ids and string offsets (as libbpf's btf_sanity_check
 * does), without decoding anything; `type(id)` then decodes on demand and caches.
 */
export class Btf {
  readonly header: BtfHeader;
  readonly littleEndian: boolean;
  readonly base: Btf | undefined;
  /** The first type id this BTF defines: 1 for base BTF, the base's typeCount for split BTF. */
  readonly firstId: TypeId;
  /** One past the last type id, counting void and the base's types (libbpf's btf__type_cnt). */
  readonly typeCount: number;
  readonly strings: StringTable;
  /** The blob as given. */
  readonly raw: Uint8Array;

  private readonly view: DataView;
  /** Byte offset in `raw` of each own type's record, indexed by id - firstId. */
  private readonly offsets: Uint32Array;
  private readonly cache: (BtfType | undefined)[];
  private nameIndex: Map<string, TypeId[]> | undefined;

  private constructor(raw: Uint8Array, options: ParseBtfOptions) {
    this.raw = raw;
    this.base = options.base;
    this.view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const { header, littleEndian } = parseHeader(this.view);
    this.header = header;
    this.littleEndian = littleEndian;
    this.firstId = this.base === undefined ? 1 : this.base.typeCount;

    const strStart = header.hdrLen + header.strOff;
    this.strings = new StringTable(
      raw.subarray(strStart, strStart + header.strLen),
      this.base?.strings,
      strStart,
    );
    this.offsets = this.scanTypes();
    this.typeCount = this.firstId + this.offsets.length;
    this.cache = new Array(this.offsets.length);
    this.validate();
  }

  /** Parses a BTF blob (raw BTF as in /sys/kernel/btf/*, or an ELF's .BTF section contents). */
  static parse(raw: Uint8Array, options: ParseBtfOptions = {}): Btf {
    return new Btf(raw, options);
  }

  /** Whether `id` names a type of this BTF or its base (0, void, included). */
  has(id: TypeId): boolean {
    return Number.isInteger(id) && id >= 0 && id < this.typeCount;
  }

  /** The BTF_KIND_* number of a type without decoding it. */
  kindNumber(id: TypeId): number {
    if (id === 0) return KIND.UNKN;
    if (id < this.firstId) return this.base!.kindNumber(id);
    return infoKind(this.u32(this.recordOffset(id) + 4));
  }

  kind(id: TypeId): Kind {
    return KIND_BY_NUMBER[this.kindNumber(id)]!;
  }

  /** The name of a type without decoding the rest of it ('' when anonymous). */
  name(id: TypeId): string {
    if (id === 0) return '';
    if (id < this.firstId) return this.base!.name(id);
    return this.strings.get(this.u32(this.recordOffset(id)));
  }

  /** The type with this id, decoded once and cached. */
  type(id: TypeId): BtfType {
    if (id === 0) return VOID;
    if (id < this.firstId) return this.base!.type(id);
    const index = this.recordIndex(id);
    let t = this.cache[index];
    if (t === undefined) {
      t = this.decode(id, this.offsets[index]!);
      this.cache[index] = t;
    }
    return t;
  }

  /** Ids of this BTF's own types, in order (base types excluded). */
  *ownIds(): IterableIterator<TypeId> {
    for (let id = this.firstId; id < this.typeCount; id++) yield id;
  }

  /** Every type id with this name, base BTF first (the order libbpf's linear searches see). */
  findByName(name: string): readonly TypeId[] {
    const own = this.index().get(name) ?? NO_IDS;
    if (this.base === undefined) return own;
    const inBase = this.base.findByName(name);
    return inBase.length === 0 ? own : own.length === 0 ? inBase : [...inBase, ...own];
  }

  /** The first type with this name and kind, as btf__find_by_name_kind finds it. */
  findByNameKind(name: string, kind: Kind): TypeId | undefined {
    if (name === 'void' && kind === 'void') return 0;
    for (const id of this.findByName(name)) if (this.kind(id) === kind) return id;
    return undefined;
  }

  /** The record bytes of one of this BTF's own types (for byte-exact copies). */
  recordBytes(id: TypeId): Uint8Array {
    const start = this.recordOffset(id);
    const info = this.u32(start + 4);
    const end = start + BTF_TYPE_LEN + trailingSize(infoKind(info), infoVlen(info));
    return this.raw.subarray(start, end);
  }

  private index(): Map<string, TypeId[]> {
    if (this.nameIndex !== undefined) return this.nameIndex;
    const index = new Map<string, TypeId[]>();
    for (let i = 0; i < this.offsets.length; i++) {
      const nameOff = this.u32(this.offsets[i]!);
      if (nameOff === 0) continue;
      const name = this.strings.get(nameOff);
      const ids = index.get(name);
      if (ids === undefined) index.set(name, [this.firstId + i]);
      else ids.push(this.firstId + i);
    }
    this.nameIndex = index;
    return index;
  }

  private recordIndex(id: TypeId): number {
    const index = id - this.firstId;
    if (!(index >= 0 && index < this.offsets.length) || !Number.isInteger(index)) {
      throw new ParseError('btf', `type id out of range (the BTF has ids below ${this.typeCount})`, {
        typeId: id,
      });
    }
    return index;
  }

  private recordOffset(id: TypeId): number {
    return this.offsets[this.recordIndex(id)]!;
  }

  private u32(off: number): number {
    return this.view.getUint32(off, this.littleEndian);
  }

  private i32(off: number): number {
    return this.view.getInt32(off, this.littleEndian);
  }

  /** btf_parse_type_sec: find every record, checking that it is of a known kind and fits. */
  private scanTypes(): Uint32Array {
    const { hdrLen, typeOff, typeLen } = this.header;
    const start = hdrLen + typeOff;
    const end = start + typeLen;
    // Each record is at least 12 bytes, which bounds the count; trimmed to size at the end.
    let offsets: Uint32Array = new Uint32Array(Math.floor(typeLen / BTF_TYPE_LEN));
    let n = 0;
    let p = start;
    while (p < end) {
      const id = this.firstId + n;
      if (p + BTF_TYPE_LEN > end) {
        throw new ParseError('btf', `truncated type record (${end - p} bytes left in the type section)`, {
          offset: p,
          typeId: id,
        });
      }
      const info = this.u32(p + 4);
      const kind = infoKind(info);
      const size = trailingSize(kind, infoVlen(info));
      if (size < 0) throw new ParseError('btf', `unknown kind ${kind}`, { offset: p, typeId: id });
      if (p + BTF_TYPE_LEN + size > end) {
        throw new ParseError('btf', 'type record runs past the end of the type section', {
          offset: p,
          typeId: id,
        });
      }
      if (n === offsets.length) offsets = grow(offsets);
      offsets[n++] = p;
      p += BTF_TYPE_LEN + size;
    }
    return offsets.subarray(0, n);
  }

  /**
   * btf_validate_type, for every type: names are valid string offsets, referenced type ids exist,
   * and sizes and vlen are what the kind allows. Checks numbers only, so it stays cheap.
   */
  private validate(): void {
    const count = this.typeCount;
    const strings = this.strings;
    for (let i = 0; i < this.offsets.length; i++) {
      const p = this.offsets[i]!;
      const id = this.firstId + i;
      const nameOff = this.u32(p);
      const info = this.u32(p + 4);
      const sizeOrType = this.u32(p + 8);
      const kind = infoKind(info);
      const vlen = infoVlen(info);
      const fail = (what: string, at = p): never => {
        throw new ParseError('btf', what, { offset: at, typeId: id });
      };
      const checkName = (off: number, at: number) => {
        if (!strings.has(off)) fail(`string offset ${off} out of range (strings end at ${strings.end})`, at);
      };
      const checkId = (ref: number, at: number) => {
        if (ref >= count) fail(`refers to type [${ref}], but the last type is [${count - 1}]`, at);
      };
      checkName(nameOff, p);
      const q = p + BTF_TYPE_LEN;
      switch (kind) {
        case KIND.INT: {
          const bits = this.u32(q);
          const nrBits = bits & 0xff;
          const bitOffset = (bits >>> 16) & 0xff;
          if (sizeOrType > 16) fail(`INT size ${sizeOrType} is larger than 16 bytes`);
          if (nrBits + bitOffset > sizeOrType * 8) fail(`INT bits ${nrBits}+${bitOffset} exceed its size`);
          break;
        }
        case KIND.PTR:
        case KIND.TYPEDEF:
        case KIND.VOLATILE:
        case KIND.CONST:
        case KIND.RESTRICT:
        case KIND.FUNC:
        case KIND.TYPE_TAG:
        case KIND.VAR:
          checkId(sizeOrType, p + 8);
          break;
        case KIND.DECL_TAG:
          checkId(sizeOrType, p + 8);
          if (this.i32(q) < -1) fail(`DECL_TAG component index ${this.i32(q)} is below -1`, q);
          break;
        case KIND.ARRAY:
          checkId(this.u32(q), q);
          checkId(this.u32(q + 4), q + 4);
          break;
        case KIND.STRUCT:
        case KIND.UNION:
          for (let j = 0, m = q; j < vlen; j++, m += 12) {
            checkName(this.u32(m), m);
            checkId(this.u32(m + 4), m + 4);
          }
          break;
        case KIND.ENUM:
        case KIND.ENUM64:
          for (let j = 0, m = q, step = kind === KIND.ENUM ? 8 : 12; j < vlen; j++, m += step) {
            checkName(this.u32(m), m);
          }
          break;
        case KIND.FUNC_PROTO:
          checkId(sizeOrType, p + 8);
          for (let j = 0, m = q; j < vlen; j++, m += 8) {
            checkName(this.u32(m), m);
            checkId(this.u32(m + 4), m + 4);
          }
          break;
        case KIND.DATASEC:
          for (let j = 0, m = q; j < vlen; j++, m += 12) checkId(this.u32(m), m);
          break;
        default:
          break;
      }
    }
  }

  private decode(id: TypeId, p: number): BtfType {
    const nameOff = this.u32(p);
    const info = this.u32(p + 4);
    const sizeOrType = this.u32(p + 8);
    const kind = infoKind(info);
    const vlen = infoVlen(info);
    const kindFlag = infoKindFlag(info);
    const name = this.strings.get(nameOff);
    const q = p + BTF_TYPE_LEN;
    switch (kind) {
      case KIND.INT: {
        const bits = this.u32(q);
        return {
          kind: 'int',
          id,
          name,
          kindFlag,
          size: sizeOrType,
          encoding: (bits >>> 24) & 0x0f,
          bitsOffset: (bits >>> 16) & 0xff,
          bits: bits & 0xff,
        };
      }
      case KIND.PTR:
      case KIND.TYPEDEF:
      case KIND.VOLATILE:
      case KIND.CONST:
      case KIND.RESTRICT:
      case KIND.TYPE_TAG:
        return { kind: KIND_BY_NUMBER[kind] as 'ptr', id, name, kindFlag, type: sizeOrType };
      case KIND.ARRAY:
        return {
          kind: 'array',
          id,
          name,
          kindFlag,
          type: this.u32(q),
          indexType: this.u32(q + 4),
          nelems: this.u32(q + 8),
        };
      case KIND.STRUCT:
      case KIND.UNION: {
        const members: Member[] = new Array(vlen);
        for (let j = 0, m = q; j < vlen; j++, m += 12) {
          const offset = this.u32(m + 8);
          members[j] = {
            name: this.strings.get(this.u32(m)),
            type: this.u32(m + 4),
            bitOffset: kindFlag ? offset & 0xffffff : offset,
            bitfieldSize: kindFlag ? offset >>> 24 : 0,
          };
        }
        return {
          kind: kind === KIND.STRUCT ? 'struct' : 'union',
          id,
          name,
          kindFlag,
          size: sizeOrType,
          members,
        };
      }
      case KIND.ENUM: {
        const values: EnumValue[] = new Array(vlen);
        for (let j = 0, m = q; j < vlen; j++, m += 8) {
          values[j] = {
            name: this.strings.get(this.u32(m)),
            value: BigInt(kindFlag ? this.i32(m + 4) : this.u32(m + 4)),
          };
        }
        return { kind: 'enum', id, name, kindFlag, size: sizeOrType, signed: kindFlag, values };
      }
      case KIND.ENUM64: {
        const values: EnumValue[] = new Array(vlen);
        for (let j = 0, m = q; j < vlen; j++, m += 12) {
          const lo = BigInt(this.u32(m + 4));
          const hi = BigInt(this.u32(m + 8));
          const raw = (hi << 32n) | lo;
          values[j] = { name: this.strings.get(this.u32(m)), value: kindFlag ? BigInt.asIntN(64, raw) : raw };
        }
        return { kind: 'enum64', id, name, kindFlag, size: sizeOrType, signed: kindFlag, values };
      }
      case KIND.FWD:
        return { kind: 'fwd', id, name, kindFlag, fwdKind: kindFlag ? 'union' : 'struct' };
      case KIND.FUNC:
        return {
          kind: 'func',
          id,
          name,
          kindFlag,
          type: sizeOrType,
          linkage: LINKAGE_BY_NUMBER[vlen] ?? 'static',
          linkageRaw: vlen,
        };
      case KIND.FUNC_PROTO: {
        const params: Param[] = new Array(vlen);
        for (let j = 0, m = q; j < vlen; j++, m += 8) {
          params[j] = { name: this.strings.get(this.u32(m)), type: this.u32(m + 4) };
        }
        return { kind: 'func_proto', id, name, kindFlag, returnType: sizeOrType, params };
      }
      case KIND.VAR: {
        const linkage = this.u32(q);
        return {
          kind: 'var',
          id,
          name,
          kindFlag,
          type: sizeOrType,
          linkage: LINKAGE_BY_NUMBER[linkage] ?? 'static',
          linkageRaw: linkage,
        };
      }
      case KIND.DATASEC: {
        const vars: VarSecinfo[] = new Array(vlen);
        for (let j = 0, m = q; j < vlen; j++, m += 12) {
          vars[j] = { type: this.u32(m), offset: this.u32(m + 4), size: this.u32(m + 8) };
        }
        return { kind: 'datasec', id, name, kindFlag, size: sizeOrType, vars };
      }
      case KIND.FLOAT:
        return { kind: 'float', id, name, kindFlag, size: sizeOrType };
      case KIND.DECL_TAG:
        return { kind: 'decl_tag', id, name, kindFlag, type: sizeOrType, componentIdx: this.i32(q) };
      default:
        // scanTypes admitted only known kinds.
        throw new ParseError('btf', `unknown kind ${kind}`, { offset: p, typeId: id });
    }
  }
}

const VOID: BtfType = Object.freeze({ kind: 'void', id: 0, name: '', kindFlag: false }) as BtfType;
const NO_IDS: readonly TypeId[] = Object.freeze([]);

function grow(a: Uint32Array): Uint32Array {
  const b = new Uint32Array(a.length * 2 + 16);
  b.set(a);
  return b;
}

/** btf_parse_hdr: magic (and so byte order), version, and section bounds. */
function parseHeader(view: DataView): { header: BtfHeader; littleEndian: boolean } {
  if (view.byteLength < BTF_HEADER_LEN) {
    throw new ParseError('btf', `truncated header: ${view.byteLength} bytes, need ${BTF_HEADER_LEN}`, {
      offset: 0,
    });
  }
  let littleEndian: boolean;
  if (view.getUint16(0, true) === BTF_MAGIC) littleEndian = true;
  else if (view.getUint16(0, false) === BTF_MAGIC) littleEndian = false;
  else {
    throw new ParseError('btf', `bad magic 0x${view.getUint16(0, false).toString(16).padStart(4, '0')}`, {
      offset: 0,
    });
  }
  const u32 = (off: number) => view.getUint32(off, littleEndian);
  const header: BtfHeader = {
    magic: BTF_MAGIC,
    version: view.getUint8(2),
    flags: view.getUint8(3),
    hdrLen: u32(4),
    typeOff: u32(8),
    typeLen: u32(12),
    strOff: u32(16),
    strLen: u32(20),
  };
  if (header.version !== BTF_VERSION) {
    throw new ParseError('btf', `unsupported version ${header.version}`, { offset: 2 });
  }
  if (header.hdrLen < BTF_HEADER_LEN) {
    throw new ParseError('btf', `header length ${header.hdrLen} is shorter than ${BTF_HEADER_LEN}`, {
      offset: 4,
    });
  }
  if (header.hdrLen > view.byteLength) {
    throw new ParseError(
      'btf',
      `header length ${header.hdrLen} exceeds the data (${view.byteLength} bytes)`,
      {
        offset: 4,
      },
    );
  }
  const dataLen = view.byteLength - header.hdrLen;
  if (header.strOff + header.strLen > dataLen) {
    throw new ParseError(
      'btf',
      `string section (offset ${header.strOff}, ${header.strLen} bytes) runs past the end of the data (${dataLen} bytes)`,
      { offset: 16 },
    );
  }
  if (header.typeOff + header.typeLen > header.strOff) {
    throw new ParseError('btf', 'type section overlaps or follows the string section', { offset: 8 });
  }
  if (header.typeOff % 4 !== 0) {
    throw new ParseError('btf', 'type section is not aligned to 4 bytes', { offset: 8 });
  }
  return { header, littleEndian };
}

/** Whether an INT type is signed (BTF_INT_SIGNED). */
export function intIsSigned(encoding: number): boolean {
  return (encoding & INT_SIGNED) !== 0;
}
