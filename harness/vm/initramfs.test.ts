import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CpioEntry, initramfs, writeCpio } from './initramfs.js';

let tmp: string;
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'corematrix-cpio-'));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

/** Every name length mod 4 and data length mod 4, so every padding case is crossed. */
function sampleEntries(): CpioEntry[] {
  const entries: CpioEntry[] = [
    { type: 'dir', path: 'bin' },
    { type: 'dir', path: '/etc/', mode: 0o700 },
    { type: 'symlink', path: 'bin/sh', target: 'busybox' },
    { type: 'symlink', path: 'etc/far', target: '/some/where/else/entirely' },
    { type: 'char', path: 'console', major: 5, minor: 1, mode: 0o600 },
    { type: 'block', path: 'vda', major: 253, minor: 3, mode: 0o660 },
    { type: 'file', path: 'etc/empty', data: '' },
    { type: 'file', path: 'etc/text', data: 'héllo\n', mode: 0o640 },
  ];
  for (let n = 1; n <= 8; n++) {
    const data = new Uint8Array(n * 3 + 1).map((_, i) => (i * 7 + n) & 0xff);
    entries.push({ type: 'file', path: `bin/${'x'.repeat(n)}`, data, mode: 0o755 });
  }
  return entries;
}

async function extract(archive: Uint8Array, dir: string): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  const r = await execa(
    'cpio',
    ['-i', '-d', '--preserve-modification-time', '--no-absolute-filenames', '--quiet'],
    {
      cwd: dir,
      input: archive,
      reject: false,
    },
  );
  expect(r.exitCode, r.stderr).toBe(0);
  return dir;
}

describe('writeCpio', () => {
  it('is read back by cpio -t, names in order, with the trailer last', async () => {
    const entries = sampleEntries();
    const archive = writeCpio(entries);
    expect(archive.length % 4).toBe(0);
    const { stdout } = await execa('cpio', ['-t', '--quiet'], { input: archive });
    expect(stdout.split('\n')).toEqual(entries.map((e) => e.path.replace(/^\/|\/$/g, '')));
    // The trailer is the last entry; nothing follows it.
    const text = new TextDecoder('latin1').decode(archive);
    expect(text.lastIndexOf('TRAILER!!!')).toBeGreaterThan(archive.length - 16);
  });

  it('is extracted by cpio -i with the exact contents, modes, symlinks and device numbers', async () => {
    const entries = sampleEntries();
    const dir = await extract(writeCpio(entries, { mtime: 1_700_000_000 }), path.join(tmp, 'x'));
    for (const e of entries) {
      const p = path.join(dir, e.path);
      const st = await fs.lstat(p);
      switch (e.type) {
        case 'dir':
          expect(st.isDirectory()).toBe(true);
          expect(st.mode & 0o7777).toBe(e.mode ?? 0o755);
          break;
        case 'file': {
          expect(st.isFile()).toBe(true);
          expect(st.mode & 0o7777).toBe(e.mode ?? 0o644);
          expect(st.mtimeMs).toBe(1_700_000_000_000);
          const want = typeof e.data === 'string' ? Buffer.from(e.data) : Buffer.from(e.data);
          expect(Buffer.compare(await fs.readFile(p), want)).toBe(0);
          break;
        }
        case 'symlink':
          expect(st.isSymbolicLink()).toBe(true);
          expect(await fs.readlink(p)).toBe(e.target);
          break;
        case 'char':
        case 'block':
          expect(e.type === 'char' ? st.isCharacterDevice() : st.isBlockDevice()).toBe(true);
          expect(st.mode & 0o7777).toBe(e.mode);
          expect(st.rdev).toBe((e.major << 8) | e.minor);
          break;
      }
    }
  });

  it('writes the same bytes for the same entries', () => {
    expect(Buffer.compare(writeCpio(sampleEntries()), writeCpio(sampleEntries()))).toBe(0);
  });

  it('rejects paths that leave the root and sizes a newc field cannot hold', () => {
    expect(() => writeCpio([{ type: 'file', path: '../x', data: '' }])).toThrow(/bad path/);
    expect(() => writeCpio([{ type: 'dir', path: '/' }])).toThrow(/bad path/);
    expect(() => writeCpio([{ type: 'char', path: 'c', major: -1, minor: 0 }])).toThrow(/does not fit/);
  });
});

describe('initramfs', () => {
  it('adds parents before children, the console devices, and gzips on request', async () => {
    const entries: CpioEntry[] = [
      { type: 'file', path: '/usr/lib/deep/file', data: 'x' },
      { type: 'dir', path: 'usr', mode: 0o711 },
      { type: 'char', path: 'dev/console', major: 5, minor: 1, mode: 0o620 },
    ];
    const plain = initramfs(entries);
    const gz = initramfs(entries, { compress: 'gzip' });
    expect(Buffer.compare(gunzipSync(gz), plain)).toBe(0);
    const { stdout } = await execa('cpio', ['-t', '--quiet'], { input: plain });
    expect(stdout.split('\n')).toEqual([
      'dev',
      'dev/ttyS0',
      'dev/ttyS1',
      'usr',
      'usr/lib',
      'usr/lib/deep',
      'usr/lib/deep/file',
      'dev/console',
    ]);
    const dir = await extract(plain, path.join(tmp, 'i'));
    expect((await fs.stat(path.join(dir, 'usr'))).mode & 0o7777).toBe(0o711);
    // The listed /dev/console won over the default one.
    expect((await fs.stat(path.join(dir, 'dev/console'))).mode & 0o7777).toBe(0o620);
  });

  it('rejects a path listed twice and a parent that is not a directory', () => {
    expect(() =>
      initramfs([
        { type: 'file', path: 'a', data: '' },
        { type: 'file', path: '/a', data: '' },
      ]),
    ).toThrow(/twice/);
    expect(() =>
      initramfs([
        { type: 'file', path: 'a/b', data: '' },
        { type: 'file', path: 'a', data: '' },
      ]),
    ).toThrow(/not a directory/);
  });
});
