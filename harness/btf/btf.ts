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
  infoVlen,
  KIND,
  KIND_NAMES,
  MAX_KIND,
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

/** Whether this machine stores a u32 least significant byte first (every target Node runs on today). */
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * A parsed BTF blob. Parsing makes one pass over the type section that finds where each record
 * starts and checks, as libbpf's btf_parse_type_sec and btf_sanity_check do, that every record is of
 * a known kind and fits, and that its names and referenced ids exist — without decoding anything.
 * `type(id)` then decodes on demand and caches.
 *
 * Every field of every record is a 32-bit word, so the type section is read through a Uint32Array:
 * a view on the input when it is in this machine's byte order and 4-byte aligned, else a copy
 * (byte-swapped for a blob of the other byte order, e.g. an s390x kernel's).
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

  /** Byte offset in `raw` of the type section. */
  private readonly typeStart: number;
  /** The type section as native-endian words. */
  private readonly words: Uint32Array;
  /** Word index in `words` of each own type's record, indexed by id - firstId. */
  private readonly offsets: Uint32Array;
  /** Name offset of each own type, indexed by id - firstId. */
  private readonly names: Uint32Array;
  /**
   * 1 at every offset of this BTF's own strings that an own type is named by, indexed by offset -
   * strings.start (names in a base's strings are not marked: a split BTF stays small). Made on
   * first use: only name lookups by byte search need it, and marking during the parse costs a
   * kernel's parse ~1.5 ms (a write per record into a table the size of the strings).
   */
  private nameMarks: Uint8Array | undefined;
  private readonly cache: (BtfType | undefined)[];
  private nameIndex: NameIndex | undefined;
  /** The name index without FUNCs. */
  private typeNameIndex: NameIndex | undefined;
  private readonly lookups = new Map<string, readonly TypeId[]>();
  private readonly kindLookups = new Map<string, readonly TypeId[]>();

  private constructor(raw: Uint8Array, options: ParseBtfOptions) {
    this.raw = raw;
    this.base = options.base;
    const { header, littleEndian } = parseHeader(raw);
    this.header = header;
    this.littleEndian = littleEndian;
    this.firstId = this.base === undefined ? 1 : this.base.typeCount;

    const strStart = header.hdrLen + header.strOff;
    this.strings = new StringTable(
      raw.subarray(strStart, strStart + header.strLen),
      this.base?.strings,
      strStart,
    );
    this.typeStart = header.hdrLen + header.typeOff;
    this.words = typeWords(raw, this.typeStart, header.typeLen, littleEndian);
    const scan = scanTypes(this.words, this.strings.end, this.firstId);
    this.offsets = scan.offsets.subarray(0, scan.count);
    this.names = scan.names.subarray(0, scan.count);
    this.typeCount = this.firstId + scan.count;
    this.cache = new Array(scan.count);
    if (scan.stoppedAt >= 0) {
      // `this` answers kindNumber for the records before the bad one, all a FUNC check needs.
      throw describeBadRecord(
        this,
        this.words,
        scan.stoppedAt,
        this.typeCount,
        header.typeLen,
        this.typeStart,
        this.strings.end,
      );
    }
    // Checks that need the whole section scanned first: ids may refer forward.
    if (scan.maxRef >= this.typeCount) this.failOnBadRef();
    for (const index of scan.deferredFuncs) this.checkFunc(index);
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
    if (id < this.firstId && this.base !== undefined && id > 0) return this.base.kindNumber(id);
    return infoKind(this.words[this.recordOffset(id) + 1]!);
  }

  kind(id: TypeId): Kind {
    return KIND_BY_NUMBER[this.kindNumber(id)]!;
  }

  /** The name of a type without decoding the rest of it ('' when anonymous). */
  name(id: TypeId): string {
    if (id === 0) return '';
    if (id < this.firstId && this.base !== undefined && id > 0) return this.base.name(id);
    return this.strings.get(this.words[this.recordOffset(id)]!);
  }

  /** The type with this id, decoded once and cached. */
  type(id: TypeId): BtfType {
    if (id === 0) return VOID;
    if (id < this.firstId && this.base !== undefined && id > 0) return this.base.type(id);
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

  /**
   * Every type id with this name, base BTF first (the order libbpf's linear searches see).
   * Anonymous types have no name: `findByName('')` is empty.
   */
  findByName(name: string): readonly TypeId[] {
    let ids = this.lookups.get(name);
    if (ids !== undefined) return ids;
    const own = name === '' ? NO_IDS : this.index().find(name);
    const inBase = this.base === undefined ? NO_IDS : this.base.findByName(name);
    ids = inBase.length === 0 ? own : own.length === 0 ? inBase : Object.freeze([...inBase, ...own]);
    this.lookups.set(name, ids);
    return ids;
  }

  /**
   * Every type id with this name whose BTF_KIND_* is in `kindMask` (bit `1 << kind`), base BTF
   * first: `findByName` filtered by kind. Without FUNC in the mask it looks in an index that leaves
   * out the FUNCs (almost half of a kernel's types), which is quicker to build.
   */
  findByNameInKinds(name: string, kindMask: number): readonly TypeId[] {
    const key = `${kindMask >>> 0}:${name}`;
    let ids = this.kindLookups.get(key);
    if (ids !== undefined) return ids;
    const inBase = this.base === undefined ? NO_IDS : this.base.findByNameInKinds(name, kindMask);
    let own: readonly TypeId[] = NO_IDS;
    if (name !== '') {
      const all = (kindMask & (1 << KIND.FUNC)) !== 0 ? this.index().find(name) : this.typeIndex().find(name);
      own = all.filter((id) => ((kindMask >>> this.kindNumber(id)) & 1) === 1);
    }
    ids = inBase.length === 0 ? own : own.length === 0 ? inBase : [...inBase, ...own];
    ids = ids.length === 0 ? NO_IDS : Object.freeze(ids);
    this.kindLookups.set(key, ids);
    return ids;
  }

  /**
   * Hashes this BTF's type names now (all but FUNCs', which `findByNameInKinds` without FUNC uses)
   * rather than after a few lookups have searched the string bytes: for a caller about to look up
   * many names (a byte search costs ~1 ms on a kernel's strings, the hash a few ms once). Answers
   * stay the same either way.
   */
  indexNames(): void {
    this.typeIndex().hashNow();
  }

  /**
   * This BTF's own types of the kinds in `kindMask` whose names hold libbpf's flavor separator (a
   * non-underscore, exactly three underscores, and a non-underscore: `task_struct___old`), in id
   * order. The name index notices them while it hashes the names, so the few a kernel has are found
   * without searching or decoding its ~100k others.
   */
  idsWithFlavoredNames(kindMask: number): readonly TypeId[] {
    const index = (kindMask & (1 << KIND.FUNC)) !== 0 ? this.index() : this.typeIndex();
    return index.flavored().filter((id) => ((kindMask >>> this.kindNumber(id)) & 1) === 1);
  }

  /** The first type with this name and kind, as btf__find_by_name_kind finds it. */
  findByNameKind(name: string, kind: Kind): TypeId | undefined {
    if (name === 'void' && kind === 'void') return 0;
    for (const id of this.findByName(name)) if (this.kind(id) === kind) return id;
    return undefined;
  }

  /** The record bytes of one of this BTF's own types (for byte-exact copies). */
  recordBytes(id: TypeId): Uint8Array {
    const w = this.recordOffset(id);
    const info = this.words[w + 1]!;
    const start = this.typeStart + w * 4;
    return this.raw.subarray(start, start + BTF_TYPE_LEN + trailingSize(infoKind(info), infoVlen(info)));
  }

  private index(): NameIndex {
    this.nameIndex ??= this.newIndex(ALL_KINDS);
    return this.nameIndex;
  }

  private typeIndex(): NameIndex {
    this.typeNameIndex ??= this.newIndex(ALL_KINDS & ~(1 << KIND.FUNC));
    return this.typeNameIndex;
  }

  private newIndex(kindMask: number): NameIndex {
    const { names, firstId, strings, words, offsets } = this;
    return new NameIndex(names, () => this.markedNames(), firstId, strings, words, offsets, kindMask);
  }

  private markedNames(): Uint8Array {
    if (this.nameMarks === undefined) {
      const { names } = this;
      const start = this.strings.start;
      const marks = new Uint8Array(this.strings.end - start);
      for (let i = 0; i < names.length; i++) {
        const marked = names[i]! - start;
        if (marked >= 0) marks[marked] = 1;
      }
      this.nameMarks = marks;
    }
    return this.nameMarks;
  }

  private recordIndex(id: TypeId): number {
    const index = id - this.firstId;
    if (!(index >= 0 && index < this.offsets.length) || !Number.isInteger(index)) {
      const why =
        Number.isInteger(id) && id > 0 && id < this.firstId
          ? `a type of the base BTF: ask the base (this BTF's own ids start at ${this.firstId})`
          : `type id out of range (the BTF has ids below ${this.typeCount})`;
      throw new ParseError('btf', why, { typeId: id });
    }
    return index;
  }

  private recordOffset(id: TypeId): number {
    return this.offsets[this.recordIndex(id)]!;
  }

  /** Byte offset in `raw` of a word of the type section, for error messages. */
  private at(word: number): number {
    return this.typeStart + word * 4;
  }

  /** The scan saw a referenced id past the last type: find the first such reference and name it. */
  private failOnBadRef(): never {
    const w = this.words;
    const count = this.typeCount;
    for (let i = 0; i < this.offsets.length; i++) {
      const p = this.offsets[i]!;
      for (const ref of refWords(w, p)) {
        if (w[ref]! >= count) {
          throw new ParseError('btf', `refers to type [${w[ref]}], but the last type is [${count - 1}]`, {
            offset: this.at(ref),
            typeId: this.firstId + i,
          });
        }
      }
    }
    throw new ParseError('btf', 'refers to a type past the last one', {});
  }

  /** btf_validate_type: a FUNC's type must be a FUNC_PROTO (CO-RE and the verifier rely on it). */
  private checkFunc(index: number): void {
    const p = this.offsets[index]!;
    const proto = this.words[p + 2]!;
    const kind = this.kindNumber(proto);
    if (kind !== KIND.FUNC_PROTO) {
      throw new ParseError(
        'btf',
        `FUNC refers to type [${proto}], ${kindLabel(proto, kind)}, not a FUNC_PROTO`,
        {
          offset: this.at(p + 2),
          typeId: this.firstId + index,
        },
      );
    }
  }

  private decode(id: TypeId, p: number): BtfType {
    const w = this.words;
    const strings = this.strings;
    const info = w[p + 1]!;
    const sizeOrType = w[p + 2]!;
    const kind = infoKind(info);
    const vlen = infoVlen(info);
    const kindFlag = info >>> 31 === 1;
    const name = strings.get(w[p]!);
    const q = p + 3;
    switch (kind) {
      case KIND.INT: {
        const bits = w[q]!;
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
        return { kind: 'array', id, name, kindFlag, type: w[q]!, indexType: w[q + 1]!, nelems: w[q + 2]! };
      case KIND.STRUCT:
      case KIND.UNION: {
        const members: Member[] = new Array(vlen);
        for (let j = 0, m = q; j < vlen; j++, m += 3) {
          const offset = w[m + 2]!;
          members[j] = {
            name: strings.get(w[m]!),
            type: w[m + 1]!,
            bitOffset: kindFlag ? offset & 0xffffff : offset,
            bitfieldSize: kindFlag ? offset >>> 24 : 0,
          };
        }
        const k = kind === KIND.STRUCT ? 'struct' : 'union';
        return { kind: k, id, name, kindFlag, size: sizeOrType, members };
      }
      case KIND.ENUM: {
        const values: EnumValue[] = new Array(vlen);
        for (let j = 0, m = q; j < vlen; j++, m += 2) {
          const v = w[m + 1]!;
          values[j] = { name: strings.get(w[m]!), value: BigInt(kindFlag ? v | 0 : v) };
        }
        return { kind: 'enum', id, name, kindFlag, size: sizeOrType, signed: kindFlag, values };
      }
      case KIND.ENUM64: {
        const values: EnumValue[] = new Array(vlen);
        for (let j = 0, m = q; j < vlen; j++, m += 3) {
          const raw = (BigInt(w[m + 2]!) << 32n) | BigInt(w[m + 1]!);
          values[j] = { name: strings.get(w[m]!), value: kindFlag ? BigInt.asIntN(64, raw) : raw };
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
        for (let j = 0, m = q; j < vlen; j++, m += 2) {
          params[j] = { name: strings.get(w[m]!), type: w[m + 1]! };
        }
        return { kind: 'func_proto', id, name, kindFlag, returnType: sizeOrType, params };
      }
      case KIND.VAR: {
        const linkage = w[q]!;
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
        for (let j = 0, m = q; j < vlen; j++, m += 3) {
          vars[j] = { type: w[m]!, offset: w[m + 1]!, size: w[m + 2]! };
        }
        return { kind: 'datasec', id, name, kindFlag, size: sizeOrType, vars };
      }
      case KIND.FLOAT:
        return { kind: 'float', id, name, kindFlag, size: sizeOrType };
      case KIND.DECL_TAG:
        return { kind: 'decl_tag', id, name, kindFlag, type: sizeOrType, componentIdx: w[q]! | 0 };
      default:
        // scanTypes admitted only known kinds.
        throw new ParseError('btf', `unknown kind ${kind}`, { offset: this.at(p), typeId: id });
    }
  }
}

function kindLabel(id: TypeId, kind: number): string {
  return id === 0 ? 'void' : `a ${KIND_NAMES[kind]}`;
}

/** A kind mask (bit `1 << BTF_KIND_*`) with every kind. */
const ALL_KINDS = 0xffffffff;

const VOID: BtfType = Object.freeze({ kind: 'void', id: 0, name: '', kindFlag: false }) as BtfType;
const NO_IDS: readonly TypeId[] = Object.freeze([]);

/** The type section as native-endian u32 words: a view when possible, else an (aligned, swapped) copy. */
function typeWords(raw: Uint8Array, start: number, len: number, littleEndian: boolean): Uint32Array {
  const n = len >>> 2;
  const byteOffset = raw.byteOffset + start;
  if (littleEndian === HOST_LITTLE_ENDIAN) {
    if (byteOffset % 4 === 0) return new Uint32Array(raw.buffer, byteOffset, n);
    const copy = new Uint32Array(n);
    new Uint8Array(copy.buffer).set(raw.subarray(start, start + n * 4));
    return copy;
  }
  // The other byte order: read each word as the blob stores it.
  const copy = new Uint32Array(n);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  for (let i = 0, b = start; i < n; i++, b += 4) copy[i] = view.getUint32(b, littleEndian);
  return copy;
}

/** What `scanTypes` found: record starts, and where it stopped if a record failed a check. */
interface Scan {
  /** Word index of each record, filled up to `count`. */
  offsets: Uint32Array;
  /** Each record's name offset, filled up to `count` (searched natively by name lookups). */
  names: Uint32Array;
  count: number;
  /** Word index of the record that failed a check, or -1 if the whole section was read. */
  stoppedAt: number;
  /** The largest type id any record refers to (checked once the count is known). */
  maxRef: number;
  /** Records of FUNCs whose FUNC_PROTO comes later or lives in the base, checked afterwards. */
  deferredFuncs: number[];
}

/**
 * btf_parse_type_sec and btf_sanity_check in one pass over the words of the type section: finds
 * every record and checks that it is of a known kind and fits, that its names are valid string
 * offsets, the kernel's cheap per-kind limits, and that a FUNC refers to a FUNC_PROTO. It only
 * notices a bad record and stops there; `describeBadRecord` then says what is wrong. Keeping error
 * reporting out of this loop keeps it small, which is what makes it fast in a fresh process: V8
 * optimizes a small loop soon after it starts, a large one only after the parse is over.
 */
function scanTypes(w: Uint32Array, strEnd: number, firstId: number): Scan {
  const nWords = w.length;
  // Each record is at least 3 words, which bounds the count. An exact division: V8 optimizes for
  // what it has seen, and a kernel's word count happens to be a multiple of 3, an object's not
  // (Math.floor(nWords / 3) then threw the optimized scan away at the first object).
  const offsets = new Uint32Array((nWords - (nWords % 3)) / 3);
  const names = new Uint32Array(offsets.length);
  const deferredFuncs: number[] = [];
  let n = 0;
  let p = 0;
  let maxRef = 0;
  let stoppedAt = -1;
  while (p < nWords) {
    if (p + 3 > nWords) {
      stoppedAt = p;
      break;
    }
    const info = w[p + 1]!;
    const sizeOrType = w[p + 2]!;
    // Kind numbers are literals below, and every branch only moves values it has computed: V8
    // optimizes this loop for what it has seen run, and anything else costs a deoptimization.
    const kind = (info >>> 24) & 0x1f;
    const fixed = FIXED_WORDS[kind]!;
    const stride = ENTRY_WORDS[kind]!;
    const start = p + 3 + fixed;
    const next = start + stride * (info & 0xffff);
    let bad = fixed < 0 || next > nWords || w[p]! >= strEnd;
    if (!bad) {
      if (HEAD_REFERS[kind] === 1 && sizeOrType > maxRef) maxRef = sizeOrType;
      // Entries (members, enumerators, params, datasec vars): a name at +0 and/or a type id.
      const named = ENTRY_NAMED[kind] === 1;
      const ref = ENTRY_REF[kind]!;
      for (let m = start; m < next; m += stride) {
        if (named && w[m]! >= strEnd) bad = true;
        if (ref >= 0) {
          const id = w[m + ref]!;
          if (id > maxRef) maxRef = id;
        }
      }
      if (kind === 1) {
        const bits = w[p + 3]!;
        bad ||= sizeOrType > 16 || (bits & 0xff) + ((bits >>> 16) & 0xff) > sizeOrType * 8;
      } else if (kind === 3) {
        const elem = w[p + 3]!;
        const index = w[p + 4]!;
        if (elem > maxRef) maxRef = elem;
        if (index > maxRef) maxRef = index;
      } else if (kind === 17) {
        bad ||= (w[p + 3]! | 0) < -1;
      } else if (kind === 12) {
        const proto = sizeOrType - firstId;
        if (proto >= 0 && proto < n) bad ||= ((w[offsets[proto]! + 1]! >>> 24) & 0x1f) !== 13;
        else if (sizeOrType === 0) bad = true;
        else deferredFuncs.push(n);
      }
    }
    if (bad) {
      stoppedAt = p;
      break;
    }
    names[n] = w[p]!;
    offsets[n++] = p;
    p = next;
  }
  return { offsets, names, count: n, stoppedAt, maxRef, deferredFuncs };
}

/** Per kind (BTF_KIND_* index, 32 entries): words after struct btf_type before any entries; -1: unknown kind. */
const FIXED_WORDS = Int8Array.from({ length: 32 }, (_, kind) => {
  const fixed = trailingSize(kind, 0);
  return fixed < 0 ? -1 : fixed / 4;
});
/** Words per vlen entry. */
const ENTRY_WORDS = Int8Array.from({ length: 32 }, (_, kind) =>
  FIXED_WORDS[kind]! < 0 ? 0 : trailingSize(kind, 1) / 4 - FIXED_WORDS[kind]!,
);
/** Whether struct btf_type's size_or_type word is a type id. */
const HEAD_REFERS = Int8Array.from({ length: 32 }, (_, kind) =>
  [
    KIND.PTR,
    KIND.TYPEDEF,
    KIND.VOLATILE,
    KIND.CONST,
    KIND.RESTRICT,
    KIND.FUNC,
    KIND.TYPE_TAG,
    KIND.VAR,
    KIND.DECL_TAG,
    KIND.FUNC_PROTO,
  ].includes(kind as never)
    ? 1
    : 0,
);
/** Whether each entry starts with a name offset (members, enumerators, params; not datasec vars). */
const ENTRY_NAMED = Int8Array.from({ length: 32 }, (_, kind) =>
  [KIND.STRUCT, KIND.UNION, KIND.ENUM, KIND.ENUM64, KIND.FUNC_PROTO].includes(kind as never) ? 1 : 0,
);
/** Word of each entry holding a type id, or -1. */
const ENTRY_REF = Int8Array.from({ length: 32 }, (_, kind) => {
  if (kind === KIND.STRUCT || kind === KIND.UNION || kind === KIND.FUNC_PROTO) return 1;
  if (kind === KIND.DATASEC) return 0;
  return -1;
});

/**
 * A tiny type section with one record of every kind, scanned when this module loads, for a fresh
 * process's sake. V8 optimizes `scanTypes` for the paths it has seen run; a kernel's first DATASEC
 * or DECL_TAG comes after ~100k records, so without this the optimized code would be thrown away
 * and rebuilt mid-parse. And ~100 runs make V8 compile it optimized right away, on a background
 * thread, while the caller is still reading the file: a fresh process then parses a kernel's BTF
 * in ~5-10 ms instead of ~20-40 ms, for ~1 ms more at import (measured on vmlinux, 126k types).
 */
function primeScan(): void {
  const words: number[] = [];
  // FUNC_PROTO first (id 1) so that the FUNC after it passes the FUNC_PROTO check.
  const kinds = [KIND.FUNC_PROTO, ...Array.from({ length: MAX_KIND }, (_, i) => i + 1)];
  for (const kind of kinds) {
    words.push(0, ((kind << 24) | 1) >>> 0, kind === KIND.INT ? 4 : 1);
    const trailing = trailingSize(kind, 1) / 4;
    for (let i = 0; i < trailing; i++) words.push(kind === KIND.INT ? 32 : 0);
  }
  const primer = Uint32Array.from(words);
  for (let i = 0; i < PRIMING_RUNS; i++) scanTypes(primer, 1, 1);
}
/** Runs of the primer: Node 20's V8 marks the scan for optimization after ~80. */
const PRIMING_RUNS = 100;
primeScan();

/**
 * The slow path of `scanTypes`: says what is wrong with the record at word `p` (the one the scan
 * stopped at), as a ParseError naming its type id and the byte offset of the offending field.
 */
function describeBadRecord(
  btf: { kindNumber(id: TypeId): number },
  w: Uint32Array,
  p: number,
  id: TypeId,
  typeLen: number,
  typeStart: number,
  strEnd: number,
): ParseError {
  const fail = (what: string, word: number) =>
    new ParseError('btf', what, { offset: typeStart + word * 4, typeId: id });
  const badName = (word: number) =>
    fail(`string offset ${w[word]} out of range (strings end at ${strEnd})`, word);
  // libbpf: "BTF types data is malformed" — bytes left over that cannot hold a record.
  if (p + 3 > w.length)
    return fail(`truncated type record (${typeLen - p * 4} bytes left in the type section)`, p);
  const info = w[p + 1]!;
  const sizeOrType = w[p + 2]!;
  const kind = infoKind(info);
  const vlen = infoVlen(info);
  const size = trailingSize(kind, vlen);
  if (size < 0) return fail(`unknown kind ${kind}`, p);
  const q = p + 3;
  const next = q + size / 4;
  if (next > w.length) return fail('type record runs past the end of the type section', p);
  if (w[p]! >= strEnd) return badName(p);
  switch (kind) {
    case KIND.INT: {
      const bits = w[q]!;
      const nrBits = bits & 0xff;
      const bitOffset = (bits >>> 16) & 0xff;
      if (sizeOrType > 16) return fail(`INT size ${sizeOrType} is larger than 16 bytes`, p + 2);
      if (nrBits + bitOffset > sizeOrType * 8)
        return fail(`INT bits ${nrBits}+${bitOffset} exceed its size`, q);
      break;
    }
    case KIND.DECL_TAG:
      if ((w[q]! | 0) < -1) return fail(`DECL_TAG component index ${w[q]! | 0} is below -1`, q);
      break;
    case KIND.FUNC: {
      const protoKind = btf.kindNumber(sizeOrType);
      if (protoKind !== KIND.FUNC_PROTO) {
        return fail(
          `FUNC refers to type [${sizeOrType}], ${kindLabel(sizeOrType, protoKind)}, not a FUNC_PROTO`,
          p + 2,
        );
      }
      break;
    }
    case KIND.STRUCT:
    case KIND.UNION:
    case KIND.ENUM64:
      for (let m = q; m < next; m += 3) if (w[m]! >= strEnd) return badName(m);
      break;
    case KIND.ENUM:
    case KIND.FUNC_PROTO:
      for (let m = q; m < next; m += 2) if (w[m]! >= strEnd) return badName(m);
      break;
    default:
      break;
  }
  return fail('type record is malformed', p);
}

/** Word indices of the type ids a record refers to (for the slow path that names a bad one). */
function refWords(w: Uint32Array, p: number): number[] {
  const info = w[p + 1]!;
  const kind = infoKind(info);
  const vlen = infoVlen(info);
  const q = p + 3;
  const refs: number[] = [];
  switch (kind) {
    case KIND.PTR:
    case KIND.TYPEDEF:
    case KIND.VOLATILE:
    case KIND.CONST:
    case KIND.RESTRICT:
    case KIND.FUNC:
    case KIND.TYPE_TAG:
    case KIND.VAR:
    case KIND.DECL_TAG:
      refs.push(p + 2);
      break;
    case KIND.ARRAY:
      refs.push(q, q + 1);
      break;
    case KIND.STRUCT:
    case KIND.UNION:
      for (let j = 0; j < vlen; j++) refs.push(q + 3 * j + 1);
      break;
    case KIND.FUNC_PROTO:
      refs.push(p + 2);
      for (let j = 0; j < vlen; j++) refs.push(q + 2 * j + 1);
      break;
    case KIND.DATASEC:
      for (let j = 0; j < vlen; j++) refs.push(q + 3 * j);
      break;
    default:
      break;
  }
  return refs;
}

/** How many distinct names `NameIndex` looks up by searching the string bytes before it hashes them all. */
const SEARCHES_BEFORE_HASHING = 8;

/**
 * Name → ids for one BTF's own types (those of the kinds in `kindMask`, a bit per BTF_KIND_*),
 * without decoding names into JS strings (decoding ~100k kernel names would cost more than the
 * whole parse). The first few lookups search the string section's bytes for the name (a native
 * memmem, ~1 ms for a kernel), keep the offsets some type is named by (marked on the first search),
 * and find those offsets among the records' name offsets (native TypedArray.indexOf), as libbpf's
 * linear btf__find_by_name would. When lookups keep coming, it hashes the names once and answers
 * from the hash table in microseconds.
 */
class NameIndex {
  private byName: ChainedIndex | undefined;
  /** Ids of the records whose names hold a flavor separator (found by hashNow). */
  private flavoredIds: readonly TypeId[] = NO_IDS;
  private searches = 0;

  constructor(
    /** Each record's name offset. */
    private readonly names: Uint32Array,
    /** 1 at every own string offset (minus strings.start) some record is named by. */
    private readonly marks: () => Uint8Array,
    private readonly firstId: number,
    private readonly strings: StringTable,
    /** The type section's words and each record's word index (for its kind). */
    private readonly words: Uint32Array,
    private readonly offsets: Uint32Array,
    private readonly kindMask: number,
  ) {}

  /**
   * Hashes the names of every record of the index's kinds now (later lookups use the hash table).
   * One flat loop that calls nothing per record: V8 optimizes it early, which matters in a fresh
   * process (a kernel's names without its ~48k FUNCs: ~2-3 ms; every name, through a call per
   * record, took ~25 ms).
   */
  hashNow(): void {
    if (this.byName !== undefined) return;
    const { names, words, offsets, kindMask, strings } = this;
    const n = names.length;
    let size = 16;
    while (size < n * 2) size *= 2;
    const mask = size - 1;
    const heads = new Int32Array(size).fill(-1);
    const next = new Int32Array(n);
    const keys = new Uint32Array(n);
    const own = strings.ownBytes();
    const start = strings.start;
    const flavored: TypeId[] = [];
    // Backwards, so that each chain lists records in ascending order.
    for (let i = n - 1; i >= 0; i--) {
      const off = names[i]!;
      if (off === 0 || ((kindMask >>> ((words[offsets[i]! + 1]! >>> 24) & 0x1f)) & 1) === 0) continue;
      let h = 0x811c9dc5;
      if (off < start) {
        h = strings.hashAt(off);
        if (hasFlavorSeparator(strings.getBytes(off))) flavored.push(this.firstId + i);
      } else {
        // A run of exactly three underscores between two other characters is a flavor separator.
        const first = off - start;
        let underscores = 0;
        let separator = false;
        for (let j = first; own[j] !== 0; j++) {
          const c = own[j]!;
          h = Math.imul(h ^ c, 0x01000193);
          if (c === 0x5f) underscores++;
          else {
            if (underscores === 3 && j - 3 > first) separator = true;
            underscores = 0;
          }
        }
        h >>>= 0;
        if (separator) flavored.push(this.firstId + i);
      }
      keys[i] = h;
      const slot = h & mask;
      next[i] = heads[slot]!;
      heads[slot] = i;
    }
    this.byName = new ChainedIndex(heads, next, keys, mask);
    this.flavoredIds = Object.freeze(flavored.reverse());
  }

  /** Ids of the records of the index's kinds whose names hold a flavor separator, ascending. */
  flavored(): readonly TypeId[] {
    this.hashNow();
    return this.flavoredIds;
  }

  find(name: string): readonly TypeId[] {
    const query = utf8.encode(name);
    if (query.includes(0)) return NO_IDS;
    const ids: TypeId[] = [];
    const { names, firstId, strings } = this;
    if (this.byName === undefined && this.searches++ < SEARCHES_BEFORE_HASHING) {
      // The name may sit at several offsets: a string section need not be deduplicated, and a
      // name may be the tail of other strings ("file" of "seq_file"). Only those some type is
      // named by matter. Both searches are native (memmem, TypedArray.indexOf): cheap also in a
      // fresh process.
      const marks = this.marks();
      let offsets = 0;
      for (const off of strings.findAll(query)) {
        if (off >= strings.start && marks[off - strings.start] !== 1) continue;
        offsets++;
        for (let i = names.indexOf(off); i >= 0; i = names.indexOf(off, i + 1)) {
          if (this.included(i)) ids.push(firstId + i);
        }
      }
      if (offsets > 1) ids.sort((a, b) => a - b);
    } else {
      this.hashNow();
      this.byName!.each(hashBytes(query, 0, query.length), (i) => {
        if (strings.equalsAt(names[i]!, query)) ids.push(firstId + i);
      });
    }
    return ids.length === 0 ? NO_IDS : Object.freeze(ids);
  }

  private included(i: number): boolean {
    return ((this.kindMask >>> infoKind(this.words[this.offsets[i]! + 1]!)) & 1) === 1;
  }
}

/** A hash table from a 32-bit key to record indices, chained through typed arrays. */
class ChainedIndex {
  constructor(
    private readonly heads: Int32Array,
    private readonly next: Int32Array,
    private readonly keys: Uint32Array,
    private readonly mask: number,
  ) {}

  /** Calls `fn` for every record with this key, in ascending order (and maybe a few others). */
  each(key: number, fn: (i: number) => void): void {
    for (let i = this.heads[key & this.mask]!; i >= 0; i = this.next[i]!) if (this.keys[i] === key) fn(i);
  }
}

const utf8 = new TextEncoder();

/**
 * Like primeScan, for `hashNow`: it runs once per BTF, over a kernel's ~125k records, and a fresh
 * process would run most of that in unoptimized code (V8's on-stack replacement is ready only
 * late, and a single call never gets the function optimized as a whole). A few runs on a tiny
 * index at load make V8 optimize it on a background thread while the kernel's BTF is read and
 * parsed: indexing a kernel's names then takes ~2.5 ms instead of ~5.5 ms.
 */
function primeNameIndex(): void {
  // PRIMER_TYPES STRUCTs without members, named like a kernel's types: with underscores, runs of
  // them and flavor separators (a branch the primer never took would cost a deoptimization on the
  // first kernel name that takes it).
  const text = Array.from({ length: PRIMER_TYPES }, (_, i) => PRIMER_NAMES[i % PRIMER_NAMES.length]);
  const strings = new StringTable(utf8.encode(`\0${text.join('\0')}\0`), undefined, 0);
  const words = new Uint32Array(PRIMER_TYPES * 3);
  const offsets = new Uint32Array(PRIMER_TYPES);
  const names = new Uint32Array(PRIMER_TYPES);
  for (let i = 0, name = 1; i < PRIMER_TYPES; name += text[i]!.length + 1, i++) {
    words.set([name, (KIND.STRUCT << 24) >>> 0, 0], i * 3);
    offsets[i] = i * 3;
    names[i] = name;
  }
  const marks = new Uint8Array(strings.end);
  for (let i = 0; i < NAME_INDEX_PRIMING_RUNS; i++) {
    new NameIndex(names, () => marks, 1, strings, words, offsets, ALL_KINDS & ~(1 << KIND.FUNC)).hashNow();
  }
}
/**
 * Records in primeNameIndex's tiny BTF, and runs over it: ~2000 records in all is what V8 needs
 * to find hashNow hot; few runs over more records cost less than many over a few (~1 ms at load).
 */
const PRIMER_TYPES = 256;
const PRIMER_NAMES = [
  'a',
  'task_struct',
  '__u32',
  'sk___old',
  'mm_struct___x_y',
  'x____y',
  'b___',
  'ab_cd_e',
];
const NAME_INDEX_PRIMING_RUNS = 8;
primeNameIndex();

/** Whether a name holds libbpf's flavor separator (bpf_core_essential_name_len's `___`). */
function hasFlavorSeparator(name: Uint8Array): boolean {
  for (let i = 0; i + 4 < name.length; i++) {
    if (
      name[i] !== 0x5f &&
      name[i + 1] === 0x5f &&
      name[i + 2] === 0x5f &&
      name[i + 3] === 0x5f &&
      name[i + 4] !== 0x5f
    )
      return true;
  }
  return false;
}

/** FNV-1a over bytes [start, end). */
export function hashBytes(bytes: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}

/** btf_parse_hdr: magic (and so byte order), version, and section bounds. */
function parseHeader(raw: Uint8Array): { header: BtfHeader; littleEndian: boolean } {
  if (raw.byteLength < BTF_HEADER_LEN) {
    throw new ParseError('btf', `truncated header: ${raw.byteLength} bytes, need ${BTF_HEADER_LEN}`, {
      offset: 0,
    });
  }
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
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
  if (header.hdrLen > raw.byteLength) {
    throw new ParseError('btf', `header length ${header.hdrLen} exceeds the data (${raw.byteLength} bytes)`, {
      offset: 4,
    });
  }
  const dataLen = raw.byteLength - header.hdrLen;
  if (header.strOff + header.strLen > dataLen) {
    throw new ParseError(
      'btf',
      `string section (offset ${header.strOff}, ${header.strLen} bytes) runs past the end of the data (${dataLen} bytes)`,
      { offset: 16 },
    );
  }
  if (header.typeOff + header.typeLen > header.strOff) {
    throw new ParseError(
      'btf',
      `type section (offset ${header.typeOff}, ${header.typeLen} bytes) overlaps or follows the string section (offset ${header.strOff})`,
      { offset: 8 },
    );
  }
  if (header.typeOff % 4 !== 0) {
    throw new ParseError('btf', `type section offset ${header.typeOff} is not aligned to 4 bytes`, {
      offset: 8,
    });
  }
  return { header, littleEndian };
}

/** Whether an INT type is signed (BTF_INT_SIGNED). */
export function intIsSigned(encoding: number): boolean {
  return (encoding & INT_SIGNED) !== 0;
}
