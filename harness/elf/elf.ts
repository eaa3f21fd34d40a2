import { NotSupportedError, ParseError } from '../errors.js';
import {
  EI_CLASS,
  EI_DATA,
  EI_OSABI,
  EI_VERSION,
  ELF64_EHDR_SIZE,
  ELF64_REL_SIZE,
  ELF64_RELA_SIZE,
  ELF64_SHDR_SIZE,
  ELF64_SYM_SIZE,
  ELFCLASS32,
  ELFCLASS64,
  ELFDATA2LSB,
  ELFDATA2MSB,
  ELFMAG,
  EV_CURRENT,
  SHN,
  SHT,
} from './constants.js';

/** The ELF file header (Elf64_Ehdr), with extended section numbering already resolved. */
export interface ElfHeader {
  littleEndian: boolean;
  osabi: number;
  /** e_type: ET_REL for BPF objects, ET_EXEC for vmlinux. */
  type: number;
  machine: number;
  version: number;
  entry: bigint;
  phoff: number;
  shoff: number;
  flags: number;
  ehsize: number;
  phentsize: number;
  phnum: number;
  shentsize: number;
  /** Number of section headers (from section 0's sh_size when e_shnum is 0). */
  shnum: number;
  /** Index of the section-name string table (from section 0's sh_link when e_shstrndx is SHN_XINDEX). */
  shstrndx: number;
}

/** One section header (Elf64_Shdr) with its name resolved. */
export interface ElfSection {
  index: number;
  name: string;
  /** sh_name: offset of the name in the section-name string table. */
  nameOffset: number;
  type: number;
  flags: bigint;
  addr: bigint;
  /** sh_offset: where the contents start in the file (checked against the file's size). */
  offset: number;
  /** sh_size: length of the contents (SHT_NOBITS sections occupy no file bytes). */
  size: number;
  link: number;
  info: number;
  addralign: bigint;
  entsize: number;
  /** Where this section's header sits in the file, for error messages. */
  headerOffset: number;
}

/** One Elf64_Sym. */
export interface ElfSymbol {
  /** Index in its symbol table (relocations refer to symbols by it). */
  index: number;
  name: string;
  nameOffset: number;
  value: bigint;
  size: bigint;
  /** STB_* (st_info >> 4). */
  bind: number;
  /** STT_* (st_info & 0xf). */
  type: number;
  /** STV_* (st_other & 3). */
  visibility: number;
  /** Section index, SHN_XINDEX resolved through SHT_SYMTAB_SHNDX; SHN_ABS/SHN_COMMON kept as is. */
  shndx: number;
}

/** One Elf64_Rel or Elf64_Rela. */
export interface ElfRelocation {
  /** r_offset: a byte offset in the target section (relocatable files) or an address. */
  offset: bigint;
  /** ELF64_R_SYM(r_info): index in the linked symbol table (checked to exist). */
  symbol: number;
  /** ELF64_R_TYPE(r_info). */
  type: number;
  /** r_addend; 0 for SHT_REL, whose addend is implicit in the relocated bytes. */
  addend: bigint;
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

/**
 * Fills bytes [offset, offset + length) of the buffer an Elf was parsed from with the file's
 * contents (a range within the buffer). For a file that is not read whole: the Elf asks for each
 * range right before it first looks at it — the file header, the section headers, the contents of
 * the sections it is asked about — and never for the rest. A BPF object's DWARF is ~95% of its
 * bytes and CO-RE relocation never reads it.
 */
export type ElfFill = (offset: number, length: number) => void;

/**
 * A read-only ELF64 file over a Uint8Array, either byte order. Parsing reads the file header and the
 * section headers (checking their bounds and names) and nothing else; section contents are
 * subarrays of the input (never copies), and symbol and relocation tables are decoded on first use.
 * That keeps reading one section out of a 60 MB vmlinux as cheap as reading a small BPF object.
 */
export class Elf {
  readonly bytes: Uint8Array;
  readonly header: ElfHeader;
  readonly sections: readonly ElfSection[];
  readonly littleEndian: boolean;

  private readonly view: DataView;
  private readonly fill: ElfFill | undefined;
  /** With `fill`: the sections whose contents are in `bytes` already. */
  private readonly filled = new Set<number>();
  private readonly byName = new Map<string, ElfSection>();
  private readonly stringTables = new Map<number, ElfStringTable>();
  private readonly symbolCache = new Map<number, readonly ElfSymbol[]>();

  private constructor(bytes: Uint8Array, fill: ElfFill | undefined) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.fill = fill;
    this.need(0, ELF64_EHDR_SIZE);
    this.littleEndian = identify(bytes);
    this.header = this.readHeader();
    this.sections = this.readSections();
    for (const s of this.sections) if (!this.byName.has(s.name)) this.byName.set(s.name, s);
  }

  /**
   * Parses an ELF64 file. ELF32 → NotSupportedError; anything malformed → ParseError('elf').
   * `bytes` is the whole file, or, with `fill`, a buffer of the file's size that `fill` fills in as
   * the Elf needs it (the answers are the same either way; `bytes` then holds only what was used).
   */
  static parse(bytes: Uint8Array, fill?: ElfFill): Elf {
    return new Elf(bytes, fill);
  }

  /** Whether `bytes` starts with the ELF magic (any class or byte order). */
  static isElf(bytes: Uint8Array): boolean {
    return ELFMAG.every((b, i) => bytes[i] === b);
  }

  /** The first section with this name. */
  sectionHeader(name: string): ElfSection | undefined {
    return this.byName.get(name);
  }

  /** The section with this index; ParseError when there is none. */
  sectionAt(index: number, referrer?: { what: string; section?: string; offset?: number }): ElfSection {
    const s = Number.isInteger(index) ? this.sections[index] : undefined;
    if (s === undefined) {
      const what = referrer?.what ?? 'section index';
      throw new ParseError(
        'elf',
        `${what} ${index} is not a section (the file has ${this.sections.length})`,
        {
          section: referrer?.section,
          offset: referrer?.offset,
        },
      );
    }
    return s;
  }

  /**
   * The contents of the first section with this name, or undefined when there is no such section.
   * An SHT_NOBITS section (.bss) has no bytes in the file: its contents are empty.
   */
  section(name: string): Uint8Array | undefined {
    const s = this.byName.get(name);
    return s === undefined ? undefined : this.contents(s);
  }

  /** A section's bytes: a view into the input, not a copy. */
  contents(section: ElfSection): Uint8Array {
    if (section.type === SHT.NOBITS) return this.bytes.subarray(0, 0);
    this.needSection(section);
    return this.bytes.subarray(section.offset, section.offset + section.size);
  }

  /** The string table in section `index` (checked to be one). */
  stringTable(index: number, referrer?: { what: string; section: string; offset: number }): ElfStringTable {
    let table = this.stringTables.get(index);
    if (table === undefined) {
      const s = this.sectionAt(index, referrer);
      if (s.type !== SHT.STRTAB) {
        const what = referrer === undefined ? '' : `${referrer.what}: `;
        throw new ParseError(
          'elf',
          `${what}section ${sectionLabel(s)} is not a string table (type ${s.type})`,
          {
            section: referrer?.section ?? sectionLabel(s),
            offset: referrer?.offset ?? s.headerOffset,
          },
        );
      }
      table = new ElfStringTable(this.contents(s), sectionLabel(s), s.offset);
      this.stringTables.set(index, table);
    }
    return table;
  }

  /** The static symbol table (SHT_SYMTAB), if the file has one (stripped files do not). */
  symbolTable(): ElfSection | undefined {
    return this.sections.find((s) => s.type === SHT.SYMTAB);
  }

  /**
   * The symbols of a symbol table section (the SHT_SYMTAB by default; none when there is none),
   * decoded on first use. Index 0 is the null symbol, as in the file.
   */
  symbols(table: ElfSection | undefined = this.symbolTable()): readonly ElfSymbol[] {
    if (table === undefined) return [];
    let symbols = this.symbolCache.get(table.index);
    if (symbols === undefined) {
      symbols = this.readSymbols(table);
      this.symbolCache.set(table.index, symbols);
    }
    return symbols;
  }

  /** Every SHT_REL and SHT_RELA section, in section order. */
  relocationSections(): ElfSection[] {
    return this.sections.filter((s) => s.type === SHT.REL || s.type === SHT.RELA);
  }

  /**
   * The entries of an SHT_REL or SHT_RELA section. The section they apply to is `sh_info`
   * (`sectionAt(section.info)`); their symbols index `symbols(sectionAt(section.link))`.
   */
  relocations(section: ElfSection): ElfRelocation[] {
    const label = sectionLabel(section);
    const rela = section.type === SHT.RELA;
    if (!rela && section.type !== SHT.REL) {
      throw new ParseError('elf', `not a relocation section (type ${section.type})`, {
        section: label,
        offset: section.headerOffset,
      });
    }
    const entsize = rela ? ELF64_RELA_SIZE : ELF64_REL_SIZE;
    this.checkTableShape(section, entsize);
    this.needSection(section);
    const symtab = this.sectionAt(section.link, {
      what: 'sh_link (symbol table)',
      section: label,
      offset: section.headerOffset,
    });
    if (symtab.type !== SHT.SYMTAB && symtab.type !== SHT.DYNSYM) {
      throw new ParseError('elf', `sh_link ${section.link} is not a symbol table (type ${symtab.type})`, {
        section: label,
        offset: section.headerOffset,
      });
    }
    const symbolCount = this.symbols(symtab).length;
    const v = this.view;
    const le = this.littleEndian;
    const count = section.size / entsize;
    const out: ElfRelocation[] = new Array(count);
    for (let i = 0, p = section.offset; i < count; i++, p += entsize) {
      // r_info is ELF64_R_INFO(sym, type) = sym << 32 | type: read its two 32-bit halves directly.
      const hi = v.getUint32(le ? p + 12 : p + 8, le);
      const lo = v.getUint32(le ? p + 8 : p + 12, le);
      if (hi >= symbolCount) {
        throw new ParseError(
          'elf',
          `relocation ${i} refers to symbol ${hi}, but ${sectionLabel(symtab)} has ${symbolCount}`,
          { section: label, offset: p },
        );
      }
      out[i] = {
        offset: v.getBigUint64(p, le),
        symbol: hi,
        type: lo,
        addend: rela ? v.getBigInt64(p + 16, le) : 0n,
      };
    }
    return out;
  }

  private readHeader(): ElfHeader {
    const b = this.bytes;
    const v = this.view;
    const le = this.littleEndian;
    if (b.length < ELF64_EHDR_SIZE) {
      throw new ParseError('elf', `file of ${b.length} bytes is shorter than an ELF64 header (64)`, {
        offset: b.length,
      });
    }
    const version = v.getUint32(20, le);
    if (b[EI_VERSION] !== EV_CURRENT || version !== EV_CURRENT) {
      throw new ParseError('elf', `unknown ELF version ${b[EI_VERSION]}/${version}`, { offset: EI_VERSION });
    }
    const ehsize = v.getUint16(52, le);
    if (ehsize < ELF64_EHDR_SIZE) {
      throw new ParseError('elf', `e_ehsize ${ehsize} is smaller than an ELF64 header`, { offset: 52 });
    }
    const header: ElfHeader = {
      littleEndian: le,
      osabi: b[EI_OSABI]!,
      type: v.getUint16(16, le),
      machine: v.getUint16(18, le),
      version,
      entry: v.getBigUint64(24, le),
      phoff: this.u64AsOffset(32, 'e_phoff'),
      shoff: this.u64AsOffset(40, 'e_shoff'),
      flags: v.getUint32(48, le),
      ehsize,
      phentsize: v.getUint16(54, le),
      phnum: v.getUint16(56, le),
      shentsize: v.getUint16(58, le),
      shnum: v.getUint16(60, le),
      shstrndx: v.getUint16(62, le),
    };
    if (header.shoff === 0) {
      // No section header table: e_shnum and e_shstrndx mean nothing.
      header.shnum = 0;
      header.shstrndx = 0;
      return header;
    }
    if (header.shentsize !== ELF64_SHDR_SIZE) {
      throw new ParseError('elf', `e_shentsize ${header.shentsize} is not ${ELF64_SHDR_SIZE}`, {
        offset: 58,
      });
    }
    // Extended numbering: section 0's header holds counts that do not fit in 16 bits.
    if (header.shoff + ELF64_SHDR_SIZE > b.length) {
      throw new ParseError(
        'elf',
        `section headers at 0x${header.shoff.toString(16)} lie past the end of the file`,
        {
          offset: 40,
        },
      );
    }
    this.need(header.shoff, ELF64_SHDR_SIZE);
    if (header.shnum === 0) header.shnum = this.u64AsOffset(header.shoff + 32, 'section 0 sh_size (e_shnum)');
    if (header.shstrndx === SHN.XINDEX) header.shstrndx = v.getUint32(header.shoff + 40, le);
    const end = header.shoff + header.shnum * ELF64_SHDR_SIZE;
    if (end > b.length) {
      throw new ParseError(
        'elf',
        `${header.shnum} section headers at 0x${header.shoff.toString(16)} end at 0x${end.toString(16)}, past the end of the file (0x${b.length.toString(16)})`,
        { offset: 40 },
      );
    }
    if (header.shstrndx >= header.shnum) {
      throw new ParseError(
        'elf',
        `e_shstrndx ${header.shstrndx} is not a section (the file has ${header.shnum})`,
        {
          offset: 62,
        },
      );
    }
    return header;
  }

  private readSections(): ElfSection[] {
    const { shoff, shnum, shstrndx } = this.header;
    const v = this.view;
    const le = this.littleEndian;
    const fileSize = this.bytes.length;
    this.need(shoff, shnum * ELF64_SHDR_SIZE);
    const sections: ElfSection[] = new Array(shnum);
    for (let i = 0; i < shnum; i++) {
      const h = shoff + i * ELF64_SHDR_SIZE;
      const type = v.getUint32(h + 4, le);
      const offset = this.u64AsOffset(h + 24, `section ${i} sh_offset`);
      const size = this.u64AsOffset(h + 32, `section ${i} sh_size`);
      const s: ElfSection = {
        index: i,
        name: '',
        nameOffset: v.getUint32(h, le),
        type,
        flags: v.getBigUint64(h + 8, le),
        addr: v.getBigUint64(h + 16, le),
        offset,
        size,
        link: v.getUint32(h + 40, le),
        info: v.getUint32(h + 44, le),
        addralign: v.getBigUint64(h + 48, le),
        entsize: this.u64AsOffset(h + 56, `section ${i} sh_entsize`),
        headerOffset: h,
      };
      // Section 0 is the null header (it may carry extended counts in sh_size, which is no extent).
      if (i !== 0 && type !== SHT.NOBITS && type !== SHT.NULL && offset + size > fileSize) {
        throw new ParseError(
          'elf',
          `contents at 0x${offset.toString(16)}+0x${size.toString(16)} end past the end of the file (0x${fileSize.toString(16)})`,
          { section: `#${i}`, offset: h + 24 },
        );
      }
      sections[i] = s;
    }
    if (shnum > 0 && shstrndx !== SHN.UNDEF) {
      const names = sections[shstrndx]!;
      if (names.type === SHT.NOBITS) {
        throw new ParseError('elf', `e_shstrndx ${shstrndx} names a section with no contents`, {
          offset: 62,
        });
      }
      const table = new ElfStringTable(this.contents(names), `#${shstrndx} (section names)`, names.offset);
      for (const s of sections) {
        if (s.index === 0) continue;
        s.name = table.get(s.nameOffset, { section: `#${s.index}`, offset: s.headerOffset });
      }
    }
    return sections;
  }

  private readSymbols(table: ElfSection): ElfSymbol[] {
    const label = sectionLabel(table);
    if (table.type !== SHT.SYMTAB && table.type !== SHT.DYNSYM) {
      throw new ParseError('elf', `not a symbol table (type ${table.type})`, {
        section: label,
        offset: table.headerOffset,
      });
    }
    this.checkTableShape(table, ELF64_SYM_SIZE);
    const names = this.stringTable(table.link, {
      what: 'sh_link (symbol names)',
      section: label,
      offset: table.headerOffset,
    });
    const count = table.size / ELF64_SYM_SIZE;
    const extended = this.sections.find((s) => s.type === SHT.SYMTAB_SHNDX && s.link === table.index);
    this.needSection(table);
    if (extended !== undefined) this.needSection(extended);
    const v = this.view;
    const le = this.littleEndian;
    const symbols: ElfSymbol[] = new Array(count);
    for (let i = 0, p = table.offset; i < count; i++, p += ELF64_SYM_SIZE) {
      const nameOffset = v.getUint32(p, le);
      const info = v.getUint8(p + 4);
      let shndx = v.getUint16(p + 6, le);
      if (shndx === SHN.XINDEX && extended !== undefined) {
        if ((i + 1) * 4 > extended.size) {
          throw new ParseError('elf', `has no extended section index for symbol ${i}`, {
            section: sectionLabel(extended),
            offset: extended.offset + i * 4,
          });
        }
        shndx = v.getUint32(extended.offset + i * 4, le);
      }
      symbols[i] = {
        index: i,
        name: names.get(nameOffset, { section: label, offset: p }),
        nameOffset,
        value: v.getBigUint64(p + 8, le),
        size: v.getBigUint64(p + 16, le),
        bind: info >> 4,
        type: info & 0xf,
        visibility: v.getUint8(p + 5) & 3,
        shndx,
      };
    }
    return symbols;
  }

  /** With a `fill`: makes sure bytes [offset, offset + length) (within the file) are read. */
  private need(offset: number, length: number): void {
    if (this.fill === undefined) return;
    const end = Math.min(offset + length, this.bytes.length);
    if (end > offset) this.fill(offset, end - offset);
  }

  private needSection(section: ElfSection): void {
    if (this.fill === undefined || this.filled.has(section.index) || section.type === SHT.NOBITS) return;
    this.filled.add(section.index);
    this.need(section.offset, section.size);
  }

  /** A table of fixed-size entries must declare that size and hold a whole number of them. */
  private checkTableShape(section: ElfSection, entsize: number): void {
    const label = sectionLabel(section);
    if (section.entsize !== entsize) {
      throw new ParseError('elf', `sh_entsize is ${section.entsize}, not ${entsize}`, {
        section: label,
        offset: section.headerOffset + 56,
      });
    }
    if (section.size % entsize !== 0) {
      throw new ParseError('elf', `size ${section.size} is not a multiple of the entry size ${entsize}`, {
        section: label,
        offset: section.headerOffset + 32,
      });
    }
  }

  /** A 64-bit file offset or size as a number; anything past 2^53 lies past any real file. */
  private u64AsOffset(at: number, what: string): number {
    // Two 32-bit halves: read for every section header, where a BigInt per field adds up.
    const le = this.littleEndian;
    const low = this.view.getUint32(le ? at : at + 4, le);
    const high = this.view.getUint32(le ? at + 4 : at, le);
    // Up to 2^53 - 1 (Number.MAX_SAFE_INTEGER): the high half fits in 21 bits.
    if (high > 0x1fffff) {
      const value = this.view.getBigUint64(at, le);
      throw new ParseError('elf', `${what} 0x${value.toString(16)} is out of range`, { offset: at });
    }
    return high * 0x1_0000_0000 + low;
  }
}

/** An ELF string table: NUL-terminated strings addressed by byte offset within the section. */
export class ElfStringTable {
  private readonly bytes: Uint8Array;
  private readonly label: string;
  private readonly fileOffset: number;

  constructor(bytes: Uint8Array, label: string, fileOffset: number) {
    this.bytes = bytes;
    this.label = label;
    this.fileOffset = fileOffset;
  }

  /** The string at `offset`; `where` names the structure that refers to it, for errors. */
  get(offset: number, where?: { section: string; offset: number }): string {
    const b = this.bytes;
    if (offset >= b.length) {
      throw new ParseError(
        'elf',
        `name offset ${offset} is past the end of ${this.label} (${b.length} bytes)`,
        {
          section: where?.section ?? this.label,
          offset: where?.offset ?? this.fileOffset,
        },
      );
    }
    const end = b.indexOf(0, offset);
    if (end < 0) {
      throw new ParseError('elf', `string at offset ${offset} of ${this.label} is not NUL-terminated`, {
        section: this.label,
        offset: this.fileOffset + offset,
      });
    }
    if (end === offset) return '';
    return utf8.decode(b.subarray(offset, end));
  }
}

/** The label errors use for a section: its name, or `#index` when it has none. */
export function sectionLabel(s: ElfSection): string {
  return s.name === '' ? `#${s.index}` : s.name;
}

/** Checks e_ident and returns whether the file is little-endian. */
function identify(b: Uint8Array): boolean {
  if (b.length < 16) {
    if (!ELFMAG.every((m, i) => i >= b.length || b[i] === m) || b.length < 4) {
      throw new ParseError('elf', 'not an ELF file (bad magic)', { offset: 0 });
    }
    throw new ParseError('elf', `file of ${b.length} bytes is shorter than e_ident (16)`, {
      offset: b.length,
    });
  }
  if (!ELFMAG.every((m, i) => b[i] === m)) {
    throw new ParseError('elf', 'not an ELF file (bad magic)', { offset: 0 });
  }
  const cls = b[EI_CLASS];
  if (cls === ELFCLASS32) throw new NotSupportedError('elf32', 'elf: 32-bit ELF files are not supported');
  if (cls !== ELFCLASS64) throw new ParseError('elf', `unknown ELF class ${cls}`, { offset: EI_CLASS });
  const data = b[EI_DATA];
  if (data === ELFDATA2LSB) return true;
  if (data === ELFDATA2MSB) return false;
  throw new ParseError('elf', `unknown ELF data encoding ${data}`, { offset: EI_DATA });
}
