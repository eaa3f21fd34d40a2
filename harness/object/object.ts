import type { Elf } from '../elf/elf.js';
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
import { type CoreBpfObject, parseCoreObject } from './object-core.js';

export { type BpfProgram, type CoreBpfObject, parseCoreObject, programAt } from './object-core.js';

export interface BpfObject extends CoreBpfObject {
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

/**
 * Opens a relocatable BPF object the way bpf_object__open does, as far as corematrix needs: ELF
 * sections and symbols, programs, .BTF and .BTF.ext. Pure: takes the file's bytes.
 */
export function parseBpfObject(bytes: Uint8Array, options: ParseBpfObjectOptions = {}): BpfObject {
  const core = parseCoreObject(bytes);
  const { elf } = core;
  const objectName =
    options.objectName !== undefined
      ? options.objectName.slice(0, 15)
      : options.path === undefined
        ? ''
        : objectNameFromPath(options.path);
  const symbols = elf.symbols();
  const obj = { ...core, objectName };
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
