/**
 * Container images built locally from Debian's archive: a minimal root filesystem of one Debian
 * suite (mmdebstrap, variant minbase, no recommended packages, no docs/man pages/locales) with the
 * packages an image needs, imported into the local engine.
 *
 * The tag is derived from the content: the spec (suite, packages), the recipe (this file's options
 * and mmdebstrap's version) and the suite's signed InRelease as the private apt of the kernel cache
 * knows it (kernels/.apt/<suite>, the same index kernel fetches use). An InRelease pins every
 * package version of the suite, so the same tag means the same packages; an image with that tag is
 * reused, never rebuilt. The build checks that mmdebstrap saw that very InRelease (the mirror may
 * have moved on since the index was updated); when it did not, the index is updated and the image
 * tagged for what it was really built from.
 *
 * apt, inside mmdebstrap, checks the suite's signature against Debian's keyring and every
 * package's hash against the signed index. Builds of one image name are serialized by a lock file;
 * `docker import` tags the image only once all of it is in the engine, so an interrupted build
 * leaves no tagged image (its temporary directory is removed, or swept by the next build).
 */

import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, promises as fs, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { UsageError } from '../errors.js';
import { DEBIAN_KEYRING, inheritedAptSettings, ioError, type PrivateApt } from '../kernels/apt.js';
import { cacheRoot, withLock } from '../kernels/cache.js';
import { suiteApt } from '../kernels/debian.js';
import { atInterrupt, CREATED_BY_LABEL, connectEngine, type Engine, ownerGone, ownerId } from './engine.js';

export interface ImageSpec {
  /** The image's name: corematrix/<name>. Lower-case letters, digits, '.', '_', '-'. */
  name: string;
  /** The Debian suite its root filesystem comes from, e.g. "bookworm". */
  suite: string;
  /** Debian packages to install besides the minimal base (their dependencies come along). */
  packages: string[];
}

export interface EnsureImageOptions {
  /** The kernel cache root (its .apt/<suite> index is used and its images/ holds build files). */
  cache?: string;
  /** Build even when an image with the tag exists; the suite's index is updated first. */
  rebuild?: boolean;
  /** Update the suite's index before deriving the tag (what is newest in the archive now). */
  refresh?: boolean;
  /** Progress lines. */
  log?: (line: string) => void;
}

export interface EnsuredImage {
  tag: string;
  /** False when an image with the tag was there already. */
  built: boolean;
  ms: number;
}

/** What the builder does, in words that change whenever its output would: part of every tag. */
const RECIPE = [
  'mmdebstrap',
  '--variant=minbase',
  'APT::Install-Recommends=false',
  'path-exclude=/usr/share/doc/*,/usr/share/man/*,/usr/share/locale/*,/usr/share/info/*',
  'component main',
  'amd64',
].join(' ');

const EXCLUDED_PATHS = ['/usr/share/doc/*', '/usr/share/man/*', '/usr/share/locale/*', '/usr/share/info/*'];

/** Label holding the spec an image was built for (JSON). */
export const SPEC_LABEL = 'corematrix.image.spec';

const NAME = /^[a-z0-9][a-z0-9._-]*$/;
const SUITE = /^[a-z][a-z0-9-]*$/;
const PACKAGE = /^[a-z0-9][a-z0-9+.-]+$/;

/** Refuses a spec that cannot name an image or a Debian package. */
export function checkImageSpec(spec: ImageSpec): void {
  if (!NAME.test(spec.name))
    throw new UsageError(
      `not an image name: ${JSON.stringify(spec.name)} (lower-case letters, digits, '.', '_', '-')`,
    );
  if (!SUITE.test(spec.suite))
    throw new UsageError(`image ${spec.name}: not a Debian suite name: ${JSON.stringify(spec.suite)}`);
  const bad = spec.packages.find((p) => !PACKAGE.test(p));
  if (bad !== undefined)
    throw new UsageError(`image ${spec.name}: not a Debian package name: ${JSON.stringify(bad)}`);
}

/**
 * The content tag, corematrix/<name>:<16 hex digits>, of a spec built by a recipe from a suite whose
 * InRelease has the given SHA-256. Pure.
 */
export function imageTag(spec: ImageSpec, built: { inReleaseSha256: string; builder: string }): string {
  const hash = createHash('sha256')
    .update(
      JSON.stringify({
        recipe: RECIPE,
        builder: built.builder,
        suite: spec.suite,
        packages: [...new Set(spec.packages)].sort(),
        inRelease: built.inReleaseSha256,
      }),
    )
    .digest('hex');
  return `corematrix/${spec.name}:${hash.slice(0, 16)}`;
}

async function builderVersion(): Promise<string> {
  const r = await execa('mmdebstrap', ['--version'], { reject: false, stdin: 'ignore' });
  if (r.failed) {
    throw new UsageError(
      'mmdebstrap is not installed: it builds the images (Debian package mmdebstrap; .ci/run installs it)',
      { file: 'mmdebstrap' },
    );
  }
  return `${r.stdout}`.trim();
}

async function fileSha256(file: string): Promise<string> {
  return createHash('sha256')
    .update(await fs.readFile(file))
    .digest('hex');
}

/** The lock kernel fetches hold while they use a suite's index (harness/kernels/debian.ts). */
function suiteLock(root: string, suite: string): string {
  return path.join(root, '.apt', `${suite}.lock`);
}

/** The SHA-256 of the suite's InRelease, updating the index first when asked or when it has none. */
async function suiteRelease(root: string, apt: PrivateApt, update: boolean): Promise<string> {
  return withLock(suiteLock(root, apt.suite), async () => {
    if (update || !(await apt.hasLists())) await apt.update();
    const release = await apt.releaseFile();
    if (release === undefined) throw ioError(`no InRelease for ${apt.suite} after apt-get update`, apt.root);
    return fileSha256(release);
  });
}

export async function imageExists(engine: Engine, tag: string): Promise<boolean> {
  try {
    await engine.docker.getImage(tag).inspect();
    return true;
  } catch (e) {
    if ((e as { statusCode?: number }).statusCode === 404) return false;
    throw e;
  }
}

/**
 * Removes a build directory, unless something is still mounted under it: mmdebstrap mounts /proc,
 * /sys and /dev into the root filesystem it builds while packages are configured, and a recursive
 * removal must never walk into the host's /dev. Such a directory is left for a later sweep.
 */
function removeBuildDir(dir: string): void {
  let mounts = '';
  try {
    mounts = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return;
  }
  // Field 5 is the mount point (octal escapes for spaces; our paths have none).
  const busy = mounts.split('\n').some((l) => {
    const point = l.split(' ')[4];
    return point !== undefined && (point === dir || point.startsWith(`${dir}/`));
  });
  if (!busy) rmSync(dir, { recursive: true, force: true });
}

/** Build directories of processes that are gone (an interrupted build). */
async function sweepBuildDirs(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^build-(.+)-[0-9a-f]{8}$/.exec(name);
    if (m !== null && ownerGone(m[1]!.replaceAll('_', '/'))) removeBuildDir(path.join(dir, name));
  }
}

/** Waits (synchronously: the process is being signalled) up to `ms` for a process to end. */
function waitForExit(pid: number, ms: number): void {
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    let state: string | undefined;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
      state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    } catch {
      return;
    }
    // A zombie has ended; nobody reaps it while this handler runs.
    if (state === 'Z') return;
    Atomics.wait(sleeper, 0, 0, 100);
  }
}

/** Runs mmdebstrap into `tar`; returns the SHA-256 of the InRelease it used. */
async function buildRootfs(
  spec: ImageSpec,
  mirror: string,
  dir: string,
): Promise<{ tar: string; inRelease: string }> {
  const tar = path.join(dir, 'rootfs.tar');
  const shaFile = path.join(dir, 'inrelease.sha256');
  const aptOptions = Object.entries(await inheritedAptSettings()).map(
    ([k, v]) => `${k} ${JSON.stringify(v)}`,
  );
  const args = [
    '--variant=minbase',
    '--architectures=amd64',
    '--components=main',
    ...(spec.packages.length === 0 ? [] : [`--include=${spec.packages.join(',')}`]),
    '--aptopt=APT::Install-Recommends "false"',
    ...aptOptions.map((o) => `--aptopt=${o}`),
    ...EXCLUDED_PATHS.map((p) => `--dpkgopt=path-exclude=${p}`),
    // The index mmdebstrap's apt used, before its cleanup removes it.
    `--customize-hook=sha256sum "$1"/var/lib/apt/lists/*_InRelease > ${shellQuote(shaFile)}`,
    '--quiet',
    spec.suite,
    tar,
    `deb [signed-by=${DEBIAN_KEYRING}] ${mirror} ${spec.suite} main`,
  ];
  // As root, mmdebstrap mounts /proc, /sys and /dev into the tree it builds: in a mount namespace of
  // its own those mounts cannot outlive it or show in the host's (where a concurrent container
  // start or a failed unmount could keep them). Without root it makes its own namespaces anyway.
  const asRoot = process.getuid?.() === 0;
  const command = asRoot ? 'unshare' : 'mmdebstrap';
  const commandArgs = asRoot ? ['--mount', '--propagation', 'private', '--', 'mmdebstrap', ...args] : args;
  const child = execa(command, commandArgs, {
    reject: false,
    stdin: 'ignore',
    env: { TMPDIR: dir },
    all: true,
    // A process group of its own, signalled as a whole when interrupted: mmdebstrap's main process
    // ignores signals while its workers run, the workers clean up (unmount) on them.
    detached: true,
  });
  // Interrupted: mmdebstrap unmounts and removes its own files on SIGTERM; then the directory goes.
  const release = atInterrupt(() => {
    if (child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // Already gone.
      }
      waitForExit(child.pid, 20_000);
    }
    removeBuildDir(dir);
  });
  const r = await child.finally(release);
  if (r.failed) {
    const lines = `${r.all ?? ''}`.split('\n').filter((l) => /^E:|error|Error/.test(l));
    throw ioError(
      `mmdebstrap could not build image ${spec.name} from ${spec.suite}: ${lines.slice(-3).join('; ') || r.shortMessage}`,
      dir,
    );
  }
  const shas = (await fs.readFile(shaFile, 'utf8')).trim().split('\n');
  if (shas.length !== 1)
    throw ioError(`mmdebstrap's apt had ${shas.length} InRelease files, expected 1`, dir);
  return { tar, inRelease: shas[0]!.split(/\s+/)[0]! };
}

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** Imports a root filesystem tar as `tag`; the engine tags it only once all of it is in. */
async function importRootfs(engine: Engine, tar: string, tag: string, spec: ImageSpec): Promise<void> {
  const colon = tag.lastIndexOf(':');
  const stream = await engine.docker.importImage(
    createReadStream(tar) as unknown as string,
    {
      repo: tag.slice(0, colon),
      tag: tag.slice(colon + 1),
      changes: [
        `LABEL ${CREATED_BY_LABEL}=corematrix`,
        `LABEL ${SPEC_LABEL}=${JSON.stringify(JSON.stringify({ suite: spec.suite, packages: spec.packages }))}`,
      ],
    } as Record<string, unknown>,
  );
  await new Promise<void>((resolve, reject) => {
    engine.docker.modem.followProgress(stream, (err: Error | null, events: { error?: string }[]) => {
      const failed = events?.find((e) => e.error !== undefined);
      if (err !== null) reject(err);
      else if (failed !== undefined) reject(ioError(`docker import of ${tag} failed: ${failed.error}`, tar));
      else resolve();
    });
  });
}

/**
 * The image for `spec`: reused when an image with its content tag exists, else built from Debian's
 * archive and imported. Concurrent calls for one image build it once.
 */
export async function ensureImage(spec: ImageSpec, options: EnsureImageOptions = {}): Promise<EnsuredImage> {
  const start = performance.now();
  const ms = () => Math.round(performance.now() - start);
  checkImageSpec(spec);
  const engine = await connectEngine();
  const builder = await builderVersion();
  const root = cacheRoot(options.cache);
  const apt = await suiteApt(root, spec.suite);
  const rebuild = options.rebuild === true;
  let inRelease = await suiteRelease(root, apt, rebuild || options.refresh === true);
  let tag = imageTag(spec, { inReleaseSha256: inRelease, builder });
  if (!rebuild && (await imageExists(engine, tag))) return { tag, built: false, ms: ms() };

  const imagesDir = path.join(root, 'images');
  return withLock(path.join(imagesDir, `${spec.name}.lock`), async () => {
    // Another process may have built it while this one waited for the lock.
    if (!rebuild && (await imageExists(engine, tag))) return { tag, built: false, ms: ms() };
    await sweepBuildDirs(imagesDir);
    const dir = path.join(
      imagesDir,
      `build-${ownerId().replaceAll('/', '_')}-${randomBytes(4).toString('hex')}`,
    );
    await fs.mkdir(dir, { recursive: true });
    try {
      options.log?.(`building ${tag} from Debian ${spec.suite}: ${spec.packages.join(' ') || '(base only)'}`);
      const rootfs = await buildRootfs(spec, apt.mirror, dir);
      if (rootfs.inRelease !== inRelease) {
        // The archive moved on since the index was updated: catch the index up, tag what was built.
        inRelease = await suiteRelease(root, apt, true);
        if (inRelease !== rootfs.inRelease) {
          throw ioError(
            `the ${spec.suite} archive changed during the build of ${spec.name}; run it again`,
            apt.root,
          );
        }
        tag = imageTag(spec, { inReleaseSha256: inRelease, builder });
      }
      await importRootfs(engine, rootfs.tar, tag, spec);
      options.log?.(`built ${tag} in ${ms()} ms`);
      return { tag, built: true, ms: ms() };
    } finally {
      removeBuildDir(dir);
    }
  });
}
