/**
 * The kernel cache: one directory per resolved kernel, e.g. kernels/debian/<package>_<version>/,
 * holding its files (vmlinuz, config, btf, …) and meta.json, which names each file with its SHA-256.
 *
 * Crash safety rests on two rules. An entry directory appears only by rename(2) of a fully written
 * and fsynced temporary directory (a dot-directory beside it, so globs skip it), with meta.json
 * inside; a file added later is renamed in before meta.json is rewritten to list it. So whatever
 * moment a process dies at, a directory without meta.json, or a file meta.json does not list, is
 * all a later run can find — and it ignores those. Files are checked against their SHA-256 on use.
 *
 * Concurrent runs share the cache through lock files created with O_EXCL, holding the owner's pid
 * and host so a lock left by a killed process is recognised and broken.
 */

import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CorematrixError, UsageError } from '../errors.js';

/**
 * Where the cache lives: the explicit directory if given, else $COREMATRIX_CACHE, else ./kernels.
 */
export function cacheRoot(explicit?: string, env = process.env): string {
  if (explicit !== undefined) return path.resolve(explicit);
  const fromEnv = env.COREMATRIX_CACHE;
  if (fromEnv !== undefined && fromEnv !== '') return path.resolve(fromEnv);
  return path.resolve('kernels');
}

/** What the producer of an entry says about it (meta.json, less the file hashes and time). */
export interface EntryFields {
  /** The kernel release, as `uname -r` prints it, e.g. "6.1.0-50-cloud-amd64". */
  release: string;
  /** The package the kernel was resolved to, and its version. */
  package: string;
  version: string;
  suite: string;
  flavor: string;
  /** Anything else worth keeping (which .debs, their hashes, the mirror, …). */
  [extra: string]: unknown;
}

/** What meta.json records about a cached kernel. */
export interface EntryMeta extends EntryFields {
  /** Each file of the entry (name within the directory) → its hex SHA-256. */
  files: Record<string, string>;
  /** ISO 8601 time the entry was written. */
  fetchedAt: string;
}

export interface CacheEntry {
  dir: string;
  meta: EntryMeta;
}

export const META_FILE = 'meta.json';

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The state of an entry directory: usable, or why not. */
export type EntryState =
  | { state: 'ok'; entry: CacheEntry }
  | { state: 'missing' }
  | { state: 'incomplete'; problem: string }
  | { state: 'corrupt'; problem: string };

const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;

/**
 * Reads an entry and (unless `verify` is false) checks every file meta.json lists against its
 * SHA-256. Never throws for a broken entry: it says what is wrong, so the caller can fetch again.
 */
export async function inspectEntry(dir: string, options: { verify?: boolean } = {}): Promise<EntryState> {
  let text: string;
  try {
    text = await fs.readFile(path.join(dir, META_FILE), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    try {
      await fs.access(dir);
    } catch {
      return { state: 'missing' };
    }
    return { state: 'incomplete', problem: `${dir} has no ${META_FILE}` };
  }
  let meta: EntryMeta;
  try {
    meta = JSON.parse(text) as EntryMeta;
  } catch {
    return { state: 'corrupt', problem: `${path.join(dir, META_FILE)} is not JSON` };
  }
  if (typeof meta !== 'object' || meta === null || typeof meta.files !== 'object' || meta.files === null) {
    return { state: 'corrupt', problem: `${path.join(dir, META_FILE)} lists no files` };
  }
  if (options.verify !== false) {
    for (const [name, expected] of Object.entries(meta.files)) {
      const file = path.join(dir, name);
      let bytes: Buffer;
      try {
        bytes = await fs.readFile(file);
      } catch {
        return { state: 'corrupt', problem: `${file} is missing` };
      }
      const actual = sha256(bytes);
      if (actual !== expected)
        return { state: 'corrupt', problem: `${file} has SHA-256 ${actual}, not ${expected}` };
    }
  }
  return { state: 'ok', entry: { dir, meta } };
}

/** The entry at `dir` if it is complete and (unless `verify` is false) intact, else undefined. */
export async function readEntry(
  dir: string,
  options: { verify?: boolean } = {},
): Promise<CacheEntry | undefined> {
  const s = await inspectEntry(dir, options);
  return s.state === 'ok' ? s.entry : undefined;
}

/** Writes and fsyncs a file, then fsyncs nothing else: the caller renames and syncs the directory. */
async function writeDurably(file: string, bytes: Uint8Array | string): Promise<void> {
  const handle = await fs.open(file, 'w', 0o644);
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function checkFileName(name: string): void {
  if (!FILE_NAME.test(name) || name === META_FILE) {
    throw new UsageError(`cannot store a cache file named ${JSON.stringify(name)}`);
  }
}

/** A unique temporary name beside `target`, starting with a dot so that globs do not see it. */
function tempBeside(target: string, kind: string): string {
  return path.join(
    path.dirname(target),
    `.${kind}-${path.basename(target)}-${process.pid}-${randomBytes(4).toString('hex')}`,
  );
}

/**
 * Writes a whole entry at `dir`, replacing whatever is there (an incomplete or corrupt entry). The
 * caller holds the entry's lock (see `entryLock`), so nobody else writes `dir` meanwhile.
 */
export async function writeEntry(
  dir: string,
  files: Record<string, Uint8Array>,
  meta: EntryFields,
): Promise<CacheEntry> {
  const parent = path.dirname(dir);
  await fs.mkdir(parent, { recursive: true });
  await removeLeftovers(dir);
  const tmp = tempBeside(dir, 'tmp');
  await fs.mkdir(tmp);
  try {
    const hashes: Record<string, string> = {};
    for (const [name, bytes] of Object.entries(files)) {
      checkFileName(name);
      await writeDurably(path.join(tmp, name), bytes);
      hashes[name] = sha256(bytes);
    }
    const full: EntryMeta = { ...meta, files: hashes, fetchedAt: new Date().toISOString() };
    await writeDurably(path.join(tmp, META_FILE), `${JSON.stringify(full, null, 2)}\n`);
    await syncDir(tmp);
    // rename(2) cannot replace a non-empty directory: move the old one aside first. Dying between
    // the two renames leaves no entry at `dir`, which a later run simply fetches again.
    let trash: string | undefined;
    try {
      trash = tempBeside(dir, 'old');
      await fs.rename(dir, trash);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      trash = undefined;
    }
    await fs.rename(tmp, dir);
    await syncDir(parent);
    if (trash !== undefined) await fs.rm(trash, { recursive: true, force: true });
    return { dir, meta: full };
  } catch (e) {
    await fs.rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

/**
 * Adds (or replaces) one file of a complete entry: the file is renamed into place first, and only
 * then is meta.json replaced by one listing it, so a crash in between leaves an unlisted file that
 * nothing trusts. The caller holds the entry's lock.
 */
export async function addFile(entry: CacheEntry, name: string, bytes: Uint8Array): Promise<CacheEntry> {
  checkFileName(name);
  const target = path.join(entry.dir, name);
  // Temporary files of an addFile that was killed (we hold the lock: none is in use).
  for (const n of await fs.readdir(entry.dir)) {
    if (n.startsWith('.') && n.endsWith('.tmp')) await fs.rm(path.join(entry.dir, n), { force: true });
  }
  const tmp = path.join(entry.dir, `.${name}.${process.pid}.tmp`);
  await writeDurably(tmp, bytes);
  await fs.rename(tmp, target);
  const meta: EntryMeta = { ...entry.meta, files: { ...entry.meta.files, [name]: sha256(bytes) } };
  const metaTmp = path.join(entry.dir, `.${META_FILE}.${process.pid}.tmp`);
  await writeDurably(metaTmp, `${JSON.stringify(meta, null, 2)}\n`);
  await fs.rename(metaTmp, path.join(entry.dir, META_FILE));
  await syncDir(entry.dir);
  return { dir: entry.dir, meta };
}

/** Removes temporary and set-aside directories of `dir` left by runs that died. Call under its lock. */
export async function removeLeftovers(dir: string): Promise<void> {
  const parent = path.dirname(dir);
  const base = path.basename(dir);
  let names: string[];
  try {
    names = await fs.readdir(parent);
  } catch {
    return;
  }
  for (const n of names) {
    const m = /^\.(tmp|old)-(.*)-\d+-[0-9a-f]{8}$/.exec(n);
    if (m !== null && m[2] === base) await fs.rm(path.join(parent, n), { recursive: true, force: true });
  }
}

/** Writes a small file atomically (temp file, fsync, rename): readers see the old or the new text. */
export async function writeFileAtomic(file: string, text: string): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeDurably(tmp, text);
  await fs.rename(tmp, file);
  await syncDir(path.dirname(file));
}

// ---------------------------------------------------------------------------------------------
// Locks

interface LockOwner {
  pid: number;
  host: string;
  since: string;
  token: string;
}

export interface LockOptions {
  /** Give up (with an error) after waiting this long. */
  timeoutMs?: number;
  pollMs?: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readLockOwner(
  lockFile: string,
): Promise<{ text: string; owner?: LockOwner; ageMs: number } | undefined> {
  try {
    const [text, stat] = await Promise.all([fs.readFile(lockFile, 'utf8'), fs.stat(lockFile)]);
    let owner: LockOwner | undefined;
    try {
      owner = JSON.parse(text) as LockOwner;
    } catch {
      owner = undefined;
    }
    return { text, owner, ageMs: Date.now() - stat.mtimeMs };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** A lock file whose owner is gone: a dead pid on this host, or no owner written after a while. */
function isStale(found: { owner?: LockOwner; ageMs: number }): boolean {
  if (found.owner === undefined || typeof found.owner.pid !== 'number') return found.ageMs > 5_000;
  if (found.owner.host !== os.hostname()) return false;
  return !processIsAlive(found.owner.pid);
}

/**
 * Breaks a stale lock. Two waiters may both judge it stale; the `.break` lock makes only one of
 * them remove it, and only if it still holds the text that was judged stale (so a lock newly taken
 * by a third process is never removed).
 */
async function breakStaleLock(lockFile: string, staleText: string): Promise<void> {
  const breaker = `${lockFile}.break`;
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(breaker, 'wx');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    // A breaker killed mid-break leaves this behind; it is only ever held for a moment.
    const stat = await fs.stat(breaker).catch(() => undefined);
    if (stat !== undefined && Date.now() - stat.mtimeMs > 10_000) await fs.rm(breaker, { force: true });
    return;
  }
  try {
    const now = await readLockOwner(lockFile);
    if (now !== undefined && now.text === staleText) await fs.rm(lockFile, { force: true });
  } finally {
    await handle.close();
    await fs.rm(breaker, { force: true });
  }
}

/**
 * Runs `fn` holding the lock file `lockFile` (created with O_EXCL). Waits while another live
 * process holds it; breaks it if its holder died.
 */
export async function withLock<T>(
  lockFile: string,
  fn: () => Promise<T>,
  options: LockOptions = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 30 * 60_000;
  const pollMs = options.pollMs ?? 100;
  await fs.mkdir(path.dirname(lockFile), { recursive: true });
  const owner: LockOwner = {
    pid: process.pid,
    host: os.hostname(),
    since: new Date().toISOString(),
    token: randomBytes(8).toString('hex'),
  };
  const ownText = JSON.stringify(owner);
  const start = Date.now();
  for (;;) {
    try {
      const handle = await fs.open(lockFile, 'wx', 0o644);
      try {
        await handle.writeFile(ownText);
      } finally {
        await handle.close();
      }
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const found = await readLockOwner(lockFile);
    if (found !== undefined && isStale(found)) {
      await breakStaleLock(lockFile, found.text);
      continue;
    }
    if (Date.now() - start > timeoutMs) {
      throw new CorematrixError(
        'io',
        `timed out after ${timeoutMs} ms waiting for the lock (held: ${found?.text})`,
        {
          file: lockFile,
        },
      );
    }
    await sleep(pollMs);
  }
  try {
    return await fn();
  } finally {
    const now = await readLockOwner(lockFile).catch(() => undefined);
    if (now?.text === ownText) await fs.rm(lockFile, { force: true });
  }
}

/** The lock file guarding one entry directory (beside it, a dot-file). */
export function entryLock(dir: string): string {
  return path.join(path.dirname(dir), `.${path.basename(dir)}.lock`);
}

/** Turns a package name and version into a directory name (epochs' ':' are not portable). */
export function entryDirName(pkg: string, version: string): string {
  return `${pkg}_${version}`.replace(/:/g, '%3a');
}
