import { execFileSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { isCorematrixError, NotSupportedError, ParseError } from '../errors.js';
import { type Compression, decompress, decompressAs, detectCompression, xxh64 } from './decompress.js';
import {
  COMPRESSIONS,
  compressWith,
  FAST_COMPRESSORS,
  KERNEL_COMPRESSORS,
  mutate,
  seededRandom,
  withSizeTrailer,
  x86Sample,
} from './test-support/images.js';

// Just over 8 MiB of real x86-64 code: lz4's legacy framing needs two blocks, xz's BCJ filter has
// thousands of CALLs to undo.
const BIG = (8 << 20) + 123_457;
let big: Uint8Array;
const bigStreams = new Map<Compression, Uint8Array>();
// A small sample compressed as the kernel build does it (max levels), for corruption and fuzzing.
let small: Uint8Array;
const smallStreams = new Map<Compression, Uint8Array>();

beforeAll(() => {
  big = x86Sample(BIG);
  small = x86Sample(48 << 10);
  for (const c of COMPRESSIONS) {
    bigStreams.set(c, compressWith(FAST_COMPRESSORS[c], big));
    smallStreams.set(c, compressWith(KERNEL_COMPRESSORS[c], small));
  }
});

function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

function flip(bytes: Uint8Array, at: number): void {
  bytes[at] = bytes[at]! ^ 1;
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error, got a result');
}

describe.each(COMPRESSIONS)('%s', (c) => {
  it('decompresses what the real tool compressed, with and without the size trailer', () => {
    const stream = bigStreams.get(c)!;
    expect(detectCompression(stream)).toBe(c);
    const t0 = performance.now();
    const plain = decompress(stream);
    const elapsed = performance.now() - t0;
    expect(plain.compression).toBe(c);
    expect(same(plain.data, big)).toBe(true);
    console.log(`${c}: ${stream.length} → ${plain.data.length} bytes in ${elapsed.toFixed(0)} ms`);

    const trailed = withSizeTrailer(stream, big.length);
    expect(same(decompress(trailed, { expectedSize: big.length }).data, big)).toBe(true);
    expect(same(decompress(trailed).data, big)).toBe(true);
    // Padding after the trailer, as inside a bzImage's payload area.
    const padded = new Uint8Array(trailed.length + 100);
    padded.set(trailed);
    expect(same(decompress(padded, { expectedSize: big.length }).data, big)).toBe(true);
  });

  it('decompresses the kernel build settings on a small input', () => {
    const stream = withSizeTrailer(smallStreams.get(c)!, small.length);
    expect(same(decompress(stream, { expectedSize: small.length }).data, small)).toBe(true);
  });

  it('rejects a size trailer that disagrees with the data', () => {
    const stream = withSizeTrailer(smallStreams.get(c)!, small.length);
    const e = thrown(() => decompress(stream, { expectedSize: small.length + 1 }));
    expect(e).toBeInstanceOf(ParseError);
    expect((e as ParseError).format).toBe('kernel-image');
  });

  it('rejects a truncated stream with a ParseError', () => {
    const stream = smallStreams.get(c)!;
    // Cutting into a .lzma end marker loses nothing once the size is known (from the trailer): the
    // decoder stops at that size before reading the marker. Other formats end with checks.
    const ends = c === 'lzma' ? [] : [stream.length - 1, stream.length - 9];
    for (const keep of [...ends, Math.floor(stream.length / 2), 20]) {
      const e = thrown(() => decompress(stream.subarray(0, keep), { expectedSize: small.length }));
      expect(e, `${c} cut to ${keep}`).toBeInstanceOf(ParseError);
    }
  });

  it('refuses output past maxOutput', () => {
    const e = thrown(() => decompress(bigStreams.get(c)!, { maxOutput: 1 << 20 }));
    expect(e).toBeInstanceOf(ParseError);
    expect((e as ParseError).reason).toMatch(/limit|exceed/);
  });

  it('turns thousands of corruptions into a result or a typed error, without hanging', () => {
    const stream = withSizeTrailer(smallStreams.get(c)!, small.length);
    const random = seededRandom(0x9e3779b9 ^ c.length);
    const started = Date.now();
    let ok = 0;
    let rejected = 0;
    let slowest = 0;
    const rounds = c === 'bzip2' ? 600 : 1500;
    for (let round = 0; round < rounds && Date.now() - started < 25_000; round++) {
      // Headers hold most structure: mutate the first bytes more often.
      const input = mutate(stream, random, { start: 0, end: 64 });
      const t0 = performance.now();
      try {
        decompressAs(c, input, { maxOutput: 4 << 20 });
        ok++;
      } catch (e) {
        if (!isCorematrixError(e)) throw e;
        rejected++;
      }
      slowest = Math.max(slowest, performance.now() - t0);
    }
    expect(rejected).toBeGreaterThan(0);
    console.log(`${c} fuzz: ${ok} decoded, ${rejected} rejected, slowest ${slowest.toFixed(0)} ms`);
    expect(slowest).toBeLessThan(5_000);
  });
});

describe('format details', () => {
  it('names the magic bytes of an unknown compression', () => {
    const e = thrown(() =>
      decompress(new Uint8Array([0x89, 0x4c, 0x5a, 0x4f, 0, 1]), { fileOffset: 0x4000 }),
    );
    expect(e).toBeInstanceOf(NotSupportedError);
    expect((e as Error).message).toMatch(/89 4c 5a 4f 00 01/);
    expect((e as Error).message).toMatch(/0x4000/);
    expect(thrown(() => decompress(new Uint8Array(0)))).toBeInstanceOf(NotSupportedError);
  });

  it('reports error offsets in the file when told where the stream starts', () => {
    const stream = smallStreams.get('gzip')!.slice();
    stream.fill(0xff, 20, 40); // corrupt the deflate data
    const e = thrown(() => decompress(stream, { fileOffset: 0x1000 })) as ParseError;
    expect(e).toBeInstanceOf(ParseError);
    expect(e.offset).toBeGreaterThanOrEqual(0x1000);
  });

  it('checks the gzip CRC32 and ISIZE', () => {
    const stream = smallStreams.get('gzip')!;
    const badCrc = stream.slice();
    flip(badCrc, stream.length - 8);
    expect((thrown(() => decompress(badCrc)) as ParseError).reason).toMatch(/CRC32/);
    const badSize = stream.slice();
    flip(badSize, stream.length - 4);
    expect((thrown(() => decompress(badSize)) as ParseError).reason).toMatch(/ISIZE/);
  });

  it('reads gzip headers with a name, comment and header CRC', () => {
    const named = new Uint8Array(execFileSync('gzip', ['-c', '--name', '/etc/hostname']));
    expect(named[3]! & 0x08).toBe(0x08);
    expect(Buffer.from(decompress(named).data).equals(execFileSync('cat', ['/etc/hostname']))).toBe(true);
  });

  it('decodes xz with several blocks, other checks, and without BCJ', () => {
    const sample = big.subarray(0, 3 << 20);
    for (const args of [
      ['xz', '-T2', '--block-size=1MiB', '--check=crc32', '-1'],
      ['xz', '--check=crc64', '-1'],
      ['xz', '--check=sha256', '--x86', '--lzma2=preset=1'],
      ['xz', '--check=none', '-0'],
    ]) {
      const stream = compressWith(args, sample);
      expect(same(decompress(withSizeTrailer(stream, sample.length)).data, sample), args.join(' ')).toBe(
        true,
      );
    }
  });

  it('checks the xz block CRC32, index and footer', () => {
    const stream = smallStreams.get('xz')!;
    // The footer's backward size locates the index; the block's CRC32 sits right before it.
    const footer = stream.length - 12;
    const indexStart =
      footer - (new DataView(stream.buffer, stream.byteOffset).getUint32(footer + 4, true) + 1) * 4;
    expect(stream[indexStart]).toBe(0);
    const badCheck = stream.slice();
    flip(badCheck, indexStart - 4);
    expect((thrown(() => decompress(badCheck)) as ParseError).reason).toMatch(/block CRC32 mismatch/);
    const badIndex = stream.slice();
    flip(badIndex, indexStart + 2);
    expect((thrown(() => decompress(badIndex)) as ParseError).reason).toMatch(/index/);
    const badFooter = stream.slice();
    flip(badFooter, stream.length - 1);
    expect((thrown(() => decompress(badFooter)) as ParseError).reason).toMatch(/footer/);
  });

  it('refuses xz filters other than x86 BCJ with a NotSupportedError', () => {
    const stream = compressWith(['xz', '--check=crc32', '--arm64', '--lzma2=preset=0'], small);
    expect(thrown(() => decompress(stream))).toBeInstanceOf(NotSupportedError);
  });

  it('reads .lzma whose header declares the size, as well as "unknown" (what xz-utils writes)', () => {
    const unknown = smallStreams.get('lzma')!;
    expect(Buffer.from(unknown.subarray(5, 13)).equals(Buffer.alloc(8, 0xff))).toBe(true);
    // Other encoders (7-zip, the kernel's own for initramfs) may write the size instead.
    const declared = unknown.slice();
    new DataView(declared.buffer).setBigUint64(5, BigInt(small.length), true);
    expect(same(decompress(withSizeTrailer(declared, small.length)).data, small)).toBe(true);
    const tooLarge = unknown.slice();
    new DataView(tooLarge.buffer).setBigUint64(5, 1n << 40n, true);
    expect((thrown(() => decompress(tooLarge)) as ParseError).reason).toMatch(/limit/);
  });

  it('computes XXH64 as the xxHash reference does', () => {
    // Published test vectors of XXH64 with seed 0.
    expect(xxh64(new Uint8Array(0))).toEqual([0xef46db37, 0x51d8e999]);
    expect(xxh64(Buffer.from('a'))).toEqual([0xd24ec4f1, 0xa98c6e5b]);
  });

  it('checks the zstd content checksum, also when the size comes from the trailer', () => {
    const stream = smallStreams.get('zstd')!;
    expect(stream[4]! & 0x04).toBe(0x04); // the CLI writes a checksum by default
    const badChecksum = stream.slice();
    flip(badChecksum, stream.length - 1);
    expect((thrown(() => decompress(badChecksum)) as ParseError).reason).toMatch(/checksum/);
    // A trailer one byte short: fzstd would drop the last byte without a word; the checksum objects.
    const shortTrailer = withSizeTrailer(stream, small.length - 1);
    expect(thrown(() => decompress(shortTrailer))).toBeInstanceOf(ParseError);
    const unchecked = compressWith(['zstd', '-3', '-q', '--no-check', '-c', '-'], small);
    expect(same(decompress(withSizeTrailer(unchecked, small.length)).data, small)).toBe(true);
    // Two frames: decoded whole (fzstd's slow path), not checked against one checksum.
    const two = new Uint8Array([
      ...compressWith(['zstd', '-q', '-c', '-'], small.subarray(0, 999)),
      ...compressWith(['zstd', '-q', '-c', '-'], small.subarray(999)),
    ]);
    expect(same(decompress(withSizeTrailer(two, small.length)).data, small)).toBe(true);
  });

  it('reads lz4 legacy streams concatenated (the magic repeated)', () => {
    const a = compressWith(KERNEL_COMPRESSORS.lz4, small.subarray(0, 1000));
    const b = compressWith(KERNEL_COMPRESSORS.lz4, small.subarray(1000));
    const both = new Uint8Array(a.length + b.length);
    both.set(a);
    both.set(b, a.length);
    expect(same(decompress(withSizeTrailer(both, small.length)).data, small)).toBe(true);
  });

  it('rejects lz4 matches that reach before the block', () => {
    // A block: one literal "A", then a match of offset 2 (only 1 byte is there), then literals.
    const block = [0x10, 0x41, 0x02, 0x00, 0x10, 0x42];
    const stream = new Uint8Array([0x02, 0x21, 0x4c, 0x18, block.length, 0, 0, 0, ...block]);
    expect((thrown(() => decompress(stream)) as ParseError).reason).toMatch(/offset 2/);
    const ok = new Uint8Array([0x02, 0x21, 0x4c, 0x18, 6, 0, 0, 0, 0x10, 0x41, 0x01, 0x00, 0x10, 0x42]);
    expect(Buffer.from(decompress(ok).data).toString()).toBe('AAAAAB');
  });
});
