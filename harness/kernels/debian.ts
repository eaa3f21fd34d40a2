/**
 * Debian kernels: resolve a spec (suite, flavor, version prefix or exact package) to the newest
 * matching kernel image package of that suite, download it through a private apt (which checks
 * the archive's signatures and the packages' hashes), and keep its vmlinuz and config in the cache.
 *
 * Where the files are depends on the packaging. Up to trixie, linux-image-<release> (signed) and
 * linux-image-<release>-unsigned each carry /boot/vmlinuz-<release> and /boot/config-<release>
 * (with all the modules). In sid (forky) linux-image-<release> is an empty package depending on
 * linux-binary-<release> (the signed image, as /usr/lib/modules/<release>/vmlinuz; the unsigned one
 * is linux-binary-unsigned-<release>, …/vmlinuz.unsigned) and linux-base-<release> (…/config).
 */

import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { inFile, isCorematrixError, ParseError, UsageError } from '../errors.js';
import {
  type Deb822Paragraph,
  debianMirrorFor,
  inheritedAptSettings,
  ioError,
  PrivateApt,
  readSystemSources,
} from './apt.js';
import {
  addFile,
  type CacheEntry,
  cacheRoot,
  entryDirName,
  entryLock,
  inspectEntry,
  sha256,
  withLock,
  writeEntry,
  writeFileAtomic,
} from './cache.js';
import { extractBtf, kernelRelease } from './image.js';

// ---------------------------------------------------------------------------------------------
// Debian version order (deb-version(7)), as dpkg --compare-versions computes it.

function charOrder(c: string | undefined): number {
  if (c === undefined) return 0;
  if (c === '~') return -1;
  if (/[A-Za-z]/.test(c)) return c.charCodeAt(0);
  return c.charCodeAt(0) + 256;
}

/** dpkg's verrevcmp: alternating runs of non-digits (compared by charOrder) and digits (as numbers). */
function compareFragment(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    while ((i < a.length && !/[0-9]/.test(a[i]!)) || (j < b.length && !/[0-9]/.test(b[j]!))) {
      const ca = i < a.length && !/[0-9]/.test(a[i]!) ? a[i] : undefined;
      const cb = j < b.length && !/[0-9]/.test(b[j]!) ? b[j] : undefined;
      const d = charOrder(ca) - charOrder(cb);
      if (d !== 0) return d;
      if (ca !== undefined) i++;
      if (cb !== undefined) j++;
    }
    while (a[i] === '0') i++;
    while (b[j] === '0') j++;
    let first = 0;
    while (i < a.length && /[0-9]/.test(a[i]!) && j < b.length && /[0-9]/.test(b[j]!)) {
      if (first === 0) first = a.charCodeAt(i) - b.charCodeAt(j);
      i++;
      j++;
    }
    if (i < a.length && /[0-9]/.test(a[i]!)) return 1;
    if (j < b.length && /[0-9]/.test(b[j]!)) return -1;
    if (first !== 0) return first;
  }
  return 0;
}

function splitVersion(v: string): { epoch: number; upstream: string; revision: string } {
  const colon = v.indexOf(':');
  const epoch = colon >= 0 ? Number(v.slice(0, colon)) : 0;
  const rest = colon >= 0 ? v.slice(colon + 1) : v;
  const dash = rest.lastIndexOf('-');
  return {
    epoch: Number.isFinite(epoch) ? epoch : 0,
    upstream: dash >= 0 ? rest.slice(0, dash) : rest,
    revision: dash >= 0 ? rest.slice(dash + 1) : '',
  };
}

/** Negative, zero or positive as Debian version `a` sorts before, with or after `b`. */
export function compareDebianVersions(a: string, b: string): number {
  const va = splitVersion(a);
  const vb = splitVersion(b);
  if (va.epoch !== vb.epoch) return va.epoch - vb.epoch;
  return compareFragment(va.upstream, vb.upstream) || compareFragment(va.revision, vb.revision);
}

// ---------------------------------------------------------------------------------------------
// Choosing the package

export interface KernelSpec {
  suite: string;
  /** Debian's kernel flavor; default "cloud-amd64". */
  flavor?: string;
  /** A prefix of the kernel version, e.g. "6.12" (matches 6.12.117-1, not 6.1.x). */
  version?: string;
  /** An exact image package name, e.g. "linux-image-6.1.0-50-cloud-amd64-unsigned". */
  package?: string;
  /** The signed image (as installed on machines, the default) or the unsigned build of it. */
  variant?: 'signed' | 'unsigned';
}

/**
 * Debian's kernel ABI name, the part of the release before the flavor: "5.10.0-32", "6.1.0-50",
 * "6.12.117+deb13", "6.13-rc7". Matching it exactly keeps one flavor from swallowing another that
 * ends alike ("cloud-amd64" also ends in "-amd64").
 */
const ABI_NAME = String.raw`\d+\.\d+(?:\.\d+)*(?:-rc\d+)?(?:-\d+)?(?:\+[a-z0-9.]+)?`;

/** A kernel image package name taken apart: linux-image-<abi>-<flavor>[-unsigned]. */
export function parseImagePackageName(
  name: string,
  flavor: string,
): { release: string; variant: 'signed' | 'unsigned' } | undefined {
  const escaped = flavor.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = new RegExp(`^linux-image-(${ABI_NAME}-${escaped})(-unsigned)?$`).exec(name);
  if (m === null) return undefined;
  return { release: m[1]!, variant: m[2] === undefined ? 'signed' : 'unsigned' };
}

/** Whether Debian version `version` starts with the version prefix `prefix` ("6.1" ≠ "6.12.3-1"). */
export function versionMatchesPrefix(version: string, prefix: string): boolean {
  const upstream = splitVersion(version).upstream;
  const full = version.replace(/^\d+:/, '');
  for (const v of [upstream, full]) {
    if (v === prefix) return true;
    if (v.startsWith(prefix) && /^[.\-+~]/.test(v.slice(prefix.length))) return true;
  }
  return false;
}

/** The package fields the choice needs. */
export interface PackageInfo {
  package: string;
  version: string;
  depends: string[];
}

export function packageInfo(p: Deb822Paragraph): PackageInfo {
  return {
    package: p.get('package') ?? '',
    version: p.get('version') ?? '',
    depends: (p.get('depends') ?? '')
      .split(',')
      .map((d) => d.trim().split(/\s/)[0] ?? '')
      .filter(Boolean),
  };
}

/**
 * Picks the newest image package matching the spec from a suite's image packages. Signed and
 * unsigned builds of one kernel share a version; the variant asked for wins. Sid has no
 * "-unsigned" image package (the unsigned build is a linux-binary-unsigned-* package), so there
 * the unsigned variant starts from the signed image package and `payloadPackages` switches.
 */
export function chooseImage(candidates: PackageInfo[], spec: KernelSpec): PackageInfo | undefined {
  const flavor = spec.flavor ?? 'cloud-amd64';
  const variant = spec.variant ?? 'signed';
  const matching = candidates.filter((c) => {
    if (spec.package !== undefined) return c.package === spec.package;
    const parsed = parseImagePackageName(c.package, flavor);
    if (parsed === undefined) return false;
    if (variant === 'signed' && parsed.variant !== 'signed') return false;
    return spec.version === undefined || versionMatchesPrefix(c.version, spec.version);
  });
  const preference = (c: PackageInfo) =>
    parseImagePackageName(c.package, flavor)?.variant === variant ? 1 : 0;
  matching.sort((a, b) => compareDebianVersions(b.version, a.version) || preference(b) - preference(a));
  return matching[0];
}

/**
 * The packages whose files make up the kernel: the image package itself, or, when it only depends
 * on split packages (sid), the linux-binary(-unsigned)-<release> and linux-base-<release> it needs.
 */
export function payloadPackages(
  image: PackageInfo,
  release: string,
  variant: 'signed' | 'unsigned',
): string[] {
  const binary = `linux-binary-${release}`;
  if (!image.depends.includes(binary)) return [image.package];
  const base = `linux-base-${release}`;
  return [variant === 'unsigned' ? `linux-binary-unsigned-${release}` : binary, base];
}

/** Where, inside a kernel package, each wanted file may be (paths as in the .deb, without "./"). */
export function payloadPaths(release: string): Map<string, 'vmlinuz' | 'config'> {
  return new Map([
    [`boot/vmlinuz-${release}`, 'vmlinuz'],
    [`usr/lib/modules/${release}/vmlinuz`, 'vmlinuz'],
    [`usr/lib/modules/${release}/vmlinuz.unsigned`, 'vmlinuz'],
    [`boot/config-${release}`, 'config'],
    [`usr/lib/modules/${release}/config`, 'config'],
  ]);
}

// ---------------------------------------------------------------------------------------------
// Reading the .deb's data tar as it streams out of dpkg-deb

/** Pulls exact byte counts out of a stream of chunks. */
class ChunkReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private done = false;
  constructor(private readonly source: AsyncIterator<Buffer | Uint8Array | string>) {}

  private async fill(n: number): Promise<void> {
    while (this.buffered < n && !this.done) {
      const next = await this.source.next();
      if (next.done === true) {
        this.done = true;
        break;
      }
      const chunk = typeof next.value === 'string' ? Buffer.from(next.value) : Buffer.from(next.value);
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
  }

  /** Exactly n bytes, or fewer only at the end of the stream. */
  async read(n: number): Promise<Buffer> {
    await this.fill(n);
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const out = all.subarray(0, Math.min(n, all.length));
    const rest = all.subarray(out.length);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return out;
  }

  async skip(n: number): Promise<void> {
    let left = n;
    while (left > 0) {
      const got = await this.read(Math.min(left, 1 << 20));
      if (got.length === 0) return;
      left -= got.length;
    }
  }
}

function cString(block: Buffer, start: number, length: number): string {
  const field = block.subarray(start, start + length);
  const nul = field.indexOf(0);
  return field.subarray(0, nul < 0 ? field.length : nul).toString('utf8');
}

function tarNumber(block: Buffer, start: number, length: number, what: string): number {
  const field = block.subarray(start, start + length);
  if ((field[0]! & 0x80) !== 0) {
    // GNU base-256: big-endian, high bit of the first byte set.
    let n = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i]!;
    return n;
  }
  const text = cString(block, start, length).trim();
  if (!/^[0-7]*$/.test(text))
    throw new ParseError('kernel-image', `tar header ${what} is not octal: ${JSON.stringify(text)}`);
  return text === '' ? 0 : Number.parseInt(text, 8);
}

/**
 * Reads a tar stream and keeps the regular files whose path (without a leading "./") `wanted`
 * accepts. Stops reading once `enough(found)` says so. Handles ustar prefixes, GNU long names and
 * pax path records, which is all dpkg-deb emits.
 */
export async function pickTarMembers(
  stream: AsyncIterable<Buffer | Uint8Array | string>,
  wanted: (p: string) => boolean,
  enough: (found: Map<string, Buffer>) => boolean = () => false,
): Promise<Map<string, Buffer>> {
  const reader = new ChunkReader(stream[Symbol.asyncIterator]());
  const found = new Map<string, Buffer>();
  let longName: string | undefined;
  for (;;) {
    const header = await reader.read(512);
    if (header.length < 512 || header.every((b) => b === 0)) break;
    const size = tarNumber(header, 124, 12, 'size');
    const type = String.fromCharCode(header[156]!);
    let name = cString(header, 0, 100);
    if (header.subarray(257, 262).toString('latin1') === 'ustar') {
      const prefix = cString(header, 345, 155);
      if (prefix !== '') name = `${prefix}/${name}`;
    }
    const padded = Math.ceil(size / 512) * 512;
    if (type === 'L' || type === 'x') {
      const data = await reader.read(padded);
      const body = data.subarray(0, size);
      if (type === 'L') longName = cString(body, 0, body.length);
      else {
        const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(body.toString('utf8'));
        if (m !== null) longName = m[1]!;
      }
      continue;
    }
    if (longName !== undefined) {
      name = longName;
      longName = undefined;
    }
    const clean = name.replace(/^\.\//, '');
    if ((type === '0' || type === '\0') && wanted(clean)) {
      const data = await reader.read(padded);
      if (data.length < size) throw new ParseError('kernel-image', `tar member ${clean} is truncated`);
      found.set(clean, Buffer.from(data.subarray(0, size)));
      if (enough(found)) break;
    } else {
      await reader.skip(padded);
    }
  }
  return found;
}

/** Extracts the wanted kernel files of a .deb's data archive, stopping once it has them all. */
function extractFromDeb(
  deb: string,
  paths: Map<string, 'vmlinuz' | 'config'>,
  needed: Set<'vmlinuz' | 'config'>,
): Promise<Map<string, Buffer>> {
  return pickDebMembers(
    deb,
    (p) => paths.has(p),
    (f) => {
      const have = new Set([...f.keys()].map((k) => paths.get(k)));
      return [...needed].every((n) => have.has(n));
    },
  );
}

/**
 * The regular files of a .deb's data archive whose path (without "./") `wanted` accepts, read as
 * dpkg-deb streams the archive out; stops reading once `enough(found)` says so.
 */
export async function pickDebMembers(
  deb: string,
  wanted: (p: string) => boolean,
  enough: (found: Map<string, Buffer>) => boolean = () => false,
): Promise<Map<string, Buffer>> {
  const child = execa('dpkg-deb', ['--fsys-tarfile', deb], { buffer: false, reject: false, stdin: 'ignore' });
  let stoppedEarly = false;
  try {
    const found = await pickTarMembers(child.stdout, wanted, (f) => {
      stoppedEarly = enough(f);
      return stoppedEarly;
    });
    // dpkg-deb's decompressing child writes the pipe, not dpkg-deb: closing our end is what stops
    // it (SIGPIPE); killing dpkg-deb alone would leave it blocked and the pipe never ending.
    if (stoppedEarly) stopChild(child);
    const result = await child;
    if (!stoppedEarly && result.failed)
      throw ioError(`dpkg-deb --fsys-tarfile failed: ${result.shortMessage}`, deb);
    return found;
  } catch (e) {
    stopChild(child);
    await child.catch(() => undefined);
    throw e;
  }
}

function stopChild(child: { stdout: { destroy(): void }; kill(): boolean }): void {
  child.stdout.destroy();
  child.kill();
}

// ---------------------------------------------------------------------------------------------
// Fetching into the cache

/** How a spec was resolved: enough to fetch the same kernel again without asking apt to choose. */
export interface Resolution {
  suite: string;
  flavor: string;
  variant: 'signed' | 'unsigned';
  release: string;
  /** The image package chosen, and its version. */
  package: string;
  version: string;
  /** The packages carrying the files, with exact versions. */
  debs: { package: string; version: string }[];
  /** Entry directory, relative to the cache root. */
  entry: string;
  resolvedAt: string;
}

export interface DebianKernel {
  name: string;
  suite: string;
  release: string;
  package: string;
  version: string;
  dir: string;
  vmlinuz: string;
  config: string;
  /** Raw BTF taken from the vmlinuz (what /sys/kernel/btf/vmlinux holds on that kernel). */
  btf: string;
  entry: CacheEntry;
}

export interface FetchOptions {
  /** Cache root (default: $COREMATRIX_CACHE or ./kernels). */
  cache?: string;
  /** Update the suite's index and resolve "newest" again instead of using the cached resolution. */
  refresh?: boolean;
  /** Progress messages, one line each. */
  log?: (line: string) => void;
}

/** Where fetchDebianKernel pins what a spec resolved to, under the cache root. */
export function resolutionFile(root: string, spec: KernelSpec): string {
  return path.join(root, 'debian', 'resolved', `${specKey(spec)}.json`);
}

function specKey(spec: KernelSpec): string {
  const parts = [
    spec.suite,
    spec.flavor ?? 'cloud-amd64',
    spec.variant ?? 'signed',
    spec.package ?? (spec.version === undefined ? 'newest' : `v${spec.version}`),
  ];
  return parts.join('_').replace(/[^A-Za-z0-9._+-]/g, '-');
}

function checkSpec(spec: KernelSpec): void {
  if (!/^[a-z][a-z0-9-]*$/.test(spec.suite))
    throw new UsageError(`not a Debian suite name: ${JSON.stringify(spec.suite)}`);
  const flavor = spec.flavor ?? 'cloud-amd64';
  if (!/^[a-z0-9][a-z0-9-]*$/.test(flavor))
    throw new UsageError(`not a kernel flavor: ${JSON.stringify(flavor)}`);
  if (spec.version !== undefined && !/^[0-9][0-9A-Za-z.+~-]*$/.test(spec.version)) {
    throw new UsageError(`not a kernel version prefix: ${JSON.stringify(spec.version)}`);
  }
  if (spec.package !== undefined && !/^linux-image-[a-z0-9.+-]+$/.test(spec.package)) {
    throw new UsageError(`not a kernel image package name: ${JSON.stringify(spec.package)}`);
  }
}

/** The private apt for one suite, under `<cache>/.apt/<suite>`, with the mirror the system uses. */
export async function suiteApt(root: string, suite: string): Promise<PrivateApt> {
  const mirror = debianMirrorFor(suite, await readSystemSources());
  return new PrivateApt({
    root: path.join(root, '.apt', suite),
    suite,
    mirror,
    inherited: await inheritedAptSettings(),
  });
}

function suiteLock(root: string, suite: string): string {
  return path.join(root, '.apt', `${suite}.lock`);
}

/** Asks the suite's index which package the spec means. Updates the index first if there is none. */
export async function resolveKernel(
  spec: KernelSpec,
  options: FetchOptions & { apt?: PrivateApt } = {},
): Promise<Resolution> {
  checkSpec(spec);
  const root = cacheRoot(options.cache);
  const flavor = spec.flavor ?? 'cloud-amd64';
  const variant = spec.variant ?? 'signed';
  const apt = options.apt ?? (await suiteApt(root, spec.suite));
  return withLock(suiteLock(root, spec.suite), async () => {
    if (options.refresh === true || !(await apt.hasLists())) {
      options.log?.(`updating the package index of ${spec.suite}`);
      await apt.update();
    }
    // apt-cache show fails outright on an unknown name; asking for names first lets an absent
    // package be reported as such.
    const names = (await apt.packageNames(spec.package ?? 'linux-image-')).filter(
      (n) => spec.package === undefined || n === spec.package,
    );
    const candidates = (
      await apt.show(names.filter((n) => spec.package !== undefined || parseImagePackageName(n, flavor)))
    ).map(packageInfo);
    const image = chooseImage(candidates, spec);
    if (image === undefined) {
      const what = spec.package ?? `${flavor} kernel${spec.version === undefined ? '' : ` ${spec.version}`}`;
      throw new UsageError(
        `Debian ${spec.suite} has no ${what} (it has ${candidates.length} ${flavor} image packages)`,
      );
    }
    const release = parseImagePackageName(image.package, flavor)?.release;
    if (release === undefined) {
      throw new UsageError(`${image.package} is not named linux-image-<release>-${flavor}[-unsigned]`);
    }
    const payload = payloadPackages(image, release, variant);
    const debs =
      payload.length === 1 && payload[0] === image.package
        ? [{ package: image.package, version: image.version }]
        : (await apt.show(payload)).map(packageInfo).map((p) => ({ package: p.package, version: p.version }));
    if (debs.length !== payload.length) {
      throw ioError(
        `Debian ${spec.suite} lacks some of ${payload.join(', ')} that ${image.package} needs`,
        apt.root,
      );
    }
    return {
      suite: spec.suite,
      flavor,
      variant,
      release,
      package: image.package,
      version: image.version,
      debs,
      entry: path.join('debian', entryDirName(entryPackageName(image.package, variant), image.version)),
      resolvedAt: new Date().toISOString(),
    };
  });
}

/**
 * The name an entry is filed under: the image package's, marked "-unsigned" when the unsigned
 * build comes from split packages under the signed image's name (sid), so the two builds of one
 * kernel get separate entries.
 */
function entryPackageName(imagePackage: string, variant: 'signed' | 'unsigned'): string {
  return variant === 'unsigned' && !imagePackage.endsWith('-unsigned')
    ? `${imagePackage}-unsigned`
    : imagePackage;
}

function kernelFrom(entry: CacheEntry, name: string): DebianKernel {
  const m = entry.meta;
  return {
    name,
    suite: m.suite,
    release: m.release,
    package: m.package,
    version: m.version,
    dir: entry.dir,
    vmlinuz: path.join(entry.dir, 'vmlinuz'),
    config: path.join(entry.dir, 'config'),
    btf: path.join(entry.dir, 'btf'),
    entry,
  };
}

/** Downloads and unpacks a resolved kernel into its cache entry, unless it is already there intact. */
async function ensureEntry(root: string, r: Resolution, options: FetchOptions): Promise<CacheEntry> {
  const dir = path.join(root, r.entry);
  return withLock(entryLock(dir), async () => {
    const existing = await inspectEntry(dir);
    if (existing.state === 'ok') return existing.entry;
    if (existing.state !== 'missing') options.log?.(`refetching ${r.package}: ${existing.problem}`);
    return withDownloadedDebs(root, r, options, async (debFiles, apt) => {
      const paths = payloadPaths(r.release);
      const files: Partial<Record<'vmlinuz' | 'config', Buffer>> = {};
      const debs: { package: string; version: string; sha256: string }[] = [];
      for (const [i, deb] of debFiles.entries()) {
        debs.push({ ...r.debs[i]!, sha256: sha256(await fs.readFile(deb)) });
        const needed = new Set((['vmlinuz', 'config'] as const).filter((k) => files[k] === undefined));
        if (needed.size === 0) continue;
        options.log?.(`unpacking ${path.basename(deb)}`);
        const got = await extractFromDeb(deb, paths, needed);
        for (const [p, bytes] of got) files[paths.get(p)!] ??= bytes;
      }
      if (files.vmlinuz === undefined || files.config === undefined) {
        throw new ParseError(
          'kernel-image',
          `${r.debs.map((d) => d.package).join(' + ')} carry no ${files.vmlinuz === undefined ? 'vmlinuz' : 'config'} for ${r.release}`,
        );
      }
      // The image must be the kernel the package names, or everything keyed on the release is wrong.
      const imageRelease = kernelRelease(files.vmlinuz);
      if (imageRelease !== r.release) {
        throw new ParseError(
          'kernel-image',
          `vmlinuz of ${r.package} says it is ${imageRelease}, not ${r.release}`,
        );
      }
      options.log?.(`writing ${dir}`);
      return writeEntry(
        dir,
        { vmlinuz: files.vmlinuz, config: files.config },
        {
          release: r.release,
          package: r.package,
          version: r.version,
          suite: r.suite,
          flavor: r.flavor,
          variant: r.variant,
          debs,
          mirror: apt.mirror,
        },
      );
    });
  });
}

/**
 * Downloads the .debs of a kernel (`debs`, exact versions, from `suite`) through the suite's
 * private apt into a fresh directory on the cache's filesystem, hands their paths (in `debs`
 * order) to `use`, and removes them afterwards: the cache keeps what is taken out of them, not the
 * packages.
 */
export async function withDownloadedDebs<T>(
  root: string,
  kernel: { suite: string; debs: readonly { package: string; version: string }[] },
  options: FetchOptions,
  use: (debFiles: string[], apt: PrivateApt) => Promise<T>,
): Promise<T> {
  const apt = await suiteApt(root, kernel.suite);
  const downloads = path.join(root, '.apt', kernel.suite, `.download-${process.pid}-${Date.now()}`);
  try {
    const debFiles = await withLock(suiteLock(root, kernel.suite), async () => {
      await removeDeadDownloads(path.dirname(downloads));
      await fs.mkdir(downloads, { recursive: true });
      if (!(await apt.hasLists())) await apt.update();
      const files: string[] = [];
      for (const d of kernel.debs) {
        options.log?.(`downloading ${d.package} ${d.version} from ${kernel.suite}`);
        files.push(await apt.download(d.package, d.version, downloads));
      }
      return files;
    });
    return await use(debFiles, apt);
  } finally {
    await fs.rm(downloads, { recursive: true, force: true });
  }
}

/** Removes download directories of processes that died (killed mid-download). Call under the suite lock. */
async function removeDeadDownloads(aptRoot: string): Promise<void> {
  for (const n of await fs.readdir(aptRoot).catch(() => [] as string[])) {
    const pid = Number(/^\.download-(\d+)-/.exec(n)?.[1]);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch (e) {
      alive = (e as NodeJS.ErrnoException).code === 'EPERM';
    }
    if (!alive) await fs.rm(path.join(aptRoot, n), { recursive: true, force: true });
  }
}

/**
 * Ensures the kernel `spec` names is in the cache and returns it. Once a spec has been resolved,
 * that resolution is reused (no network, no apt) unless `refresh` is asked; an entry found missing,
 * incomplete or corrupt is fetched again.
 */
export async function fetchDebianKernel(spec: KernelSpec, options: FetchOptions = {}): Promise<DebianKernel> {
  checkSpec(spec);
  const root = cacheRoot(options.cache);
  const name = `debian-${spec.suite}-${spec.package ?? spec.version ?? 'newest'}`;
  const entry = await ensureBtf(await fetchEntry(root, spec, options), options);
  return kernelFrom(entry, name);
}

async function fetchEntry(root: string, spec: KernelSpec, options: FetchOptions): Promise<CacheEntry> {
  const pinnedFile = resolutionFile(root, spec);
  if (options.refresh !== true) {
    const pinned = await readResolution(pinnedFile);
    if (pinned !== undefined) {
      const state = await inspectEntry(path.join(root, pinned.entry));
      if (state.state === 'ok') return state.entry;
      try {
        return await ensureEntry(root, pinned, options);
      } catch (e) {
        // The pinned version may have left the archive (sid moves daily): update, resolve afresh.
        if (!isCorematrixError(e) || e.code !== 'io') throw e;
        options.log?.(
          `fetching the pinned ${pinned.package} ${pinned.version} failed (${e.message}); resolving again`,
        );
        options = { ...options, refresh: true };
      }
    }
  }
  const resolution = await resolveKernel(spec, options);
  const entry = await ensureEntry(root, resolution, options);
  await writeFileAtomic(pinnedFile, `${JSON.stringify(resolution, null, 2)}\n`);
  return entry;
}

/**
 * Adds the raw BTF, taken from the vmlinuz, to an entry that lacks it. Kept apart from the
 * download so that the kernel itself is cached even if this step fails.
 */
async function ensureBtf(entry: CacheEntry, options: FetchOptions): Promise<CacheEntry> {
  if (entry.meta.files.btf !== undefined) return entry;
  return withLock(entryLock(entry.dir), async () => {
    const now = await inspectEntry(entry.dir);
    if (now.state !== 'ok')
      throw ioError(
        `cache entry changed while adding its BTF: ${'problem' in now ? now.problem : now.state}`,
        entry.dir,
      );
    if (now.entry.meta.files.btf !== undefined) return now.entry;
    const vmlinuz = path.join(entry.dir, 'vmlinuz');
    const { btf } = inFile(vmlinuz, () => extractBtf(readFileSync(vmlinuz)));
    options.log?.(`adding BTF to ${entry.dir}`);
    return addFile(now.entry, 'btf', btf);
  });
}

async function readResolution(file: string): Promise<Resolution | undefined> {
  try {
    const r = JSON.parse(await fs.readFile(file, 'utf8')) as Resolution;
    return typeof r.entry === 'string' && Array.isArray(r.debs) ? r : undefined;
  } catch {
    return undefined;
  }
}
