/**
 * Finds a kernel's BTF wherever the kernel keeps it, pure over Uint8Array: raw BTF (as in
 * /sys/kernel/btf/vmlinux), an ELF's .BTF section (vmlinux, a module, a BPF object), an x86
 * bzImage (vmlinuz: setup header, then a compressed vmlinux ELF), or a compressed vmlinux.
 */

import { Elf } from '../elf/elf.js';
import { NotSupportedError, ParseError } from '../errors.js';
import { type Compression, decompress, detectCompression } from './decompress.js';

export type Container = 'raw' | 'elf' | 'bzimage';

export interface ExtractedBtf {
  /** The BTF blob: a view into the input (raw, ELF) or into the decompressed vmlinux (bzImage). */
  btf: Uint8Array;
  container: Container;
  /** How the vmlinux was compressed (bzImage payload, or a compressed ELF). */
  compression?: Compression;
  /** The kernel release (`uname -r`), when the image tells it. */
  release?: string;
  /** Where the BTF starts: in the input for raw and ELF, in the decompressed ELF otherwise. */
  btfOffset: number;
}

export interface ExtractOptions {
  /** Limit on the decompressed size (default: decompress.ts's, 1 GiB). */
  maxOutput?: number;
}

const BTF_MAGIC_LE = [0x9f, 0xeb] as const;
const BTF_MAGIC_BE = [0xeb, 0x9f] as const;

/**
 * The x86 boot protocol's setup header (Documentation/arch/x86/boot.rst), at fixed offsets from the
 * start of the bzImage.
 */
const SETUP = {
  setupSects: 0x1f1,
  bootFlag: 0x1fe, // 0xaa55
  header: 0x202, // "HdrS"
  version: 0x206,
  kernelVersion: 0x20e, // pointer to the version string, minus 0x200
  payloadOffset: 0x248, // from the start of the protected-mode code (protocol 2.08+)
  payloadLength: 0x24c,
  end: 0x250,
} as const;
const HDRS = [0x48, 0x64, 0x72, 0x53] as const; // "HdrS"
const SECTOR = 512;

/** Whether `bytes` is an x86 bzImage (has a boot-protocol setup header). */
export function isBzImage(bytes: Uint8Array): boolean {
  return bytes.length >= SETUP.end && HDRS.every((b, i) => bytes[SETUP.header + i] === b);
}

/**
 * Extracts the BTF from a kernel image, ELF or raw BTF file. Malformed input → ParseError; a file of
 * no known kind or a compression not handled → NotSupportedError; an image without BTF (a kernel
 * built without CONFIG_DEBUG_INFO_BTF) → NotSupportedError('no-btf').
 */
export function extractBtf(bytes: Uint8Array, options: ExtractOptions = {}): ExtractedBtf {
  if (isRawBtf(bytes)) return { btf: bytes, container: 'raw', btfOffset: 0 };
  if (Elf.isElf(bytes)) return fromElf(bytes);
  if (isBzImage(bytes)) return fromBzImage(bytes, options);
  const compression = detectCompression(bytes);
  if (compression !== undefined) {
    // A compressed vmlinux (or BTF): a kernel build's trailer may follow; decompress.ts copes.
    const { data } = decompress(bytes, { maxOutput: options.maxOutput });
    if (!isRawBtf(data) && !Elf.isElf(data)) {
      throw new NotSupportedError(
        'container',
        `kernel-image: ${compression} data decompresses to neither an ELF nor raw BTF (magic ${magicOf(data)})`,
      );
    }
    return { ...extractBtf(data, options), compression };
  }
  throw new NotSupportedError(
    'container',
    `kernel-image: not raw BTF, an ELF, a bzImage or a compressed kernel (magic ${magicOf(bytes)})`,
  );
}

/** The release string of a bzImage (e.g. "6.1.0-18-amd64"), or undefined when it has none. */
export function kernelRelease(bytes: Uint8Array): string | undefined {
  if (!isBzImage(bytes)) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const pointer = view.getUint16(SETUP.kernelVersion, true);
  if (pointer === 0) return undefined;
  const at = pointer + 0x200;
  if (at >= bytes.length) {
    throw new ParseError(
      'kernel-image',
      `kernel_version points past the end of the file (0x${at.toString(16)})`,
      {
        offset: SETUP.kernelVersion,
      },
    );
  }
  // "6.1.0-18-amd64 (debian-kernel@lists.debian.org) #1 SMP …": the release is the first word.
  const end = Math.min(bytes.length, at + 256);
  let stop = at;
  while (stop < end && bytes[stop] !== 0 && bytes[stop] !== 0x20) stop++;
  const release = Buffer.from(bytes.buffer, bytes.byteOffset + at, stop - at).toString('latin1');
  if (!/^[\x21-\x7e]+$/.test(release)) {
    throw new ParseError('kernel-image', 'kernel_version does not point at a version string', {
      offset: at,
    });
  }
  return release;
}

function isRawBtf(bytes: Uint8Array): boolean {
  return (
    (bytes[0] === BTF_MAGIC_LE[0] && bytes[1] === BTF_MAGIC_LE[1]) ||
    (bytes[0] === BTF_MAGIC_BE[0] && bytes[1] === BTF_MAGIC_BE[1])
  );
}

function fromElf(bytes: Uint8Array): ExtractedBtf {
  const elf = Elf.parse(bytes);
  const section = elf.sectionHeader('.BTF');
  if (section === undefined) {
    throw new NotSupportedError(
      'no-btf',
      'elf: no .BTF section (was the kernel built with CONFIG_DEBUG_INFO_BTF=y?)',
    );
  }
  const release = bannerRelease(elf);
  const result: ExtractedBtf = { btf: elf.contents(section), container: 'elf', btfOffset: section.offset };
  if (release !== undefined) result.release = release;
  return result;
}

function fromBzImage(bytes: Uint8Array, options: ExtractOptions): ExtractedBtf {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint16(SETUP.version, true);
  if (version < 0x208) {
    throw new NotSupportedError(
      'boot-protocol',
      `kernel-image: boot protocol ${version >> 8}.${(version & 0xff).toString().padStart(2, '0')} predates payload_offset (2.08)`,
    );
  }
  // setup_sects 0 means 4, for very old images; the protected-mode code follows the setup sectors.
  const setupSects = bytes[SETUP.setupSects]! || 4;
  const protectedMode = (setupSects + 1) * SECTOR;
  const payloadOffset = view.getUint32(SETUP.payloadOffset, true);
  const payloadLength = view.getUint32(SETUP.payloadLength, true);
  const start = protectedMode + payloadOffset;
  const end = start + payloadLength;
  if (payloadLength < 4 || end > bytes.length) {
    throw new ParseError(
      'kernel-image',
      `payload at 0x${start.toString(16)}+0x${payloadLength.toString(16)} lies outside the file (0x${bytes.length.toString(16)} bytes)`,
      { offset: SETUP.payloadOffset },
    );
  }
  const payload = bytes.subarray(start, end);
  const compression = detectCompression(payload);
  if (compression === undefined) {
    throw new NotSupportedError(
      'compression',
      `kernel-image: unknown payload compression at offset 0x${start.toString(16)} (magic bytes ${magicOf(payload)})`,
    );
  }
  // mkpiggy: the payload ends with the vmlinux's size, 4 bytes LE, after the compressed stream.
  const expectedSize = new DataView(payload.buffer, payload.byteOffset + payload.length - 4).getUint32(
    0,
    true,
  );
  const { data } = decompress(payload, { expectedSize, maxOutput: options.maxOutput, fileOffset: start });
  if (!Elf.isElf(data)) {
    throw new ParseError(
      'kernel-image',
      `payload decompresses to something other than an ELF (magic ${magicOf(data)})`,
      {
        offset: start,
      },
    );
  }
  const inner = fromElf(data);
  // The release is a courtesy: a bad kernel_version pointer does not spoil good BTF.
  const release = releaseOrUndefined(bytes) ?? inner.release;
  const result: ExtractedBtf = {
    btf: inner.btf,
    container: 'bzimage',
    compression,
    btfOffset: inner.btfOffset,
  };
  if (release !== undefined) result.release = release;
  return result;
}

function releaseOrUndefined(bytes: Uint8Array): string | undefined {
  try {
    return kernelRelease(bytes);
  } catch (e) {
    if (e instanceof ParseError) return undefined;
    throw e;
  }
}

/** The release in a vmlinux's linux_banner ("Linux version 6.1.0-18-amd64 (…"), in .rodata. */
function bannerRelease(elf: Elf): string | undefined {
  const rodata = elf.section('.rodata');
  if (rodata === undefined || rodata.length === 0) return undefined;
  const text = Buffer.from(rodata.buffer, rodata.byteOffset, rodata.byteLength);
  const at = text.indexOf('Linux version ');
  if (at < 0) return undefined;
  const start = at + 'Linux version '.length;
  let stop = start;
  while (stop < text.length && stop < start + 128 && text[stop]! > 0x20 && text[stop]! < 0x7f) stop++;
  return stop > start ? text.toString('latin1', start, stop) : undefined;
}

function magicOf(bytes: Uint8Array): string {
  const shown = Array.from(bytes.subarray(0, 6), (b) => b.toString(16).padStart(2, '0')).join(' ');
  return shown === '' ? 'none: empty' : shown;
}
