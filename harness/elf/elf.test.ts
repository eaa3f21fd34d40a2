import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isCorematrixError, NotSupportedError, ParseError } from '../errors.js';
import { SHT } from './constants.js';
import { Elf } from './elf.js';

const testdata = join(import.meta.dirname, 'testdata');
let dir: string;

interface Built {
  bytes: Uint8Array;
  /** llvm-readobj's JSON view of the same file: sections, symbols and relocations. */
  facts: ReadobjFacts;
}
const built = new Map<string, Built>();

interface ReadobjFacts {
  Sections: {
    Section: {
      Index: number;
      Name: { Name: string; Value: number };
      Type: { Value: number };
      Flags: { Value: bigint | number };
      Address: bigint | number;
      Offset: number;
      Size: number;
      Link: number;
      Info: number;
      AddressAlignment: bigint | number;
      EntrySize: number;
    };
  }[];
  Symbols: {
    Symbol: {
      Name: { Name: string; Value: number };
      Value: bigint | number;
      Size: bigint | number;
      Binding: { Value: number };
      Type: { Value: number };
      Other: { Value: number };
      Section: { Value: number };
    };
  }[];
  Relocations: {
    SectionIndex: number;
    Relocs: {
      Relocation: {
        Offset: bigint | number;
        Type: { Value: number };
        Symbol: { Value: number };
        Addend?: bigint | number;
      };
    }[];
  }[];
}

/** llvm-readobj prints 64-bit values as bare JSON numbers: keep the long ones exact as bigints. */
function readobj(path: string): ReadobjFacts {
  const text = execFileSync(
    'llvm-readobj-19',
    ['--elf-output-style=JSON', '--sections', '--symbols', '--relocations', path],
    { encoding: 'utf8', maxBuffer: 64 << 20 },
  );
  const exact = text.replace(/:(\d{16,})/g, ':"big:$1"');
  const parsed = JSON.parse(exact, (_key, value) =>
    typeof value === 'string' && value.startsWith('big:') ? BigInt(value.slice(4)) : value,
  ) as ReadobjFacts[];
  return parsed[0]!;
}

function compile(name: string, args: string[]): void {
  const out = join(dir, `${name}.o`);
  execFileSync('clang-19', [...args, '-c', '-o', out], { stdio: 'pipe' });
  built.set(name, { bytes: new Uint8Array(readFileSync(out)), facts: readobj(out) });
}

function get(name: string): Built {
  return built.get(name)!;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'corematrix-elf-'));
  const prog = join(testdata, 'prog.bpf.c');
  compile('bpfel', ['-g', '-O2', '-target', 'bpfel', prog]);
  compile('bpfeb', ['-g', '-O2', '-target', 'bpfeb', prog]);
  // x86-64 objects use SHT_RELA with negative addends, which BPF objects never have.
  compile('x86', ['-g', '-O2', '-ffunction-sections', '-x', 'c', join(testdata, 'rela.c')]);
});

afterAll(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

/** A copy of `bytes` with `edit` applied, for building malformed inputs. */
function patched(bytes: Uint8Array, edit: (view: DataView, b: Uint8Array) => void): Uint8Array {
  const copy = bytes.slice();
  edit(new DataView(copy.buffer), copy);
  return copy;
}

function parseError(fn: () => unknown): ParseError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ParseError) return e;
    throw e;
  }
  throw new Error('expected a ParseError, got a result');
}

describe.each(['bpfel', 'bpfeb', 'x86'])('%s object against llvm-readobj', (name) => {
  it('reads the file header', () => {
    const { bytes } = get(name);
    const elf = Elf.parse(bytes);
    expect(elf.littleEndian).toBe(name !== 'bpfeb');
    expect(elf.header.type).toBe(1); // ET_REL
    expect(elf.header.machine).toBe(name === 'x86' ? 62 : 247);
    expect(elf.sections.length).toBe(get(name).facts.Sections.length);
  });

  it('reads every section header, name and contents', () => {
    const { bytes, facts } = get(name);
    const elf = Elf.parse(bytes);
    for (const { Section: want } of facts.Sections) {
      const got = elf.sections[want.Index]!;
      expect({
        name: got.name,
        nameOffset: got.nameOffset,
        type: got.type,
        flags: got.flags,
        addr: got.addr,
        offset: got.offset,
        size: got.size,
        link: got.link,
        info: got.info,
        addralign: got.addralign,
        entsize: got.entsize,
      }).toEqual({
        name: want.Name.Name,
        nameOffset: want.Name.Value,
        type: want.Type.Value,
        flags: BigInt(want.Flags.Value),
        addr: BigInt(want.Address),
        offset: want.Offset,
        size: want.Size,
        link: want.Link,
        info: want.Info,
        addralign: BigInt(want.AddressAlignment),
        entsize: want.EntrySize,
      });
      if (want.Index === 0) continue;
      const contents = elf.section(want.Name.Name);
      expect(contents).toBeDefined();
      if (want.Type.Value === SHT.NOBITS) {
        expect(contents!.length).toBe(0);
      } else if (elf.sectionHeader(want.Name.Name)!.index === want.Index) {
        expect(Buffer.from(contents!).equals(bytes.subarray(want.Offset, want.Offset + want.Size))).toBe(
          true,
        );
        // A view into the input, not a copy.
        expect(contents!.buffer).toBe(bytes.buffer);
      }
    }
  });

  it('reads the symbol table', () => {
    const { bytes, facts } = get(name);
    const elf = Elf.parse(bytes);
    const symbols = elf.symbols();
    expect(symbols.length).toBe(facts.Symbols.length);
    facts.Symbols.forEach(({ Symbol: want }, i) => {
      const got = symbols[i]!;
      // readobj shows a section symbol (st_name 0) under its section's name.
      if (want.Name.Value !== 0) expect(got.name).toBe(want.Name.Name);
      else expect(got.name).toBe('');
      expect({
        index: got.index,
        nameOffset: got.nameOffset,
        value: got.value,
        size: got.size,
        bind: got.bind,
        type: got.type,
        visibility: got.visibility,
        shndx: got.shndx,
      }).toEqual({
        index: i,
        nameOffset: want.Name.Value,
        value: BigInt(want.Value),
        size: BigInt(want.Size),
        bind: want.Binding.Value,
        type: want.Type.Value,
        visibility: want.Other.Value & 3,
        shndx: want.Section.Value,
      });
    });
  });

  it('reads every relocation section', () => {
    const { bytes, facts } = get(name);
    const elf = Elf.parse(bytes);
    const sections = elf.relocationSections();
    expect(sections.map((s) => s.index)).toEqual(facts.Relocations.map((r) => r.SectionIndex));
    expect(facts.Relocations.length).toBeGreaterThan(0);
    for (const want of facts.Relocations) {
      const got = elf.relocations(elf.sections[want.SectionIndex]!);
      expect(got).toEqual(
        want.Relocs.map(({ Relocation: r }) => ({
          offset: BigInt(r.Offset),
          symbol: r.Symbol.Value,
          type: r.Type.Value,
          addend: BigInt.asIntN(64, BigInt(r.Addend ?? 0)),
        })),
      );
    }
  });
});

describe('facts the BPF loader relies on', () => {
  it('finds programs, maps and relocations by name in both byte orders', () => {
    for (const name of ['bpfel', 'bpfeb']) {
      const elf = Elf.parse(get(name).bytes);
      expect(elf.section('license') && Buffer.from(elf.section('license')!).toString()).toBe('GPL\0');
      expect(elf.section('.BTF')!.length).toBeGreaterThan(24);
      expect(elf.sectionHeader('.bss')!.type).toBe(SHT.NOBITS);
      const rel = elf.sectionHeader('.reltracepoint/syscalls/sys_enter_openat')!;
      const target = elf.sectionAt(rel.info);
      expect(target.name).toBe('tracepoint/syscalls/sys_enter_openat');
      const symbols = elf.symbols(elf.sectionAt(rel.link));
      const names = elf.relocations(rel).map((r) => symbols[r.symbol]!.name);
      expect(names).toContain('counts');
      expect(names).toContain('zeroed');
      expect(elf.section('.nope')).toBeUndefined();
      expect(elf.symbols().find((s) => s.name === 'on_openat')?.shndx).toBe(target.index);
    }
  });
});

describe('malformed ELF', () => {
  const el = () => get('bpfel').bytes;
  const eb = () => get('bpfeb').bytes;

  it('rejects a bad magic, class or data encoding', () => {
    expect(parseError(() => Elf.parse(patched(el(), (_v, b) => (b[1] = 0x44)))).offset).toBe(0);
    expect(parseError(() => Elf.parse(new Uint8Array([1, 2])))).toMatchObject({ offset: 0, format: 'elf' });
    expect(() => Elf.parse(patched(el(), (_v, b) => (b[4] = 1)))).toThrow(NotSupportedError);
    expect(parseError(() => Elf.parse(patched(el(), (_v, b) => (b[4] = 3)))).offset).toBe(4);
    expect(parseError(() => Elf.parse(patched(el(), (_v, b) => (b[5] = 0)))).offset).toBe(5);
    expect(parseError(() => Elf.parse(patched(el(), (_v, b) => (b[6] = 2)))).offset).toBe(6);
  });

  it('rejects a truncated header', () => {
    expect(parseError(() => Elf.parse(el().subarray(0, 40))).reason).toMatch(/shorter than an ELF64 header/);
    expect(parseError(() => Elf.parse(el().subarray(0, 10))).reason).toMatch(/shorter than e_ident/);
  });

  it('rejects section headers out of bounds', () => {
    const past = patched(el(), (v) => v.setBigUint64(40, BigInt(el().length - 10), true));
    expect(parseError(() => Elf.parse(past))).toMatchObject({ offset: 40 });
    const many = patched(eb(), (v) => v.setUint16(60, 500, false));
    expect(parseError(() => Elf.parse(many)).reason).toMatch(/500 section headers .* past the end/);
    // The file cut just before its section header table (which clang puts last).
    const shoff = Number(new DataView(el().buffer, el().byteOffset).getBigUint64(40, true));
    expect(parseError(() => Elf.parse(el().subarray(0, shoff + 100))).offset).toBe(40);
    const entsize = patched(el(), (v) => v.setUint16(58, 40, true));
    expect(parseError(() => Elf.parse(entsize))).toMatchObject({ offset: 58 });
  });

  it('reads 64-bit offsets exactly up to 2^53 - 1, in both byte orders', () => {
    for (const [bytes, le] of [
      [el(), true],
      [eb(), false],
    ] as const) {
      const at = (value: bigint) => patched(bytes, (v) => v.setBigUint64(40, value, le));
      expect(parseError(() => Elf.parse(at(1n << 53n))).reason).toMatch(
        /^e_shoff 0x20000000000000 is out of range/,
      );
      // In range: then simply past the end of the file, with the offset as read.
      expect(parseError(() => Elf.parse(at((1n << 53n) - 1n))).reason).toMatch(/^section headers at 0x1fffffffffffff lie past the end/);
      expect(parseError(() => Elf.parse(at(0x1_8000_0000n))).reason).toMatch(/^section headers at 0x180000000 lie past the end/);
    }
  });

  it('rejects a section whose contents lie past the end of the file, naming it', () => {
    const elf = Elf.parse(el());
    const text = elf.sectionHeader('.text')!;
    const bad = patched(el(), (v) => v.setBigUint64(text.headerOffset + 32, BigInt(el().length), true));
    expect(parseError(() => Elf.parse(bad))).toMatchObject({
      section: `#${text.index}`,
      offset: text.headerOffset + 24,
    });
    const huge = patched(eb(), (v) => v.setBigUint64(text.headerOffset + 24, 1n << 60n, false));
    expect(parseError(() => Elf.parse(huge))).toMatchObject({ offset: text.headerOffset + 24 });
    // .bss occupies no file bytes: any size is fine.
    const bss = elf.sectionHeader('.bss')!;
    const bigBss = patched(el(), (v) => v.setBigUint64(bss.headerOffset + 32, 1n << 40n, true));
    expect(Elf.parse(bigBss).section('.bss')!.length).toBe(0);
  });

  it('rejects a bad e_shstrndx and out-of-range section names', () => {
    const elf = Elf.parse(el());
    expect(parseError(() => Elf.parse(patched(el(), (v) => v.setUint16(62, 200, true))))).toMatchObject({
      offset: 62,
    });
    const bss = elf.sectionHeader('.bss')!;
    expect(
      parseError(() => Elf.parse(patched(el(), (v) => v.setUint16(62, bss.index, true)))).reason,
    ).toMatch(/no contents/);
    const text = elf.sectionHeader('.text')!;
    const badName = patched(el(), (v) => v.setUint32(text.headerOffset, 0x10000, true));
    expect(parseError(() => Elf.parse(badName))).toMatchObject({
      section: `#${text.index}`,
      offset: text.headerOffset,
    });
    // A name table cut in the middle of a name: that name has no NUL.
    const names = elf.sections[elf.header.shstrndx]!;
    const cut = BigInt(text.nameOffset + 2);
    const unterminated = patched(el(), (v) => v.setBigUint64(names.headerOffset + 32, cut, true));
    expect(parseError(() => Elf.parse(unterminated)).reason).toMatch(/NUL-terminated|past the end/);
  });

  it('rejects a symbol table with a wrong entry size or string table link', () => {
    const elf = Elf.parse(eb());
    const symtab = elf.symbolTable()!;
    const bad = Elf.parse(patched(eb(), (v) => v.setBigUint64(symtab.headerOffset + 56, 16n, false)));
    expect(parseError(() => bad.symbols())).toMatchObject({
      section: '.symtab',
      offset: symtab.headerOffset + 56,
    });
    const ragged = Elf.parse(patched(eb(), (v) => v.setBigUint64(symtab.headerOffset + 32, 25n, false)));
    expect(parseError(() => ragged.symbols()).reason).toMatch(/multiple/);
    const badLink = Elf.parse(patched(eb(), (v) => v.setUint32(symtab.headerOffset + 40, 2, false)));
    expect(parseError(() => badLink.symbols()).reason).toMatch(/not a string table/);
    const noLink = Elf.parse(patched(eb(), (v) => v.setUint32(symtab.headerOffset + 40, 9999, false)));
    expect(parseError(() => noLink.symbols())).toMatchObject({ section: '.symtab' });
    // A symbol name past the end of .strtab, named by the symbol's offset.
    const third = symtab.offset + 24 * 4;
    const badName = Elf.parse(patched(eb(), (v) => v.setUint32(third, 0xfffff, false)));
    expect(parseError(() => badName.symbols())).toMatchObject({ section: '.symtab', offset: third });
  });

  it('rejects a relocation that names a symbol past the end of the symbol table', () => {
    for (const [bytes, le] of [
      [el(), true],
      [eb(), false],
    ] as const) {
      const elf = Elf.parse(bytes);
      const rel = elf.sectionHeader('.rel.text')!;
      const entry = rel.offset;
      const bad = Elf.parse(
        patched(bytes, (v) => v.setUint32(le ? entry + 12 : entry + 8, elf.symbols().length, le)),
      );
      expect(parseError(() => bad.relocations(bad.sectionHeader('.rel.text')!))).toMatchObject({
        section: '.rel.text',
        offset: entry,
      });
      const wrongSize = Elf.parse(patched(bytes, (v) => v.setBigUint64(rel.headerOffset + 56, 24n, le)));
      expect(parseError(() => wrongSize.relocations(wrongSize.sectionHeader('.rel.text')!))).toMatchObject({
        section: '.rel.text',
      });
      const notSymtab = Elf.parse(patched(bytes, (v) => v.setUint32(rel.headerOffset + 40, 2, le)));
      expect(parseError(() => notSymtab.relocations(notSymtab.sectionHeader('.rel.text')!)).reason).toMatch(
        /not a symbol table/,
      );
      expect(parseError(() => elf.relocations(elf.sectionHeader('.text')!)).reason).toMatch(
        /not a relocation section/,
      );
    }
  });

  it('survives thousands of random mutations with a result or a typed error', () => {
    let seed = 0x2545f491;
    const random = () => {
      // xorshift32: a fixed seed keeps failures reproducible.
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) / 2 ** 32;
    };
    const inputs = [el(), eb(), get('x86').bytes];
    const started = Date.now();
    let parsed = 0;
    let rejected = 0;
    for (let round = 0; round < 3000 && Date.now() - started < 20_000; round++) {
      const base = inputs[round % inputs.length]!;
      const bytes = base.slice(0, random() < 0.1 ? Math.floor(random() * base.length) : base.length);
      const view = new DataView(bytes.buffer);
      // Mutate the headers most of the time: that is where structure lives.
      const shoff = Number(new DataView(base.buffer, base.byteOffset).getBigUint64(40, round % 3 !== 1));
      for (let k = 1 + Math.floor(random() * 4); k > 0; k--) {
        const where =
          random() < 0.5
            ? Math.floor(random() * 64)
            : random() < 0.7
              ? shoff + Math.floor(random() * (base.length - shoff))
              : Math.floor(random() * base.length);
        if (where >= bytes.length) continue;
        const r = random();
        if (r < 0.4) bytes[where] = Math.floor(random() * 256);
        else if (r < 0.7) bytes[where] = bytes[where]! ^ (1 << Math.floor(random() * 8));
        else if (where + 4 <= bytes.length) view.setUint32(where, [0, 0xffffffff, 0x7fffffff, 1][round & 3]!);
      }
      try {
        const elf = Elf.parse(bytes);
        for (const s of elf.sections) elf.contents(s);
        elf.section('.BTF');
        elf.symbols();
        for (const rel of elf.relocationSections()) elf.relocations(rel);
        parsed++;
      } catch (e) {
        if (!isCorematrixError(e)) throw e;
        rejected++;
      }
    }
    expect(parsed).toBeGreaterThan(0);
    expect(rejected).toBeGreaterThan(0);
  });
});
