import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Elf } from '../elf/elf.js';
import { isCorematrixError, NotSupportedError, ParseError } from '../errors.js';
import type { Compression } from './decompress.js';
import { extractBtf, isBzImage, kernelRelease } from './image.js';
import {
  COMPRESSIONS,
  compressWithAsync,
  FAST_COMPRESSORS,
  KERNEL_COMPRESSORS,
  makeBzImage,
  mutate,
  seededRandom,
  withSizeTrailer,
} from './test-support/images.js';

const RELEASE = '6.99.0-corematrix-amd64';
const VERSION = `${RELEASE} (builder@example) #1 SMP PREEMPT_DYNAMIC Debian 6.99.0-1 (2026-01-01)`;
const HOST_BTF = '/sys/kernel/btf/vmlinux';

let dir: string;

interface Fixture {
  /** The uncompressed ELF. */
  elf: Uint8Array;
  /** Its .BTF as llvm-objcopy dumps it, and where llvm-readobj says the section starts. */
  btf: Uint8Array;
  btfOffset: number;
  /** The ELF compressed by each tool, size trailer appended. */
  payloads: Map<Compression, Uint8Array>;
}
const fixtures = new Map<'bpf-object' | 'vmlinux-like', Fixture>();

function tool(program: string, args: string[]): Buffer {
  return execFileSync(program, args, { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 30 });
}

/** The real tools' view of an ELF's .BTF: llvm-objcopy's dump and llvm-readobj's section offset. */
function btfByTools(path: string): { btf: Uint8Array; btfOffset: number } {
  const out = `${path}.btf`;
  tool('llvm-objcopy-19', [`--dump-section=.BTF=${out}`, path, `${path}.discard`]);
  const sections = JSON.parse(
    tool('llvm-readobj-19', ['--elf-output-style=JSON', '--sections', path]).toString(),
  )[0].Sections as { Section: { Name: { Name: string }; Offset: number } }[];
  const section = sections.find((s) => s.Section.Name.Name === '.BTF')!;
  return { btf: new Uint8Array(readFileSync(out)), btfOffset: section.Section.Offset };
}

async function makeFixture(path: string, settings: Record<Compression, readonly string[]>): Promise<Fixture> {
  const elf = new Uint8Array(readFileSync(path));
  const payloads = new Map<Compression, Uint8Array>();
  await Promise.all(
    COMPRESSIONS.map(async (c) => {
      payloads.set(c, withSizeTrailer(await compressWithAsync(settings[c], elf), elf.length));
    }),
  );
  return { elf, ...btfByTools(path), payloads };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'corematrix-image-'));
  // A BPF object: small, with a .BTF section (clang -g).
  const object = join(dir, 'prog.bpf.o');
  tool('clang-19', [
    '-g',
    '-O2',
    '-target',
    'bpfel',
    '-c',
    join(import.meta.dirname, '../elf/testdata/prog.bpf.c'),
    '-o',
    object,
  ]);
  // Something shaped like a vmlinux: x86-64 code (for xz's BCJ filter) with a kernel's BTF as an
  // allocated .BTF section, as the kernel's link adds it.
  const vmlinux = join(dir, 'vmlinux');
  const btfSource = join(dir, 'kernel.btf');
  if (existsSync(HOST_BTF)) writeFileSync(btfSource, readFileSync(HOST_BTF));
  else tool('llvm-objcopy-19', [`--dump-section=.BTF=${btfSource}`, object, join(dir, 'discard')]);
  copyFileSync('/usr/lib/llvm-19/bin/clang', join(dir, 'code'));
  tool('llvm-objcopy-19', [
    `--add-section=.BTF=${btfSource}`,
    '--set-section-flags=.BTF=alloc,readonly',
    join(dir, 'code'),
    vmlinux,
  ]);
  // The kernel build's settings on the small one; faster ones (same formats, same xz BCJ filter)
  // on the large one, whose maximum levels would take most of the suite's time.
  const [small, large] = await Promise.all([
    makeFixture(object, KERNEL_COMPRESSORS),
    makeFixture(vmlinux, FAST_COMPRESSORS),
  ]);
  fixtures.set('bpf-object', small);
  fixtures.set('vmlinux-like', large);
}, 600_000);

afterAll(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error, got a result');
}

describe.each(['bpf-object', 'vmlinux-like'] as const)('bzImage around a %s', (name) => {
  it.each(COMPRESSIONS)('%s: extracts the .BTF llvm-objcopy dumps', (c) => {
    const fixture = fixtures.get(name)!;
    const image = makeBzImage({ payload: fixture.payloads.get(c)!, version: VERSION });
    expect(isBzImage(image)).toBe(true);
    const t0 = performance.now();
    const got = extractBtf(image);
    if (name === 'vmlinux-like') {
      console.log(`bzImage/${c}: ${image.length} bytes → BTF in ${(performance.now() - t0).toFixed(0)} ms`);
    }
    expect(got.container).toBe('bzimage');
    expect(got.compression).toBe(c);
    expect(got.release).toBe(RELEASE);
    expect(got.btfOffset).toBe(fixture.btfOffset);
    expect(same(got.btf, fixture.btf)).toBe(true);
  });

  it.each(COMPRESSIONS)('%s: extracts from the compressed ELF alone (vmlinux.bin.%s)', (c) => {
    const fixture = fixtures.get(name)!;
    const got = extractBtf(fixture.payloads.get(c)!);
    expect({ container: got.container, compression: got.compression, btfOffset: got.btfOffset }).toEqual({
      container: 'elf',
      compression: c,
      btfOffset: fixture.btfOffset,
    });
    expect(same(got.btf, fixture.btf)).toBe(true);
  });
});

describe('other containers', () => {
  it('takes raw BTF as it is, in either byte order', () => {
    const { btf } = fixtures.get('vmlinux-like')!;
    expect(extractBtf(btf)).toMatchObject({ container: 'raw', btfOffset: 0 });
    expect(extractBtf(btf).btf).toBe(btf);
    const eb = join(dir, 'prog.eb.o');
    tool('clang-19', [
      '-g',
      '-target',
      'bpfeb',
      '-c',
      join(import.meta.dirname, '../elf/testdata/prog.bpf.c'),
      '-o',
      eb,
    ]);
    const ebBtf = btfByTools(eb).btf;
    expect([ebBtf[0], ebBtf[1]]).toEqual([0xeb, 0x9f]);
    expect(extractBtf(ebBtf).container).toBe('raw');
    expect(same(extractBtf(new Uint8Array(readFileSync(eb))).btf, ebBtf)).toBe(true);
  });

  it('reads an ELF’s .BTF in place', () => {
    const { elf, btf, btfOffset } = fixtures.get('vmlinux-like')!;
    const got = extractBtf(elf);
    expect(got).toMatchObject({ container: 'elf', btfOffset });
    expect(got.compression).toBeUndefined();
    expect(got.btf.buffer).toBe(elf.buffer);
    expect(same(got.btf, btf)).toBe(true);
  });

  it('says when an ELF has no .BTF', () => {
    const noDebug = join(dir, 'nodebug.o');
    tool('clang-19', [
      '-O2',
      '-target',
      'bpfel',
      '-c',
      join(import.meta.dirname, '../elf/testdata/prog.bpf.c'),
      '-o',
      noDebug,
    ]);
    const e = thrown(() => extractBtf(new Uint8Array(readFileSync(noDebug))));
    expect(e).toBeInstanceOf(NotSupportedError);
    expect((e as NotSupportedError).feature).toBe('no-btf');
  });

  it('names the magic of a file of no known kind', () => {
    for (const bytes of [
      new Uint8Array(0),
      new Uint8Array([0x50, 0x4b, 3, 4, 0, 0, 0, 0]),
      new Uint8Array(600),
    ]) {
      const e = thrown(() => extractBtf(bytes));
      expect(e).toBeInstanceOf(NotSupportedError);
      expect((e as Error).message).toMatch(/magic/);
    }
  });
});

describe('malformed bzImages', () => {
  const good = (c: Compression = 'gzip') =>
    makeBzImage({ payload: fixtures.get('bpf-object')!.payloads.get(c)!, version: VERSION });

  it('rejects a payload outside the file', () => {
    const image = good();
    new DataView(image.buffer).setUint32(0x24c, image.length, true);
    expect(thrown(() => extractBtf(image))).toMatchObject({ format: 'kernel-image', offset: 0x248 });
    const offset = good();
    new DataView(offset.buffer).setUint32(0x248, 0xfffffff0, true);
    expect(thrown(() => extractBtf(offset))).toMatchObject({ offset: 0x248 });
  });

  it('names an unknown payload compression (e.g. LZO) by its magic and offset', () => {
    const lzo = new Uint8Array([0x89, 0x4c, 0x5a, 0x4f, 0x00, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3, 4, 5, 6, 7]);
    const e = thrown(() => extractBtf(makeBzImage({ payload: lzo, version: VERSION })));
    expect(e).toBeInstanceOf(NotSupportedError);
    expect((e as Error).message).toMatch(/89 4c 5a 4f 00 0d/);
  });

  it('rejects a size trailer that does not match the payload', () => {
    const payload = fixtures.get('bpf-object')!.payloads.get('zstd')!.slice();
    new DataView(payload.buffer).setUint32(payload.length - 4, 12345, true);
    const e = thrown(() => extractBtf(makeBzImage({ payload }))) as ParseError;
    expect(e).toBeInstanceOf(ParseError);
    // zstd decodes to the size it is told; the content checksum then disagrees.
    expect(e.reason).toMatch(/12345|checksum/);
  });

  it('rejects a payload that is not an ELF', () => {
    const text = new Uint8Array(Buffer.from('not a kernel at all '.repeat(50)));
    const payload = withSizeTrailer(
      new Uint8Array(execFileSync('gzip', ['-n', '-9'], { input: text })),
      text.length,
    );
    const e = thrown(() => extractBtf(makeBzImage({ payload }))) as ParseError;
    expect(e).toBeInstanceOf(ParseError);
    expect(e.reason).toMatch(/other than an ELF/);
  });

  it('refuses boot protocols older than 2.08 (no payload fields)', () => {
    const image = makeBzImage({
      payload: fixtures.get('bpf-object')!.payloads.get('gzip')!,
      protocol: 0x0207,
    });
    expect(thrown(() => extractBtf(image))).toBeInstanceOf(NotSupportedError);
  });

  it('reads the release only where kernel_version points', () => {
    expect(kernelRelease(good())).toBe(RELEASE);
    expect(kernelRelease(makeBzImage({ payload: new Uint8Array(8) }))).toBeUndefined();
    expect(kernelRelease(new Uint8Array(100))).toBeUndefined();
    const past = good();
    new DataView(past.buffer).setUint16(0x20e, 0xfff0, true);
    expect(thrown(() => kernelRelease(past))).toMatchObject({ offset: 0x20e });
    const garbage = good();
    new DataView(garbage.buffer).setUint16(0x20e, 0x300, true); // into the zeroed setup area
    expect(thrown(() => kernelRelease(garbage))).toBeInstanceOf(ParseError);
    // The BTF is still good: extraction goes on without a release.
    const extracted = extractBtf(garbage);
    expect(extracted.release).toBeUndefined();
    expect(same(extracted.btf, fixtures.get('bpf-object')!.btf)).toBe(true);
  });

  it('handles setup_sects 0 (meaning 4) and other layouts', () => {
    const { payloads, btf } = fixtures.get('bpf-object')!;
    const payload = payloads.get('lz4')!;
    // Laid out for 4 setup sectors, but saying 0: boot.rst says to read that as 4.
    const zero = makeBzImage({ payload, version: VERSION, setupSects: 4, payloadOffset: 0 });
    zero[0x1f1] = 0;
    expect(same(extractBtf(zero).btf, btf)).toBe(true);
    for (const layout of [
      { setupSects: 1, payloadOffset: 17, tail: 0 },
      { setupSects: 30, payloadOffset: 0x4000, tail: 4096 },
    ]) {
      expect(same(extractBtf(makeBzImage({ payload, version: VERSION, ...layout })).btf, btf)).toBe(true);
    }
  });

  it.each(COMPRESSIONS)('%s: mutated images give a result or a typed error, without hanging', (c) => {
    const image = good(c);
    const payloadStart = 4 * 512 + 0x3c0;
    const random = seededRandom(0x51ed270b + c.charCodeAt(1));
    const started = Date.now();
    let ok = 0;
    let rejected = 0;
    let slowest = 0;
    const rounds = c === 'bzip2' ? 400 : 1200;
    for (let round = 0; round < rounds && Date.now() - started < 20_000; round++) {
      // Mostly the setup header and the payload's first bytes, where the structure is.
      const focus =
        round % 2 === 0 ? { start: 0x1f0, end: 0x250 } : { start: payloadStart, end: payloadStart + 128 };
      const input = mutate(image, random, focus);
      const t0 = performance.now();
      try {
        extractBtf(input, { maxOutput: 16 << 20 });
        ok++;
      } catch (e) {
        if (!isCorematrixError(e)) throw e;
        rejected++;
      }
      slowest = Math.max(slowest, performance.now() - t0);
    }
    console.log(`bzImage/${c} fuzz: ${ok} extracted, ${rejected} rejected, slowest ${slowest.toFixed(0)} ms`);
    expect(ok).toBeGreaterThan(0);
    expect(rejected).toBeGreaterThan(0);
    expect(slowest).toBeLessThan(5_000);
  });
});

// ---------------------------------------------------------------------------------------------
// Real Debian kernels, when the kernel cache holds some (kernels/ at the repository root, or
// $COREMATRIX_CACHE): extraction must match what the real CLI tools extract.

const cacheRoot = process.env.COREMATRIX_CACHE || resolve(import.meta.dirname, '../../kernels');

function findVmlinuz(root: string, depth = 0): string[] {
  if (depth > 4 || !existsSync(root)) return [];
  const found: string[] = [];
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue; // unfinished downloads and temporary entries
    const path = join(root, entry.name);
    if (entry.isDirectory()) found.push(...findVmlinuz(path, depth + 1));
    else if (entry.isFile() && entry.name.startsWith('vmlinuz')) found.push(path);
  }
  return found.sort();
}

// At most a handful: a large cache must not make the suite slow.
const debianKernels = findVmlinuz(cacheRoot).slice(0, 6);

/** How scripts/extract-vmlinux finds a payload: the first offset where a decompressor's magic is. */
const CLI_DECOMPRESSORS: readonly { compression: Compression; magic: number[]; command: string }[] = [
  { compression: 'gzip', magic: [0x1f, 0x8b, 0x08], command: 'gunzip' },
  { compression: 'xz', magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], command: 'unxz' },
  { compression: 'bzip2', magic: [0x42, 0x5a, 0x68], command: 'bunzip2' },
  { compression: 'lzma', magic: [0x5d, 0x00, 0x00, 0x00], command: 'unlzma' },
  { compression: 'lz4', magic: [0x02, 0x21, 0x4c, 0x18], command: 'lz4 -d' },
  { compression: 'zstd', magic: [0x28, 0xb5, 0x2f, 0xfd], command: 'zstd -d -q' },
];

function extractWithCli(
  vmlinuz: string,
  work: string,
): { compression: Compression; btf: Uint8Array; vmlinux: string } {
  const image = readFileSync(vmlinuz);
  for (const { compression, magic, command } of CLI_DECOMPRESSORS) {
    const at = image.indexOf(Buffer.from(magic));
    if (at < 0) continue;
    const vmlinux = join(work, 'vmlinux');
    // Trailing bytes make some tools complain after writing everything: judge by the output.
    execFileSync('sh', [
      '-c',
      `tail -c +${at + 1} "$1" | ${command} -c > "$2" 2>/dev/null || true`,
      'sh',
      vmlinuz,
      vmlinux,
    ]);
    const head = readFileSync(vmlinux).subarray(0, 4);
    if (!head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) continue;
    tool('llvm-objcopy-19', [`--dump-section=.BTF=${vmlinux}.btf`, vmlinux, `${vmlinux}.discard`]);
    return { compression, btf: new Uint8Array(readFileSync(`${vmlinux}.btf`)), vmlinux };
  }
  throw new Error(`the CLI tools found no vmlinux in ${vmlinuz}`);
}

describe.skipIf(debianKernels.length === 0)('Debian kernels in the cache', () => {
  it.each(debianKernels)('%s: BTF equals what lz4/zstd/… and llvm-objcopy extract', (vmlinuz) => {
    const bytes = new Uint8Array(readFileSync(vmlinuz));
    const t0 = performance.now();
    const got = extractBtf(bytes);
    const elapsed = performance.now() - t0;
    const work = mkdtempSync(join(dir, 'debian-'));
    const cli = extractWithCli(vmlinuz, work);
    console.log(
      `${vmlinuz}: ${got.compression}, release ${got.release}, ${bytes.length} bytes → ${got.btf.length} bytes of BTF in ${elapsed.toFixed(0)} ms`,
    );
    expect(got.container).toBe('bzimage');
    expect(got.compression).toBe(cli.compression);
    expect(same(got.btf, cli.btf)).toBe(true);
    // The ELF reader on a whole vmlinux agrees with llvm-readobj on every section header.
    const elf = Elf.parse(new Uint8Array(readFileSync(cli.vmlinux)));
    const sections = JSON.parse(
      tool('llvm-readobj-19', ['--elf-output-style=JSON', '--sections', cli.vmlinux]).toString(),
    )[0].Sections as {
      Section: {
        Index: number;
        Name: { Name: string };
        Type: { Value: number };
        Offset: number;
        Size: number;
      };
    }[];
    expect(elf.sections.map((x) => [x.index, x.name, x.type, x.offset, x.size])).toEqual(
      sections.map(({ Section: x }) => [x.Index, x.Name.Name, x.Type.Value, x.Offset, x.Size]),
    );
    // The cache entry's meta.json (written by the fetcher from the package) names the release.
    const meta = join(vmlinuz, '..', 'meta.json');
    const named = /^vmlinuz-(.+)$/.exec(basename(vmlinuz))?.[1];
    if (existsSync(meta)) expect(got.release).toBe(JSON.parse(readFileSync(meta, 'utf8')).release);
    else if (named !== undefined) expect(got.release).toBe(named);
    else expect(got.release).toMatch(/^\d+\.\d+/);
  });
});
