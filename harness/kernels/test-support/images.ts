/**
 * Test fixtures: compressed streams made by the real CLI tools, the way the kernel's
 * scripts/Makefile.lib makes them, and minimal x86 bzImages around them.
 */
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import type { Compression } from '../decompress.js';

/** The command lines of scripts/Makefile.lib (cmd_gzip, cmd_bzip2, cmd_lzma, xz_wrap.sh, cmd_lz4, cmd_zstd22). */
export const KERNEL_COMPRESSORS: Record<Compression, readonly string[]> = {
  gzip: ['gzip', '-n', '-f', '-9'],
  bzip2: ['bzip2', '-9'],
  lzma: ['lzma', '-9'],
  xz: ['xz', '--check=crc32', '--x86', '--lzma2=dict=32MiB'],
  lz4: ['lz4', '-l', '-9', '-', '-'],
  zstd: ['zstd', '-19', '-q', '-c', '-'],
};

/** Faster settings for large inputs, same formats (what the decoder sees differs only in content). */
export const FAST_COMPRESSORS: Record<Compression, readonly string[]> = {
  gzip: ['gzip', '-n', '-1'],
  bzip2: ['bzip2', '-1'],
  lzma: ['lzma', '-1'],
  xz: ['xz', '--check=crc32', '--x86', '--lzma2=preset=1'],
  lz4: ['lz4', '-l', '-1', '-', '-'],
  zstd: ['zstd', '-3', '-q', '-c', '-'],
};

export const COMPRESSIONS: readonly Compression[] = ['gzip', 'bzip2', 'lzma', 'xz', 'lz4', 'zstd'];

/** Pipes `data` through a compressor CLI (from stdin, as the kernel build does). */
export function compressWith(command: readonly string[], data: Uint8Array): Uint8Array {
  const [program, ...args] = command;
  const out = execFileSync(program!, args, { input: data, maxBuffer: 1 << 30 });
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** compressWith, without blocking: several compressors can then run at once. */
export function compressWithAsync(command: readonly string[], data: Uint8Array): Promise<Uint8Array> {
  const [program, ...args] = command;
  return new Promise((resolve, reject) => {
    const child = spawn(program!, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    const errors: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => errors.push(c));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0)
        reject(new Error(`${command.join(' ')} exited ${code}: ${Buffer.concat(errors).toString()}`));
      else resolve(new Uint8Array(Buffer.concat(chunks)));
    });
    child.stdin.end(data);
  });
}

/** scripts/Makefile.lib's size_append: the uncompressed size as 4 bytes, little-endian. */
export function withSizeTrailer(compressed: Uint8Array, uncompressedSize: number): Uint8Array {
  const out = new Uint8Array(compressed.length + 4);
  out.set(compressed);
  new DataView(out.buffer).setUint32(compressed.length, uncompressedSize, true);
  return out;
}

export interface BzImageFields {
  /** The compressed payload, size trailer included (what payload_length covers). */
  payload: Uint8Array;
  /** The string kernel_version points at. */
  version?: string;
  /** Number of 512-byte setup sectors after the boot sector (setup_sects). */
  setupSects?: number;
  /** Bytes of "decompressor code" between the protected-mode start and the payload. */
  payloadOffset?: number;
  /** Bytes after the payload (the rest of the decompressor, padding). */
  tail?: number;
  protocol?: number;
}

/**
 * A minimal bzImage as the x86 boot protocol lays it out: boot sector with the setup header at
 * 0x1f1, `setupSects` setup sectors (holding the version string), then the protected-mode code,
 * which the payload sits inside at payload_offset.
 */
export function makeBzImage(fields: BzImageFields): Uint8Array {
  const setupSects = fields.setupSects ?? 3;
  const payloadOffset = fields.payloadOffset ?? 0x3c0;
  const tail = fields.tail ?? 777;
  const protectedMode = (setupSects + 1) * 512;
  const size = protectedMode + payloadOffset + fields.payload.length + tail;
  const image = new Uint8Array(size);
  const v = new DataView(image.buffer);
  // Something that is not zero around the payload, so an off-by-one would show.
  image.fill(0xcc, protectedMode, protectedMode + payloadOffset);
  image.fill(0x90, size - tail);
  image[0] = 0x4d; // "MZ", as EFI-stub kernels start
  image[1] = 0x5a;
  image[0x1f1] = setupSects;
  v.setUint16(0x1fe, 0xaa55, true);
  image.set([0x48, 0x64, 0x72, 0x53], 0x202); // "HdrS"
  v.setUint16(0x206, fields.protocol ?? 0x020f, true);
  if (fields.version !== undefined) {
    const at = 0x2a0; // in the first setup sector, after the setup header
    image.set(Buffer.from(`${fields.version}\0`, 'latin1'), at);
    v.setUint16(0x20e, at - 0x200, true);
  }
  v.setUint32(0x248, payloadOffset, true);
  v.setUint32(0x24c, fields.payload.length, true);
  image.set(fields.payload, protectedMode + payloadOffset);
  return image;
}

/** The first `length` bytes of a large x86-64 binary on this machine: real code, for BCJ. */
export function x86Sample(length: number): Uint8Array {
  const candidates = [
    '/usr/lib/x86_64-linux-gnu/libLLVM.so.19.1',
    '/usr/lib/x86_64-linux-gnu/libLLVM-19.so.1',
    '/usr/bin/qemu-system-x86_64',
    '/usr/lib/llvm-19/bin/clang',
  ];
  const path = candidates.find((p) => existsSync(p) && statSync(p).size >= length);
  if (path === undefined) throw new Error(`no x86 binary of ${length} bytes among ${candidates.join(', ')}`);
  const out = new Uint8Array(length);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, out, 0, length, 0);
  } finally {
    closeSync(fd);
  }
  return out;
}

/** A seeded xorshift32 generator: fuzz failures reproduce. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

/** A copy of `bytes` with a few random byte changes, sometimes cut short. */
export function mutate(
  bytes: Uint8Array,
  random: () => number,
  focus?: { start: number; end: number },
): Uint8Array {
  const cut = random() < 0.15 ? Math.floor(random() * bytes.length) : bytes.length;
  const out = bytes.slice(0, cut);
  const changes = 1 + Math.floor(random() * 4);
  for (let k = 0; k < changes && out.length > 0; k++) {
    const inFocus = focus !== undefined && random() < 0.7;
    const lo = inFocus ? focus.start : 0;
    const hi = Math.min(inFocus ? focus.end : out.length, out.length);
    if (hi <= lo) continue;
    const at = lo + Math.floor(random() * (hi - lo));
    const r = random();
    if (r < 0.5) out[at] = Math.floor(random() * 256);
    else if (r < 0.8) out[at] = out[at]! ^ (1 << Math.floor(random() * 8));
    else out.fill(r < 0.9 ? 0 : 0xff, at, Math.min(out.length, at + 1 + Math.floor(random() * 8)));
  }
  return out;
}
