/**
 * Real Debian cloud kernels for tests: one per supported Debian release, kept in kernels/ at the
 * repository root (or $COREMATRIX_CACHE). The first call fetches what is missing from Debian's
 * archive; after that it reads only the cache.
 */

import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type DebianKernel, fetchDebianKernel, type KernelSpec } from '../kernels/debian.js';

export interface CachedKernel {
  /** A short stable name, e.g. "debian-bookworm-6.1". */
  name: string;
  suite: string;
  /** `uname -r` of the kernel, e.g. "6.1.0-50-cloud-amd64". */
  release: string;
  /** The cache entry directory. */
  dir: string;
  vmlinuz: string;
  config: string;
  /** Raw BTF extracted from the vmlinuz (fetching adds it to every entry). */
  btf?: string;
}

/** The kernels tests run against: each Debian release's cloud kernel, and the newest in sid. */
export const DEFAULT_DEBIAN_KERNELS: readonly { name: string; spec: KernelSpec }[] = [
  { name: 'debian-bullseye-5.10', spec: { suite: 'bullseye', version: '5.10' } },
  { name: 'debian-bookworm-6.1', spec: { suite: 'bookworm', version: '6.1' } },
  { name: 'debian-trixie-6.12', spec: { suite: 'trixie', version: '6.12' } },
  { name: 'debian-sid', spec: { suite: 'sid' } },
];

/** kernels/ at the repository root, unless $COREMATRIX_CACHE says otherwise. */
export function testCacheRoot(): string {
  const fromEnv = process.env.COREMATRIX_CACHE;
  if (fromEnv !== undefined && fromEnv !== '') return path.resolve(fromEnv);
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'kernels');
}

export function toCachedKernel(name: string, k: DebianKernel): CachedKernel {
  return {
    name,
    suite: k.suite,
    release: k.release,
    dir: k.dir,
    vmlinuz: k.vmlinuz,
    config: k.config,
    ...(k.entry.meta.files.btf === undefined ? {} : { btf: k.btf }),
  };
}

/**
 * Ensures the default kernels are cached and returns them (fetching in parallel: they are in
 * different suites, so they take different locks). Call from beforeAll; the first run on an empty
 * cache needs Debian's archive and takes about a minute.
 */
export async function defaultDebianKernels(): Promise<CachedKernel[]> {
  const cache = testCacheRoot();
  return Promise.all(
    DEFAULT_DEBIAN_KERNELS.map(async ({ name, spec }) =>
      toCachedKernel(name, await fetchDebianKernel(spec, { cache })),
    ),
  );
}

/**
 * Bundles a TypeScript entry (given as source, importing repository modules by absolute path) into
 * one ES module runnable by plain `node`, for tests that need separate processes (to kill them, or
 * to race them). Bare imports (npm packages) stay external and resolve from the repository's
 * node_modules, where the bundle is written.
 */
export async function bundleForNode(name: string, source: string): Promise<string> {
  const { build } = await import('rolldown');
  const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  const dir = path.join(repo, 'node_modules', '.cache', 'corematrix-tests');
  await fs.mkdir(dir, { recursive: true });
  // Named by content, so reruns reuse one file instead of piling up; built beside it and renamed
  // in, so two workers building the same bundle never see half of it.
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const output = path.join(dir, `${name}.${hash}.mjs`);
  const entry = path.join(dir, `${name}.${hash}.${process.pid}.ts`);
  const built = path.join(dir, `${name}.${hash}.${process.pid}.mjs`);
  await fs.writeFile(entry, source);
  try {
    await build({
      input: entry,
      platform: 'node',
      external: [/^[^./]/],
      output: { file: built, format: 'esm' },
      logLevel: 'warn',
    });
    await fs.rename(built, output);
  } finally {
    await fs.rm(entry, { force: true });
    await fs.rm(built, { force: true });
  }
  return output;
}
