import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Btf } from '../btf/btf.js';
import { ParseError, UsageError } from '../errors.js';
import { debianModuleBtfs } from '../test-support/modules.js';
import { readBtfFile } from './read.js';
import { compressWith, KERNEL_COMPRESSORS, makeBzImage, withSizeTrailer } from './test-support/images.js';

let dir: string;
let object: string;
let objectBtf: Uint8Array;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'corematrix-read-'));
  object = join(dir, 'prog.bpf.o');
  const source = join(import.meta.dirname, '../elf/testdata/prog.bpf.c');
  execFileSync('clang-19', ['-g', '-O2', '-target', 'bpfel', '-c', source, '-o', object]);
  execFileSync('llvm-objcopy-19', [`--dump-section=.BTF=${object}.btf`, object, join(dir, 'discard')]);
  objectBtf = new Uint8Array(readFileSync(`${object}.btf`));
});

afterAll(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

/** bpftool's list of the BTF's type names in id order, the reference for what was parsed. */
function bpftoolNames(path: string, base?: string): string[] {
  const args = base === undefined ? [] : ['--base-btf', base];
  const dump = execFileSync('bpftool', [...args, 'btf', 'dump', 'file', path], {
    maxBuffer: 1 << 30,
  }).toString();
  // Type lines look like: [42] STRUCT 'task_struct' size=… ; member lines are indented.
  return [...dump.matchAll(/^\[\d+\] \S+ '([^']*)'/gm)].map((m) => m[1]!);
}

function ownNames(btf: Btf): string[] {
  return [...btf.ownIds()].map((id) => btf.name(id) || '(anon)');
}

describe('readBtfFile', () => {
  it('reads an ELF, a raw BTF file and a bzImage, saying which it was', async () => {
    const fromElf = await readBtfFile(object);
    expect(fromElf.source).toEqual({ container: 'elf' });
    expect(ownNames(fromElf.btf)).toEqual(bpftoolNames(object));

    const raw = await readBtfFile(`${object}.btf`);
    expect(raw.source).toEqual({ container: 'raw' });
    expect(raw.btf.typeCount).toBe(fromElf.btf.typeCount);

    const elf = new Uint8Array(readFileSync(object));
    const payload = withSizeTrailer(compressWith(KERNEL_COMPRESSORS.zstd, elf), elf.length);
    const image = join(dir, 'vmlinuz');
    writeFileSync(image, makeBzImage({ payload, version: '6.99.1-test (x@y) #1' }));
    const fromImage = await readBtfFile(image);
    expect(fromImage.source).toEqual({ container: 'bzimage', compression: 'zstd', release: '6.99.1-test' });
    expect(Buffer.from(fromImage.btf.raw).equals(objectBtf)).toBe(true);
  });

  it('names the path of a missing or unreadable file in a UsageError', async () => {
    const missing = join(dir, 'no-such-vmlinuz');
    const e = await readBtfFile(missing).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UsageError);
    expect((e as UsageError).file).toBe(missing);
    expect((e as UsageError).describe()).toContain(missing);
    expect((e as UsageError).describe()).toMatch(/no such file/);
    await expect(readBtfFile(dir)).rejects.toThrow(/directory/);
    const locked = join(dir, 'locked');
    writeFileSync(locked, objectBtf);
    chmodSync(locked, 0);
    // root reads anything; elsewhere this is the permission path.
    const result = await readBtfFile(locked).catch((x: unknown) => x);
    if (result instanceof Error) expect(result).toBeInstanceOf(UsageError);
  });

  it('attaches the path to parse errors', async () => {
    const corrupt = join(dir, 'corrupt.btf');
    writeFileSync(corrupt, objectBtf.subarray(0, 30));
    const e = await readBtfFile(corrupt).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ParseError);
    expect((e as ParseError).file).toBe(corrupt);
    const truncatedImage = join(dir, 'truncated-vmlinuz');
    const elf = new Uint8Array(readFileSync(object));
    const payload = withSizeTrailer(compressWith(KERNEL_COMPRESSORS.gzip, elf), elf.length);
    writeFileSync(truncatedImage, makeBzImage({ payload, tail: 0 }).subarray(0, -100));
    const e2 = await readBtfFile(truncatedImage).catch((x: unknown) => x);
    expect(e2).toBeInstanceOf(ParseError);
    expect((e2 as ParseError).describe()).toMatch(/^.*truncated-vmlinuz: kernel-image: /);
  });

  const sysfs = '/sys/kernel/btf';
  const modules = existsSync(sysfs) ? readdirSync(sysfs).filter((m) => m !== 'vmlinux') : [];

  it.skipIf(!existsSync(`${sysfs}/vmlinux`))('reads the running kernel’s BTF like bpftool does', async () => {
    const { btf, source } = await readBtfFile(`${sysfs}/vmlinux`);
    expect(source.container).toBe('raw');
    expect(ownNames(btf)).toEqual(bpftoolNames(`${sysfs}/vmlinux`));
  });

  it('reads split module BTF on a base given by path or as parsed BTF', async () => {
    // A module of the host when it exposes any (raw BTF), else of a Debian kernel (a .ko, ELF):
    // the larger of two spread over its modules' sizes, for more types.
    const { module, vmlinux } =
      modules.length > 0
        ? { module: `${sysfs}/${modules[0]}`, vmlinux: `${sysfs}/vmlinux` }
        : await debianModuleBtfs(2).then((d) => ({ module: d.modules[1]!, vmlinux: d.base }));
    const byPath = await readBtfFile(module, { base: vmlinux });
    expect(ownNames(byPath.btf)).toEqual(bpftoolNames(module, vmlinux));
    const base = (await readBtfFile(vmlinux)).btf;
    const byBtf = await readBtfFile(module, { base });
    expect(byBtf.btf.base).toBe(base);
    expect(byBtf.btf.typeCount).toBe(byPath.btf.typeCount);
    // A missing base is the base's path in the error.
    const e = await readBtfFile(module, { base: join(dir, 'no-base') }).catch((x: unknown) => x);
    expect((e as UsageError).file).toBe(join(dir, 'no-base'));
  });
});
