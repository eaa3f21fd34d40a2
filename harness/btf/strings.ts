import { ParseError } from '../errors.js';

const utf8 = new TextDecoder('utf-8', { fatal: false });

/**
 * A BTF string section: NUL-terminated strings addressed by byte offset. Kernel BTF holds ~100k
 * names; decoding each on its own costs more than the whole parse, so an all-ASCII section (every
 * kernel's) is decoded once into a single JS string that names are sliced out of.
 */
export class StringTable {
  /** First offset this table owns; offsets below belong to the base BTF's table. */
  readonly start: number;
  private readonly bytes: Uint8Array;
  /** The whole section as one string when it is ASCII (offsets then equal string indices). */
  private ascii: string | undefined;
  private readonly decoded = new Map<number, string>();
  private readonly base: StringTable | undefined;

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

  /** The string at `off`; the caller has checked `has(off)`. */
  get(off: number): string {
    if (off < this.start) return this.base!.get(off);
    const local = off - this.start;
    if (this.ascii === undefined) this.decodeAll();
    if (this.ascii !== '') {
      const s = this.ascii!;
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

  private decodeAll(): void {
    const b = this.bytes;
    let ascii = true;
    for (let i = 0; i < b.length; i++) {
      if (b[i]! >= 0x80) {
        ascii = false;
        break;
      }
    }
    // '' marks "not ASCII: decode per string" (a real ASCII table always holds at least one NUL).
    this.ascii = ascii ? Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1') : '';
  }
}
