import type { Btf } from '../btf/btf.js';
import type { TypeId, VarSecinfo } from '../btf/types.js';
import { SHT, STB, STT, STV } from '../elf/constants.js';
import type { Elf, ElfSection, ElfSymbol } from '../elf/elf.js';

/**
 * What libbpf's bpf_object__elf_collect makes of each ELF section, and the global data maps
 * (bpf_object__init_global_data_maps, bpf_object__init_kconfig_map) it creates from them.
 *
 * Also the shared shape of an "open error": the place where bpf_object__open would fail. libbpf
 * stops at the first; corematrix keeps going and reports each one where libbpf would have failed,
 * so that a developer sees them all (the first one is what libbpf prints).
 */

/** libbpf's errno for an open failure ('LIBBPF_ERRNO__RELOC' etc. are libbpf's own codes). */
export type OpenErrno =
  | 'EINVAL'
  | 'ENOTSUP'
  | 'EOPNOTSUPP'
  | 'ENOENT'
  | 'ESRCH'
  | 'E2BIG'
  | 'LIBBPF_ERRNO__FORMAT'
  | 'LIBBPF_ERRNO__RELOC';

/** A place where libbpf's bpf_object__open fails. */
export interface OpenError {
  /** libbpf's open stage: elf_collect, collect_externs, fixup_btf, init_maps, collect_relos. */
  stage: 'elf' | 'externs' | 'btf' | 'maps' | 'relocs';
  /** libbpf's warning, as it prints it (without the "libbpf: " prefix); ours when libbpf is silent. */
  message: string;
  errno: OpenErrno;
  /** The ELF section the failure is about (for relocations: the relocation section). */
  section?: string;
}

export function openError(
  stage: OpenError['stage'],
  errno: OpenErrno,
  message: string,
  section?: string,
): OpenError {
  return section === undefined ? { stage, errno, message } : { stage, errno, message, section };
}

/**
 * A section's role (libbpf's enum sec_type plus the sections elf_collect handles by name).
 * 'ignored' is ignore_elf_section (string tables, .llvm_addrsig, DWARF, .rel.BTF*, empty .text);
 * 'skipped' is a section libbpf logs as skipped.
 */
export type SectionRole =
  | 'null'
  | 'ignored'
  | 'license'
  | 'version'
  | 'legacy-maps'
  | 'maps'
  | 'btf'
  | 'btf.ext'
  | 'symtab'
  | 'program'
  | 'data'
  | 'rodata'
  | 'bss'
  | 'struct_ops'
  | 'arena'
  | 'jumptables'
  | 'relo'
  | 'skipped';

const SHT_LLVM_ADDRSIG = 0x6fff4c03;
const SHF_EXECINSTR = 0x4n;
export const ARENA_SEC = '.addr_space.1';
export const JUMPTABLES_SEC = '.jumptables';
const STRUCT_OPS_SECS = new Set(['.struct_ops', '.struct_ops.link', '?.struct_ops', '?.struct_ops.link']);
const STRUCT_OPS_RELO_SECS = new Set([...STRUCT_OPS_SECS].map((s) => `.rel${s}`));

/** The ELF layout facts libbpf's open works from. */
export interface SectionLayout {
  /** Role of each section, by index. */
  roles: SectionRole[];
  /** The one SHT_SYMTAB (libbpf's symbols_shndx), -1 when missing. */
  symbolsIndex: number;
  /** .text (libbpf's text_shndx), 0 when absent or empty (no subprograms). */
  textIndex: number;
  /** .maps (btf_maps_shndx), -1 when absent. */
  mapsIndex: number;
  /** The legacy "maps" section, -1 when absent. */
  legacyMapsIndex: number;
  /** .addr_space.1 (arena_data_shndx), -1 when absent. */
  arenaIndex: number;
  /** .jumptables, -1 when absent. */
  jumptablesIndex: number;
  /** Errors elf_collect reports, in its order. */
  errors: OpenError[];
}

/** ignore_elf_section. */
function ignored(s: ElfSection): boolean {
  if (s.type === SHT.STRTAB || s.type === SHT_LLVM_ADDRSIG) return true;
  if (s.type === SHT.PROGBITS && s.size === 0 && s.name === '.text') return true;
  if (s.name.startsWith('.debug_')) return true;
  if (s.name.startsWith('.rel')) {
    const rest = s.name.slice(4);
    if (rest.startsWith('.debug_') || rest === '.BTF' || rest === '.BTF.ext') return true;
  }
  return false;
}

/** bpf_object__elf_collect's classification of sections. */
export function layoutSections(elf: Elf): SectionLayout {
  const errors: OpenError[] = [];
  const symtabs = elf.sections.filter((s) => s.type === SHT.SYMTAB);
  if (symtabs.length === 0) {
    errors.push(openError('elf', 'ENOENT', "elf: couldn't find symbol table, stripped object file?"));
  } else if (symtabs.length > 1) {
    errors.push(openError('elf', 'LIBBPF_ERRNO__FORMAT', 'elf: multiple symbol tables'));
  }
  const layout: SectionLayout = {
    roles: new Array<SectionRole>(elf.sections.length).fill('skipped'),
    symbolsIndex: symtabs[0]?.index ?? -1,
    textIndex: 0,
    mapsIndex: -1,
    legacyMapsIndex: -1,
    arenaIndex: -1,
    jumptablesIndex: -1,
    errors,
  };
  const roles = layout.roles;
  if (roles.length > 0) roles[0] = 'null';
  for (const s of elf.sections) {
    if (s.index === 0) continue;
    const name = s.name;
    if (ignored(s)) {
      roles[s.index] = 'ignored';
    } else if (name === 'license') {
      roles[s.index] = 'license';
    } else if (name === 'version') {
      roles[s.index] = 'version';
    } else if (name === 'maps') {
      roles[s.index] = 'legacy-maps';
      layout.legacyMapsIndex = s.index;
      errors.push(
        openError(
          'elf',
          'ENOTSUP',
          "elf: legacy map definitions in 'maps' section are not supported by libbpf v1.0+",
        ),
      );
    } else if (name === '.maps') {
      roles[s.index] = 'maps';
      layout.mapsIndex = s.index;
    } else if (name === '.BTF' || name === '.BTF.ext') {
      roles[s.index] = name === '.BTF' ? 'btf' : 'btf.ext';
      if (s.type !== SHT.PROGBITS) {
        errors.push(openError('elf', 'LIBBPF_ERRNO__FORMAT', `elf: section ${name} is not SHT_PROGBITS`));
      }
    } else if (s.type === SHT.SYMTAB) {
      roles[s.index] = 'symtab';
    } else if (s.type === SHT.PROGBITS && s.size > 0) {
      if ((s.flags & SHF_EXECINSTR) !== 0n) {
        roles[s.index] = 'program';
        if (name === '.text') layout.textIndex = s.index;
      } else if (name === '.data' || name.startsWith('.data.')) {
        roles[s.index] = 'data';
      } else if (name === '.rodata' || name.startsWith('.rodata.')) {
        roles[s.index] = 'rodata';
      } else if (STRUCT_OPS_SECS.has(name)) {
        roles[s.index] = 'struct_ops';
      } else if (name === ARENA_SEC) {
        roles[s.index] = 'arena';
        layout.arenaIndex = s.index;
      } else if (name === JUMPTABLES_SEC) {
        roles[s.index] = 'jumptables';
        layout.jumptablesIndex = s.index;
      }
    } else if (s.type === SHT.REL) {
      const target = s.info;
      if (s.entsize !== 16 || target >= elf.sections.length) {
        errors.push(
          openError(
            'elf',
            'LIBBPF_ERRNO__FORMAT',
            `elf: relocation section ${name} has entry size ${s.entsize} or target section ${target} out of range`,
          ),
        );
        continue;
      }
      const targetExec = ((elf.sections[target]?.flags ?? 0n) & SHF_EXECINSTR) !== 0n;
      if (targetExec || STRUCT_OPS_RELO_SECS.has(name) || name === '.rel.maps') roles[s.index] = 'relo';
    } else if (s.type === SHT.NOBITS && (name === '.bss' || name.startsWith('.bss.'))) {
      roles[s.index] = 'bss';
    }
  }
  return layout;
}

/** What libbpf calls the kinds of its internal maps (enum libbpf_map_type). */
export type InternalMapKind = 'data' | 'rodata' | 'bss' | 'kconfig';

/** A global data map: one per non-empty .data*, .rodata*, .bss* section, plus .kconfig. */
export interface GlobalDataMap {
  /**
   * The name libbpf shows users (bpf_map__name, the skeleton): the section name for custom
   * .data.* and .rodata.* sections, else the kernel name.
   */
  name: string;
  /** The map name libbpf creates the map with (internal_map_name: at most 15 bytes). */
  kernelName: string;
  /** The ELF section name (libbpf's real_name), ".kconfig" for the Kconfig map. */
  realName: string;
  kind: InternalMapKind;
  /** The ELF section (for .kconfig, libbpf uses the symbol table's index). */
  sectionIndex: number;
  /** value_size: the section's size (for .kconfig, the end of the last Kconfig extern). */
  size: number;
  /**
   * The initial contents: the section's bytes for .data* and .rodata*; undefined for .bss* and
   * .kconfig, which start as `size` zero bytes (libbpf fills .kconfig at load).
   */
  initialBytes: Uint8Array | undefined;
  /** BPF_F_RDONLY_PROG: .rodata* and .kconfig, read-only for programs. */
  readonly: boolean;
  /** libbpf freezes .rodata* and .kconfig after setting their contents: read-only from user space too. */
  frozen: boolean;
  /** BPF_F_MMAPABLE: the DATASEC has a non-static variable (exposed by the skeleton). */
  mmapable: boolean;
  /** map_flags as libbpf creates the map. */
  mapFlags: number;
  /** btf_value_type_id: the first type named like the section (its DATASEC); 0 when none. */
  btfValueTypeId: number;
}

export const BPF_F_RDONLY_PROG = 0x80;
export const BPF_F_MMAPABLE = 0x400;
const BPF_OBJ_NAME_LEN = 16;

/**
 * libbpf's object name for a file: its basename, cut to 15 bytes, then at the first '.'
 * (bpf_object__new). "minimal.bpf.o" → "minimal".
 */
export function objectNameFromPath(path: string): string {
  const base = path.slice(path.lastIndexOf('/') + 1);
  const bytes = new TextEncoder().encode(base).subarray(0, BPF_OBJ_NAME_LEN - 1);
  const dot = bytes.indexOf(0x2e);
  return new TextDecoder().decode(dot < 0 ? bytes : bytes.subarray(0, dot));
}

/**
 * internal_map_name: '<object name prefix><section name>' in at most 15 bytes. The section name
 * keeps at least 7 bytes (all of it when it fits); a name with a second '.' (.data.custom,
 * .rodata.str1.1) gets no prefix. Bytes other than [A-Za-z0-9_.] become '_'.
 */
export function internalMapName(objectName: string, realName: string): string {
  const obj = new TextEncoder().encode(objectName);
  const real = new TextEncoder().encode(realName);
  let sfxLen = Math.max(7, real.length);
  if (sfxLen >= BPF_OBJ_NAME_LEN) sfxLen = BPF_OBJ_NAME_LEN - 1;
  const pfxLen = real.subarray(1).includes(0x2e) ? 0 : Math.min(BPF_OBJ_NAME_LEN - sfxLen - 1, obj.length);
  const out = [...obj.subarray(0, pfxLen), ...real.subarray(0, sfxLen)].slice(0, BPF_OBJ_NAME_LEN - 1);
  return String.fromCharCode(...out.map((b) => (isNameByte(b) ? b : 0x5f)));
}

function isNameByte(b: number): boolean {
  return (
    (b >= 0x30 && b <= 0x39) ||
    (b >= 0x41 && b <= 0x5a) ||
    (b >= 0x61 && b <= 0x7a) ||
    b === 0x5f ||
    b === 0x2e
  );
}

/**
 * bpf_object__init_internal_map for one section: flags, BTF value type and contents.
 * `globalVarNames` are VARs libbpf has turned global by then (the .kconfig externs).
 */
export function makeGlobalDataMap(
  btf: Btf | undefined,
  datasecs: FixedDatasecs,
  objectName: string,
  kind: InternalMapKind,
  realName: string,
  sectionIndex: number,
  contents: Uint8Array | undefined,
  size: number,
): GlobalDataMap {
  const readonly = kind === 'rodata' || kind === 'kconfig';
  const btfValueTypeId = btf?.findByName(realName)[0] ?? 0;
  const mmapable = btf !== undefined && btfValueTypeId !== 0 && hasExposedVar(btf, datasecs, btfValueTypeId);
  const mapFlags = (readonly ? BPF_F_RDONLY_PROG : 0) | (mmapable ? BPF_F_MMAPABLE : 0);
  const initialBytes = contents?.subarray(0, size);
  const kernelName = internalMapName(objectName, realName);
  const usesRealName =
    (kind === 'data' && realName !== '.data') || (kind === 'rodata' && realName !== '.rodata');
  return {
    name: usesRealName ? realName : kernelName,
    kernelName,
    realName,
    kind,
    sectionIndex,
    size,
    initialBytes,
    readonly,
    frozen: readonly,
    mmapable,
    mapFlags,
    btfValueTypeId,
  };
}

/** map_is_mmapable: a DATASEC with a VAR whose linkage is not static (after the fixups). */
function hasExposedVar(btf: Btf, datasecs: FixedDatasecs, id: TypeId): boolean {
  if (btf.kind(id) !== 'datasec') return false;
  const fixed = datasecs.get(id);
  const vars = fixed?.vars ?? (btf.type(id) as { vars: VarSecinfo[] }).vars;
  return vars.some((v) => {
    if (!btf.has(v.type)) return false;
    const vt = btf.type(v.type);
    if (vt.kind !== 'var' || fixed?.staticVars.has(v.type) === true) return false;
    // collect_externs turns the .kconfig externs global ("allocated") before the map is made.
    return vt.linkageRaw !== 0;
  });
}

/**
 * bpf_object__init_global_data_maps: a map per non-empty data, rodata and bss section, in section
 * order. (The .kconfig map comes after, from the externs.)
 */
export function collectGlobalDataMaps(
  elf: Elf,
  btf: Btf | undefined,
  datasecs: FixedDatasecs,
  layout: SectionLayout,
  objectName: string,
): GlobalDataMap[] {
  const maps: GlobalDataMap[] = [];
  for (const s of elf.sections) {
    const role = layout.roles[s.index];
    if ((role !== 'data' && role !== 'rodata' && role !== 'bss') || s.size === 0) continue;
    const contents = role === 'bss' ? undefined : elf.contents(s);
    maps.push(makeGlobalDataMap(btf, datasecs, objectName, role, s.name, s.index, contents, s.size));
  }
  return maps;
}

/** A DATASEC after libbpf's btf_fixup_datasec. */
export interface FixedDatasec {
  name: string;
  /** The ELF section's size when the DATASEC said 0 (clang leaves it 0). */
  size: number;
  /** The variables, their offsets taken from the ELF symbols, sorted by offset (as libbpf sorts). */
  vars: VarSecinfo[];
  /** VARs libbpf makes static because their symbol is hidden or internal. */
  staticVars: Set<TypeId>;
}

export type FixedDatasecs = Map<TypeId, FixedDatasec>;

/**
 * bpf_object_fixup_btf: sizes and variable offsets of DATASECs from the ELF (clang leaves them
 * zero), hidden globals made static, variables sorted by offset. .kconfig and .ksyms are laid out
 * by collect_externs instead and only sorted (their offsets are all 0 here).
 */
export function fixupDatasecs(
  elf: Elf,
  btf: Btf | undefined,
  symbols: readonly ElfSymbol[],
): { datasecs: FixedDatasecs; errors: OpenError[] } {
  const datasecs: FixedDatasecs = new Map();
  const errors: OpenError[] = [];
  if (btf === undefined) return { datasecs, errors };
  const fail = (errno: OpenErrno, message: string) => errors.push(openError('btf', errno, message));
  for (let id = 1; id < btf.typeCount; id++) {
    if (btf.kind(id) !== 'datasec') continue;
    const t = btf.type(id);
    if (t.kind !== 'datasec') continue;
    const fixed: FixedDatasec = {
      name: t.name,
      size: t.size,
      vars: t.vars.map((v) => ({ ...v })),
      staticVars: new Set(),
    };
    datasecs.set(id, fixed);
    if (t.name !== '.kconfig' && t.name !== '.ksyms') {
      let fixupOffsets = false;
      if (t.size === 0) {
        const section = elf.sectionHeader(t.name);
        if (section === undefined || section.size === 0) {
          fail('ENOENT', `sec '${t.name}': failed to determine size from ELF: size 0`);
          continue;
        }
        fixed.size = section.size;
        fixupOffsets = true;
      }
      for (const v of fixed.vars) {
        const vt = btf.type(v.type);
        if (vt.kind !== 'var') {
          fail('EINVAL', `sec '${t.name}': unexpected non-VAR type found`);
          break;
        }
        if (vt.linkageRaw === 0 || vt.linkageRaw === 2) continue;
        const sym = symbols.find(
          (s) =>
            s.type === STT.OBJECT && (s.bind === STB.GLOBAL || s.bind === STB.WEAK) && s.name === vt.name,
        );
        if (sym === undefined) {
          fail('ENOENT', `sec '${t.name}': failed to find ELF symbol for VAR '${vt.name}'`);
          break;
        }
        if (fixupOffsets) v.offset = Number(BigInt.asUintN(32, sym.value));
        if (sym.visibility === STV.HIDDEN || sym.visibility === STV.INTERNAL) fixed.staticVars.add(v.type);
      }
    }
    // qsort by offset (libbpf's compare is not stable; equal offsets do not occur in real objects).
    fixed.vars.sort((a, b) => a.offset - b.offset);
  }
  return { datasecs, errors };
}

/** The first 15 bytes of a name: what the kernel keeps (BPF_OBJ_NAME_LEN). */
export function kernelObjectName(name: string): string {
  const bytes = new TextEncoder().encode(name);
  return bytes.length < BPF_OBJ_NAME_LEN
    ? name
    : new TextDecoder().decode(bytes.subarray(0, BPF_OBJ_NAME_LEN - 1));
}
