/**
 * The kernels of a matrix, whatever their source: a `KernelSource` per declared kernel gives its
 * name, a description of where it comes from, and — offline, or fetching what a Debian kernel
 * lacks — its release, BTF, config and whether it is cached.
 *
 * Offline means no apt and no network: a Debian kernel counts as known only once a fetch has pinned
 * what its spec resolved to (kernels/debian/resolved/*.json) and the entry it names is intact.
 */

import { promises as fs, constants as fsConstants } from 'node:fs';
import path from 'node:path';
import type { Btf } from '../btf/btf.js';
import { CorematrixError, isCorematrixError, UsageError } from '../errors.js';
import { type CacheEntry, cacheRoot, inspectEntry } from '../kernels/cache.js';
import type { KernelConfig } from '../kernels/config.js';
import { type KernelSpec, type Resolution, resolutionFile } from '../kernels/debian.js';

export { resolutionFile };

import type { KernelFilesRead, ReleaseOrigin } from '../kernels/local.js';
import type { BtfSource } from '../kernels/read.js';
import type { DebianKernelDecl, HostKernelDecl, KernelDecl, LocalKernelDecl, Matrix, Tier } from './load.js';
import { unknownKernelMessage } from './load.js';

/** What is known of a kernel: `cached`/`not fetched`/`corrupt` for Debian, `local` and `host` otherwise. */
export type KernelState = 'cached' | 'not fetched' | 'corrupt' | 'local' | 'host';

export interface ResolvedKernel {
  name: string;
  kind: KernelDecl['kind'];
  /** Where it comes from, for people: "Debian bookworm cloud-amd64 6.1", "local ./btf", "host". */
  source: string;
  state: KernelState;
  /** Why a Debian kernel is corrupt or not fetched. */
  detail?: string;
  /** Whether a Debian kernel's files are in the cache (local and host kernels: false). */
  cached: boolean;
  release?: string;
  releaseFrom?: ReleaseOrigin;
  /** Debian: the image package and version the spec resolved to, and the cache entry. */
  package?: string;
  version?: string;
  entry?: string;
  /** The image a VM can boot, when there is one. */
  vmlinuz?: string;
  /** The tiers this kernel can be run in: the vm tier needs an image. */
  tiers: Tier[];
  btfFile?: string;
  btf?: Btf;
  btfSource?: BtfSource;
  configFile?: string;
  config?: KernelConfig;
}

export interface OpenOptions {
  /** Fetch a Debian kernel that is not cached (network); default false: report it as not fetched. */
  fetch?: boolean;
  /** Resolve "newest" again (network). */
  refresh?: boolean;
  /** Read and parse the BTF and config (default true). */
  read?: boolean;
  log?: (line: string) => void;
}

export interface KernelSource {
  readonly decl: KernelDecl;
  readonly name: string;
  /** Where it comes from, for people. */
  describe(): string;
  /** Resolves the kernel; errors name the kernel and where the matrix declares it. */
  open(options?: OpenOptions): Promise<ResolvedKernel>;
}

export interface SourceOptions {
  /** Cache root (default: $COREMATRIX_CACHE or ./kernels). */
  cache?: string;
  /** The matrix file, for error messages. */
  matrixFile?: string;
  /** For the host kernel (tests): prefix of /sys, /boot and /proc, and the release. */
  host?: { root?: string; release?: string };
}

/** The sources of every kernel of a matrix, in the order declared. */
/**
 * The kernel (a declaration or a source) named `name`; a name the matrix does not declare is a
 * UsageError naming the matrix file, with a likely name when there is one.
 */
export function findKernel<K extends { readonly name: string }>(
  kernels: readonly K[],
  name: string,
  matrixFile: string,
): K {
  const found = kernels.find((k) => k.name === name);
  if (found !== undefined) return found;
  throw new UsageError(
    unknownKernelMessage(
      name,
      kernels.map((k) => k.name),
    ),
    { file: matrixFile },
  );
}

export function matrixKernelSources(matrix: Matrix, options: SourceOptions = {}): KernelSource[] {
  return matrix.kernels.map((k) => kernelSource(k, { matrixFile: matrix.file, ...options }));
}

export function kernelSource(decl: KernelDecl, options: SourceOptions = {}): KernelSource {
  const describe = () => describeSource(decl, options.matrixFile);
  return {
    decl,
    name: decl.name,
    describe,
    open: (o = {}) => {
      const opened =
        decl.kind === 'debian'
          ? openDebian(decl, o, options)
          : decl.kind === 'local'
            ? openLocal(decl, o)
            : openHost(decl, o, options);
      return opened.catch((e: unknown) => {
        throw inKernel(e, decl, options.matrixFile);
      });
    },
  };
}

export function describeSource(decl: KernelDecl, matrixFile?: string): string {
  const rel = (p: string) => {
    const r = path.relative(matrixFile === undefined ? process.cwd() : path.dirname(matrixFile), p);
    return r.startsWith('..') || path.isAbsolute(r) ? p : `./${r}`;
  };
  switch (decl.kind) {
    case 'debian': {
      const what = decl.package ?? (decl.version === undefined ? 'newest' : decl.version);
      return `Debian ${decl.suite} ${decl.flavor} ${what}`;
    }
    case 'local': {
      const files = (['btf', 'vmlinux', 'vmlinuz'] as const).filter((k) => decl[k] !== undefined);
      return `local ${files.map((k) => rel(decl[k]!)).join(' ')}`;
    }
    case 'host':
      return decl.vmlinuz === undefined ? 'host' : `host + ${rel(decl.vmlinuz)}`;
  }
}

/** Re-raises an error about a kernel's files as one naming the kernel and its line in the matrix. */
function inKernel(e: unknown, decl: KernelDecl, matrixFile: string | undefined): unknown {
  if (!isCorematrixError(e)) return e;
  const where = matrixFile === undefined ? undefined : `${matrixFile}:${decl.at.line}:${decl.at.column}`;
  return new CorematrixError(e.code, `kernel ${decl.name}: ${e.describe()}`, {
    cause: e,
    ...(where === undefined ? {} : { file: where }),
  });
}

function fromFiles(read: KernelFilesRead): Partial<ResolvedKernel> {
  const r: Partial<ResolvedKernel> = { btfFile: read.btfFile, btf: read.btf, btfSource: read.btfSource };
  if (read.release !== undefined) r.release = read.release;
  if (read.releaseFrom !== undefined) r.releaseFrom = read.releaseFrom;
  if (read.configFile !== undefined) r.configFile = read.configFile;
  if (read.config !== undefined) r.config = read.config;
  return r;
}

// ---------------------------------------------------------------------------------------------
// Debian

export function debianSpec(decl: DebianKernelDecl): KernelSpec {
  const spec: KernelSpec = { suite: decl.suite, flavor: decl.flavor };
  if (decl.version !== undefined) spec.version = decl.version;
  if (decl.package !== undefined) spec.package = decl.package;
  return spec;
}

async function readPinned(file: string): Promise<Resolution | undefined> {
  try {
    const r = JSON.parse(await fs.readFile(file, 'utf8')) as Resolution;
    return typeof r.entry === 'string' && typeof r.release === 'string' ? r : undefined;
  } catch {
    return undefined;
  }
}

async function openDebian(
  decl: DebianKernelDecl,
  options: OpenOptions,
  sourceOptions: SourceOptions,
): Promise<ResolvedKernel> {
  const root = cacheRoot(sourceOptions.cache);
  const spec = debianSpec(decl);
  const base: ResolvedKernel = {
    name: decl.name,
    kind: 'debian',
    source: describeSource(decl),
    state: 'not fetched',
    cached: false,
    tiers: ['static', 'vm'],
  };
  let entry: CacheEntry;
  if (options.fetch === true) {
    const { fetchDebianKernel } = await import('../kernels/debian.js');
    const fetched = await fetchDebianKernel(spec, {
      cache: root,
      ...(options.refresh === undefined ? {} : { refresh: options.refresh }),
      ...(options.log === undefined ? {} : { log: options.log }),
    });
    entry = fetched.entry;
  } else {
    const pinned = await readPinned(resolutionFile(root, spec));
    if (pinned === undefined) return { ...base, detail: 'never fetched' };
    Object.assign(base, { release: pinned.release, package: pinned.package, version: pinned.version });
    const dir = path.join(root, pinned.entry);
    const state = await inspectEntry(dir);
    if (state.state !== 'ok') {
      return {
        ...base,
        state: state.state === 'missing' ? 'not fetched' : 'corrupt',
        detail: state.state === 'missing' ? `no cache entry ${dir}` : state.problem,
      };
    }
    entry = state.entry;
  }
  const dir = entry.dir;
  const meta = entry.meta;
  const resolved: ResolvedKernel = {
    ...base,
    state: 'cached',
    cached: true,
    release: meta.release,
    releaseFrom: 'vmlinuz',
    package: meta.package,
    version: meta.version,
    entry: dir,
    vmlinuz: path.join(dir, 'vmlinuz'),
    configFile: path.join(dir, 'config'),
  };
  if (meta.files.btf === undefined) {
    // Written by a fetch killed before it added the BTF: the next fetch adds it.
    return { ...resolved, state: 'not fetched', cached: false, detail: 'the entry has no BTF yet' };
  }
  resolved.btfFile = path.join(dir, 'btf');
  if (options.read === false) return resolved;
  const { readLocalKernel } = await import('../kernels/local.js');
  const read = await readLocalKernel({ btf: resolved.btfFile, config: resolved.configFile! });
  return { ...resolved, ...fromFiles(read), release: meta.release, releaseFrom: 'vmlinuz' };
}

// ---------------------------------------------------------------------------------------------
// Local files and the host

async function openLocal(decl: LocalKernelDecl, options: OpenOptions): Promise<ResolvedKernel> {
  const resolved: ResolvedKernel = {
    name: decl.name,
    kind: 'local',
    source: describeSource(decl),
    state: 'local',
    cached: false,
    tiers: decl.vmlinuz === undefined ? ['static'] : ['static', 'vm'],
  };
  if (decl.vmlinuz !== undefined) resolved.vmlinuz = decl.vmlinuz;
  const { readLocalKernel, imageRelease } = await import('../kernels/local.js');
  if (options.read === false) {
    // Only that the files are there, and the release when the image tells it cheaply.
    for (const f of [decl.btf, decl.vmlinux, decl.config]) if (f !== undefined) await mustBeReadable(f);
    if (decl.vmlinuz !== undefined) {
      const release = await imageRelease(decl.vmlinuz);
      if (release !== undefined) Object.assign(resolved, { release, releaseFrom: 'vmlinuz' });
    }
    return resolved;
  }
  const files: Parameters<typeof readLocalKernel>[0] = {};
  for (const k of ['vmlinuz', 'vmlinux', 'btf', 'config'] as const)
    if (decl[k] !== undefined) files[k] = decl[k];
  return { ...resolved, ...fromFiles(await readLocalKernel(files)) };
}

async function openHost(
  decl: HostKernelDecl,
  options: OpenOptions,
  sourceOptions: SourceOptions,
): Promise<ResolvedKernel> {
  const { hostKernelPaths, readHostKernel } = await import('../kernels/host.js');
  const paths = hostKernelPaths(sourceOptions.host);
  const resolved: ResolvedKernel = {
    name: decl.name,
    kind: 'host',
    source: describeSource(decl),
    state: 'host',
    cached: false,
    release: paths.release,
    releaseFrom: 'uname',
    btfFile: paths.btf,
    // Static only, unless the matrix gives the running kernel's image for a VM to boot.
    tiers: decl.vmlinuz === undefined ? ['static'] : ['static', 'vm'],
  };
  if (paths.config !== undefined) resolved.configFile = paths.config;
  if (decl.vmlinuz !== undefined) resolved.vmlinuz = decl.vmlinuz;
  if (options.read === false) return resolved;
  return { ...resolved, ...fromFiles(await readHostKernel(sourceOptions.host)) };
}

async function mustBeReadable(file: string): Promise<void> {
  try {
    await fs.access(file, fsConstants.R_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`cannot read the file: ${code === 'ENOENT' ? 'no such file' : String(code)}`, {
      cause: e,
      file,
    });
  }
}
