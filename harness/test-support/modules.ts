/**
 * Real module BTF for tests on hosts whose /sys/kernel/btf holds only vmlinux (containers, CI):
 * a few modules of one default Debian kernel, taken from its image package (downloaded again through
 * the private apt, checked against the hash its cache entry recorded), decompressed, and kept as a
 * cache entry of their own, so only the first test run pays for the download. The kernel's vmlinux
 * BTF (its entry's btf file) is the base they are split on.
 */

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { NotSupportedError } from '../errors.js';
import { type CacheEntry, entryLock, inspectEntry, sha256, withLock, writeEntry } from '../kernels/cache.js';
import { fetchDebianKernel, pickDebMembers, withDownloadedDebs } from '../kernels/debian.js';
import { decompress, detectCompression } from '../kernels/decompress.js';
import { extractBtf } from '../kernels/image.js';
import { DEFAULT_DEBIAN_KERNELS, testCacheRoot } from './kernels.js';

/**
 * Trixie's kernel: its package ships modules as .ko.xz, so taking them out goes through
 * decompress.ts, and the package is one .deb (sid splits the image over several).
 */
const MODULES_KERNEL = DEFAULT_DEBIAN_KERNELS.find((k) => k.name === 'debian-trixie-6.12')!;

/** How many modules the cache entry keeps: a spread over the package's module sizes. */
export const CACHED_MODULE_COUNT = 8;

export interface ModuleBtfs {
  /** The kernel's vmlinux BTF (raw), the base of the modules' split BTF. */
  base: string;
  /** ELF modules (.ko, uncompressed) that carry a .BTF section, smallest first. */
  modules: string[];
}

let cached: Promise<{ base: string; entry: CacheEntry }> | undefined;

/**
 * Up to `n` (at most CACHED_MODULE_COUNT) modules with BTF of a default Debian kernel, spread over
 * the size range, with that kernel's vmlinux BTF as their base. The first call on an empty cache
 * downloads the kernel's image package (about 35 MB); later ones read the cache.
 */
export async function debianModuleBtfs(n: number): Promise<ModuleBtfs> {
  if (!Number.isInteger(n) || n < 1 || n > CACHED_MODULE_COUNT) {
    throw new RangeError(`asked for ${n} modules; the cache keeps 1 to ${CACHED_MODULE_COUNT}`);
  }
  cached ??= ensureModulesEntry();
  const { base, entry } = await cached;
  const bySize = Object.keys(entry.meta.files)
    .map((name) => ({
      file: path.join(entry.dir, name),
      size: (entry.meta.moduleSizes as Record<string, number>)[name]!,
    }))
    .sort((a, b) => a.size - b.size || a.file.localeCompare(b.file));
  return { base, modules: spread(bySize, n).map((m) => m.file) };
}

/** `n` items of `sorted`, evenly spaced from the first to the last. */
function spread<T>(sorted: readonly T[], n: number): T[] {
  if (sorted.length <= n) return [...sorted];
  if (n === 1) return [sorted[0]!];
  return Array.from({ length: n }, (_, i) => sorted[Math.round((i * (sorted.length - 1)) / (n - 1))]!);
}

async function ensureModulesEntry(): Promise<{ base: string; entry: CacheEntry }> {
  const root = testCacheRoot();
  const kernel = await fetchDebianKernel(MODULES_KERNEL.spec, { cache: root });
  const dir = path.join(root, 'debian', 'modules', path.basename(kernel.dir));
  const entry = await withLock(entryLock(dir), async () => {
    const existing = await inspectEntry(dir, { verify: true });
    if (existing.state === 'ok') return existing.entry;
    const debs = kernel.entry.meta.debs as { package: string; version: string; sha256: string }[];
    return withDownloadedDebs(root, { suite: kernel.suite, debs }, {}, async (debFiles) => {
      const files: Record<string, Uint8Array> = {};
      const moduleSizes: Record<string, number> = {};
      const sources: Record<string, string> = {};
      for (const [i, deb] of debFiles.entries()) {
        const hash = sha256(await readFile(deb));
        if (hash !== debs[i]!.sha256) {
          throw new Error(`${deb}: SHA-256 ${hash}, but the kernel's entry recorded ${debs[i]!.sha256}`);
        }
        const prefix = `usr/lib/modules/${kernel.release}/kernel/`;
        const members = await pickDebMembers(deb, (p) => p.startsWith(prefix) && /\.ko(\.[a-z]+)?$/.test(p));
        for (const picked of pickModulesWithBtf(members)) {
          files[picked.name] = picked.elf;
          moduleSizes[picked.name] = picked.elf.length;
          sources[picked.name] = picked.member;
        }
      }
      if (Object.keys(files).length === 0) {
        throw new Error(`${debs.map((d) => d.package).join(' + ')} ship no modules with .BTF`);
      }
      return writeEntry(dir, files, {
        release: kernel.release,
        package: kernel.package,
        version: kernel.version,
        suite: kernel.suite,
        flavor: kernel.entry.meta.flavor,
        debs,
        moduleSizes,
        sources,
      });
    });
  });
  return { base: kernel.btf, entry };
}

/**
 * CACHED_MODULE_COUNT modules spread over the members' (compressed) sizes, decompressed, each one
 * that has no .BTF section replaced by the next larger one that has.
 */
function pickModulesWithBtf(
  members: Map<string, Buffer>,
): { name: string; member: string; elf: Uint8Array }[] {
  const sorted = [...members.entries()]
    .map(([member, bytes]) => ({ member, bytes }))
    .sort((a, b) => a.bytes.length - b.bytes.length || a.member.localeCompare(b.member));
  const wanted = spread(
    sorted.map((_, i) => i),
    CACHED_MODULE_COUNT,
  );
  const picked: { name: string; member: string; elf: Uint8Array }[] = [];
  const used = new Set<number>();
  for (const start of wanted) {
    for (let i = start; i < sorted.length; i++) {
      if (used.has(i)) continue;
      used.add(i);
      const { member, bytes } = sorted[i]!;
      const elf = detectCompression(bytes) === undefined ? new Uint8Array(bytes) : decompress(bytes).data;
      if (!hasBtfSection(elf)) continue;
      picked.push({ name: path.basename(member).replace(/\.ko\.[a-z]+$/, '.ko'), member, elf });
      break;
    }
  }
  return picked;
}

function hasBtfSection(elf: Uint8Array): boolean {
  try {
    return extractBtf(elf).container === 'elf';
  } catch (e) {
    // A module built without BTF; anything else (a corrupt ELF) is worth failing on.
    if (e instanceof NotSupportedError && e.feature === 'no-btf') return false;
    throw e;
  }
}
