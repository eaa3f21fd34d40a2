import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { nodeScript } from '../test-support/kernels.js';
import {
  addFile,
  cacheRoot,
  entryDirName,
  entryLock,
  inspectEntry,
  readEntry,
  removeLeftovers,
  withLock,
  writeEntry,
} from './cache.js';

const here = path.dirname(fileURLToPath(import.meta.url));
let scratch: string;

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'corematrix-cache-'));
});
afterAll(async () => {
  await fs.rm(scratch, { recursive: true, force: true });
});

const fields = {
  release: '6.1.0-1-cloud-amd64',
  package: 'linux-image-x',
  version: '1-1',
  suite: 's',
  flavor: 'f',
};
// Known digests (sha256sum of the literal bytes), not computed by the code under test.
const SHA_ABC = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
const SHA_EMPTY = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

describe('cacheRoot', () => {
  test('explicit, then $COREMATRIX_CACHE, then ./kernels', () => {
    expect(cacheRoot('/x/y', {})).toBe('/x/y');
    expect(cacheRoot(undefined, { COREMATRIX_CACHE: '/c' })).toBe('/c');
    expect(cacheRoot(undefined, {})).toBe(path.resolve('kernels'));
  });
});

describe('entries', () => {
  test('writeEntry writes files and meta.json with their SHA-256', async () => {
    const dir = path.join(scratch, 'a', entryDirName('linux-image-x', '1:2.0-1'));
    expect(path.basename(dir)).toBe('linux-image-x_1%3a2.0-1');
    const e = await writeEntry(dir, { vmlinuz: Buffer.from('abc'), config: Buffer.alloc(0) }, fields);
    expect(e.meta.files).toEqual({ vmlinuz: SHA_ABC, config: SHA_EMPTY });
    const onDisk = JSON.parse(await fs.readFile(path.join(dir, 'meta.json'), 'utf8'));
    expect(onDisk).toMatchObject({ ...fields, files: { vmlinuz: SHA_ABC, config: SHA_EMPTY } });
    expect(Number.isNaN(Date.parse(onDisk.fetchedAt))).toBe(false);
    expect((await fs.readdir(path.dirname(dir))).sort()).toEqual([path.basename(dir)]);
    expect((await readEntry(dir))?.meta.release).toBe(fields.release);
  });

  test('a directory without meta.json is incomplete and not used; missing is missing', async () => {
    const dir = path.join(scratch, 'b', 'entry');
    await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(path.join(dir, 'vmlinuz'), 'abc');
    expect((await inspectEntry(dir)).state).toBe('incomplete');
    expect(await readEntry(dir)).toBeUndefined();
    expect((await inspectEntry(path.join(scratch, 'b', 'nothing'))).state).toBe('missing');
  });

  test('a changed, missing or unlisted file is caught; meta.json that is not JSON is corrupt', async () => {
    const dir = path.join(scratch, 'c', 'entry');
    await writeEntry(dir, { vmlinuz: Buffer.from('abc'), config: Buffer.from('x') }, fields);
    await fs.writeFile(path.join(dir, 'vmlinuz'), 'abd');
    const s = await inspectEntry(dir);
    expect(s.state).toBe('corrupt');
    expect(s.state === 'corrupt' && s.problem).toMatch(/vmlinuz has SHA-256/);
    // Without verification the same entry reads fine (for callers that only want the metadata).
    expect((await inspectEntry(dir, { verify: false })).state).toBe('ok');
    await fs.rm(path.join(dir, 'vmlinuz'));
    expect((await inspectEntry(dir)).state).toBe('corrupt');
    await fs.writeFile(path.join(dir, 'meta.json'), '{"files": ');
    expect((await inspectEntry(dir)).state).toBe('corrupt');
  });

  test('writeEntry replaces a corrupt entry whole and removes leftovers of killed runs', async () => {
    const dir = path.join(scratch, 'd', 'entry');
    await writeEntry(dir, { vmlinuz: Buffer.from('old'), stale: Buffer.from('s') }, fields);
    await fs.writeFile(path.join(dir, 'vmlinuz'), 'garbage');
    // What a run killed mid-write leaves: a temporary directory with a partial file.
    const leftover = path.join(scratch, 'd', '.tmp-entry-99999-0123abcd');
    await fs.mkdir(leftover);
    await fs.writeFile(path.join(leftover, 'vmlinuz'), 'partial');
    const e = await writeEntry(dir, { vmlinuz: Buffer.from('abc') }, fields);
    expect(e.meta.files).toEqual({ vmlinuz: SHA_ABC });
    expect(await fs.readdir(dir)).toEqual(expect.arrayContaining(['vmlinuz', 'meta.json']));
    expect(await fs.readdir(dir)).not.toContain('stale');
    expect(await fs.readdir(path.join(scratch, 'd'))).toEqual(['entry']);
  });

  test('addFile lists the file in meta.json only once it is in place', async () => {
    const dir = path.join(scratch, 'e', 'entry');
    const e = await writeEntry(dir, { vmlinuz: Buffer.from('abc') }, fields);
    const e2 = await addFile(e, 'btf', Buffer.alloc(0));
    expect(e2.meta.files).toEqual({ vmlinuz: SHA_ABC, btf: SHA_EMPTY });
    expect((await readEntry(dir))?.meta.files.btf).toBe(SHA_EMPTY);
    // An unlisted file (as after a crash between rename and the meta.json update) is not trusted.
    await fs.writeFile(path.join(dir, 'extra'), 'x');
    expect((await readEntry(dir))?.meta.files.extra).toBeUndefined();
    await expect(addFile(e2, 'meta.json', Buffer.alloc(0))).rejects.toMatchObject({ code: 'usage' });
    await expect(addFile(e2, '../x', Buffer.alloc(0))).rejects.toMatchObject({ code: 'usage' });
    expect((await fs.readdir(dir)).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  test('removeLeftovers touches only the named entry', async () => {
    const parent = path.join(scratch, 'f');
    await fs.mkdir(path.join(parent, '.tmp-a-1-00000000'), { recursive: true });
    await fs.mkdir(path.join(parent, '.old-a-2-0000ffff'), { recursive: true });
    await fs.mkdir(path.join(parent, '.tmp-b-1-00000000'), { recursive: true });
    await removeLeftovers(path.join(parent, 'a'));
    expect(await fs.readdir(parent)).toEqual(['.tmp-b-1-00000000']);
  });
});

describe('locks', () => {
  let lockScript: string;
  beforeAll(async () => {
    lockScript = await nodeScript(
      'lock-child',
      `import { appendFileSync } from 'node:fs';
       import { withLock } from ${JSON.stringify(path.join(here, 'cache.ts'))};
       const [lock, log, holdMs] = process.argv.slice(2);
       await withLock(lock, async () => {
         appendFileSync(log, 'in ' + process.pid + '\\n');
         await new Promise((r) => setTimeout(r, Number(holdMs)));
         appendFileSync(log, 'out ' + process.pid + '\\n');
       }, { pollMs: 10 });`,
    );
  });

  test('four processes contending for one lock never overlap', async () => {
    const lock = path.join(scratch, 'locks', 'x.lock');
    const log = path.join(scratch, 'locks', 'x.log');
    await fs.mkdir(path.dirname(lock), { recursive: true });
    await Promise.all([1, 2, 3, 4].map(() => execa(process.execPath, [lockScript, lock, log, '150'])));
    const lines = (await fs.readFile(log, 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(8);
    for (let i = 0; i < lines.length; i += 2) {
      const pid = lines[i]!.split(' ')[1];
      expect([lines[i], lines[i + 1]]).toEqual([`in ${pid}`, `out ${pid}`]);
    }
    await expect(fs.access(lock)).rejects.toThrow();
  });

  test('a lock held by a process killed with SIGKILL is broken by the next one', async () => {
    const lock = path.join(scratch, 'locks', 'y.lock');
    const log = path.join(scratch, 'locks', 'y.log');
    const holder = execa(process.execPath, [lockScript, lock, log, '60000'], { reject: false });
    while (!(await fs.readFile(log, 'utf8').catch(() => '')).includes('in'))
      await new Promise((r) => setTimeout(r, 20));
    holder.kill('SIGKILL');
    await holder;
    const owner = JSON.parse(await fs.readFile(lock, 'utf8'));
    expect(owner.pid).toBe(holder.pid);
    const start = Date.now();
    await withLock(lock, async () => undefined, { timeoutMs: 5_000 });
    expect(Date.now() - start).toBeLessThan(2_000);
    await expect(fs.access(lock)).rejects.toThrow();
  });

  test('a live holder is waited for, up to the timeout', async () => {
    const lock = path.join(scratch, 'locks', 'z.lock');
    await withLock(lock, async () => {
      await expect(withLock(lock, async () => 1, { timeoutMs: 300, pollMs: 20 })).rejects.toMatchObject({
        code: 'io',
        file: lock,
      });
    });
    expect(await withLock(lock, async () => 2)).toBe(2);
  });

  test('entryLock is a dot-file beside the entry', () => {
    expect(entryLock('/k/debian/linux-image-x_1')).toBe('/k/debian/.linux-image-x_1.lock');
  });
});

test('sha256 of entries matches sha256sum', async () => {
  const dir = path.join(scratch, 'g', 'entry');
  const bytes = Buffer.from(Array.from({ length: 100_000 }, (_, i) => (i * 7) & 0xff));
  const e = await writeEntry(dir, { blob: bytes }, fields);
  const { stdout } = await execa('sha256sum', [path.join(dir, 'blob')]);
  expect(e.meta.files.blob).toBe(stdout.split(' ')[0]);
  expect(e.meta.files.blob).toBe(createHash('sha256').update(bytes).digest('hex'));
});
