/**
 * The initramfs corematrix boots each kernel with: a cpio archive in the "newc" format (the one
 * the kernel's init/initramfs.c unpacks), written here from a list of entries, optionally
 * gzip-compressed. Pure: entries in, bytes out; no files are read or written.
 *
 * newc layout, per entry: the magic "070701", thirteen 8-digit upper-case hex fields (ino, mode,
 * uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check),
 * the name with its NUL, padded so that header + name is a multiple of 4 bytes, then the data,
 * padded to a multiple of 4. The archive ends with an entry named "TRAILER!!!".
 */

import { gzipSync } from 'node:zlib';
import { CorematrixError } from '../errors.js';

export type CpioEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; data: Uint8Array | string; mode?: number }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'char' | 'block'; path: string; major: number; minor: number; mode?: number };

/** st_mode file type bits. */
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;

const HEADER_SIZE = 110;
const FIELDS = [
  'ino',
  'mode',
  'uid',
  'gid',
  'nlink',
  'mtime',
  'filesize',
  'devmajor',
  'devminor',
  'rdevmajor',
  'rdevminor',
  'namesize',
  'check',
];
const TRAILER = 'TRAILER!!!';
const encoder = new TextEncoder();

/** The device nodes an init needs before it mounts devtmpfs: its stdio comes from /dev/console. */
export const CONSOLE_DEVICES: readonly CpioEntry[] = [
  { type: 'char', path: 'dev/console', major: 5, minor: 1, mode: 0o600 },
  { type: 'char', path: 'dev/ttyS0', major: 4, minor: 64, mode: 0o600 },
  { type: 'char', path: 'dev/ttyS1', major: 4, minor: 65, mode: 0o600 },
];

/**
 * A path as stored in the archive: relative to the root ("bin/sh", not "/bin/sh" or "./bin/sh"),
 * no empty, "." or ".." components.
 */
export function archivePath(p: string): string {
  const parts = p.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.length === 0 || parts.some((part) => part === '..')) {
    throw new CorematrixError('usage', `initramfs: bad path ${JSON.stringify(p)}`);
  }
  return parts.join('/');
}

function hex8(value: number, field: string, name: string): string {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new CorematrixError('usage', `initramfs: ${name}: ${field} ${value} does not fit a newc field`);
  }
  return value.toString(16).toUpperCase().padStart(8, '0');
}

const pad4 = (n: number): number => (4 - (n % 4)) % 4;

interface CpioRecord {
  name: string;
  mode: number;
  nlink: number;
  data: Uint8Array;
  rdevmajor: number;
  rdevminor: number;
}

function toRecord(entry: CpioEntry): CpioRecord {
  const name = archivePath(entry.path);
  const none = new Uint8Array(0);
  switch (entry.type) {
    case 'dir':
      return {
        name,
        mode: S_IFDIR | (entry.mode ?? 0o755),
        nlink: 2,
        data: none,
        rdevmajor: 0,
        rdevminor: 0,
      };
    case 'file': {
      const data = typeof entry.data === 'string' ? encoder.encode(entry.data) : entry.data;
      return { name, mode: S_IFREG | (entry.mode ?? 0o644), nlink: 1, data, rdevmajor: 0, rdevminor: 0 };
    }
    case 'symlink':
      // A symlink's target is its data, without a NUL.
      return {
        name,
        mode: S_IFLNK | 0o777,
        nlink: 1,
        data: encoder.encode(entry.target),
        rdevmajor: 0,
        rdevminor: 0,
      };
    case 'char':
    case 'block':
      return {
        name,
        mode: (entry.type === 'char' ? S_IFCHR : S_IFBLK) | (entry.mode ?? 0o600),
        nlink: 1,
        data: none,
        rdevmajor: entry.major,
        rdevminor: entry.minor,
      };
  }
}

function header(r: CpioRecord, ino: number, mtime: number, nameSize: number): string {
  const fields = [
    ino,
    r.mode,
    0, // uid
    0, // gid
    r.nlink,
    mtime,
    r.data.length,
    0, // devmajor
    0, // devminor
    r.rdevmajor,
    r.rdevminor,
    nameSize,
    0, // check (only the "070702" crc format uses it)
  ];
  return `070701${fields.map((v, i) => hex8(v, FIELDS[i] ?? 'field', r.name)).join('')}`;
}

export interface CpioOptions {
  /** Modification time of every entry, in seconds (0 by default: the same entries, the same bytes). */
  mtime?: number;
}

/**
 * Writes the entries, in the order given, as a newc archive with its trailer. Entries are owned by
 * root; each gets its own inode number. The kernel creates entries in archive order and does not
 * create missing parent directories: list a directory before what is in it (see `initramfs`).
 */
export function writeCpio(entries: readonly CpioEntry[], options: CpioOptions = {}): Uint8Array {
  const mtime = options.mtime ?? 0;
  const records = entries.map(toRecord);
  const trailer: CpioRecord = {
    name: TRAILER,
    mode: 0,
    nlink: 1,
    data: new Uint8Array(0),
    rdevmajor: 0,
    rdevminor: 0,
  };
  const names = records.map((r) => encoder.encode(r.name));
  names.push(encoder.encode(TRAILER));
  records.push(trailer);

  let size = 0;
  records.forEach((r, i) => {
    const nameSize = names[i]!.length + 1;
    size += HEADER_SIZE + nameSize + pad4(HEADER_SIZE + nameSize) + r.data.length + pad4(r.data.length);
  });
  const out = new Uint8Array(size);
  let at = 0;
  records.forEach((r, i) => {
    const name = names[i]!;
    const nameSize = name.length + 1;
    const ino = r === trailer ? 0 : i + 1;
    at += encoder.encodeInto(header(r, ino, r === trailer ? 0 : mtime, nameSize), out.subarray(at)).written;
    out.set(name, at);
    at += nameSize + pad4(HEADER_SIZE + nameSize); // the NUL and the padding are already zero
    out.set(r.data, at);
    at += r.data.length + pad4(r.data.length);
  });
  return out;
}

export interface InitramfsOptions extends CpioOptions {
  /** gzip the archive (the kernel's gunzip under TCG costs more than reading the plain archive). */
  compress?: 'none' | 'gzip';
  /** Add /dev/console and the serial ports (default true; an entry of the same path wins). */
  consoleDevices?: boolean;
}

/**
 * An initramfs from entries: parent directories that are not listed are added (mode 0755) before
 * their first child, /dev/console and /dev/ttyS0-1 are added unless listed, and a path listed
 * twice is an error.
 */
export function initramfs(entries: readonly CpioEntry[], options: InitramfsOptions = {}): Uint8Array {
  const given = new Map<string, CpioEntry>();
  for (const e of entries) {
    const p = archivePath(e.path);
    if (given.has(p)) throw new CorematrixError('usage', `initramfs: ${p} is listed twice`);
    given.set(p, e);
  }
  const defaults = (options.consoleDevices === false ? [] : CONSOLE_DEVICES).filter(
    (e) => !given.has(archivePath(e.path)),
  );
  const seen = new Set<string>();
  const ordered: CpioEntry[] = [];
  const add = (p: string, e: CpioEntry): void => {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (seen.has(dir)) continue;
      const listed = given.get(dir);
      if (listed !== undefined && listed.type !== 'dir') {
        throw new CorematrixError('usage', `initramfs: ${dir} holds ${p} but is not a directory`);
      }
      seen.add(dir);
      ordered.push(listed ?? { type: 'dir', path: dir });
    }
    if (seen.has(p)) return;
    seen.add(p);
    ordered.push(e);
  };
  for (const e of [...defaults, ...entries]) add(archivePath(e.path), e);
  const archive = writeCpio(ordered, options);
  return options.compress === 'gzip' ? new Uint8Array(gzipSync(archive, { level: 6 })) : archive;
}
