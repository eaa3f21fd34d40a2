/**
 * `bpftool btf dump file FILE` (format raw), byte for byte as Debian bookworm's bpftool 7.1.0
 * prints it: one `[id] KIND 'name' …` line per type, plus one tab-indented line per member, enum
 * value, parameter or section variable. For split BTF only the BTF's own types are dumped, with
 * ids continuing from the base, as `bpftool -B BASE btf dump file MODULE` does.
 *
 * A kernel BTF has ~125k types and dumps to ~12 MB, so this reads the records straight from the
 * blob (the decoded model would allocate an object per type and a bigint per enum value) and hands
 * the text out in ~64 KiB chunks.
 */

import { ParseError } from '../errors.js';
import type { Btf } from './btf.js';
import type { TypeId } from './types.js';
import { BTF_TYPE_LEN, INT_BOOL, INT_CHAR, INT_SIGNED, KIND_NAMES, trailingSize } from './wire.js';

/** How much text is gathered before it is handed to `write`. */
const CHUNK_BYTES = 64 * 1024;

/**
 * Calls `write` with the raw dump of `btf`'s own types as UTF-8 bytes, in chunks of about 64 KiB
 * that end at line ends (each chunk is the callee's to keep). The text is assembled as bytes,
 * names copied from the string section as they are: building ~300k lines out of JS string pieces
 * costs more in garbage collection than everything else together.
 */
export function writeRawDump(btf: Btf, write: (chunk: Uint8Array) => void): void {
  const raw = btf.raw;
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const le = btf.littleEndian;
  const out = new TextSink(write, stringSections(btf));
  const record: TypeRecord = { btf, view, le, out, q: 0, vlen: 0, kindFlag: false, sizeOrType: 0 };
  const start = btf.header.hdrLen + btf.header.typeOff;
  const end = start + btf.header.typeLen;
  let p = start;
  for (let id = btf.firstId; id < btf.typeCount; id++) {
    if (p + BTF_TYPE_LEN > end) {
      throw new ParseError('btf', 'type section ends before the last type', { offset: p, typeId: id });
    }
    const info = view.getUint32(p + 4, le);
    const kind = (info >>> 24) & 0x1f;
    const q = p + BTF_TYPE_LEN;
    const trailing = trailingSize(kind, info & 0xffff);
    if (trailing < 0 || q + trailing > end) {
      throw new ParseError('btf', `type record of kind ${kind} does not fit the type section`, {
        offset: p,
        typeId: id,
      });
    }
    // dump_btf_type: "[id] KIND 'name'", then what the kind has to say.
    out.lineStart();
    out.ascii('[');
    out.uint(id);
    out.bytes(TYPE_KIND[kind]!);
    out.name(view.getUint32(p, le));
    out.ascii("'");
    record.q = q;
    record.vlen = info & 0xffff;
    record.kindFlag = info >>> 31 === 1;
    record.sizeOrType = view.getUint32(p + 8, le);
    KIND_WRITERS[kind]!(record);
    out.ascii('\n');
    p = q + trailing;
  }
  out.flush();
}

/** One type record as the per-kind writers read it; reused from type to type. */
interface TypeRecord {
  readonly btf: Btf;
  readonly view: DataView;
  readonly le: boolean;
  readonly out: TextSink;
  /** Where the kind-specific data after struct btf_type starts. */
  q: number;
  vlen: number;
  kindFlag: boolean;
  sizeOrType: number;
}

/*
 * What follows "[id] KIND 'name'" for each kind. One small function per kind, called through a
 * table, rather than one switch: the dump runs once per process, and small functions reach
 * optimized code within the first few thousand types, where one big function (everything inlined
 * into it) took V8 longer to compile than the dump takes, and was thrown away each time a kind
 * showed up for the first time.
 */

function writeInt({ view, le, out, q, sizeOrType }: TypeRecord): void {
  const bits = view.getUint32(q, le);
  out.ascii(' size=');
  out.uint(sizeOrType);
  out.ascii(' bits_offset=');
  out.uint((bits >>> 16) & 0xff);
  out.ascii(' nr_bits=');
  out.uint(bits & 0xff);
  out.ascii(' encoding=');
  out.ascii(intEncodingName((bits >>> 24) & 0x0f));
}

/** PTR, CONST, VOLATILE, RESTRICT, TYPEDEF, TYPE_TAG. */
function writeRef({ out, sizeOrType }: TypeRecord): void {
  out.ascii(' type_id=');
  out.uint(sizeOrType);
}

function writeArray({ view, le, out, q }: TypeRecord): void {
  out.ascii(' type_id=');
  out.uint(view.getUint32(q, le));
  out.ascii(' index_type_id=');
  out.uint(view.getUint32(q + 4, le));
  out.ascii(' nr_elems=');
  out.uint(view.getUint32(q + 8, le));
}

/** STRUCT and UNION; with kind_flag, each offset packs the bitfield width into its top 8 bits. */
function writeComposite({ view, le, out, q, vlen, kindFlag, sizeOrType }: TypeRecord): void {
  out.ascii(' size=');
  out.uint(sizeOrType);
  out.ascii(' vlen=');
  out.uint(vlen);
  for (let m = q, last = q + vlen * 12; m < last; m += 12) {
    const offset = view.getUint32(m + 8, le);
    out.room();
    out.ascii("\n\t'");
    out.name(view.getUint32(m, le));
    out.ascii("' type_id=");
    out.uint(view.getUint32(m + 4, le));
    out.ascii(' bits_offset=');
    if (!kindFlag) out.uint(offset);
    else {
      out.uint(offset & 0xffffff);
      // A zero width means "not a bitfield" and is not printed.
      if (offset >>> 24 !== 0) {
        out.ascii(' bitfield_size=');
        out.uint(offset >>> 24);
      }
    }
  }
}

/** %d of each s32 value when signed (kind_flag), %u of it when not. */
function writeEnum({ view, le, out, q, vlen, kindFlag, sizeOrType }: TypeRecord): void {
  out.ascii(kindFlag ? ' encoding=SIGNED size=' : ' encoding=UNSIGNED size=');
  out.uint(sizeOrType);
  out.ascii(' vlen=');
  out.uint(vlen);
  for (let m = q, last = q + vlen * 8; m < last; m += 8) {
    out.room();
    out.ascii("\n\t'");
    out.name(view.getUint32(m, le));
    out.ascii("' val=");
    if (kindFlag) out.int(view.getInt32(m + 4, le));
    else out.uint(view.getUint32(m + 4, le));
  }
}

/** %lldLL or %lluULL of each 64-bit value (lo32, hi32). */
function writeEnum64({ view, le, out, q, vlen, kindFlag, sizeOrType }: TypeRecord): void {
  out.ascii(kindFlag ? ' encoding=SIGNED size=' : ' encoding=UNSIGNED size=');
  out.uint(sizeOrType);
  out.ascii(' vlen=');
  out.uint(vlen);
  for (let m = q, last = q + vlen * 12; m < last; m += 12) {
    const lo = view.getUint32(m + 4, le);
    const hi = view.getUint32(m + 8, le);
    out.room();
    out.ascii("\n\t'");
    out.name(view.getUint32(m, le));
    out.ascii("' val=");
    out.ascii(kindFlag ? `${int64Text(hi, lo)}LL` : `${uint64Text(hi, lo)}ULL`);
  }
}

function writeFwd({ out, kindFlag }: TypeRecord): void {
  out.ascii(kindFlag ? ' fwd_kind=union' : ' fwd_kind=struct');
}

/** FUNC keeps its linkage in vlen. */
function writeFunc({ out, vlen, sizeOrType }: TypeRecord): void {
  out.ascii(' type_id=');
  out.uint(sizeOrType);
  out.ascii(' linkage=');
  out.ascii(linkageName(vlen));
}

function writeFuncProto({ view, le, out, q, vlen, sizeOrType }: TypeRecord): void {
  out.ascii(' ret_type_id=');
  out.uint(sizeOrType);
  out.ascii(' vlen=');
  out.uint(vlen);
  for (let m = q, last = q + vlen * 8; m < last; m += 8) {
    out.room();
    out.ascii("\n\t'");
    out.name(view.getUint32(m, le));
    out.ascii("' type_id=");
    out.uint(view.getUint32(m + 4, le));
  }
}

function writeVar({ view, le, out, q, sizeOrType }: TypeRecord): void {
  // bpftool 7.1 really prints a comma here, and only here.
  out.ascii(' type_id=');
  out.uint(sizeOrType);
  out.ascii(', linkage=');
  out.ascii(linkageName(view.getUint32(q, le)));
}

/** Section entries, each naming its variable's kind and name when the id exists (0 is void). */
function writeDatasec({ btf, view, le, out, q, vlen, sizeOrType }: TypeRecord): void {
  out.ascii(' size=');
  out.uint(sizeOrType);
  out.ascii(' vlen=');
  out.uint(vlen);
  for (let m = q, last = q + vlen * 12; m < last; m += 12) {
    const varId = view.getUint32(m, le);
    out.room();
    out.ascii('\n\ttype_id=');
    out.uint(varId);
    out.ascii(' offset=');
    out.uint(view.getUint32(m + 4, le));
    out.ascii(' size=');
    out.uint(view.getUint32(m + 8, le));
    if (varId < btf.typeCount) {
      out.bytes(VAR_KIND[btf.kindNumber(varId)]!);
      out.name(nameOffsetOf(btf, varId));
      out.ascii("')");
    }
  }
}

function writeFloat({ out, sizeOrType }: TypeRecord): void {
  out.ascii(' size=');
  out.uint(sizeOrType);
}

function writeDeclTag({ view, le, out, q, sizeOrType }: TypeRecord): void {
  out.ascii(' type_id=');
  out.uint(sizeOrType);
  out.ascii(' component_idx=');
  out.int(view.getInt32(q, le));
}

/** Indexed by BTF_KIND_*; UNKN never reaches here (its records have no known size). */
const KIND_WRITERS: readonly ((record: TypeRecord) => void)[] = [
  () => {}, // UNKN
  writeInt,
  writeRef, // PTR
  writeArray,
  writeComposite, // STRUCT
  writeComposite, // UNION
  writeEnum,
  writeFwd,
  writeRef, // TYPEDEF
  writeRef, // VOLATILE
  writeRef, // CONST
  writeRef, // RESTRICT
  writeFunc,
  writeFuncProto,
  writeVar,
  writeDatasec,
  writeFloat,
  writeDeclTag,
  writeRef, // TYPE_TAG
  writeEnum64,
];

/** `] KIND '` for each kind, as bytes: what follows the id on every type line. */
const TYPE_KIND: readonly Uint8Array[] = KIND_NAMES.map((name) => asciiBytes(`] ${name} '`));
/** ` (KIND '` for each kind: how a DATASEC entry names its variable's kind. */
const VAR_KIND: readonly Uint8Array[] = KIND_NAMES.map((name) => asciiBytes(` (${name} '`));

function asciiBytes(s: string): Uint8Array {
  const bytes = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
  return bytes;
}

/** One BTF's string section: the bytes, where they start, and the first offset that is its own. */
interface StringSection {
  bytes: Uint8Array;
  at: number;
  firstOffset: number;
}

/** The string sections of `btf` and its bases, own first. */
function stringSections(btf: Btf): StringSection[] {
  const sections: StringSection[] = [];
  for (let b: Btf | undefined = btf; b !== undefined; b = b.base) {
    sections.push({ bytes: b.raw, at: b.header.hdrLen + b.header.strOff, firstOffset: b.strings.start });
  }
  return sections;
}

const ANON = asciiBytes('(anon)');

/**
 * The most bytes of format text (everything but names) between two calls that make room: a type's
 * line start, one member, value, parameter or section entry. The longest, a section entry with
 * three 10-digit numbers and a kind, is under 100 bytes; names make their own room.
 */
const ROOM = 256;

/** "00" to "99": numbers are written two digits at a time. */
const DIGIT_PAIRS = asciiBytes(Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0')).join(''));

/**
 * Text assembled as bytes in a buffer and handed out as a string per chunk. The writers below do not
 * check for space themselves: the caller calls `room()` before each piece of a line, which
 * guarantees ROOM bytes, and `name()` keeps that guarantee after copying a name of any length.
 */
class TextSink {
  private buf = new Uint8Array(CHUNK_BYTES + 4 * ROOM);
  private pos = 0;

  constructor(
    private readonly write: (chunk: Uint8Array) => void,
    private readonly sections: readonly StringSection[],
  ) {}

  /** Before each type's line: hands out a full chunk. */
  lineStart(): void {
    if (this.pos >= CHUNK_BYTES) this.flush();
    this.room();
  }

  /** Guarantees ROOM free bytes. */
  room(): void {
    if (this.pos + ROOM > this.buf.length) this.grow(ROOM);
  }

  flush(): void {
    if (this.pos === 0) return;
    // Handed out as bytes, never decoded into a string: the names are the string section's own
    // bytes, so the output is bpftool's byte for byte, and the writer need not encode it again.
    this.write(this.buf.slice(0, this.pos));
    this.pos = 0;
  }

  /** Appends a short ASCII string (format text, never a name). */
  ascii(s: string): void {
    const buf = this.buf;
    let pos = this.pos;
    for (let i = 0; i < s.length; i++) buf[pos++] = s.charCodeAt(i);
    this.pos = pos;
  }

  bytes(b: Uint8Array): void {
    const buf = this.buf;
    let pos = this.pos;
    for (let i = 0; i < b.length; i++) buf[pos++] = b[i]!;
    this.pos = pos;
  }

  /** Appends %u of a non-negative integer below 2^32. */
  uint(n: number): void {
    const buf = this.buf;
    if (n < 10) {
      buf[this.pos++] = 48 + n;
      return;
    }
    const digits =
      n < 100
        ? 2
        : n < 1000
          ? 3
          : n < 10000
            ? 4
            : n < 100000
              ? 5
              : n < 1000000
                ? 6
                : n < 1e7
                  ? 7
                  : n < 1e8
                    ? 8
                    : n < 1e9
                      ? 9
                      : 10;
    let i = this.pos + digits;
    this.pos = i;
    while (n >= 100) {
      const rest = Math.floor(n / 100);
      const pair = (n - rest * 100) * 2;
      buf[--i] = DIGIT_PAIRS[pair + 1]!;
      buf[--i] = DIGIT_PAIRS[pair]!;
      n = rest;
    }
    if (n >= 10) {
      buf[--i] = DIGIT_PAIRS[n * 2 + 1]!;
      buf[--i] = DIGIT_PAIRS[n * 2]!;
    } else {
      buf[--i] = 48 + n;
    }
  }

  /** Appends %d of an integer of 32 bits. */
  int(n: number): void {
    if (n < 0) {
      this.buf[this.pos++] = 45; // '-'
      this.uint(-n);
    } else this.uint(n);
  }

  /**
   * btf_str: the string at `off` as its bytes, "(anon)" for offset 0 (a non-zero offset may name
   * ''). Leaves ROOM free bytes after it.
   */
  name(off: number): void {
    if (off === 0) {
      this.bytes(ANON);
      return;
    }
    const sections = this.sections;
    let section = sections[0]!;
    for (let i = 1; off < section.firstOffset && i < sections.length; i++) section = sections[i]!;
    const src = section.bytes;
    let from = section.at + off - section.firstOffset;
    // Copy up to the NUL (the string section was checked to end with one), growing if need be.
    for (;;) {
      const buf = this.buf;
      let pos = this.pos;
      const limit = buf.length - ROOM;
      let c = src[from]!;
      while (c !== 0 && pos < limit) {
        buf[pos++] = c;
        c = src[++from]!;
      }
      this.pos = pos;
      if (c === 0) return;
      this.grow(buf.length);
    }
  }

  private grow(atLeast: number): void {
    const bigger = new Uint8Array(this.buf.length + Math.max(atLeast, this.buf.length));
    bigger.set(this.buf.subarray(0, this.pos));
    this.buf = bigger;
  }
}

/** btf_int_enc_str: only a single known bit has a name; combinations print as UNKN. */
function intEncodingName(encoding: number): string {
  switch (encoding) {
    case 0:
      return '(none)';
    case INT_SIGNED:
      return 'SIGNED';
    case INT_CHAR:
      return 'CHAR';
    case INT_BOOL:
      return 'BOOL';
    default:
      return 'UNKN';
  }
}

/** btf_func_linkage_str and btf_var_linkage_str: the same names for the same numbers. */
function linkageName(linkage: number): string {
  switch (linkage) {
    case 0:
      return 'static';
    case 1:
      return 'global';
    case 2:
      return 'extern';
    default:
      return '(unknown)';
  }
}

/** The name offset of any type id, the base's included (0, void, is anonymous). */
function nameOffsetOf(btf: Btf, id: TypeId): number {
  if (id === 0) return 0;
  let owner = btf;
  while (id < owner.firstId && owner.base !== undefined) owner = owner.base;
  const record = owner.recordBytes(id);
  return new DataView(record.buffer, record.byteOffset, 4).getUint32(0, owner.littleEndian);
}

const TWO_32 = 4294967296;

/** %llu of hi:lo, with plain numbers while they are exact (below 2^53). */
function uint64Text(hi: number, lo: number): string {
  if (hi < 0x200000) return String(hi * TWO_32 + lo);
  return ((BigInt(hi) << 32n) | BigInt(lo)).toString();
}

/** %lld of hi:lo, with plain numbers while they are exact (magnitude below 2^53). */
function int64Text(hi: number, lo: number): string {
  if (hi < 0x80000000) return uint64Text(hi, lo);
  if (hi >= 0xffe00000) return String((hi - TWO_32) * TWO_32 + lo);
  return BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo)).toString();
}
