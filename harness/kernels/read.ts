/**
 * The I/O edge for kernel BTF: reads a file (raw BTF, ELF, bzImage, compressed vmlinux), extracts
 * and parses its BTF. Errors carry the file's path.
 */
import { readFile } from 'node:fs/promises';
import { Btf } from '../btf/btf.js';
import { inFile, UsageError } from '../errors.js';
import type { Compression } from './decompress.js';
import { type Container, extractBtf } from './image.js';

export interface BtfSource {
  container: Container;
  compression?: Compression;
  release?: string;
}

export interface ReadBtfOptions {
  /** For split BTF (a module's): the base BTF, parsed already or as a path to read first. */
  base?: string | Btf;
}

export interface ReadBtf {
  btf: Btf;
  source: BtfSource;
}

/** Reads the BTF of the file at `path`. A missing or unreadable file → UsageError naming it. */
export async function readBtfFile(path: string, options: ReadBtfOptions = {}): Promise<ReadBtf> {
  const base = typeof options.base === 'string' ? (await readBtfFile(options.base)).btf : options.base;
  const bytes = await readInputFile(path);
  return inFile(path, () => {
    const extracted = extractBtf(bytes);
    const btf = Btf.parse(extracted.btf, base === undefined ? {} : { base });
    const source: BtfSource = { container: extracted.container };
    if (extracted.compression !== undefined) source.compression = extracted.compression;
    if (extracted.release !== undefined) source.release = extracted.release;
    return { btf, source };
  });
}

/** Reads an input file whole; a missing or unreadable file → UsageError naming it. */
export async function readInputFile(path: string): Promise<Uint8Array> {
  try {
    const buffer = await readFile(path);
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES' || code === 'EPERM'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'is a directory'
            : ((e as Error).message ?? String(e));
    throw new UsageError(`cannot read the file: ${why}`, { cause: e, file: path });
  }
}
