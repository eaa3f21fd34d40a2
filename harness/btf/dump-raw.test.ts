/**
 * The raw dump against its oracle, the real bpftool 7.1 (`bpftool [-B BASE] btf dump file FILE`):
 * kernel BTF (the host's and any under kernels/), module BTF with its base, BTF from clang-built
 * BPF objects of both byte orders, split BTF made by pahole, and hand-made BTF holding what no
 * compiler emits (unknown linkages and encodings, extreme values, names that are '' or huge).
 */

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { isParseError } from '../errors.js';
import { extractBtf } from '../kernels/image.js';
import { defaultDebianKernels } from '../test-support/kernels.js';
import { debianModuleBtfs } from '../test-support/modules.js';
import { Btf } from './btf.js';
import { writeRawDump } from './dump-raw.js';
import { KIND } from './wire.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..');
const HOST_VMLINUX = '/sys/kernel/btf/vmlinux';
const work = mkdtempSync(join(tmpdir(), 'corematrix-dump-raw-'));
afterAll(() => (process.env.KEEP ? undefined : rmSync(work, { recursive: true, force: true })));

function has(tool: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const haveBpftool = has('bpftool');
const haveClang19 = has('clang-19') && has('llvm-objcopy-19');
const havePahole = has('pahole');

/** bpftool's dump of FILE (split on BASE when given), as bytes. */
function bpftoolDump(file: string, base?: string): Buffer {
  const args = base === undefined ? [] : ['-B', base];
  return execFileSync('bpftool', [...args, 'btf', 'dump', 'file', file], {
    maxBuffer: 1 << 30,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Our dump, with the chunks it came in. */
function ourDump(btf: Btf): { text: string; chunks: string[] } {
  const chunks: string[] = [];
  writeRawDump(btf, (chunk) => chunks.push(Buffer.from(chunk).toString('utf8')));
  return { text: chunks.join(''), chunks };
}

/** Byte equality, reporting the first line that differs rather than two multi-megabyte strings. */
function expectSameDump(ours: string, theirs: Buffer, label: string): void {
  const oursBytes = Buffer.from(ours, 'utf8');
  if (oursBytes.equals(theirs)) return;
  const a = ours.split('\n');
  const b = theirs.toString('utf8').split('\n');
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  expect(`${label}, line ${i + 1}: ${a[i] ?? '<end>'}`).toBe(`${label}, line ${i + 1}: ${b[i] ?? '<end>'}`);
  expect(oursBytes.length).toBe(theirs.length);
}

function parseFile(file: string, base?: Btf): Btf {
  return Btf.parse(new Uint8Array(readFileSync(file)), base === undefined ? {} : { base });
}

/** Kernel BTF files under kernels/ (named btf or *.btf, or in a btf/ folder), as bench.mjs finds them. */
function kernelBtfFiles(): { file: string; base?: string }[] {
  const found: { file: string; base?: string }[] = [];
  const walk = (dir: string, inBtfDir: boolean) => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    // In a btf/ folder laid out like /sys/kernel/btf, vmlinux is the base of the others.
    const vmlinux =
      inBtfDir && entries.some((e) => e.isFile() && e.name === 'vmlinux') ? join(dir, 'vmlinux') : undefined;
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path, inBtfDir || entry.name === 'btf');
      else if (entry.isFile() && (inBtfDir || entry.name === 'btf' || entry.name.endsWith('.btf'))) {
        found.push(
          vmlinux === undefined || path === vmlinux ? { file: path } : { file: path, base: vmlinux },
        );
      }
    }
  };
  walk(join(repo, 'kernels'), false);
  return found.sort((x, y) => x.file.localeCompare(y.file));
}

/** Up to `n` module BTFs of the host, spread over the size range. */
function hostModules(n: number): string[] {
  let names: string[];
  try {
    names = readdirSync('/sys/kernel/btf').filter((name) => name !== 'vmlinux');
  } catch {
    return [];
  }
  const sized = names
    .map((name) => ({
      path: join('/sys/kernel/btf', name),
      size: readFileSync(join('/sys/kernel/btf', name)).length,
    }))
    .sort((a, b) => a.size - b.size);
  if (sized.length <= n) return sized.map((m) => m.path);
  return Array.from({ length: n }, (_, i) => sized[Math.round((i * (sized.length - 1)) / (n - 1))]!.path);
}

describe.skipIf(!haveBpftool)('raw dump is byte-identical to bpftool 7.1', () => {
  describe.skipIf(!existsSync(HOST_VMLINUX))('host kernel', () => {
    it('dumps /sys/kernel/btf/vmlinux as bpftool does, in ~64 KiB chunks ending at line ends', () => {
      const { text, chunks } = ourDump(parseFile(HOST_VMLINUX));
      expectSameDump(text, bpftoolDump(HOST_VMLINUX), HOST_VMLINUX);
      expect(chunks.length).toBeGreaterThan(1);
      for (const chunk of chunks) {
        expect(chunk.endsWith('\n')).toBe(true);
        // A chunk is handed out at the first line start past 64 KiB (the dump is ASCII: chars = bytes).
        const lastLine = chunk.lastIndexOf('\n[', chunk.length - 2);
        expect(lastLine).toBeLessThan(64 * 1024);
      }
      for (const chunk of chunks.slice(0, -1)) expect(chunk.length).toBeGreaterThanOrEqual(64 * 1024);
    });

    it.skipIf(!havePahole || !haveClang19)('dumps a split BTF that pahole encodes on vmlinux', () => {
      // Types equal to the kernel's (list_head) dedup into references to vmlinux ids.
      const source = join(work, 'module.c');
      writeFileSync(
        source,
        `struct list_head { struct list_head *next, *prev; };
struct my_dev { struct list_head node; int id : 7; unsigned long flags; const char *name; };
enum my_state { MY_OFF, MY_ON = 3, MY_NEG = -5 };
typedef int (*my_cb)(struct my_dev *, ...);
int my_probe(struct my_dev *d, enum my_state s, my_cb cb) { return d->id + s + (cb != 0); }
`,
      );
      const object = join(work, 'module.o');
      const split = join(work, 'module.btf');
      execFileSync('clang-19', ['-g', '-O2', '-c', source, '-o', object]);
      execFileSync('pahole', [`--btf_base=${HOST_VMLINUX}`, `--btf_encode_detached=${split}`, '-J', object]);
      const base = parseFile(HOST_VMLINUX);
      const btf = parseFile(split, base);
      const { text } = ourDump(btf);
      expect(text).toContain("STRUCT 'my_dev'");
      expectSameDump(text, bpftoolDump(split, HOST_VMLINUX), 'pahole split BTF');
    });
  });

  it('dumps module BTFs split on vmlinux as bpftool -B does', async () => {
    // The host's modules when it exposes any, else real modules (.ko, ELF) of a Debian kernel.
    const host = hostModules(6);
    const { base: basePath, modules } =
      host.length > 0 ? { base: HOST_VMLINUX, modules: host } : await debianModuleBtfs(6);
    expect(modules.length).toBeGreaterThan(0);
    const base = parseFile(basePath);
    for (const module of modules) {
      const btf = Btf.parse(extractBtf(new Uint8Array(readFileSync(module))).btf, { base });
      expect(btf.firstId).toBe(base.typeCount);
      expectSameDump(ourDump(btf).text, bpftoolDump(module, basePath), module);
    }
  });

  const kernels = kernelBtfFiles();
  it.skipIf(kernels.length === 0)('dumps every kernel BTF under kernels/ as bpftool does', () => {
    const bases = new Map<string, Btf>();
    for (const { file, base } of kernels) {
      let baseBtf: Btf | undefined;
      if (base !== undefined) {
        baseBtf = bases.get(base) ?? parseFile(base);
        bases.set(base, baseBtf);
      }
      expectSameDump(ourDump(parseFile(file, baseBtf)).text, bpftoolDump(file, base), file);
    }
  });

  it("covers the default Debian kernels (5.10, 6.1, 6.12, sid's 7.x)", async () => {
    const debian = await defaultDebianKernels();
    expect(debian).toHaveLength(4);
    const dumped = new Set(kernels.map((k) => k.file));
    for (const k of debian) expect(dumped.has(k.btf!)).toBe(true);
  });

  describe.skipIf(!haveClang19)('clang-19 BPF objects', () => {
    const source = join(here, 'testdata', 'all-kinds.bpf.c');

    /** Builds the object, and extracts its .BTF as our side's input (bpftool reads the ELF itself). */
    function build(target: 'bpf' | 'bpfeb' | 'bpfel'): { object: string; btf: string } {
      const object = join(work, `all-kinds.${target}.o`);
      const btf = join(work, `all-kinds.${target}.btf`);
      execFileSync('clang-19', ['-g', '-O2', '-target', target, '-c', source, '-o', object]);
      execFileSync('llvm-objcopy-19', [`--dump-section=.BTF=${btf}`, object, join(work, 'discard.o')]);
      return { object, btf };
    }

    it('emits every kind and kind_flag meaning, dumped as bpftool does (little-endian)', () => {
      const { object, btf: file } = build('bpf');
      const btf = parseFile(file);
      expect(btf.littleEndian).toBe(true);
      const kinds = new Set<number>();
      for (let id = 1; id < btf.typeCount; id++) kinds.add(btf.kindNumber(id));
      expect([...kinds].sort((a, b) => a - b)).toEqual(Array.from({ length: KIND.ENUM64 }, (_, i) => i + 1));
      const { text } = ourDump(btf);
      // The kind_flag meanings this source was written to produce.
      for (const expected of [
        /bitfield_size=\d+/,
        /fwd_kind=union/,
        /fwd_kind=struct/,
        /ENUM '\w+' encoding=SIGNED/,
        /ENUM '\w+' encoding=UNSIGNED/,
        /val=-\d+LL\n/,
        /val=\d{11,}ULL\n/,
        /linkage=static/,
        /, linkage=global/,
        /component_idx=-1/,
        /component_idx=0/,
        /\(VAR 'the_map'\)/,
        /'\(anon\)' type_id=0\n/,
      ]) {
        expect(text).toMatch(expected);
      }
      expectSameDump(text, bpftoolDump(object), 'all-kinds.bpf.o');
    });

    it('dumps big-endian BTF (-target bpfeb) as bpftool does', () => {
      const { object, btf: file } = build('bpfeb');
      const btf = parseFile(file);
      expect(btf.littleEndian).toBe(false);
      expectSameDump(ourDump(btf).text, bpftoolDump(object), 'all-kinds (bpfeb)');
    });

    it('agrees with bpftool on type-section mutations that both accept', () => {
      const { btf: file } = build('bpf');
      const original = new Uint8Array(readFileSync(file));
      const header = Btf.parse(original).header;
      const typeStart = header.hdrLen + header.typeOff;
      const typeEnd = typeStart + header.typeLen;
      let compared = 0;
      fc.assert(
        fc.property(
          fc.array(
            fc.tuple(fc.integer({ min: typeStart, max: typeEnd - 1 }), fc.integer({ min: 0, max: 255 })),
            {
              minLength: 1,
              maxLength: 4,
            },
          ),
          (edits) => {
            const bytes = original.slice();
            for (const [at, value] of edits) bytes[at] = value;
            let text: string;
            try {
              text = ourDump(Btf.parse(bytes)).text;
            } catch (e) {
              // Rejected inputs must be rejected with a typed error, and nothing else.
              expect(isParseError(e)).toBe(true);
              return;
            }
            const mutated = join(work, 'mutated.btf');
            writeFileSync(mutated, bytes);
            let theirs: Buffer;
            try {
              theirs = bpftoolDump(mutated);
            } catch {
              return; // libbpf refuses what our parser accepts: a parser question, not a dump one
            }
            compared++;
            expectSameDump(text, theirs, `mutation ${JSON.stringify(edits)}`);
          },
        ),
        { seed: 0x5eed, numRuns: 60 },
      );
      expect(compared).toBeGreaterThan(10);
    });
  });

  describe('hand-made BTF: what compilers do not emit', () => {
    for (const littleEndian of [true, false]) {
      const order = littleEndian ? 'little' : 'big';
      it(`dumps edge values, odd names and split BTF as bpftool does (${order}-endian)`, () => {
        const base = handMadeBase(littleEndian);
        const baseFile = join(work, `hand-base-${order}.btf`);
        writeFileSync(baseFile, base.writer.bytes());
        const baseBtf = parseFile(baseFile);
        const baseDump = bpftoolDump(baseFile);
        expectSameDump(ourDump(baseBtf).text, baseDump, `hand-made base (${order})`);
        // BTF that sits at an odd offset inside a bigger buffer (as an ELF section does) dumps the same.
        const padded = new Uint8Array(baseBtf.raw.length + 7);
        padded.set(baseBtf.raw, 7);
        expectSameDump(
          ourDump(Btf.parse(padded.subarray(7))).text,
          baseDump,
          `hand-made base at offset 7 (${order})`,
        );

        const split = handMadeSplit(littleEndian, base);
        const splitFile = join(work, `hand-split-${order}.btf`);
        writeFileSync(splitFile, split.bytes());
        const splitBtf = parseFile(splitFile, baseBtf);
        expect(splitBtf.firstId).toBe(baseBtf.typeCount);
        expectSameDump(
          ourDump(splitBtf).text,
          bpftoolDump(splitFile, baseFile),
          `hand-made split (${order})`,
        );
      });
    }

    it('keeps lines longer than a chunk whole', () => {
      const w = new BtfWriter(true);
      const longName = 'n'.repeat(200_000);
      w.add(w.str('int'), KIND.INT, 0, false, 4, [(1 << 24) | 32]);
      const members: number[] = [];
      for (let i = 0; i < 0xffff; i++) members.push(w.str(`m${i}`), 1, i * 32);
      w.add(w.str('wide'), KIND.STRUCT, 0xffff, false, 0xffff * 4, members);
      w.add(w.str(longName), KIND.TYPEDEF, 0, false, 2, []);
      const file = join(work, 'long-lines.btf');
      writeFileSync(file, w.bytes());
      const { text, chunks } = ourDump(parseFile(file));
      for (const chunk of chunks) expect(chunk.endsWith('\n')).toBe(true);
      expect(statSync(file).size).toBeGreaterThan(64 * 1024);
      expectSameDump(text, bpftoolDump(file), 'long lines');
    });
  });
});

// --- a minimal BTF writer, for inputs no compiler produces ---------------------------------------

/** Writes BTF records word by word; split BTF continues a base's ids and string offsets. */
class BtfWriter {
  private readonly words: number[] = [];
  private readonly strs: Buffer[] = [];
  private strLen = 0;
  private nextId: number;
  readonly strBase: number;

  constructor(
    readonly littleEndian: boolean,
    base?: BtfWriter,
  ) {
    this.nextId = base === undefined ? 1 : base.typeCount;
    this.strBase = base === undefined ? 0 : base.strBase + base.strLen;
    if (base === undefined) this.str(''); // base BTF starts with the empty string at offset 0
  }

  get typeCount(): number {
    return this.nextId;
  }

  /** Appends a string (never shared, so '' gets an offset of its own) and returns its offset. */
  str(s: string): number {
    const off = this.strBase + this.strLen;
    const bytes = Buffer.from(`${s}\0`, 'utf8');
    this.strs.push(bytes);
    this.strLen += bytes.length;
    return off;
  }

  /** Appends a type record; `trailing` are the u32 words after struct btf_type. Returns its id. */
  add(
    nameOff: number,
    kind: number,
    vlen: number,
    kindFlag: boolean,
    sizeOrType: number,
    trailing: number[],
  ): number {
    const info = ((kindFlag ? 0x80000000 : 0) | (kind << 24) | vlen) >>> 0;
    this.words.push(nameOff, info, sizeOrType >>> 0);
    for (const word of trailing) this.words.push(word >>> 0);
    return this.nextId++;
  }

  bytes(): Uint8Array {
    const typeLen = this.words.length * 4;
    const out = new Uint8Array(24 + typeLen + this.strLen);
    const view = new DataView(out.buffer);
    const le = this.littleEndian;
    view.setUint16(0, 0xeb9f, le);
    view.setUint8(2, 1);
    view.setUint32(4, 24, le);
    view.setUint32(8, 0, le);
    view.setUint32(12, typeLen, le);
    view.setUint32(16, typeLen, le);
    view.setUint32(20, this.strLen, le);
    for (let i = 0; i < this.words.length; i++) view.setUint32(24 + i * 4, this.words[i]!, le);
    let at = 24 + typeLen;
    for (const s of this.strs) {
      out.set(s, at);
      at += s.length;
    }
    return out;
  }
}

function intInfo(encoding: number, bitsOffset: number, bits: number): number {
  return (encoding << 24) | (bitsOffset << 16) | bits;
}

/** Two u32 words (lo, hi) of a 64-bit value. */
function u64Words(value: bigint): [number, number] {
  const v = BigInt.asUintN(64, value);
  return [Number(v & 0xffffffffn), Number(v >> 32n)];
}

function handMadeBase(littleEndian: boolean): { writer: BtfWriter; baseVar: number } {
  const w = new BtfWriter(littleEndian);
  const int = w.add(w.str('int'), KIND.INT, 0, false, 4, [intInfo(1, 0, 32)]); // [1]
  w.add(w.str('weird'), KIND.INT, 0, false, 4, [intInfo(3, 3, 5)]); // SIGNED|CHAR: UNKN
  w.add(w.str('odd_bit'), KIND.INT, 0, false, 2, [intInfo(8, 0, 16)]);
  w.add(w.str('u128'), KIND.INT, 0, false, 16, [intInfo(0, 0, 128)]);
  w.add(w.str('_Bool'), KIND.INT, 0, false, 1, [intInfo(4, 0, 1)]);
  w.add(w.str('char'), KIND.INT, 0, false, 1, [intInfo(2, 0, 8)]);
  w.add(w.str(''), KIND.PTR, 0, false, int, []); // a name that is '' but not offset 0
  w.add(0, KIND.PTR, 0, false, 0, []);
  w.add(w.str('café_名前'), KIND.TYPEDEF, 0, false, int, []);
  w.add(0, KIND.VOLATILE, 0, false, int, []);
  w.add(0, KIND.CONST, 0, false, int, []);
  w.add(0, KIND.RESTRICT, 0, false, 8, []);
  w.add(w.str('user'), KIND.TYPE_TAG, 0, false, 8, []);
  w.add(0, KIND.ARRAY, 0, false, 0, [int, int, 0]);
  w.add(0, KIND.ARRAY, 0, false, 0, [int, int, 0xffffffff]);
  w.add(w.str('plain'), KIND.STRUCT, 3, false, 0xffffffff, [
    w.str('a'),
    int,
    0,
    w.str(''),
    int,
    32,
    0,
    int,
    0xffffffff,
  ]);
  w.add(w.str('bits'), KIND.STRUCT, 3, true, 8, [
    w.str('x'),
    int,
    (5 << 24) | 3,
    w.str('y'),
    int,
    (255 << 24) | 0xffffff,
    w.str('z'),
    int,
    64, // kind_flag struct, bitfield_size 0: not printed
  ]);
  w.add(0, KIND.UNION, 1, true, 4, [w.str('u'), int, 1 << 24]);
  w.add(w.str('empty'), KIND.STRUCT, 0, false, 0, []);
  const uvals = [0, 0x80000000, 0xffffffff].flatMap((v, i) => [w.str(`U${i}`), v]);
  w.add(w.str('uenum'), KIND.ENUM, 3, false, 4, uvals);
  const svals = [-1, -0x80000000, 0x7fffffff, 0].flatMap((v, i) => [w.str(`S${i}`), v]);
  w.add(w.str('senum'), KIND.ENUM, 4, true, 1, svals);
  w.add(0, KIND.ENUM, 0, false, 8, []);
  const u64 = [0n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 64n - 1n, 0x123456789n].flatMap((v, i) => [
    w.str(`UL${i}`),
    ...u64Words(v),
  ]);
  w.add(w.str('uenum64'), KIND.ENUM64, 5, false, 8, u64);
  const s64 = [
    -1n,
    -(2n ** 32n),
    -(2n ** 53n),
    -(2n ** 53n) - 1n,
    -(2n ** 63n),
    2n ** 63n - 1n,
    2n ** 53n + 1n,
  ].flatMap((v, i) => [w.str(`SL${i}`), ...u64Words(v)]);
  w.add(w.str('senum64'), KIND.ENUM64, 7, true, 8, s64);
  w.add(w.str('fs'), KIND.FWD, 0, false, 0, []);
  w.add(w.str('fu'), KIND.FWD, 0, true, 0, []);
  const proto = w.add(0, KIND.FUNC_PROTO, 3, false, int, [w.str('p'), int, 0, 8, 0, 0]); // varargs
  const noargs = w.add(0, KIND.FUNC_PROTO, 0, false, 0, []);
  for (const linkage of [0, 1, 2, 3, 0xffff])
    w.add(w.str(`f${linkage}`), KIND.FUNC, linkage, false, proto, []);
  w.add(w.str('kf'), KIND.FUNC, 1, true, noargs, []);
  const vars: number[] = [];
  for (const linkage of [0, 1, 2, 7])
    vars.push(w.add(w.str(`v${linkage}`), KIND.VAR, 0, false, int, [linkage]));
  w.add(w.str('.data'), KIND.DATASEC, 4, false, 0xfffffff0, [
    vars[0]!,
    0,
    4,
    vars[1]!,
    0xffffffff,
    0xffffffff,
    0,
    8,
    8, // void: kind UNKNOWN, anonymous
    int,
    16,
    4, // not a VAR at all
  ]);
  w.add(0, KIND.DATASEC, 0, false, 0, []);
  for (const size of [2, 4, 8, 12, 16]) w.add(w.str(`float${size}`), KIND.FLOAT, 0, false, size, []);
  for (const idx of [-1, 0, 5, 0x7fffffff]) w.add(w.str(`tag${idx}`), KIND.DECL_TAG, 0, false, proto, [idx]);
  return { writer: w, baseVar: vars[2]! };
}

/** Split BTF on `base`: its own strings and types, referring to the base's by id and name. */
function handMadeSplit(
  littleEndian: boolean,
  { writer: base, baseVar }: { writer: BtfWriter; baseVar: number },
): BtfWriter {
  const w = new BtfWriter(littleEndian, base);
  w.str(''); // pahole's split sections start with an empty string too
  const ptr = w.add(0, KIND.PTR, 0, false, 1, []);
  w.add(1, KIND.TYPEDEF, 0, false, ptr, []); // a base name (offset 1, 'int')
  const v = w.add(w.str('module_var'), KIND.VAR, 0, false, ptr, [1]);
  w.add(w.str('.bss'), KIND.DATASEC, 3, false, 16, [
    v,
    0,
    8,
    baseVar,
    8,
    4, // a base VAR: its kind and name come from the base
    0,
    12,
    4,
  ]);
  w.add(w.str('mod_struct'), KIND.STRUCT, 2, false, 16, [w.str('p'), ptr, 0, 1, 1, 64]);
  return w;
}
