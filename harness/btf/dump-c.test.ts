import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { isCorematrixError, isParseError } from '../errors.js';
import { Btf } from './btf.js';
import { cHeader, writeCHeader } from './dump-c.js';
import type { CompositeType, TypeId } from './types.js';
import { BTF_MAGIC, KIND, makeInfo } from './wire.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '..', '..');
const fixtures = join(here, 'testdata-c');
const work = mkdtempSync(join(tmpdir(), 'dump-c-'));
afterAll(() => process.env.KEEP_DUMP_C === undefined && rmSync(work, { recursive: true, force: true }));

// ---- Tools ----------------------------------------------------------------------------------------

function run(cmd: string, args: string[], cwd = work): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.error !== undefined) throw r.error;
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${(r.stderr ?? '').slice(0, 4000)}`);
  }
  return r.stdout;
}

/** Compiles a BPF C file and returns its .BTF section as clang wrote it. */
function btfOfObject(object: string): Btf {
  const out = `${object}.btf`;
  run('llvm-objcopy-19', [`--dump-section`, `.BTF=${out}`, object, join(work, 'discard.o')]);
  return Btf.parse(new Uint8Array(readFileSync(out)));
}

function compileBpf(source: string, object: string, extra: string[] = []): void {
  run('clang-19', ['-target', 'bpf', '-O2', '-g', '-Werror', ...extra, '-c', source, '-o', object]);
}

function fixtureBtf(name: string, extra: string[] = []): Btf {
  const object = join(work, `${name}.o`);
  compileBpf(join(fixtures, `${name}.bpf.c`), object, extra);
  return btfOfObject(object);
}

// ---- Header generation and layout checks ----------------------------------------------------------

interface Generated {
  header: string;
  /** Every named struct/union/enum/typedef definition written, by type id. */
  defs: Map<TypeId, string>;
}

function generate(btf: Btf, options: Parameters<typeof writeCHeader>[2] = {}): Generated {
  const defs = new Map<TypeId, string>();
  const header = cHeader(btf, { ...options, onDefinition: (id, spelling) => defs.set(id, spelling) });
  return { header, defs };
}

/** Follows typedefs and qualifiers (what offsetof paths can look through). */
function resolve(btf: Btf, id: TypeId): TypeId {
  for (let i = 0; i < 64; i++) {
    const t = btf.type(id);
    if (t.kind === 'typedef' || t.kind === 'const' || t.kind === 'volatile' || t.kind === 'type_tag') {
      id = t.type;
    } else return id;
  }
  throw new Error(`type chain too long at [${id}]`);
}

/**
 * `_Static_assert`s that the C type `spelling` has the size and non-bitfield member offsets of BTF
 * type `id`, descending into anonymous members (which C flattens into the parent) and into members
 * of anonymous struct/union type (reached as `parent.member`).
 */
function layoutAsserts(btf: Btf, id: TypeId, spelling: string, lines: string[]): void {
  const t = btf.type(id) as CompositeType;
  const tag = `[${id}] ${spelling}`;
  lines.push(`_Static_assert(sizeof(${spelling}) == ${t.size}, "sizeof ${tag}");`);
  const visit = (members: CompositeType['members'], path: string, base: number, depth: number) => {
    for (const m of members) {
      const target = btf.type(resolve(btf, m.type));
      const off = base + m.bitOffset;
      const composite = target.kind === 'struct' || target.kind === 'union';
      const anonComposite = composite && target.name === '';
      if (m.name === '') {
        // C11 anonymous members (and -fms-extensions ones of named types) flatten into the parent.
        if (composite && depth < 8) visit(target.members, path, off, depth + 1);
        continue;
      }
      const memberPath = `${path}${m.name}`;
      if (m.bitfieldSize === 0) {
        lines.push(
          `_Static_assert(__builtin_offsetof(${spelling}, ${memberPath}) == ${off / 8}, "offsetof ${tag} ${memberPath}");`,
        );
        if (anonComposite && depth < 8) visit(target.members, `${memberPath}.`, off, depth + 1);
      }
    }
  };
  visit(t.members, '', 0, 0);
}

/** Whether a struct or union has bitfields, itself or in the anonymous types it writes inline. */
function hasBitfields(btf: Btf, id: TypeId, depth = 0): boolean {
  const t = btf.type(id);
  if (!(t.kind === 'struct' || t.kind === 'union') || depth > 8) return false;
  return t.members.some((m) => {
    if (m.bitfieldSize !== 0) return true;
    let inner = resolve(btf, m.type);
    for (let it = btf.type(inner); it.kind === 'array'; it = btf.type(inner)) inner = resolve(btf, it.type);
    return btf.name(inner) === '' && hasBitfields(btf, inner, depth + 1);
  });
}

/**
 * Checks that clang, given the header, lays out every named struct and union (and every typedef of
 * an anonymous one) as the BTF says: sizes and member offsets by `_Static_assert`, and, for what
 * `roundTrip` selects, every member including bitfields by compiling one global of each type with
 * -g and comparing the BTF clang writes for it. (clang's BTF output slows down sharply with the
 * number of types, so on kernels the round trip covers the ~300 types with bitfields, which no
 * offsetof can check.)
 */
function checkLayouts(
  name: string,
  btf: Btf,
  gen: Generated,
  roundTrip: 'all' | 'bitfields' = 'all',
): { checked: number; asserts: number; roundTripped: number } {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'vmlinux.h'), gen.header);
  const lines = ['#include "vmlinux.h"'];
  const globals: string[] = [];
  const checked: [TypeId, string][] = [];
  let checkedCount = 0;
  for (const [id, spelling] of gen.defs) {
    const kind = btf.kind(id);
    let target = id;
    if (kind === 'typedef') {
      target = resolve(btf, id);
      const tt = btf.type(target);
      if (!((tt.kind === 'struct' || tt.kind === 'union') && tt.name === '')) continue;
    } else if (kind !== 'struct' && kind !== 'union') continue;
    layoutAsserts(btf, target, spelling, lines);
    checkedCount++;
    if (roundTrip === 'all' || hasBitfields(btf, target)) {
      checked.push([target, spelling]);
      globals.push(`${spelling} __check_${globals.length};`);
    }
  }
  const assertCount = lines.length - 1;
  writeFileSync(join(dir, 'check.c'), `${lines.join('\n')}\n${globals.join('\n')}\n`);
  compileBpf(join(dir, 'check.c'), join(dir, 'check.o'), ['-I', dir]);
  // clang's own BTF of the globals: every member, bitfields included, where clang put it.
  const clangBtf = btfOfObject(join(dir, 'check.o'));
  const byName = new Map<string, TypeId>();
  for (const v of clangBtf.ownIds()) {
    const t = clangBtf.type(v);
    if (t.kind === 'var' && t.name.startsWith('__check_')) byName.set(t.name, t.type);
  }
  const mismatches: string[] = [];
  checked.forEach(([id, spelling], i) => {
    const got = byName.get(`__check_${i}`);
    if (got === undefined) mismatches.push(`${spelling}: no global in clang's BTF`);
    else compareComposite(btf, id, clangBtf, resolve(clangBtf, got), spelling, mismatches);
  });
  expect(mismatches.slice(0, 20)).toEqual([]);
  return { checked: checkedCount, asserts: assertCount, roundTripped: checked.length };
}

/** Compares member names, bit offsets and bitfield sizes, recursing into anonymous members. */
function compareComposite(want: Btf, wantId: TypeId, got: Btf, gotId: TypeId, path: string, out: string[]) {
  const w = want.type(wantId) as CompositeType;
  const g = got.type(gotId);
  if (g.kind !== w.kind) {
    out.push(`${path}: clang has a ${g.kind}, BTF a ${w.kind}`);
    return;
  }
  if (g.size !== w.size) out.push(`${path}: size ${g.size}, BTF says ${w.size}`);
  // Padding the header adds to unions shows up as an anonymous member with no members of its own.
  const gotMembers = g.members.filter((m) => {
    const mt = got.type(m.type);
    return !(m.name === '' && mt.kind === 'struct' && mt.members.length === 0);
  });
  if (gotMembers.length !== w.members.length) {
    out.push(`${path}: ${gotMembers.length} members, BTF has ${w.members.length}`);
    return;
  }
  w.members.forEach((wm, i) => {
    const gm = gotMembers[i]!;
    const where = `${path}.${wm.name || `<anon ${i}>`}`;
    if (gm.name !== wm.name) out.push(`${where}: clang names it ${gm.name}`);
    if (gm.bitOffset !== wm.bitOffset)
      out.push(`${where}: bit offset ${gm.bitOffset}, BTF says ${wm.bitOffset}`);
    if (gm.bitfieldSize !== wm.bitfieldSize) {
      out.push(`${where}: bitfield size ${gm.bitfieldSize}, BTF says ${wm.bitfieldSize}`);
    }
    const wt = want.type(resolve(want, wm.type));
    const gt = got.type(resolve(got, gm.type));
    if (
      (wt.kind === 'struct' || wt.kind === 'union') &&
      (wt.name === '' || wm.name === '') &&
      gt.kind === wt.kind
    ) {
      compareComposite(want, wt.id, got, gt.id, where, out);
    }
  });
}

/** The struct/union/enum tags bpftool defines in its header, in order. */
function definedTags(header: string): string[] {
  return [...header.matchAll(/^(struct|union|enum) (\w+) \{/gm)].map((m) => `${m[1]} ${m[2]}`);
}

// ---- Kernel BTF -----------------------------------------------------------------------------------

function findKernelBtfs(): string[] {
  const found: string[] = [];
  if (existsSync('/sys/kernel/btf/vmlinux')) found.push('/sys/kernel/btf/vmlinux');
  const walk = (dir: string) => {
    // Another process may be filling kernels/ right now: what vanishes or is unreadable is skipped.
    let entries: import('node:fs').Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && (e.name === 'btf' || e.name.endsWith('.btf')) && isRawBtf(p)) found.push(p);
    }
  };
  const kernels = join(repoRoot, 'kernels');
  if (existsSync(kernels)) walk(kernels);
  // More raw BTF files to check, e.g. DUMP_C_EXTRA_BTF=/tmp/a.btf:/tmp/b.btf
  for (const p of (process.env.DUMP_C_EXTRA_BTF ?? '').split(':')) if (p !== '' && isRawBtf(p)) found.push(p);
  return found;
}

function isRawBtf(path: string): boolean {
  try {
    const head = readFileSync(path).subarray(0, 2);
    return head.length === 2 && (head.readUInt16LE(0) === BTF_MAGIC || head.readUInt16BE(0) === BTF_MAGIC);
  } catch {
    return false;
  }
}

const kernelBtfs = findKernelBtfs();

describe.each(kernelBtfs.map((p) => [p.startsWith(repoRoot) ? relative(repoRoot, p) : p, p]))(
  'kernel BTF %s',
  (label, path) => {
    const btf = Btf.parse(new Uint8Array(readFileSync(path)));
    const gen = generate(btf);

    it('writes a header clang-19 compiles for BPF', () => {
      const dir = join(work, label.replace(/\W+/g, '_'));
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'vmlinux.h'), gen.header);
      writeFileSync(
        join(dir, 'use.c'),
        '#include "vmlinux.h"\nint answer(struct task_struct *t) { return 42; }\n',
      );
      compileBpf(join(dir, 'use.c'), join(dir, 'use.o'), ['-I', dir, '-Wno-unused-parameter']);
      expect(gen.header).toMatch(/^#ifndef __VMLINUX_H__\n#define __VMLINUX_H__\n/);
      expect(gen.header).toContain(
        '#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)',
      );
      expect(gen.header).toMatch(/#pragma clang attribute pop\n#endif\n\n#endif \/\* __VMLINUX_H__ \*\/\n$/);
    });

    it('reproduces every named struct and union layout', () => {
      const { checked, asserts, roundTripped } = checkLayouts(
        label.replace(/\W+/g, '_'),
        btf,
        gen,
        'bitfields',
      );
      console.log(
        `${label}: ${checked} types, ${asserts} static asserts, ${roundTripped} with bitfields round-tripped`,
      );
      // A kernel has thousands; a handful would mean definitions went missing.
      expect(checked).toBeGreaterThan(1000);
      expect(asserts).toBeGreaterThan(checked);
      expect(roundTripped).toBeGreaterThan(10);
    });

    it('defines the same struct, union and enum tags as bpftool, duplicates numbered alike', () => {
      const bpftool = run('bpftool', ['btf', 'dump', 'file', path, 'format', 'c']);
      expect(definedTags(gen.header).sort()).toEqual(definedTags(bpftool).sort());
    });

    it('is fast: parse plus whole header in well under a second', () => {
      const bytes = new Uint8Array(readFileSync(path));
      const wall: number[] = [];
      const cpu: number[] = [];
      for (let i = 0; i < 3; i++) {
        const start = performance.now();
        const startCpu = process.cpuUsage();
        let chars = 0;
        // A fresh parse each time, so lazily decoded types are decoded again as in a real run.
        writeCHeader(Btf.parse(bytes), (chunk) => {
          chars += chunk.length;
        });
        const used = process.cpuUsage(startCpu);
        wall.push(performance.now() - start);
        cpu.push((used.user + used.system) / 1000);
        expect(chars).toBe(gen.header.length);
      }
      const bpftoolStart = performance.now();
      run('bpftool', ['btf', 'dump', 'file', path, 'format', 'c']);
      const bpftoolMs = performance.now() - bpftoolStart;
      const ms = (xs: number[]) => xs.map((t) => t.toFixed(0)).join('/');
      console.log(
        `${label}: ${(bytes.length / 1e6).toFixed(1)} MB BTF, parse+header ${ms(wall)} ms wall, ${ms(cpu)} ms CPU (bpftool ${bpftoolMs.toFixed(0)} ms wall incl. process start)`,
      );
      // CPU time (GC threads included), which other jobs on the machine inflate less than wall time.
      expect(Math.min(...cpu)).toBeLessThan(1000);
    });
  },
);

// ---- Hand-made BTF --------------------------------------------------------------------------------

describe('hand-made layouts (testdata-c/layouts.bpf.c)', () => {
  const btf = fixtureBtf('layouts');
  const gen = generate(btf);

  it('reproduces every layout clang made from the source', () => {
    const { checked } = checkLayouts('layouts', btf, gen);
    expect(checked).toBeGreaterThan(25);
  });

  it('packs exactly the records natural layout cannot reproduce', () => {
    const packed = (tag: string) => new RegExp(`^${tag} \\{[^]*?^\\} __attribute__\\(\\(packed\\)\\);`, 'm');
    for (const tag of [
      'struct packed_basic',
      'struct packed_aligned',
      'struct bitfields_packed',
      'struct i128',
      'struct i128_packed',
      'union packed_union',
      'struct bitfield_after_packed',
    ]) {
      expect(gen.header, tag).toMatch(packed(tag));
    }
    for (const tag of [
      'struct holds_packed',
      'struct packed_natural',
      'struct over_aligned',
      'struct bitfields',
    ]) {
      expect(gen.header, tag).toMatch(new RegExp(`^${tag} \\{[^]*?^\\};`, 'm'));
    }
  });

  it('writes C declarators for function pointers, arrays and qualifiers', () => {
    for (const decl of [
      '\tint (*ops[4])(int, void *);',
      '\tvoid (* (*getter)(int))(char);',
      '\tint (*no_args)(void);',
      '\tint (*variadic)(const char *, ...);',
      '\thandler_fn handlers[2][3];',
      '\tint (*(*matrix)[2])(long);',
      '\tint (*row)[3];',
      '\tint *cols[3];',
      '\tint grid[2][3][4];',
      '\tvolatile const int * const cv;',
      '\tconst char * const *argv;',
      '\tvolatile u64 * volatile *vv;',
      '\tstruct opaque *opaque;',
      '\tunion opaque_u *opaque_u;',
      'typedef int (*handler_fn)(int, void *);',
      'typedef void (* (*getter_fn)(int))(char);',
      'typedef struct node node_t;',
      'struct opaque;',
      'union opaque_u;',
      '\tint __attribute__((btf_type_tag("user"))) *uptr;',
      '\tE64_BIG = 4294967296ULL,',
      '\tENEG_NEG = -4294967296LL,',
      '\tE64_MIN = (-9223372036854775807LL - 1),',
      '} __attribute__((mode(byte)));',
      '} __attribute__((mode(HI)));',
      'struct empty {};',
    ]) {
      expect(gen.header, decl).toContain(decl);
    }
  });

  it('declares a struct before a pointer to it is used, and defines it before it is embedded', () => {
    const h = gen.header;
    // mutual_b embeds mutual_a, which points back at mutual_b.
    expect(h.indexOf('struct mutual_b;')).toBeGreaterThan(-1);
    expect(h.indexOf('struct mutual_b;')).toBeLessThan(h.indexOf('struct mutual_a {'));
    expect(h.indexOf('struct mutual_a {')).toBeLessThan(h.indexOf('struct mutual_b {'));
    expect(h.indexOf('typedef struct node node_t;')).toBeLessThan(h.indexOf('struct node {'));
  });

  it('matches bpftool on which tags it defines', () => {
    const bpftool = run('bpftool', ['btf', 'dump', 'file', `${join(work, 'layouts.o')}.btf`, 'format', 'c']);
    expect(definedTags(gen.header).sort()).toEqual(definedTags(bpftool).sort());
  });
});

describe('unnamed members of named types (testdata-c/ms_ext.bpf.c, built with -fms-extensions)', () => {
  const btf = fixtureBtf('ms_ext', ['-fms-extensions', '-Wno-microsoft-anon-tag']);
  const gen = generate(btf);

  it('copies their bodies inline, so the header needs no -fms-extensions', () => {
    expect(gen.header).toMatch(
      /^struct ms_ext \{\n\tchar tag;\n\tstruct \{\n\t\tint a;\n\t\tlong b;\n\t\};/m,
    );
    expect(gen.header).toMatch(/\tunion \{\n\t\tint i;\n\t\tchar c\[6\];\n\t\};\n\tint after;/);
    expect(gen.header).toMatch(/\tstruct \{\n\t\tchar p;\n\t\tint q;\n\t\} __attribute__\(\(packed\)\);/);
    const { checked } = checkLayouts('ms_ext', btf, gen);
    expect(checked).toBeGreaterThanOrEqual(5);
  });
});

describe('duplicate names (testdata-c/dup_{a,b}.bpf.c linked by bpftool)', () => {
  const objects = ['dup_a', 'dup_b'].map((n) => {
    const o = join(work, `${n}.o`);
    compileBpf(join(fixtures, `${n}.bpf.c`), o);
    return o;
  });
  run('bpftool', ['gen', 'object', join(work, 'dup.o'), ...objects]);
  const btf = btfOfObject(join(work, 'dup.o'));
  const gen = generate(btf);

  it('numbers the second struct, typedef and enumerators like libbpf', () => {
    const spellings = [...gen.defs.values()];
    expect(spellings).toEqual(expect.arrayContaining(['struct dup', 'struct dup___2', 'dup_t', 'dup_t___2']));
    expect(spellings).toEqual(expect.arrayContaining(['enum dup_enum', 'enum dup_enum___2']));
    expect(gen.header).toContain('\tDUP_ONE___2 = 10,');
    expect(gen.header).toContain('\tDUP_THREE = 30,');
    const bpftool = run('bpftool', ['btf', 'dump', 'file', `${join(work, 'dup.o')}.btf`, 'format', 'c']);
    expect(definedTags(gen.header)).toEqual(definedTags(bpftool));
  });

  it('reproduces both layouts', () => {
    const { checked } = checkLayouts('dup', btf, gen);
    expect(checked).toBe(4);
  });
});

// ---- Split BTF ------------------------------------------------------------------------------------

/** A minimal BTF encoder for inputs no compiler writes: split BTF, loops, deep chains. */
class RawBtf {
  private readonly words: number[] = [];
  private readonly strs: string[] = [];
  private strLen: number;
  nextId: number;
  constructor(private readonly base?: Btf) {
    this.nextId = base?.typeCount ?? 1;
    this.strLen = base === undefined ? 1 : 0;
  }
  /** String offset of `s` (appended), counting from the end of the base's strings. */
  str(s: string): number {
    if (s === '' && this.base === undefined) return 0;
    const off = (this.base?.strings.end ?? 0) + this.strLen;
    this.strs.push(s);
    this.strLen += Buffer.byteLength(s) + 1;
    return off;
  }
  add(name: string, kind: number, vlen: number, sizeOrType: number, trailing: number[] = [], kflag = false) {
    this.words.push(this.str(name), makeInfo(kind, vlen, kflag), sizeOrType, ...trailing);
    return this.nextId++;
  }
  int(name: string, size: number, signed = true) {
    return this.add(name, KIND.INT, 0, size, [((signed ? 1 : 0) << 24) | (size * 8)]);
  }
  struct(name: string, size: number, members: [string, TypeId, number][]) {
    const trailing = members.flatMap(([n, type, bitOffset]) => [this.str(n), type, bitOffset]);
    return this.add(name, KIND.STRUCT, members.length, size, trailing);
  }
  bytes(): Uint8Array {
    const types = Buffer.alloc(this.words.length * 4);
    for (const [i, w] of this.words.entries()) types.writeUInt32LE(w >>> 0, i * 4);
    const strings = Buffer.from(
      (this.base === undefined ? '\0' : '') + this.strs.map((s) => `${s}\0`).join(''),
      'utf8',
    );
    const header = Buffer.alloc(24);
    header.writeUInt16LE(BTF_MAGIC, 0);
    header.writeUInt8(1, 2);
    header.writeUInt32LE(24, 4);
    header.writeUInt32LE(0, 8);
    header.writeUInt32LE(types.length, 12);
    header.writeUInt32LE(types.length, 16);
    header.writeUInt32LE(strings.length, 20);
    return new Uint8Array(Buffer.concat([header, types, strings]));
  }
  parse(): Btf {
    return Btf.parse(this.bytes(), this.base === undefined ? {} : { base: this.base });
  }
}

describe('split BTF', () => {
  const base = btfOfObject(join(work, 'dup.o'));
  const baseGen = generate(base);
  // A "module" that embeds base types, including the renamed duplicate, and adds its own.
  const raw = new RawBtf(base);
  const dup2 = [...baseGen.defs].find(([, s]) => s === 'struct dup___2')![0];
  const dupT2 = [...baseGen.defs].find(([, s]) => s === 'dup_t___2')![0];
  const intId = base.findByNameKind('int', 'int')!;
  const modPtr = raw.add('', KIND.PTR, 0, raw.nextId + 1);
  const mod = raw.struct('module_state', 40, [
    ['self', modPtr, 0],
    ['d', dup2, 64],
    ['t', dupT2, 192],
    ['n', intId, 256],
  ]);
  const split = raw.parse();

  it('writes only what the module adds, naming base types as the base header does', () => {
    expect(mod).toBe(base.typeCount + 1);
    const gen = generate(split);
    expect([...gen.defs.values()]).toEqual(['struct module_state']);
    expect(gen.header).toContain('\tstruct dup___2 d;\n\tdup_t___2 t;\n');
    expect(gen.header).not.toContain('struct dup_user_a {');
    // Compiles after the base's header, with the module layout as the BTF says.
    const dir = join(work, 'split');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'base.h'), baseGen.header);
    writeFileSync(join(dir, 'module.h'), gen.header.replaceAll('__VMLINUX_H__', '__MODULE_H__'));
    const lines = ['#include "base.h"', '#include "module.h"'];
    layoutAsserts(split, mod, 'struct module_state', lines);
    writeFileSync(join(dir, 'check.c'), `${lines.join('\n')}\n`);
    compileBpf(join(dir, 'check.c'), join(dir, 'check.o'), ['-I', dir]);
  });

  it("writes base and module together with baseTypes: 'include'", () => {
    const gen = generate(split, { baseTypes: 'include' });
    expect(gen.defs.size).toBe(baseGen.defs.size + 1);
    checkLayouts('split-all', split, gen);
  });
});

describe("x86-64's va_list", () => {
  it("is spelled out where it differs from BPF's, so structs holding one keep their size", () => {
    // As in every x86-64 kernel: typedef struct __va_list_tag __builtin_va_list[1]; BPF's own
    // __builtin_va_list is a pointer, which would make warn_args 16 bytes instead of 32.
    const raw = new RawBtf();
    const uint = raw.int('unsigned int', 4, false);
    const char = raw.int('char', 1);
    const voidPtr = raw.add('', KIND.PTR, 0, 0);
    const tag = raw.struct('__va_list_tag', 24, [
      ['gp_offset', uint, 0],
      ['fp_offset', uint, 32],
      ['overflow_arg_area', voidPtr, 64],
      ['reg_save_area', voidPtr, 128],
    ]);
    const array = raw.add('', KIND.ARRAY, 0, 0, [tag, uint, 1]);
    const builtin = raw.add('__builtin_va_list', KIND.TYPEDEF, 0, array);
    const vaList = raw.add('va_list', KIND.TYPEDEF, 0, builtin);
    const constChar = raw.add('', KIND.CONST, 0, char);
    const fmt = raw.add('', KIND.PTR, 0, constChar);
    const warnArgs = raw.struct('warn_args', 32, [
      ['fmt', fmt, 0],
      ['args', vaList, 64],
    ]);
    const btf = raw.parse();
    const gen = generate(btf);
    expect(gen.header).toContain('typedef struct __va_list_tag va_list[1];');
    expect(gen.header).not.toMatch(/typedef .*__builtin_va_list;/);
    const lines: string[] = [];
    layoutAsserts(btf, warnArgs, 'struct warn_args', lines);
    const dir = join(work, 'va_list');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'vmlinux.h'), gen.header);
    writeFileSync(join(dir, 'check.c'), `#include "vmlinux.h"\n${lines.join('\n')}\n`);
    compileBpf(join(dir, 'check.c'), join(dir, 'check.o'), ['-I', dir]);
  });
});

// ---- Malformed input ------------------------------------------------------------------------------

function expectParseError(btf: Btf, typeId?: number) {
  let caught: unknown;
  try {
    cHeader(btf);
  } catch (e) {
    caught = e;
  }
  expect(isParseError(caught), String(caught)).toBe(true);
  if (typeId !== undefined) expect((caught as { typeId?: number }).typeId).toBe(typeId);
}

describe('malformed BTF', () => {
  it('rejects a qualifier loop with a ParseError', () => {
    const raw = new RawBtf();
    raw.add('', KIND.CONST, 0, 2);
    raw.add('', KIND.VOLATILE, 0, 1);
    expectParseError(raw.parse());
  });

  it('rejects a struct that embeds itself', () => {
    const raw = new RawBtf();
    const int = raw.int('int', 4);
    raw.struct('self', 8, [
      ['x', int, 0],
      ['me', 2, 32],
    ]);
    expectParseError(raw.parse(), 2);
  });

  it('rejects a typedef of itself and a pointer loop without a struct', () => {
    const td = new RawBtf();
    td.add('loop_t', KIND.TYPEDEF, 0, 1);
    expectParseError(td.parse());
    const ptr = new RawBtf();
    ptr.add('', KIND.PTR, 0, 2);
    ptr.add('p_t', KIND.TYPEDEF, 0, 1);
    expectParseError(ptr.parse());
  });

  it('rejects very deep chains instead of overflowing the stack', () => {
    const raw = new RawBtf();
    let id = raw.int('int', 4);
    for (let i = 0; i < 100_000; i++) id = raw.add('', KIND.CONST, 0, id);
    raw.add('deep_t', KIND.TYPEDEF, 0, id);
    expectParseError(raw.parse());
  });

  it('rejects padding too large to write', () => {
    const raw = new RawBtf();
    raw.struct('huge', 0xfffffff0, []);
    const btf = raw.parse();
    expect(() => cHeader(btf)).toThrow(/too large/);
  });

  it('turns any graph of types, loops and nonsense included, into a typed error or a header', () => {
    const kinds = [
      KIND.INT,
      KIND.PTR,
      KIND.ARRAY,
      KIND.STRUCT,
      KIND.UNION,
      KIND.ENUM,
      KIND.FWD,
      KIND.TYPEDEF,
      KIND.VOLATILE,
      KIND.CONST,
      KIND.RESTRICT,
      KIND.FUNC,
      KIND.FUNC_PROTO,
      KIND.VAR,
      KIND.FLOAT,
      KIND.DECL_TAG,
      KIND.TYPE_TAG,
      KIND.ENUM64,
    ];
    const typeArb = fc.record({
      kind: fc.constantFrom(...kinds),
      named: fc.boolean(),
      kflag: fc.boolean(),
      size: fc.constantFrom(0, 1, 2, 3, 4, 8, 16, 24, 4096),
      refs: fc.array(fc.tuple(fc.nat(14), fc.nat(200), fc.boolean()), { maxLength: 4 }),
    });
    fc.assert(
      fc.property(fc.array(typeArb, { minLength: 1, maxLength: 14 }), (types) => {
        const raw = new RawBtf();
        const n = types.length;
        types.forEach((t, i) => {
          const name = t.named ? `t${i % 3}` : '';
          const ref = (k: number) => (t.refs[k]?.[0] ?? 0) % (n + 1);
          const refs = t.refs.map(([id, off, bit]) => ({ id: id % (n + 1), off, bit }));
          switch (t.kind) {
            case KIND.INT:
              raw.add(name || 'int', KIND.INT, 0, Math.min(t.size, 16), [Math.min(t.size, 16) * 8]);
              break;
            case KIND.ARRAY:
              raw.add('', KIND.ARRAY, 0, 0, [ref(0), ref(1), t.size]);
              break;
            case KIND.STRUCT:
            case KIND.UNION:
              raw.add(
                name,
                t.kind,
                refs.length,
                t.size,
                refs.flatMap((r, j) => [
                  raw.str(j % 2 === 0 ? `m${j}` : ''),
                  r.id,
                  t.kflag ? ((r.bit ? 3 : 0) << 24) | r.off : r.off,
                ]),
                t.kflag,
              );
              break;
            case KIND.ENUM:
            case KIND.ENUM64:
              raw.add(
                name,
                t.kind,
                refs.length,
                [1, 2, 4, 8].includes(t.size) ? t.size : 4,
                refs.flatMap((r, j) =>
                  t.kind === KIND.ENUM ? [raw.str(`E${j}`), r.off - 100] : [raw.str(`E${j}`), r.off, r.id],
                ),
                t.kflag,
              );
              break;
            case KIND.FUNC_PROTO:
              raw.add(
                '',
                KIND.FUNC_PROTO,
                refs.length,
                ref(0),
                refs.flatMap((r) => [raw.str(r.bit ? 'p' : ''), r.id]),
              );
              break;
            case KIND.FWD:
              raw.add(name || 'fwd', KIND.FWD, 0, 0, [], t.kflag);
              break;
            case KIND.FLOAT:
              raw.add(name || 'double', KIND.FLOAT, 0, [2, 4, 8, 16].includes(t.size) ? t.size : 8);
              break;
            case KIND.VAR:
              raw.add(name || 'v', KIND.VAR, 0, ref(0), [1]);
              break;
            case KIND.DECL_TAG:
              raw.add(name || 'tag', KIND.DECL_TAG, 0, ref(0), [-1]);
              break;
            case KIND.FUNC:
            case KIND.TYPEDEF:
            case KIND.TYPE_TAG:
              raw.add(name || 'x', t.kind, 0, ref(0), [], t.kflag);
              break;
            default:
              raw.add(name, t.kind, 0, ref(0));
          }
        });
        let btf: Btf;
        try {
          btf = raw.parse();
        } catch (e) {
          if (isCorematrixError(e)) return;
          throw e;
        }
        try {
          cHeader(btf);
        } catch (e) {
          if (!isCorematrixError(e)) throw e;
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('turns any corruption of a real BTF into a typed error or a header, never a crash', () => {
    const bytes = readFileSync(`${join(work, 'layouts.o')}.btf`);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(bytes.length - 1), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 8,
        }),
        (flips) => {
          const mutated = new Uint8Array(bytes);
          for (const [at, value] of flips) mutated[at] = value;
          try {
            cHeader(Btf.parse(mutated));
          } catch (e) {
            if (!isCorematrixError(e)) throw e;
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
