import { Btf } from '../btf/btf.js';
import { Elf, type ElfFill, type ElfSection, sectionLabel } from '../elf/elf.js';
import { ParseError } from '../errors.js';
import { type BtfExt, parseBtfExt } from './btf-ext.js';
import { type AttachTarget, attachTargetOf, findSectionDef, SEC, type SectionDef } from './sections.js';

// What of bpf_object__open CO-RE relocation needs: ELF, .BTF, .BTF.ext and the programs. The rest
// of the open model (maps, externs, data, instruction relocations) is object.ts's, which
// `corematrix relocate` does not load.

const SHT_PROGBITS = 1;
const SHF_EXECINSTR = 0x4n;
const STT_FUNC = 2;
const STB_LOCAL = 0;
const STV_HIDDEN = 2;
const STV_INTERNAL = 1;
const INSN_SIZE = 8;
const EM_BPF = 247;

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

/** The part of a BPF object that CO-RE relocation reads (a BpfObject has all of it). */
export interface CoreBpfObject {
  elf: Elf;
  /** The object's own BTF (.BTF); objects without it cannot use CO-RE. */
  btf: Btf | undefined;
  btfExt: BtfExt | undefined;
  programs: BpfProgram[];
  license: string | undefined;
  /** The "version" section (legacy kernel version), if present. */
  kernelVersion: number | undefined;
  littleEndian: boolean;
}

/**
 * bpf_object__open's first stage (elf_collect, as far as CO-RE needs): ELF sections and symbols,
 * programs, .BTF and .BTF.ext, license and version. Pure: takes the file's bytes, or a buffer of
 * the file's size and the `fill` that reads the parts used (see Elf.parse). Fails where
 * `parseBpfObject` fails, with the same errors.
 */
export function parseCoreObject(bytes: Uint8Array, fill?: ElfFill): CoreBpfObject {
  const elf = Elf.parse(bytes, fill);
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
  return { elf, btf, btfExt, programs, license, kernelVersion, littleEndian: elf.littleEndian };
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
export function programAt(
  obj: { programs: readonly BpfProgram[] },
  sectionIndex: number,
  insn: number,
): BpfProgram | undefined {
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
