/**
 * Decompressors for the formats a Linux kernel image may use (scripts/Makefile.lib: gzip, bzip2,
 * lzma, xz, lz4, zstd; LZO is not handled), pure over Uint8Array.
 *
 * Kernel payloads are not quite what the npm decompressors expect: the build appends the
 * uncompressed size as 4 little-endian bytes after the stream, the payload may carry padding, xz
 * streams use the x86 BCJ filter, and lz4 uses the legacy framing that no npm package reads. So
 * every format's container is walked here to find the exact compressed stream (and, where the
 * format tells, the output size, which bounds memory before anything is decoded), and only the
 * entropy decoding is handed to the libraries (node:zlib, @napi-rs/lzma, fzstd, seek-bzip).
 * Whatever they throw becomes a ParseError. LZ4 blocks are decoded here: lz4js's block decoder
 * checks no bounds, so corrupt input would silently decode to garbage.
 */
import { createRequire } from 'node:module';
import zlib from 'node:zlib';
import { lzma, lzma2 } from '@napi-rs/lzma';
import { decompress as zstdDecompress } from 'fzstd';
import { isCorematrixError, NotSupportedError, ParseError } from '../errors.js';

export type Compression = 'gzip' | 'bzip2' | 'lzma' | 'xz' | 'lz4' | 'zstd';

export interface DecompressOptions {
  /**
   * The uncompressed size when the caller knows it (a kernel image's size trailer): checked
   * against the output, and needed for .lzma streams of unknown size followed by other bytes.
   */
  expectedSize?: number;
  /** The output may not grow past this many bytes (default 1 GiB): a guard against corrupt sizes. */
  maxOutput?: number;
  /** Where the compressed stream starts in the file, added to error offsets. */
  fileOffset?: number;
}

export interface Decompressed {
  data: Uint8Array;
  compression: Compression;
}

export const DEFAULT_MAX_OUTPUT = 1 << 30;

/** The magic numbers that open each format (lib/decompress.c's table, plus lzma's usual props). */
const MAGICS: readonly { compression: Compression; magic: readonly number[] }[] = [
  { compression: 'gzip', magic: [0x1f, 0x8b, 0x08] },
  { compression: 'bzip2', magic: [0x42, 0x5a, 0x68] }, // "BZh"
  // .lzma has no magic: its first byte is the lc/lp/pb properties, 0x5d for every preset.
  { compression: 'lzma', magic: [0x5d, 0x00, 0x00] },
  { compression: 'xz', magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00] },
  { compression: 'lz4', magic: [0x02, 0x21, 0x4c, 0x18] }, // 0x184c2102 LE: the legacy frame
  { compression: 'zstd', magic: [0x28, 0xb5, 0x2f, 0xfd] },
];

/** The format whose magic `bytes` start with at `at`, if any. */
export function detectCompression(bytes: Uint8Array, at = 0): Compression | undefined {
  for (const { compression, magic } of MAGICS) {
    if (magic.every((b, i) => bytes[at + i] === b)) return compression;
  }
  return undefined;
}

/**
 * Decompresses `bytes`, detecting the format by its magic. Bytes after the end of the stream (the
 * kernel's size trailer, padding) are ignored. Unknown magic → NotSupportedError; corrupt data →
 * ParseError('kernel-image').
 */
export function decompress(bytes: Uint8Array, options: DecompressOptions = {}): Decompressed {
  const compression = detectCompression(bytes);
  if (compression === undefined) {
    const magic = Array.from(bytes.subarray(0, 6), (b) => b.toString(16).padStart(2, '0')).join(' ');
    throw new NotSupportedError(
      'compression',
      `kernel-image: unknown compression at offset 0x${(options.fileOffset ?? 0).toString(16)} (magic bytes ${magic || 'none'})`,
    );
  }
  return { data: decompressAs(compression, bytes, options), compression };
}

/** Decompresses `bytes` as `compression`, turning anything a library throws into a ParseError. */
export function decompressAs(
  compression: Compression,
  bytes: Uint8Array,
  options: DecompressOptions = {},
): Uint8Array {
  const ctx = new Context(compression, options);
  let data: Uint8Array;
  try {
    data = DECODERS[compression](bytes, ctx);
  } catch (e) {
    if (isCorematrixError(e)) throw e;
    const message = e instanceof Error ? e.message : String(e);
    throw ctx.fail(`corrupt data: ${message}`, 0, e);
  }
  // Formats that tell no size up front (.lzma of unknown size) are only checked afterwards.
  ctx.checkSize(data.length, 0);
  if (options.expectedSize !== undefined && data.length !== options.expectedSize) {
    throw ctx.fail(
      `decompressed to ${data.length} bytes, but the size trailer says ${options.expectedSize}`,
      0,
    );
  }
  return data;
}

class Context {
  readonly compression: Compression;
  readonly maxOutput: number;
  readonly expectedSize: number | undefined;
  readonly fileOffset: number;

  constructor(compression: Compression, options: DecompressOptions) {
    this.compression = compression;
    this.maxOutput = options.maxOutput ?? DEFAULT_MAX_OUTPUT;
    this.expectedSize = options.expectedSize;
    this.fileOffset = options.fileOffset ?? 0;
  }

  fail(reason: string, at: number, cause?: unknown): ParseError {
    return new ParseError(
      'kernel-image',
      `${this.compression}: ${reason}`,
      { offset: this.fileOffset + at },
      cause === undefined ? undefined : { cause },
    );
  }

  /** Refuses an output size past the limit before anything is allocated for it. */
  checkSize(size: number, at: number): void {
    if (size > this.maxOutput) {
      throw this.fail(`output of ${size} bytes would exceed the limit of ${this.maxOutput}`, at);
    }
  }

  need(bytes: Uint8Array, end: number, what: string): void {
    if (end > bytes.length) throw this.fail(`truncated: ${what} runs past the end of the data`, bytes.length);
  }
}

type Decoder = (bytes: Uint8Array, ctx: Context) => Uint8Array;

const DECODERS: Record<Compression, Decoder> = {
  gzip: gunzip,
  bzip2: bunzip2,
  lzma: unlzma,
  xz: unxz,
  lz4: unlz4Legacy,
  zstd: unzstd,
};

// ---------------------------------------------------------------------------------------------
// gzip (RFC 1952): the header is walked here so that node's raw inflate can stop at the end of the
// deflate stream and report how much it read; the CRC32 and ISIZE that follow are then checked.

const FHCRC = 0x02;
const FEXTRA = 0x04;
const FNAME = 0x08;
const FCOMMENT = 0x10;

function gunzip(bytes: Uint8Array, ctx: Context): Uint8Array {
  ctx.need(bytes, 10, 'the gzip header');
  const flags = bytes[3]!;
  let p = 10;
  if (flags & FEXTRA) {
    ctx.need(bytes, p + 2, 'FEXTRA');
    p += 2 + (bytes[p]! | (bytes[p + 1]! << 8));
  }
  for (const flag of [FNAME, FCOMMENT]) {
    if (flags & flag) {
      const end = bytes.indexOf(0, p);
      if (end < 0) throw ctx.fail('truncated: unterminated name or comment in the header', p);
      p = end + 1;
    }
  }
  if (flags & FHCRC) p += 2;
  ctx.need(bytes, p, 'the gzip header');
  const limit = Math.min(ctx.maxOutput, ctx.expectedSize ?? ctx.maxOutput);
  let result: { buffer: Buffer; engine: zlib.InflateRaw };
  try {
    result = zlib.inflateRawSync(bytes.subarray(p), {
      info: true,
      maxOutputLength: Math.max(limit, 1),
    }) as unknown as {
      buffer: Buffer;
      engine: zlib.InflateRaw;
    };
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_BUFFER_TOO_LARGE') throw ctx.fail(`output exceeds the limit of ${limit} bytes`, p, e);
    throw ctx.fail(`corrupt deflate stream: ${(e as Error).message}`, p, e);
  }
  const data = result.buffer;
  const end = p + result.engine.bytesWritten;
  ctx.need(bytes, end + 8, 'the gzip trailer (CRC32, ISIZE)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const crc = view.getUint32(end, true);
  const isize = view.getUint32(end + 4, true);
  if (isize !== data.length % 2 ** 32) {
    throw ctx.fail(`ISIZE says ${isize} bytes, the stream decompressed to ${data.length}`, end + 4);
  }
  const actual = zlib.crc32(data);
  if (crc !== actual) {
    throw ctx.fail(`CRC32 mismatch (stored ${hex32(crc)}, computed ${hex32(actual)})`, end);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

// ---------------------------------------------------------------------------------------------
// bzip2: seek-bzip decodes; it is fed through streams that refuse to read past the input (its own
// reader returns undefined there and decodes garbage) and to write past the output limit.

interface BunzipModule {
  decode(input: unknown, output: unknown, multistream?: boolean): unknown;
}
const require = createRequire(import.meta.url);
let bunzip: BunzipModule | undefined;

class InputExhausted extends Error {}

function bunzip2(bytes: Uint8Array, ctx: Context): Uint8Array {
  bunzip ??= require('seek-bzip') as BunzipModule;
  const input = {
    pos: 0,
    readByte(): number {
      if (this.pos >= bytes.length) throw new InputExhausted('unexpected end of input');
      return bytes[this.pos++]!;
    },
    read(buffer: Uint8Array, offset: number, length: number): number {
      for (let i = 0; i < length; i++) buffer[offset + i] = this.readByte();
      return length;
    },
    // Never "at the end": decoding must reach the stream's end marker (a cut stream then reads past
    // the input and fails), and stops there, before the size trailer.
    eof(): boolean {
      return false;
    },
    seek(pos: number): void {
      this.pos = pos;
    },
  };
  let out = new Uint8Array(Math.min(ctx.expectedSize ?? 1 << 20, ctx.maxOutput) || 1);
  const limit = ctx.maxOutput;
  const output = {
    pos: 0,
    writeByte(b: number): void {
      if (this.pos >= out.length) {
        if (out.length >= limit) throw ctx.fail(`output exceeds the limit of ${limit} bytes`, input.pos);
        const grown = new Uint8Array(Math.min(out.length * 2, limit));
        grown.set(out);
        out = grown;
      }
      out[this.pos++] = b;
    },
    write(buffer: ArrayLike<number>, offset: number, length: number): number {
      for (let i = 0; i < length; i++) this.writeByte(buffer[offset + i]!);
      return length;
    },
    flush(): void {},
  };
  try {
    bunzip.decode(input, output, false);
  } catch (e) {
    if (isCorematrixError(e)) throw e;
    if (e instanceof InputExhausted)
      throw ctx.fail('truncated: the stream runs past the end of the data', bytes.length);
    throw ctx.fail(`corrupt data: ${(e as Error).message ?? String(e)}`, input.pos, e);
  }
  return out.subarray(0, output.pos);
}

// ---------------------------------------------------------------------------------------------
// .lzma ("alone"): a 13-byte header (properties, dictionary size, u64 uncompressed size or all-ones
// for "unknown, ends with an end marker") and one LZMA stream. The kernel writes it from a pipe, so
// the size is unknown and the size trailer follows the end marker; the decoder refuses such
// trailing bytes unless it is told the size, so the header is given the trailer's size.

const LZMA_HEADER = 13;

function unlzma(bytes: Uint8Array, ctx: Context): Uint8Array {
  ctx.need(bytes, LZMA_HEADER, 'the .lzma header');
  if (bytes[0]! >= 9 * 5 * 5) throw ctx.fail(`invalid properties byte 0x${bytes[0]!.toString(16)}`, 0);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const declared = view.getBigUint64(5, true);
  if (declared !== 0xffffffffffffffffn) {
    if (declared > BigInt(ctx.maxOutput)) ctx.checkSize(Number(declared), 5);
    return lzma.decompressSync(bytes);
  }
  if (ctx.expectedSize !== undefined)
    return lzma.decompressSync(withDeclaredSize(bytes, ctx.expectedSize, ctx));
  try {
    return lzma.decompressSync(bytes);
  } catch (e) {
    // Bytes after the end marker: perhaps a kernel's size trailer, the last 4 bytes. Try that size.
    if (!/more bytes/i.test((e as Error).message ?? '') || bytes.length < LZMA_HEADER + 4) throw e;
    return lzma.decompressSync(withDeclaredSize(bytes, readU32LE(bytes, bytes.length - 4), ctx));
  }
}

/** A copy of a .lzma stream whose header declares `size` bytes instead of "unknown". */
function withDeclaredSize(bytes: Uint8Array, size: number, ctx: Context): Uint8Array {
  ctx.checkSize(size, 5);
  const copy = bytes.slice();
  new DataView(copy.buffer).setBigUint64(5, BigInt(size), true);
  return copy;
}

// ---------------------------------------------------------------------------------------------
// xz: the container (stream header, block headers, LZMA2 chunk framing, check) is walked here,
// because the kernel's xz uses the x86 BCJ filter in front of LZMA2 and the npm xz decoder knows no
// filter but LZMA2. Each block's LZMA2 chunks are decoded raw, then BCJ is undone here.

const XZ_MAGIC_LEN = 6;
const XZ_FILTER_X86 = 0x04;
const XZ_FILTER_LZMA2 = 0x21;
const XZ_CHECK_NONE = 0;
const XZ_CHECK_CRC32 = 1;

function unxz(bytes: Uint8Array, ctx: Context): Uint8Array {
  ctx.need(bytes, 12, 'the xz stream header');
  if (bytes[XZ_MAGIC_LEN] !== 0 || (bytes[XZ_MAGIC_LEN + 1]! & 0xf0) !== 0) {
    throw ctx.fail('unsupported stream flags', XZ_MAGIC_LEN);
  }
  if (zlib.crc32(bytes.subarray(6, 8)) !== readU32LE(bytes, 8)) {
    throw ctx.fail('stream header CRC32 mismatch', 8);
  }
  const checkType = bytes[XZ_MAGIC_LEN + 1]!;
  const checkSize = checkType === 0 ? 0 : 4 << Math.floor((checkType - 1) / 3);
  const parts: Uint8Array[] = [];
  let total = 0;
  let p = 12;
  const records: { unpadded: number; uncompressed: number }[] = [];
  for (;;) {
    ctx.need(bytes, p + 1, 'a block header');
    if (bytes[p] === 0) break; // the index indicator: no more blocks
    const blockStart = p;
    const block = readXzBlockHeader(bytes, p, ctx);
    p = block.dataStart;
    const { end, unpacked } = walkLzma2(bytes, p, ctx);
    if (block.uncompressedSize !== undefined && block.uncompressedSize !== unpacked) {
      throw ctx.fail(`block holds ${unpacked} bytes, its header says ${block.uncompressedSize}`, p);
    }
    ctx.checkSize(total + unpacked, p);
    const out = unpacked === 0 ? new Uint8Array(0) : lzma2.decompressSync(bytes.subarray(p, end));
    if (out.length !== unpacked) throw ctx.fail(`block decoded to ${out.length} bytes, not ${unpacked}`, p);
    if (block.x86StartOffset !== undefined) undoX86Bcj(out, block.x86StartOffset);
    p = end;
    const unpadded = end - blockStart + checkSize;
    while (p % 4 !== 0) {
      ctx.need(bytes, p + 1, 'block padding');
      if (bytes[p] !== 0) throw ctx.fail('non-zero block padding', p);
      p++;
    }
    ctx.need(bytes, p + checkSize, 'the block check');
    if (checkType === XZ_CHECK_CRC32) {
      const stored = readU32LE(bytes, p);
      const actual = zlib.crc32(out);
      if (stored !== actual) {
        throw ctx.fail(`block CRC32 mismatch (stored ${hex32(stored)}, computed ${hex32(actual)})`, p);
      }
    } else if (checkType !== XZ_CHECK_NONE) {
      // CRC64 and SHA-256 are not verified: the kernel's scripts always ask xz for CRC32.
    }
    p += checkSize;
    parts.push(out);
    total += out.length;
    records.push({ unpadded, uncompressed: out.length });
  }
  checkXzIndexAndFooter(bytes, p, records, ctx);
  return concat(parts, total);
}

/**
 * The index lists each block's sizes and the footer closes the stream: checking them against the
 * blocks read catches a stream cut anywhere, and corruption past the last block.
 */
function checkXzIndexAndFooter(
  bytes: Uint8Array,
  start: number,
  blocks: readonly { unpadded: number; uncompressed: number }[],
  ctx: Context,
): void {
  let p = start + 1;
  const varint = (): number => {
    let value = 0;
    for (let shift = 0; shift < 63; shift += 7) {
      ctx.need(bytes, p + 1, 'the xz index');
      const b = bytes[p++]!;
      value += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return value;
    }
    throw ctx.fail('overlong integer in the index', p);
  };
  const count = varint();
  if (count !== blocks.length)
    throw ctx.fail(`index lists ${count} blocks, the stream has ${blocks.length}`, start);
  for (const block of blocks) {
    const at = p;
    if (varint() !== block.unpadded || varint() !== block.uncompressed) {
      throw ctx.fail('index record does not match its block', at);
    }
  }
  while ((p - start) % 4 !== 0) {
    ctx.need(bytes, p + 1, 'the xz index');
    if (bytes[p] !== 0) throw ctx.fail('non-zero index padding', p);
    p++;
  }
  ctx.need(bytes, p + 4 + 12, 'the xz index CRC32 and stream footer');
  if (zlib.crc32(bytes.subarray(start, p)) !== readU32LE(bytes, p)) throw ctx.fail('index CRC32 mismatch', p);
  p += 4;
  const footer = p;
  if (bytes[footer + 10] !== 0x59 || bytes[footer + 11] !== 0x5a)
    throw ctx.fail('no stream footer magic', footer);
  if (zlib.crc32(bytes.subarray(footer + 4, footer + 10)) !== readU32LE(bytes, footer)) {
    throw ctx.fail('stream footer CRC32 mismatch', footer);
  }
  const backwardSize = (readU32LE(bytes, footer + 4) + 1) * 4;
  if (backwardSize !== footer - start)
    throw ctx.fail('stream footer backward size does not match the index', footer);
}

interface XzBlock {
  dataStart: number;
  uncompressedSize: number | undefined;
  /** Set when the filter chain has x86 BCJ in front of LZMA2: its start offset. */
  x86StartOffset: number | undefined;
}

function readXzBlockHeader(bytes: Uint8Array, start: number, ctx: Context): XzBlock {
  const size = (bytes[start]! + 1) * 4;
  ctx.need(bytes, start + size, 'a block header');
  const crcAt = start + size - 4;
  if (zlib.crc32(bytes.subarray(start, crcAt)) !== readU32LE(bytes, crcAt)) {
    throw ctx.fail('block header CRC32 mismatch', crcAt);
  }
  const flags = bytes[start + 1]!;
  if (flags & 0x3c) throw ctx.fail('reserved block flags set', start + 1);
  let p = start + 2;
  const varint = (): number => {
    let value = 0;
    for (let shift = 0; shift < 63; shift += 7) {
      if (p >= crcAt) throw ctx.fail('block header field runs past the header', p);
      const b = bytes[p++]!;
      value += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return value;
    }
    throw ctx.fail('overlong integer in the block header', p);
  };
  if (flags & 0x40) varint(); // compressed size: the LZMA2 framing tells it anyway
  const uncompressedSize = flags & 0x80 ? varint() : undefined;
  const filterCount = (flags & 3) + 1;
  const filters: { id: number; props: Uint8Array; at: number }[] = [];
  for (let i = 0; i < filterCount; i++) {
    const at = p;
    const id = varint();
    const propsSize = varint();
    if (p + propsSize > crcAt) throw ctx.fail('filter properties run past the header', at);
    filters.push({ id, props: bytes.subarray(p, p + propsSize), at });
    p += propsSize;
  }
  for (; p < crcAt; p++) if (bytes[p] !== 0) throw ctx.fail('non-zero block header padding', p);
  const last = filters[filters.length - 1]!;
  if (last.id !== XZ_FILTER_LZMA2) {
    throw new NotSupportedError(
      'xz-filter',
      `kernel-image: xz filter chain ends with filter 0x${last.id.toString(16)}, not LZMA2 (offset 0x${(last.at + ctx.fileOffset).toString(16)})`,
    );
  }
  let x86StartOffset: number | undefined;
  for (const f of filters.slice(0, -1)) {
    if (f.id !== XZ_FILTER_X86 || x86StartOffset !== undefined) {
      throw new NotSupportedError(
        'xz-filter',
        `kernel-image: xz filter 0x${f.id.toString(16)} is not supported (only x86 BCJ + LZMA2, as the kernel builds)`,
      );
    }
    if (f.props.length === 0) x86StartOffset = 0;
    else if (f.props.length === 4) x86StartOffset = readU32LE(f.props, 0);
    else throw ctx.fail(`x86 BCJ properties of ${f.props.length} bytes`, f.at);
  }
  return { dataStart: start + size, uncompressedSize, x86StartOffset };
}

/**
 * Walks LZMA2 chunk headers from `start` to the end marker: where the stream ends and how many bytes
 * it decodes to, without decoding.
 */
function walkLzma2(bytes: Uint8Array, start: number, ctx: Context): { end: number; unpacked: number } {
  let p = start;
  let unpacked = 0;
  for (;;) {
    ctx.need(bytes, p + 1, 'the LZMA2 stream');
    const control = bytes[p]!;
    if (control === 0x00) return { end: p + 1, unpacked };
    if (control === 0x01 || control === 0x02) {
      ctx.need(bytes, p + 3, 'an LZMA2 chunk header');
      const size = ((bytes[p + 1]! << 8) | bytes[p + 2]!) + 1;
      unpacked += size;
      p += 3 + size;
    } else if (control >= 0x80) {
      ctx.need(bytes, p + 5, 'an LZMA2 chunk header');
      unpacked += ((control & 0x1f) << 16) + ((bytes[p + 1]! << 8) | bytes[p + 2]!) + 1;
      const packed = ((bytes[p + 3]! << 8) | bytes[p + 4]!) + 1;
      // States 2 and 3 (new properties) carry a properties byte.
      p += 5 + (control >= 0xc0 ? 1 : 0) + packed;
    } else {
      throw ctx.fail(`invalid LZMA2 control byte 0x${control.toString(16)}`, p);
    }
    ctx.checkSize(unpacked, p);
  }
}

/** x86 BCJ's "most significant byte" test: a displacement's top byte is 0x00 or 0xff. */
function msbIsSignExtension(b: number): boolean {
  return b === 0 || b === 0xff;
}

/** For each mask of recently seen E8/E9 bytes: whether a conversion may follow, and which byte to test. */
const BCJ_MASK_ALLOWED = [true, true, true, false, true, false, false, false];
const BCJ_MASK_BIT = [0, 1, 2, 2, 3, 3, 3, 3];

/**
 * Undoes the x86 BCJ filter in place: the encoder turned the relative targets of CALL (E8) and JMP
 * (E9) into absolute ones so that repeated calls compress better; here they become relative again.
 * Follows the algorithm of the xz format's x86 filter (one pass over the whole block, position 0 at
 * `startOffset`), including its heuristic for E8/E9 bytes that are not opcodes.
 */
export function undoX86Bcj(buf: Uint8Array, startOffset = 0): void {
  const limit = buf.length - 4;
  let prevPos = -1;
  let prevMask = 0;
  for (let i = 0; i < limit; i++) {
    if ((buf[i]! & 0xfe) !== 0xe8) continue;
    const distance = i - prevPos;
    if (distance > 3) {
      prevMask = 0;
    } else {
      prevMask = (prevMask << (distance - 1)) & 7;
      if (prevMask !== 0) {
        const b = buf[i + 4 - BCJ_MASK_BIT[prevMask]!]!;
        if (!BCJ_MASK_ALLOWED[prevMask] || msbIsSignExtension(b)) {
          prevPos = i;
          prevMask = (prevMask << 1) | 1;
          continue;
        }
      }
    }
    prevPos = i;
    if (msbIsSignExtension(buf[i + 4]!)) {
      let src = (buf[i + 1]! | (buf[i + 2]! << 8) | (buf[i + 3]! << 16) | (buf[i + 4]! << 24)) >>> 0;
      let dest: number;
      for (;;) {
        dest = (src - (startOffset + i + 5)) >>> 0;
        if (prevMask === 0) break;
        const j = BCJ_MASK_BIT[prevMask]! * 8;
        if (!msbIsSignExtension((dest >>> (24 - j)) & 0xff)) break;
        src = (dest ^ (2 ** (32 - j) - 1)) >>> 0;
      }
      // Sign-extend bit 24 into the top byte.
      dest &= 0x01ffffff;
      if (dest & 0x01000000) dest |= 0xff000000;
      buf[i + 1] = dest & 0xff;
      buf[i + 2] = (dest >>> 8) & 0xff;
      buf[i + 3] = (dest >>> 16) & 0xff;
      buf[i + 4] = (dest >>> 24) & 0xff;
      i += 4;
    } else {
      prevMask = (prevMask << 1) | 1;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// lz4, legacy framing (lz4 -l, what the kernel builds): the magic, then blocks of a u32 LE
// compressed size and an LZ4 block that decodes to at most 8 MiB, each independent of the others.
// The magic may repeat (concatenated streams). The stream has no end marker: it ends after a block
// shorter than 8 MiB, or where the next "size" is not one (the kernel's size trailer, padding, end
// of data). Blocks are decoded here with bounds checks on every read and write.

const LZ4_LEGACY_MAGIC = 0x184c2102;
const LZ4_LEGACY_BLOCK = 8 << 20;
/** LZ4_compressBound(8 MiB): no valid block is larger. */
const LZ4_LEGACY_MAX_COMPRESSED = LZ4_LEGACY_BLOCK + Math.floor(LZ4_LEGACY_BLOCK / 255) + 16;

function unlz4Legacy(bytes: Uint8Array, ctx: Context): Uint8Array {
  let out = new Uint8Array(Math.min(ctx.expectedSize ?? LZ4_LEGACY_BLOCK, ctx.maxOutput));
  let size = 0;
  let p = 4;
  for (;;) {
    if (p + 4 > bytes.length) break;
    const chunk = readU32LE(bytes, p);
    if (chunk === LZ4_LEGACY_MAGIC) {
      p += 4;
      continue;
    }
    if (chunk === 0 || chunk > LZ4_LEGACY_MAX_COMPRESSED || p + 4 + chunk > bytes.length) {
      if (size === 0) throw ctx.fail(`first block size ${chunk} is invalid`, p);
      // After a full block: the size trailer (equal to the output so far), padding, or a cut stream.
      if (chunk !== 0 && chunk <= LZ4_LEGACY_MAX_COMPRESSED && chunk !== size) {
        throw ctx.fail(`truncated: block of ${chunk} bytes runs past the end of the data`, p);
      }
      break;
    }
    if (size + LZ4_LEGACY_BLOCK > out.length) {
      ctx.checkSize(size + 1, p);
      const grown = new Uint8Array(
        Math.min(Math.max(out.length * 2, size + LZ4_LEGACY_BLOCK), ctx.maxOutput),
      );
      grown.set(out.subarray(0, size));
      out = grown;
    }
    const start = p + 4;
    const end = lz4DecodeBlock(
      bytes,
      start,
      start + chunk,
      out,
      size,
      Math.min(size + LZ4_LEGACY_BLOCK, out.length),
      ctx,
    );
    const produced = end - size;
    size = end;
    p = start + chunk;
    // A short block ends the stream, unless another stream follows it.
    if (produced < LZ4_LEGACY_BLOCK && !(p + 4 <= bytes.length && readU32LE(bytes, p) === LZ4_LEGACY_MAGIC))
      break;
  }
  return out.subarray(0, size);
}

/**
 * Decodes one LZ4 block (sequences of literals and matches) from src[sStart, sEnd) into dst at
 * dStart, writing no further than dLimit; matches reach back no further than dStart (legacy blocks
 * are independent). Returns where the output ends.
 */
function lz4DecodeBlock(
  src: Uint8Array,
  sStart: number,
  sEnd: number,
  dst: Uint8Array,
  dStart: number,
  dLimit: number,
  ctx: Context,
): number {
  let s = sStart;
  let d = dStart;
  for (;;) {
    if (s >= sEnd) throw ctx.fail('block ends inside a sequence', s);
    const token = src[s++]!;
    let literals = token >>> 4;
    if (literals === 15) {
      let more: number;
      do {
        if (s >= sEnd) throw ctx.fail('block ends inside a literal length', s);
        more = src[s++]!;
        literals += more;
      } while (more === 255);
    }
    if (literals > 0) {
      if (s + literals > sEnd) throw ctx.fail('literals run past the end of the block', s);
      if (d + literals > dLimit) throw ctx.fail('block decodes past 8 MiB or the output limit', s);
      dst.set(src.subarray(s, s + literals), d);
      s += literals;
      d += literals;
    }
    // The last sequence of a block is literals only.
    if (s === sEnd) return d;
    if (s + 2 > sEnd) throw ctx.fail('block ends inside a match offset', s);
    const offset = src[s]! | (src[s + 1]! << 8);
    if (offset === 0 || offset > d - dStart)
      throw ctx.fail(`match offset ${offset} reaches before the block`, s);
    s += 2;
    let length = token & 15;
    if (length === 15) {
      let more: number;
      do {
        if (s >= sEnd) throw ctx.fail('block ends inside a match length', s);
        more = src[s++]!;
        length += more;
      } while (more === 255);
    }
    length += 4;
    if (d + length > dLimit) throw ctx.fail('block decodes past 8 MiB or the output limit', s);
    let from = d - offset;
    if (offset >= length) {
      dst.copyWithin(d, from, from + length);
      d += length;
    } else {
      // Overlapping match: repeats the last `offset` bytes, byte by byte by definition.
      const end = d + length;
      while (d < end) dst[d++] = dst[from++]!;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// zstd: frames (and skippable frames) are walked here to find where the data ends and to check the
// declared window and content sizes against the limit before fzstd allocates buffers for them.

const ZSTD_MAGIC = 0xfd2fb528;

function unzstd(bytes: Uint8Array, ctx: Context): Uint8Array {
  let p = 0;
  let declaredTotal = 0;
  const frames: ZstdFrame[] = [];
  for (;;) {
    if (p + 4 > bytes.length) break;
    const magic = readU32LE(bytes, p);
    if ((magic & 0xfffffff0) === 0x184d2a50) {
      ctx.need(bytes, p + 8, 'a skippable frame header');
      p += 8 + readU32LE(bytes, p + 4);
      ctx.need(bytes, p, 'a skippable frame');
      continue;
    }
    if (magic !== ZSTD_MAGIC) {
      if (p === 0) throw ctx.fail('not a zstd frame', 0);
      break; // trailing bytes: the kernel's size trailer
    }
    const frame = walkZstdFrame(bytes, p, ctx);
    frames.push(frame);
    declaredTotal += frame.contentSize ?? 0;
    ctx.checkSize(declaredTotal, p);
    p = frame.end;
  }
  const stream = bytes.subarray(0, p);
  // The kernel's zstd writes from a pipe: no content size in the frame header. fzstd then decodes
  // into a sliding window and moves the whole window (128 MiB for zstd -22) after every 128 KiB
  // block, which takes half a minute on a kernel; told the size, it decodes straight into the
  // output. The size is the caller's, or the size trailer right after the frame.
  const only = frames.length === 1 ? frames[0]! : undefined;
  const size = ctx.expectedSize ?? (bytes.length - p === 4 ? readU32LE(bytes, p) : undefined);
  let out: Uint8Array;
  if (only !== undefined && only.contentSize === undefined && size !== undefined && size > 0) {
    ctx.checkSize(size, only.start);
    out = zstdDecompress(withZstdContentSize(stream, only, size));
  } else {
    out = zstdDecompress(stream);
    ctx.checkSize(out.length, p);
  }
  // fzstd checks no content checksum; with one frame (the kernel's case) it is checked here. It also
  // catches a wrong size given above, where fzstd would silently drop or zero-fill bytes.
  if (only?.hasChecksum) {
    const stored = readU32LE(bytes, only.end - 4);
    const actual = xxh64(out)[1];
    if (stored !== actual) {
      throw ctx.fail(
        `content checksum mismatch (stored ${hex32(stored)}, computed ${hex32(actual)})`,
        only.end - 4,
      );
    }
  }
  return out;
}

interface ZstdFrame {
  start: number;
  end: number;
  contentSize?: number;
  /** Where the Frame_Content_Size field is, or would be. */
  contentSizeAt: number;
  /** Whether the frame ends with a content checksum (the low 32 bits of the XXH64 of the content). */
  hasChecksum: boolean;
}

/** A copy of a one-frame stream whose header gains a 4-byte Frame_Content_Size of `size`. */
function withZstdContentSize(stream: Uint8Array, frame: ZstdFrame, size: number): Uint8Array {
  const out = new Uint8Array(stream.length + 4);
  out.set(stream.subarray(0, frame.contentSizeAt));
  out[frame.start + 4] = (stream[frame.start + 4]! & 0x3f) | (2 << 6); // FCS_Flag 2: 4 bytes
  new DataView(out.buffer).setUint32(frame.contentSizeAt, size, true);
  out.set(stream.subarray(frame.contentSizeAt), frame.contentSizeAt + 4);
  return out;
}

function walkZstdFrame(bytes: Uint8Array, start: number, ctx: Context): ZstdFrame {
  ctx.need(bytes, start + 5, 'a zstd frame header');
  const descriptor = bytes[start + 4]!;
  if (descriptor & 0x08) throw ctx.fail('reserved frame header bit set', start + 4);
  const singleSegment = (descriptor >> 5) & 1;
  const hasChecksum = (descriptor >> 2) & 1;
  const dictIdSize = [0, 1, 2, 4][descriptor & 3]!;
  const sizeFlag = descriptor >> 6;
  const contentSizeSize = sizeFlag === 0 ? singleSegment : 1 << sizeFlag;
  let p = start + 5;
  let windowSize: number | undefined;
  if (!singleSegment) {
    ctx.need(bytes, p + 1, 'the window descriptor');
    const w = bytes[p++]!;
    const base = 2 ** (10 + (w >> 3));
    windowSize = base + (base / 8) * (w & 7);
  }
  p += dictIdSize;
  ctx.need(bytes, p + contentSizeSize, 'the frame header');
  let contentSize: number | undefined;
  if (contentSizeSize > 0) {
    let value = 0;
    for (let i = contentSizeSize - 1; i >= 0; i--) value = value * 256 + bytes[p + i]!;
    contentSize = contentSizeSize === 2 ? value + 256 : value;
    ctx.checkSize(contentSize, p);
  }
  if (windowSize !== undefined) ctx.checkSize(Math.min(windowSize, contentSize ?? windowSize), start + 5);
  const contentSizeAt = p;
  p += contentSizeSize;
  for (;;) {
    ctx.need(bytes, p + 3, 'a block header');
    const header = bytes[p]! | (bytes[p + 1]! << 8) | (bytes[p + 2]! << 16);
    const last = header & 1;
    const type = (header >> 1) & 3;
    const size = header >>> 3;
    if (type === 3) throw ctx.fail('reserved block type', p);
    p += 3 + (type === 1 ? 1 : size);
    ctx.need(bytes, p, 'a block');
    if (last) break;
  }
  if (hasChecksum) {
    ctx.need(bytes, p + 4, 'the content checksum');
    p += 4;
  }
  const frame: ZstdFrame = { start, end: p, contentSizeAt, hasChecksum: hasChecksum === 1 };
  if (contentSize !== undefined) frame.contentSize = contentSize;
  return frame;
}

// ---------------------------------------------------------------------------------------------

function readU32LE(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
}

function hex32(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// XXH64, for zstd's content checksum (fzstd does not check it). 64-bit arithmetic on pairs of
// 32-bit halves: BigInt would take seconds on a 60 MB vmlinux.

const P1_HI = 0x9e3779b1;
const P1_LO = 0x85ebca87;
const P2_HI = 0xc2b2ae3d;
const P2_LO = 0x27d4eb4f;
const P3_HI = 0x165667b1;
const P3_LO = 0x9e3779f9;
const P4_HI = 0x85ebca77;
const P4_LO = 0xc2b2ae63;
const P5_HI = 0x27d4eb2f;
const P5_LO = 0x165667c5;

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Result registers of the 64-bit helpers below (no allocation per operation). */
let rh = 0;
let rl = 0;

/**
 * (ah:al) * (bh:bl) mod 2^64: the low word and the cross terms by Math.imul, the high word of
 * al * bl by 16-bit halves (each partial sum stays below 2^32, exact in a double).
 */
function mul64(ah: number, al: number, bh: number, bl: number): void {
  const a0 = al & 0xffff;
  const a1 = al >>> 16;
  const b0 = bl & 0xffff;
  const b1 = bl >>> 16;
  const mid = a1 * b0 + ((a0 * b0) >>> 16);
  const mid2 = a0 * b1 + (mid & 0xffff);
  const carry = a1 * b1 + (mid >>> 16) + (mid2 >>> 16);
  rh = (carry + Math.imul(ah, bl) + Math.imul(al, bh)) >>> 0;
  rl = Math.imul(al, bl) >>> 0;
}

function add64(ah: number, al: number, bh: number, bl: number): void {
  const lo = al + bl;
  rl = lo >>> 0;
  rh = (ah + bh + (lo > 0xffffffff ? 1 : 0)) >>> 0;
}

function rotl64(h: number, l: number, r: number): void {
  if (r >= 32) {
    const t = h;
    h = l;
    l = t;
    r -= 32;
  }
  if (r === 0) {
    rh = h >>> 0;
    rl = l >>> 0;
    return;
  }
  rh = ((h << r) | (l >>> (32 - r))) >>> 0;
  rl = ((l << r) | (h >>> (32 - r))) >>> 0;
}

/** XXH64's round: acc = rotl(acc + lane * P2, 31) * P1. */
function xxRound(acch: number, accl: number, laneh: number, lanel: number): void {
  mul64(laneh, lanel, P2_HI, P2_LO);
  add64(acch, accl, rh, rl);
  rotl64(rh, rl, 31);
  mul64(rh, rl, P1_HI, P1_LO);
}

/** XXH64 of `data` with seed 0, as [high, low] 32-bit halves. */
export function xxh64(data: Uint8Array): [number, number] {
  const n = data.length;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let p = 0;
  let hh: number;
  let hl: number;
  if (n >= 32) {
    // v1 = P1 + P2, v2 = P2, v3 = 0, v4 = -P1 (mod 2^64)
    add64(P1_HI, P1_LO, P2_HI, P2_LO);
    let v1h = rh;
    let v1l = rl;
    let v2h = P2_HI;
    let v2l = P2_LO;
    let v3h = 0;
    let v3l = 0;
    add64(~P1_HI >>> 0, ~P1_LO >>> 0, 0, 1);
    let v4h = rh;
    let v4l = rl;
    // The stripes are nearly all the work: read them as 32-bit words when the data is aligned.
    const stripes = Math.floor(n / 32);
    const words =
      data.byteOffset % 4 === 0 && LITTLE_ENDIAN_HOST
        ? new Uint32Array(data.buffer, data.byteOffset, stripes * 8)
        : undefined;
    for (let s = 0; s < stripes; s++, p += 32) {
      let w0: number, w1: number, w2: number, w3: number, w4: number, w5: number, w6: number, w7: number;
      if (words !== undefined) {
        const q = s * 8;
        w0 = words[q]!;
        w1 = words[q + 1]!;
        w2 = words[q + 2]!;
        w3 = words[q + 3]!;
        w4 = words[q + 4]!;
        w5 = words[q + 5]!;
        w6 = words[q + 6]!;
        w7 = words[q + 7]!;
      } else {
        w0 = view.getUint32(p, true);
        w1 = view.getUint32(p + 4, true);
        w2 = view.getUint32(p + 8, true);
        w3 = view.getUint32(p + 12, true);
        w4 = view.getUint32(p + 16, true);
        w5 = view.getUint32(p + 20, true);
        w6 = view.getUint32(p + 24, true);
        w7 = view.getUint32(p + 28, true);
      }
      xxRound(v1h, v1l, w1, w0);
      v1h = rh;
      v1l = rl;
      xxRound(v2h, v2l, w3, w2);
      v2h = rh;
      v2l = rl;
      xxRound(v3h, v3l, w5, w4);
      v3h = rh;
      v3l = rl;
      xxRound(v4h, v4l, w7, w6);
      v4h = rh;
      v4l = rl;
    }
    rotl64(v1h, v1l, 1);
    hh = rh;
    hl = rl;
    rotl64(v2h, v2l, 7);
    add64(hh, hl, rh, rl);
    hh = rh;
    hl = rl;
    rotl64(v3h, v3l, 12);
    add64(hh, hl, rh, rl);
    hh = rh;
    hl = rl;
    rotl64(v4h, v4l, 18);
    add64(hh, hl, rh, rl);
    hh = rh;
    hl = rl;
    for (const [vh, vl] of [
      [v1h, v1l],
      [v2h, v2l],
      [v3h, v3l],
      [v4h, v4l],
    ] as const) {
      xxRound(0, 0, vh, vl);
      hh = (hh ^ rh) >>> 0;
      hl = (hl ^ rl) >>> 0;
      mul64(hh, hl, P1_HI, P1_LO);
      add64(rh, rl, P4_HI, P4_LO);
      hh = rh;
      hl = rl;
    }
  } else {
    hh = P5_HI;
    hl = P5_LO;
  }
  add64(hh, hl, Math.floor(n / 2 ** 32), n >>> 0);
  hh = rh;
  hl = rl;
  for (; p + 8 <= n; p += 8) {
    xxRound(0, 0, view.getUint32(p + 4, true), view.getUint32(p, true));
    hh = (hh ^ rh) >>> 0;
    hl = (hl ^ rl) >>> 0;
    rotl64(hh, hl, 27);
    mul64(rh, rl, P1_HI, P1_LO);
    add64(rh, rl, P4_HI, P4_LO);
    hh = rh;
    hl = rl;
  }
  if (p + 4 <= n) {
    mul64(0, view.getUint32(p, true), P1_HI, P1_LO);
    hh = (hh ^ rh) >>> 0;
    hl = (hl ^ rl) >>> 0;
    rotl64(hh, hl, 23);
    mul64(rh, rl, P2_HI, P2_LO);
    add64(rh, rl, P3_HI, P3_LO);
    hh = rh;
    hl = rl;
    p += 4;
  }
  for (; p < n; p++) {
    mul64(0, data[p]!, P5_HI, P5_LO);
    hh = (hh ^ rh) >>> 0;
    hl = (hl ^ rl) >>> 0;
    rotl64(hh, hl, 11);
    mul64(rh, rl, P1_HI, P1_LO);
    hh = rh;
    hl = rl;
  }
  // Avalanche: h ^= h >> 33; h *= P2; h ^= h >> 29; h *= P3; h ^= h >> 32.
  hl = (hl ^ (hh >>> 1)) >>> 0;
  mul64(hh, hl, P2_HI, P2_LO);
  hh = rh;
  hl = rl;
  hl = (hl ^ ((hl >>> 29) | (hh << 3))) >>> 0;
  hh = (hh ^ (hh >>> 29)) >>> 0;
  mul64(hh, hl, P3_HI, P3_LO);
  hh = rh;
  hl = (rl ^ rh) >>> 0;
  return [hh, hl];
}
