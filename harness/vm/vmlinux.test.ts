import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Elf } from '../elf/elf.js';
import { type CachedKernel, defaultDebianKernels } from '../test-support/kernels.js';
import { bootImage, hasPvhNote } from './vmlinux.js';

let kernels: CachedKernel[];
let cache: string;
beforeAll(async () => {
  kernels = await defaultDebianKernels();
  cache = await fs.mkdtemp(path.join(os.tmpdir(), 'corematrix-vmlinux-test-'));
});
afterAll(async () => {
  await fs.rm(cache, { recursive: true, force: true });
});

describe('bootImage', () => {
  it('unpacks each default kernel to a vmlinux ELF with the PVH note, once', async () => {
    for (const k of kernels) {
      const start = performance.now();
      const image = await bootImage(k.vmlinuz, cache);
      const unpackMs = Math.round(performance.now() - start);
      expect(image.kind, image.reason).toBe('pvh');
      const bytes = new Uint8Array(await fs.readFile(image.path));
      expect(Elf.isElf(bytes)).toBe(true);
      expect(hasPvhNote(bytes)).toBe(true);
      // Its .BTF is the BTF the kernel cache extracted from the same vmlinuz.
      if (k.btf !== undefined) {
        const btf = Elf.parse(bytes).section('.BTF')!;
        expect(Buffer.compare(Buffer.from(btf), await fs.readFile(k.btf))).toBe(0);
      }
      // The same promise in this process; the cached file in the next one.
      expect(await bootImage(k.vmlinuz, cache)).toBe(image);
      console.log(`${k.name}: unpacked in ${unpackMs} ms (${bytes.length} bytes)`);
    }
    expect((await fs.readdir(cache)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('boots what is not a bzImage as given, and says why', async () => {
    const file = path.join(cache, 'random');
    await fs.writeFile(file, randomBytes(4096));
    expect(await bootImage(file, cache)).toEqual({ path: file, kind: 'as-given', reason: 'not a bzImage' });
  });

  it('a bzImage whose payload does not unpack boots as given, and the answer is cached', async () => {
    const bytes = new Uint8Array(await fs.readFile(kernels[0]!.vmlinuz));
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const payload = ((bytes[0x1f1] || 4) + 1) * 512 + v.getUint32(0x248, true);
    bytes.fill(0x41, payload, payload + 64);
    const file = path.join(cache, 'broken-vmlinuz');
    await fs.writeFile(file, bytes);
    const image = await bootImage(file, cache);
    expect(image.kind).toBe('as-given');
    expect(image.reason).toMatch(/cannot unpack the bzImage/);
    expect((await fs.readdir(cache)).some((f) => f.endsWith('.no-pvh'))).toBe(true);
  });
});
