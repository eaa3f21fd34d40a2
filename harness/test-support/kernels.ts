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
 * Writes a script for a child process (tests of locks and kills need real processes) that imports
 * the project's modules: paths to `harness/**.ts` in `source` are pointed at their compiled
 * `dist/**.js` (the test command builds first), so the child runs what the suite tests, with no
 * bundler. Returns the script's path; named by content, so reruns reuse one file.
 */
export async function nodeScript(name: string, source: string): Promise<string> {
  const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  const harness = path.join(repo, 'harness') + path.sep;
  const compiled = source.replaceAll(/"([^"]+)\.ts"/g, (whole, file: string) =>
    file.startsWith(harness)
      ? JSON.stringify(path.join(repo, 'dist', `${file.slice(harness.length)}.js`))
      : whole,
  );
  const dir = path.join(repo, 'node_modules', '.cache', 'corematrix-tests');
  await fs.mkdir(dir, { recursive: true });
  const hash = createHash('sha256').update(compiled).digest('hex').slice(0, 16);
  const output = path.join(dir, `${name}.${hash}.mjs`);
  // Written beside it and renamed in, so two workers writing the same script never see half of it.
  const temp = `${output}.${process.pid}.tmp`;
  await fs.writeFile(temp, compiled);
  await fs.rename(temp, output);
  return output;
}
