import { SHN, STB, STT } from '../elf/constants.js';
import type { Elf, ElfSection, ElfSymbol } from '../elf/elf.js';
import { isParseError } from '../errors.js';
import { type OpenError, openError, type SectionLayout } from './data.js';
import { type BpfExtern, symIsExtern } from './externs.js';
import type { BpfMap } from './maps.js';

/**
 * The ELF relocations of program sections (.rel<section>), classified as libbpf's
 * bpf_object__collect_prog_relos / bpf_program__record_reloc does at open time. Every relocation
 * sits on a call or on the first half of a 64-bit immediate load (ld_imm64) and says what the
 * instruction will refer to once libbpf links and loads the program.
 */

/**
 * libbpf's reloc_type:
 * - 'call' (RELO_CALL): a BPF-to-BPF call of a subprogram in .text;
 * - 'subprog_addr' (RELO_SUBPROG_ADDR): ld_imm64 of a function's address (a callback, e.g. for
 *   bpf_loop), which becomes a BPF_PSEUDO_FUNC load;
 * - 'map' (RELO_LD64): ld_imm64 of a map in .maps;
 * - 'data' (RELO_DATA): ld_imm64 of an address in a global data map (.data/.rodata/.bss/custom);
 * - 'arena' (RELO_DATA against the arena map): a global __arena variable;
 * - 'extern_ld64' (RELO_EXTERN_LD64): ld_imm64 of an extern (a Kconfig value's address, a ksym's
 *   address, or a weak kfunc's address tested for existence);
 * - 'extern_call' (RELO_EXTERN_CALL): a kfunc call;
 * - 'insn_array' (RELO_INSN_ARRAY): a jump table in .jumptables.
 */
export type InsnRelocKind =
  | 'call'
  | 'subprog_addr'
  | 'map'
  | 'data'
  | 'arena'
  | 'extern_ld64'
  | 'extern_call'
  | 'insn_array';

export interface InsnReloc {
  /** The relocation section, e.g. ".relxdp". */
  relocSection: string;
  /** Index of the relocation in it (libbpf's "relo #N"). */
  index: number;
  /** The program section, e.g. "xdp". */
  section: string;
  sectionIndex: number;
  /** The program or subprogram holding the instruction. */
  program: string;
  /** Instruction index within that program (libbpf's insn_idx). */
  insn: number;
  /** Instruction index within the section. */
  sectionInsn: number;
  /** The symbol as libbpf names it (a section symbol is named after its section). */
  symbol: string;
  symbolIndex: number;
  /** Undefined when libbpf fails on this relocation (see `error`). */
  kind: InsnRelocKind | undefined;
  /**
   * What the instruction refers to: the called or referenced subprogram, the map (its name), the
   * extern; undefined when it cannot be told at open time.
   */
  target?: string;
  /** For map, data and arena relocations: the map's index in the object's map list. */
  mapIndex?: number;
  /** For extern relocations: the extern's index in libbpf's sorted extern list. */
  externIndex?: number;
  /** For data relocations: the byte offset in the map (symbol value + the instruction's imm). */
  offset?: number;
  /** For data relocations: the variable at that offset, when a symbol covers it. */
  variable?: string;
  error?: OpenError;
}

export interface InsnRelocProgram {
  name: string;
  sectionIndex: number;
  sectionInsnOffset: number;
  insnCount: number;
  isSubprogram: boolean;
}

const BPF_JMP_CALL = 0x85;
const BPF_LD_IMM64 = 0x18;
const BPF_PSEUDO_CALL = 1;

interface Context {
  elf: Elf;
  layout: SectionLayout;
  symbols: readonly ElfSymbol[];
  programs: readonly InsnRelocProgram[];
  maps: readonly BpfMap[];
  externs: readonly BpfExtern[];
}

function programAt(programs: readonly InsnRelocProgram[], sectionIndex: number, insn: number) {
  return programs.find(
    (p) =>
      p.sectionIndex === sectionIndex &&
      insn >= p.sectionInsnOffset &&
      insn < p.sectionInsnOffset + p.insnCount,
  );
}

/**
 * bpf_object__collect_relos for program sections: every .rel section of an executable section, in
 * section order. Relocations of instructions outside any program (an overridden weak function) are
 * skipped, as libbpf skips them.
 */
export function collectInsnRelocs(ctx: Context): { relocs: InsnReloc[]; errors: OpenError[] } {
  const relocs: InsnReloc[] = [];
  const errors: OpenError[] = [];
  const { elf, layout } = ctx;
  for (const relSection of elf.sections) {
    if (layout.roles[relSection.index] !== 'relo') continue;
    const target = elf.sections[relSection.info];
    if (target === undefined || layout.roles[target.index] !== 'program') continue;
    collectSection(ctx, relSection, target, relocs, errors);
  }
  return { relocs, errors };
}

function collectSection(
  ctx: Context,
  relSection: ElfSection,
  target: ElfSection,
  relocs: InsnReloc[],
  errors: OpenError[],
): void {
  const { elf, symbols } = ctx;
  const relName = relSection.name;
  let rels: ReturnType<Elf['relocations']>;
  try {
    rels = elf.relocations(relSection);
  } catch (e) {
    if (!isParseError(e)) throw e;
    errors.push(openError('relocs', 'LIBBPF_ERRNO__FORMAT', `sec '${relName}': ${e.message}`, relName));
    return;
  }
  const code = elf.contents(target);
  const view = new DataView(code.buffer, code.byteOffset, code.byteLength);
  for (let i = 0; i < rels.length; i++) {
    const rel = rels[i]!;
    const sym = symbols[rel.symbol];
    if (sym === undefined) {
      errors.push(
        openError(
          'relocs',
          'LIBBPF_ERRNO__FORMAT',
          `sec '${relName}': symbol #${rel.symbol} not found for relo #${i}`,
          relName,
        ),
      );
      return;
    }
    if (sym.shndx >= elf.sections.length) {
      errors.push(
        openError(
          'relocs',
          'LIBBPF_ERRNO__FORMAT',
          `sec '${relName}': corrupted symbol #${rel.symbol} pointing to invalid section #${sym.shndx} for relo #${i}`,
          relName,
        ),
      );
      return;
    }
    if (rel.offset % 8n !== 0n || rel.offset >= BigInt(target.size)) {
      errors.push(
        openError(
          'relocs',
          'LIBBPF_ERRNO__FORMAT',
          `sec '${relName}': invalid offset 0x${rel.offset.toString(16)} for relo #${i}`,
          relName,
        ),
      );
      return;
    }
    const sectionInsn = Number(rel.offset) / 8;
    const symName =
      sym.type === STT.SECTION && sym.nameOffset === 0 ? (elf.sections[sym.shndx]?.name ?? '<?') : sym.name;
    const prog = programAt(ctx.programs, target.index, sectionInsn);
    if (prog === undefined) continue;
    const insn = sectionInsn - prog.sectionInsnOffset;
    const reloc: InsnReloc = {
      relocSection: relName,
      index: i,
      section: target.name,
      sectionIndex: target.index,
      program: prog.name,
      insn,
      sectionInsn,
      symbol: symName,
      symbolIndex: rel.symbol,
      kind: undefined,
    };
    const p = sectionInsn * 8;
    const insnCode = code[p] ?? 0;
    const regs = code[p + 1] ?? 0;
    const src = elf.littleEndian ? regs >> 4 : regs & 0x0f;
    const imm = p + 8 <= code.length ? view.getInt32(p + 4, elf.littleEndian) : 0;
    const message = recordReloc(ctx, reloc, prog.name, sym, insnCode, src, imm);
    if (message !== undefined) {
      reloc.error = openError('relocs', 'LIBBPF_ERRNO__RELOC', message, relName);
      errors.push(reloc.error);
    }
    relocs.push(reloc);
  }
}

/** bpf_program__record_reloc: fills in `reloc`; returns libbpf's warning when it fails. */
function recordReloc(
  ctx: Context,
  reloc: InsnReloc,
  progName: string,
  sym: ElfSymbol,
  code: number,
  src: number,
  imm: number,
): string | undefined {
  const { elf, layout, maps } = ctx;
  const { insn, symbol } = reloc;
  const isCall = code === BPF_JMP_CALL;
  if (!isCall && code !== BPF_LD_IMM64) {
    return `prog '${progName}': invalid relo against '${symbol}' for insns[${insn}].code 0x${code.toString(16)}`;
  }
  const shndx = sym.shndx;
  const secName = (i: number) => elf.sections[i]?.name ?? '';

  if (symIsExtern(sym)) {
    const extIndex = ctx.externs.findIndex((e) => e.symbolIndex === reloc.symbolIndex);
    if (extIndex < 0) {
      return `prog '${progName}': extern relo failed to find extern for '${symbol}' (${reloc.symbolIndex})`;
    }
    reloc.kind = isCall ? 'extern_call' : 'extern_ld64';
    reloc.externIndex = extIndex;
    reloc.target = ctx.externs[extIndex]!.name;
    return undefined;
  }

  if (isCall) {
    if (src !== BPF_PSEUDO_CALL) return `prog '${progName}': incorrect bpf_call opcode`;
    if (shndx === 0 || shndx !== layout.textIndex) {
      return `prog '${progName}': bad call relo against '${symbol}' in section '${secName(shndx)}'`;
    }
    if (sym.value % 8n !== 0n) {
      return `prog '${progName}': bad call relo against '${symbol}' at offset ${sym.value}`;
    }
    reloc.kind = 'call';
    // The callee: symbol offset plus the call's imm (relative to the next instruction).
    const callee = programAt(ctx.programs, layout.textIndex, Number(sym.value / 8n) + imm + 1);
    if (callee !== undefined) reloc.target = callee.name;
    return undefined;
  }

  if (shndx === 0 || shndx >= SHN.LORESERVE) {
    return `prog '${progName}': invalid relo against '${symbol}' in special section 0x${shndx.toString(16)}; forgot to initialize global var?..`;
  }

  // sym_is_subprog: a function (or a section symbol) of .text.
  const isSubprog =
    shndx === layout.textIndex &&
    ((sym.bind === STB.LOCAL && sym.type === STT.SECTION) ||
      ((sym.bind === STB.GLOBAL || sym.bind === STB.WEAK) && sym.type === STT.FUNC));
  if (isSubprog) {
    if (sym.value % 8n !== 0n || imm % 8 !== 0) {
      return `prog '${progName}': bad subprog addr relo against '${symbol}' at offset ${sym.value}+${imm}`;
    }
    reloc.kind = 'subprog_addr';
    const callee = programAt(ctx.programs, layout.textIndex, (Number(sym.value) + imm) / 8);
    if (callee !== undefined) reloc.target = callee.name;
    return undefined;
  }

  if (shndx === layout.arenaIndex) {
    const arena = maps.findIndex((m) => m.type === 33 && m.kind === 'btf');
    if (arena < 0) {
      return `prog '${progName}': bad arena data relocation at insn ${insn}, no arena maps defined`;
    }
    reloc.kind = 'arena';
    reloc.mapIndex = arena;
    reloc.target = maps[arena]!.name;
    reloc.offset = Number(sym.value);
    return undefined;
  }

  if (shndx === layout.jumptablesIndex) {
    reloc.kind = 'insn_array';
    reloc.offset = Number(sym.value);
    return undefined;
  }

  const role = shndx === layout.symbolsIndex ? 'kconfig' : layout.roles[shndx];
  const isData = role === 'data' || role === 'rodata' || role === 'bss';
  if (!isData && role !== 'kconfig') {
    // A map reference: only into .maps, at a map definition's offset.
    // (Legacy "maps" sections are read as libbpf v0.x did; libbpf 1.x already refused the object.)
    if (shndx !== layout.mapsIndex && (shndx !== layout.legacyMapsIndex || shndx < 0)) {
      return `prog '${progName}': bad map relo against '${symbol}' in section '${secName(shndx)}'`;
    }
    const mapIndex = maps.findIndex(
      (m) =>
        (m.kind === 'btf' || m.kind === 'legacy') &&
        m.sectionIndex === shndx &&
        BigInt(m.sectionOffset) === sym.value,
    );
    if (mapIndex < 0) {
      return `prog '${progName}': map relo failed to find map for section '${secName(shndx)}', off ${sym.value}`;
    }
    reloc.kind = 'map';
    reloc.mapIndex = mapIndex;
    reloc.target = maps[mapIndex]!.name;
    return undefined;
  }
  if (!isData) return `prog '${progName}': bad data relo against section '${secName(shndx)}'`;
  const mapIndex = maps.findIndex((m) => m.kind === role && m.sectionIndex === shndx);
  if (mapIndex < 0) return `prog '${progName}': data relo failed to find map for section '${secName(shndx)}'`;
  reloc.kind = 'data';
  reloc.mapIndex = mapIndex;
  reloc.target = maps[mapIndex]!.name;
  reloc.offset = Number(sym.value) + imm;
  const offset = reloc.offset;
  const variable = ctx.symbols.find(
    (s) =>
      s.shndx === shndx &&
      s.type === STT.OBJECT &&
      BigInt(offset) >= s.value &&
      BigInt(offset) < s.value + (s.size === 0n ? 1n : s.size),
  );
  if (variable !== undefined) reloc.variable = variable.name;
  return undefined;
}
