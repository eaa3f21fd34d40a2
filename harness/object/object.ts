import { Btf } from '../btf/btf.js';
import { Elf, type ElfSection, sectionLabel } from '../elf/elf.js';
import { ParseError } from '../errors.js';
import { type BtfExt, parseBtfExt } from './btf-ext.js';
import {
  collectGlobalDataMaps,
  fixupDatasecs,
  layoutSections,
  makeGlobalDataMap,
  type OpenError,
  objectNameFromPath,
  type SectionLayout,
} from './data.js';
import { type BpfExtern, collectExterns } from './externs.js';
import { collectInsnRelocs, type InsnReloc } from './insn-relocs.js';
import { type BpfMap, collectBtfMaps, collectLegacyMaps, collectMapRelos, globalDataAsMap } from './maps.js';
import { type AttachTarget, attachTargetOf, findSectionDef, SEC, type SectionDef } from './sections.js';

const SHT_PROGBITS = 1;
const SHF_EXECINSTR = 0x4n;
const STT_FUNC = 2;
const STB_LOCAL = 0;
const STV_HIDDEN = 2;
const STV_INTERNAL = 1;
const INSN_SIZE = 8;

/**
 * A program or subprogram as libbpf sees it at open time: one STT_FUNC symbol in an executable
 * section. Programs in .text are subprograms (called from others); every other executable section
 * holds entry programs whose type comes from the section name.
 */
export interface BpfProgram {
  /** The function symbol's name (libbpf's prog->name). */
  name: string;
  /** The ELF section as written, e.g. "?kprobe/do_unlinkat" or ".text". */
  section: string;
  sectionIndex: number;
  /** First instruction of the function within its section. */
  sectionInsnOffset: number;
  insnCount: number;
  /** A function in .text: linked into the programs that call it, never loaded on its own. */
  isSubprogram: boolean;
  /** libbpf loads it by default (SEC("?…") programs start with autoload off). */
  autoload: boolean;
  /** Non-local symbol (global or weak). */
  global: boolean;
  /** Global but hidden/internal: libbpf marks its BTF FUNC static. */
  markBtfStatic: boolean;
  /** The SEC() definition the section name matched; undefined for .text and unknown sections. */
  sectionDef: SectionDef | undefined;
  /** BPF_PROG_TYPE_* without prefix (e.g. 'KPROBE'); '' when unknown. */
  progType: string;
  /** BPF_* expected attach type without prefix; '' when none. */
  expectedAttachType: string;
  sleepable: boolean;
  attachTarget: AttachTarget;
}

export interface BpfObject {
  elf: Elf;
  /** The object's own BTF (.BTF); objects without it cannot use CO-RE. */
  btf: Btf | undefined;
  btfExt: BtfExt | undefined;
  programs: BpfProgram[];
  license: string | undefined;
  /** The "version" section (legacy kernel version), if present. */
  kernelVersion: number | undefined;
  littleEndian: boolean;
  /** libbpf's object name (from the file name; prefixes the global data maps' names). */
  objectName: string;
  /** How libbpf's elf_collect classifies the sections. */
  layout: SectionLayout;
  /**
   * Maps in libbpf's order (its map indexes): legacy "maps" definitions (libbpf v0.x), BTF-defined
   * maps in .maps DATASEC order, global data maps in section order, then .kconfig.
   */
  maps: BpfMap[];
  /** Externs in libbpf's sorted order (Kconfig first, then ksyms). */
  externs: BpfExtern[];
  /** Relocations of program instructions, per relocation section in section order. */
  insnRelocs: InsnReloc[];
  /**
   * Everywhere bpf_object__open would fail, in libbpf's order (it stops at the first): ELF
   * collection, externs, maps, relocations.
   */
  openErrors: OpenError[];
}

export interface ParseBpfObjectOptions {
  /**
   * The object's file name or path: libbpf names the object after it (bpf_object__new), and the
   * global data maps after the object ("minimal.bpf.o" → "minimal", map "minimal.rodata").
   * Without it the object name is '' and those maps are named after their sections.
   */
  path?: string;
  /** The object name itself (libbpf's bpf_object_open_opts.object_name); overrides `path`. */
  objectName?: string;
}

const EM_BPF = 247;

/**
 * Opens a relocatable BPF object the way bpf_object__open does, as far as corematrix needs: ELF
 * sections and symbols, programs, .BTF and .BTF.ext. Pure: takes the file's bytes.
 */
export function parseBpfObject(bytes: Uint8Array, options: ParseBpfObjectOptions = {}): BpfObject {
  const elf = Elf.parse(bytes);
  if (elf.header.machine !== EM_BPF) {
    throw new ParseError('bpf-object', `not a BPF object (e_machine ${elf.header.machine}, want ${EM_BPF})`, {
      offset: 18,
    });
  }
  const btfBytes = elf.section('.BTF');
  let btf: Btf | undefined;
  if (btfBytes !== undefined) {
    try {
      btf = Btf.parse(btfBytes);
    } catch (e) {
      if (e instanceof ParseError) {
        throw new ParseError(
          'bpf-object',
          `.BTF: ${e.message}`,
          { section: '.BTF', offset: e.offset },
          { cause: e },
        );
      }
      throw e;
    }
  }
  const extBytes = elf.section('.BTF.ext');
  const btfExt = extBytes === undefined ? undefined : parseBtfExt(extBytes);

  const textIndex = elf.sectionHeader('.text')?.index;
  const programs: BpfProgram[] = [];
  const symbols = elf.symbols();
  for (const section of elf.sections) {
    if (section.type !== SHT_PROGBITS || section.size === 0 || (section.flags & SHF_EXECINSTR) === 0n)
      continue;
    addPrograms(section, section.index === textIndex, symbols, programs);
  }

  const licenseBytes = elf.section('license');
  const license = licenseBytes === undefined ? undefined : cString(licenseBytes);
  const versionBytes = elf.section('version');
  let kernelVersion: number | undefined;
  if (versionBytes !== undefined && versionBytes.length >= 4) {
    kernelVersion = new DataView(versionBytes.buffer, versionBytes.byteOffset, 4).getUint32(
      0,
      elf.littleEndian,
    );
  }
  const objectName =
    options.objectName !== undefined
      ? options.objectName.slice(0, 15)
      : options.path === undefined
        ? ''
        : objectNameFromPath(options.path);
  const obj = {
    elf,
    btf,
    btfExt,
    programs,
    license,
    kernelVersion,
    littleEndian: elf.littleEndian,
    objectName,
  };
  // What bpf_object__open computes after elf_collect (section layout, externs, maps, instruction
  // relocations, open errors) is computed on first use: `corematrix relocate` needs none of it, and
  // it is a third of opening an object.
  let model: OpenModel | undefined;
  const open = (): OpenModel => {
    model ??= collectOpenModel(obj as BpfObject, symbols);
    return model;
  };
  let layout: SectionLayout | undefined;
  lazyProperty(obj, 'layout', () => {
    layout ??= layoutSections(elf);
    return layout;
  });
  lazyProperty(obj, 'maps', () => open().maps);
  lazyProperty(obj, 'externs', () => open().externs);
  lazyProperty(obj, 'insnRelocs', () => open().insnRelocs);
  lazyProperty(obj, 'openErrors', () => open().openErrors);
  return obj as BpfObject;
}

/**
 * Defines `key` on `obj` as a property computed by `compute` on first read (then a plain data
 * property, writable as before). Enumerable, so copies and comparisons see it like any field.
 */
function lazyProperty<T>(obj: object, key: string, compute: () => T): void {
  const settle = (value: T): void => {
    Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
  };
  Object.defineProperty(obj, key, {
    enumerable: true,
    configurable: true,
    get(): T {
      const value = compute();
      settle(value);
      return value;
    },
    set(value: T) {
      settle(value);
    },
  });
}

interface OpenModel {
  maps: BpfMap[];
  externs: BpfExtern[];
  insnRelocs: InsnReloc[];
  openErrors: OpenError[];
}

/** libbpf's open stages after elf_collect: externs, maps, relocations (bpf_object_open). */
function collectOpenModel(obj: BpfObject, symbols: ReturnType<Elf['symbols']>): OpenModel {
  const { elf, btf, layout } = obj;
  const errors: OpenError[] = [];
  errors.push(...layout.errors);
  const externs = collectExterns(btf, symbols);
  errors.push(...externs.errors);

  const fixed = fixupDatasecs(elf, btf, symbols);
  errors.push(...fixed.errors);
  const datasecs = fixed.datasecs;

  const legacy = collectLegacyMaps(elf, layout, symbols);
  const btfMaps = collectBtfMaps(elf, btf, datasecs, layout);
  errors.push(...legacy.errors, ...btfMaps.errors);
  const maps = [...legacy.maps, ...btfMaps.maps];
  for (const data of collectGlobalDataMaps(elf, btf, datasecs, layout, obj.objectName)) {
    maps.push(globalDataAsMap(elf, data));
  }
  if (externs.kconfigSize > 0) {
    const kconfig = makeGlobalDataMap(
      btf,
      datasecs,
      obj.objectName,
      'kconfig',
      '.kconfig',
      layout.symbolsIndex,
      undefined,
      externs.kconfigSize,
    );
    maps.push(globalDataAsMap(elf, kconfig));
  }

  const relocs = collectInsnRelocs({
    elf,
    layout,
    symbols,
    programs: obj.programs,
    maps,
    externs: externs.externs,
  });
  const mapRelos = collectMapRelos(
    elf,
    btf,
    layout,
    maps,
    btfMaps.mapsDatasecId,
    datasecs,
    obj.programs,
    symbols,
  );
  // libbpf goes through the relocation sections in section order, .rel.maps among the others.
  const sectionOrder = (e: OpenError) => elf.sectionHeader(e.section ?? '')?.index ?? -1;
  errors.push(...[...relocs.errors, ...mapRelos].sort((a, b) => sectionOrder(a) - sectionOrder(b)));
  return { maps, externs: externs.externs, insnRelocs: relocs.relocs, openErrors: errors };
}

function addPrograms(
  section: ElfSection,
  isText: boolean,
  symbols: ReturnType<Elf['symbols']>,
  out: BpfProgram[],
): void {
  for (const sym of symbols) {
    if (sym.shndx !== section.index || sym.type !== STT_FUNC) continue;
    const off = Number(sym.value);
    const size = Number(sym.size);
    if (off + size > section.size || off % INSN_SIZE !== 0 || size % INSN_SIZE !== 0) {
      throw new ParseError(
        'bpf-object',
        `program '${sym.name}' at offset ${off} crosses the section boundary`,
        {
          section: sectionLabel(section),
          offset: section.offset + off,
        },
      );
    }
    if (!isText && sym.bind === STB_LOCAL) {
      throw new ParseError('bpf-object', `program '${sym.name}' is static and not supported`, {
        section: sectionLabel(section),
        offset: section.offset + off,
      });
    }
    const optional = section.name.startsWith('?');
    const secName = optional ? section.name.slice(1) : section.name;
    const def = isText ? undefined : findSectionDef(secName);
    const global = sym.bind !== STB_LOCAL;
    out.push({
      name: sym.name,
      section: section.name,
      sectionIndex: section.index,
      sectionInsnOffset: off / INSN_SIZE,
      insnCount: size / INSN_SIZE,
      isSubprogram: isText,
      autoload: !optional,
      global,
      markBtfStatic: global && (sym.visibility === STV_HIDDEN || sym.visibility === STV_INTERNAL),
      sectionDef: def,
      progType: def?.progType ?? '',
      expectedAttachType: def?.attachType ?? '',
      sleepable: def !== undefined && (def.flags & SEC.SLEEPABLE) !== 0,
      attachTarget: def === undefined ? { kind: 'none' } : attachTargetOf(def, secName),
    });
  }
}

/** find_prog_by_sec_insn: the (sub)program holding instruction `insn` of section `sectionIndex`. */
export function programAt(obj: BpfObject, sectionIndex: number, insn: number): BpfProgram | undefined {
  return obj.programs.find(
    (p) =>
      p.sectionIndex === sectionIndex &&
      insn >= p.sectionInsnOffset &&
      insn < p.sectionInsnOffset + p.insnCount,
  );
}

function cString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(end < 0 ? bytes : bytes.subarray(0, end));
}
