/**
 * What QEMU boots for a vmlinuz. Under TCG the bzImage's own decompressor is slow: a zstd-packed
 * kernel spends over half a second of emulated time unpacking itself before it prints a line. A
 * kernel built with CONFIG_PVH has an ELF note (Xen's PHYS32_ENTRY) that lets QEMU's -kernel load
 * the uncompressed vmlinux ELF and enter it directly; so the vmlinux is taken out of the bzImage
 * once (decompressed on the host, in a second or less), kept in a cache keyed by the vmlinuz's
 * SHA-256, and booted instead. Same kernel code and configuration; only the boot path differs (no
 * decompressor, so no KASLR). A vmlinuz without the note, or one this cannot unpack, boots as is.
 */

import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Elf } from '../elf/elf.js';
import { decompress } from '../kernels/decompress.js';
import { isBzImage } from '../kernels/image.js';

export interface BootImage {
  /** The file to give QEMU's -kernel. */
  path: string;
  /** 'pvh': the uncompressed vmlinux, entered through its PVH note; else the file as given. */
  kind: 'pvh' | 'as-given';
  /** Why not PVH, when not. */
  reason?: string;
}

/** Where unpacked kernels are kept: $COREMATRIX_VMLINUX_CACHE, else a directory under the system's temp. */
export function vmlinuxCacheDir(): string {
  const fromEnv = process.env.COREMATRIX_VMLINUX_CACHE;
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : path.join(os.tmpdir(), 'corematrix-vmlinux');
}

const XEN_ELFNOTE_PHYS32_ENTRY = 18;

/** Whether the ELF has Xen's PHYS32_ENTRY note in .notes (what QEMU needs to boot it with -kernel). */
export function hasPvhNote(vmlinux: Uint8Array): boolean {
  if (!Elf.isElf(vmlinux)) return false;
  const notes = Elf.parse(vmlinux).section('.notes');
  if (notes === undefined) return false;
  const v = new DataView(notes.buffer, notes.byteOffset, notes.byteLength);
  const align4 = (n: number): number => (n + 3) & ~3;
  for (let at = 0; at + 12 <= notes.length; ) {
    const nameSize = v.getUint32(at, true);
    const descSize = v.getUint32(at + 4, true);
    const type = v.getUint32(at + 8, true);
    const name = Buffer.from(notes.subarray(at + 12, at + 12 + Math.max(0, nameSize - 1))).toString('latin1');
    if (name === 'Xen' && type === XEN_ELFNOTE_PHYS32_ENTRY) return true;
    at += 12 + align4(nameSize) + align4(descSize);
  }
  return false;
}

/** The vmlinux ELF inside a bzImage (the payload the setup header points at, decompressed). */
export function unpackBzImage(bytes: Uint8Array): Uint8Array {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // Documentation/arch/x86/boot.rst: setup_sects (0 means 4), then the protected-mode code, whose
  // payload_offset/payload_length (protocol 2.08+) locate the compressed vmlinux.
  const setupSectors = bytes[0x1f1] || 4;
  const protectedMode = (setupSectors + 1) * 512;
  const offset = protectedMode + v.getUint32(0x248, true);
  const length = v.getUint32(0x24c, true);
  return decompress(bytes.subarray(offset, offset + length)).data;
}

const pending = new Map<string, Promise<BootImage>>();

/** The image to boot for `vmlinuz` (unpacked once per kernel, then read from the cache). */
export function bootImage(vmlinuz: string, cacheDir = vmlinuxCacheDir()): Promise<BootImage> {
  const key = `${cacheDir}\0${path.resolve(vmlinuz)}`;
  let p = pending.get(key);
  if (p === undefined) {
    p = findOrUnpack(vmlinuz, cacheDir);
    pending.set(key, p);
    // A kernel file replaced later gets looked at again by the next process; this one keeps its answer.
  }
  return p;
}

async function findOrUnpack(vmlinuz: string, cacheDir: string): Promise<BootImage> {
  const bytes = new Uint8Array(await fs.readFile(vmlinuz));
  if (!isBzImage(bytes)) return { path: vmlinuz, kind: 'as-given', reason: 'not a bzImage' };
  const hash = createHash('sha256').update(bytes).digest('hex');
  const out = path.join(cacheDir, `${hash}.vmlinux`);
  const none = path.join(cacheDir, `${hash}.no-pvh`);
  if (await exists(out)) return { path: out, kind: 'pvh' };
  if (await exists(none)) return { path: vmlinuz, kind: 'as-given', reason: await fs.readFile(none, 'utf8') };

  let reason: string | undefined;
  let vmlinux: Uint8Array | undefined;
  try {
    vmlinux = unpackBzImage(bytes);
    if (!hasPvhNote(vmlinux)) reason = 'the vmlinux has no PVH entry note (CONFIG_PVH off)';
  } catch (e) {
    reason = `cannot unpack the bzImage: ${(e as Error).message}`;
  }
  await fs.mkdir(cacheDir, { recursive: true });
  // Written beside and renamed in: a process reading the cache never sees half a file.
  const temp = `${reason === undefined ? out : none}.${process.pid}.tmp`;
  await fs.writeFile(temp, reason === undefined ? vmlinux! : reason);
  await fs.rename(temp, reason === undefined ? out : none);
  return reason === undefined ? { path: out, kind: 'pvh' } : { path: vmlinuz, kind: 'as-given', reason };
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(
    () => true,
    () => false,
  );
}
