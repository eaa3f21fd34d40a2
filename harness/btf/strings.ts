import { isAscii } from 'node:buffer';
import { ParseError } from '../errors.js';

const utf8 = new TextDecoder('utf-8', { fatal: false });

/**
 * A BTF string section: NUL-terminated strings addressed by byte offset. Kernel BTF holds ~100k
 * names; decoding each on its own costs more than the whole parse, so an all-ASCII section (every
 * kernel's) that many strings are read from is decoded once into a single JS string that names are
 * sliced out of (see `get`).
 */
export class StringTable {
  /** First offset this table owns; offsets below belong to the base BTF's table. */
  readonly start: number;
  private readonly bytes: Uint8Array;
  /**
   * The whole section as one string when it is ASCII (offsets then equal string indices), '' when
   * it is not, undefined until decided.
   */
  private ascii: string | undefined;
  /** Strings decoded one by one, by local offset: all of a non-ASCII table's, a large table's first. */
  private readonly decoded = new Map<number, string>();
  private readonly base: StringTable | undefined;
  private reverse: Map<string, number> | undefined;

  constructor(bytes: Uint8Array, base: StringTable | undefined, fileOffset: number) {
    this.bytes = bytes;
    this.base = base;
    this.start = base === undefined ? 0 : base.end;
    // btf_parse_str_sec: a split BTF may have no strings of its own; otherwise the section must end
    // with NUL, and base BTF must start with the empty string at offset 0.
    if (bytes.length === 0) {
      if (base === undefined) throw new ParseError('btf', 'string section is empty', { offset: fileOffset });
      return;
    }
    if (bytes.length - 1 > BTF_MAX_STR_OFFSET) {
      throw new ParseError('btf', `string section of ${bytes.length} bytes is larger than BTF allows`, {
        offset: fileOffset,
      });
    }
    if (bytes[bytes.length - 1] !== 0) {
      throw new ParseError('btf', 'string section does not end with NUL', {
        offset: fileOffset + bytes.length - 1,
      });
    }
    if (base === undefined && bytes[0] !== 0) {
      throw new ParseError('btf', 'string section does not start with an empty string', {
        offset: fileOffset,
      });
    }
  }

  /** One past the last offset this table (with its base) can resolve. */
  get end(): number {
    return this.start + this.bytes.length;
  }

  /** Whether `off` addresses a string in this table or its base. */
  has(off: number): boolean {
    return off >= 0 && off < this.end;
  }

  /**
   * The string at `off`; the caller has checked `has(off)`. A large table decodes its first
   * strings one at a time (relocating a suite against a kernel reads ~1.5k of its ~100k names), then
   * all at once when many are asked for (a dump reads them all).
   */
  get(off: number): string {
    if (off < this.start) return this.base!.get(off);
    const local = off - this.start;
    if (
      this.ascii === undefined &&
      (this.bytes.length <= SMALL_TABLE || this.decoded.size >= SINGLE_DECODES)
    ) {
      this.decodeAll();
    }
    if (this.ascii !== undefined && this.ascii !== '') {
      const s = this.ascii;
      return s.slice(local, s.indexOf('\0', local));
    }
    let cached = this.decoded.get(local);
    if (cached === undefined) {
      const end = this.bytes.indexOf(0, local);
      cached = utf8.decode(this.bytes.subarray(local, end));
      this.decoded.set(local, cached);
    }
    return cached;
  }

  /** The raw bytes of the string at `off` (without the NUL), for byte-exact output. */
  getBytes(off: number): Uint8Array {
    if (off < this.start) return this.base!.getBytes(off);
    const local = off - this.start;
    return this.bytes.subarray(local, this.bytes.indexOf(0, local));
  }

  /** FNV-1a hash of the bytes of the string at `off` (as `hashBytes` computes it), without decoding. */
  hashAt(off: number): number {
    if (off < this.start) return this.base!.hashAt(off);
    const b = this.bytes;
    let h = 0x811c9dc5;
    for (let i = off - this.start; b[i] !== 0; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
    return h >>> 0;
  }

  /** This table's own bytes (offset `start` is index 0), for callers that scan many strings at once. */
  ownBytes(): Uint8Array {
    return this.bytes;
  }

  /** Whether the string at `off` has exactly these (UTF-8) bytes. */
  equalsAt(off: number, query: Uint8Array): boolean {
    if (off < this.start) return this.base!.equalsAt(off, query);
    const b = this.bytes;
    const local = off - this.start;
    const n = query.length;
    if (local + n >= b.length) return false;
    for (let i = 0; i < n; i++) if (b[local + i] !== query[i]) return false;
    return b[local + n] === 0;
  }

  /**
   * Every offset (this table's and its base's, base first) whose string is exactly `query` (UTF-8,
   * without NUL): each place `query` followed by NUL occurs, also inside a longer string, since a
   * name may point at the tail of another. A native byte search, ~1 ms for a kernel's strings.
   */
  findAll(query: Uint8Array): number[] {
    const found = this.base === undefined ? [] : this.base.findAll(query);
    if (this.bytes.length === 0) return found;
    const b = this.bytes;
    const haystack = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
    const needle = new Uint8Array(query.length + 1);
    needle.set(query);
    for (let i = haystack.indexOf(needle); i >= 0; i = haystack.indexOf(needle, i + 1)) {
      found.push(this.start + i);
    }
    return found;
  }

  /**
   * The offset of a string equal to `s` in this table or its base (base first, as libbpf's
   * btf__find_str looks), or undefined. The first call maps the whole table.
   */
  find(s: string): number | undefined {
    const inBase = this.base?.find(s);
    if (inBase !== undefined) return inBase;
    if (this.reverse === undefined) {
      const reverse = new Map<string, number>();
      const b = this.bytes;
      for (let i = 0; i < b.length; ) {
        const end = b.indexOf(0, i);
        const str = this.get(this.start + i);
        if (!reverse.has(str)) reverse.set(str, this.start + i);
        i = end + 1;
      }
      this.reverse = reverse;
    }
    return this.reverse.get(s);
  }

  private decodeAll(): void {
    const b = this.bytes;
    // '' marks "not ASCII: decode per string" (a real ASCII table always holds at least one NUL).
    this.ascii = isAscii(b) ? Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1') : '';
  }
}

/** Bytes of a table decoded whole at its first string (an object's): one decode costs less then. */
const SMALL_TABLE = 64 * 1024;
/** Strings a large table decodes one by one before it decodes itself whole. */
const SINGLE_DECODES = 2048;

/** libbpf's BTF_MAX_STR_OFFSET: the largest string offset libbpf accepts. */
const BTF_MAX_STR_OFFSET = 0x7fffffff;
