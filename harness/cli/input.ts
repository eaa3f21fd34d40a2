import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { release } from 'node:os';
import { resolve } from 'node:path';
import type { Btf } from '../btf/btf.js';
import { isCorematrixError } from '../errors.js';
import type { BtfSource } from '../kernels/read.js';

/**
 * Reads the BTF of an input file, as every command does. Raw BTF (what /sys/kernel/btf holds)
 * needs nothing but the parser, so it is read here without loading the container and
 * decompression code (a quarter of a raw dump's startup); anything else, and any file that cannot
 * be read, goes to readBtfFile.
 */
export async function readInput(file: string, base?: Btf): Promise<{ btf: Btf; source: BtfSource }> {
  // The parser loads before the file is read: loading it starts V8 optimizing the parse loop on a
  // background thread (btf.ts, primeScan), which finishes while this thread reads a kernel's
  // megabytes; loaded after, the parse starts before the optimized code is ready (~10 ms slower).
  const { Btf } = await import('../btf/btf.js');
  const raw = readIfRawBtf(file);
  if (raw !== undefined) {
    const btf = withFileSync(file, () => Btf.parse(raw, base === undefined ? {} : { base }));
    const source: BtfSource = { container: 'raw' };
    // The kernel's own BTF (vmlinux and modules) is that of the running kernel.
    if (resolve(file).startsWith('/sys/kernel/btf/')) source.release = release();
    return { btf, source };
  }
  const { readBtfFile } = await import('../kernels/read.js');
  return withFile(file, () => readBtfFile(file, base === undefined ? {} : { base }));
}

/**
 * The file's bytes if it starts with the BTF magic (either byte order), else undefined. Read
 * synchronously: one read() of the whole file, where fs/promises takes 512 KiB at a time through
 * the thread pool, ~5x slower for a kernel's 5.5 MB.
 */
function readIfRawBtf(file: string): Uint8Array | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const magic = new Uint8Array(2);
    const bytesRead = readSync(fd, magic, 0, 2, 0);
    const isBtf =
      bytesRead === 2 &&
      ((magic[0] === 0x9f && magic[1] === 0xeb) || (magic[0] === 0xeb && magic[1] === 0x9f));
    if (!isBtf) return undefined;
    // The read above was positioned: this one starts at the beginning.
    const bytes = readFileSync(fd);
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  } catch {
    // readBtfFile reports it, in the words every reader of kernel files uses.
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Errors while handling a file name that file, unless they already name one. */
export async function withFile<T>(file: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw attachFile(e, file);
  }
}

export function withFileSync<T>(file: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw attachFile(e, file);
  }
}

function attachFile(e: unknown, file: string): unknown {
  if (isCorematrixError(e) && e.file === undefined) e.file = file;
  return e;
}
