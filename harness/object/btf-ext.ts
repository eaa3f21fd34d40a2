import type { CoreRelo } from '../core/kinds.js';
import { ParseError } from '../errors.js';

/**
 * .BTF.ext: per-instruction debug and relocation records that clang emits next to .BTF.
 *
 *   struct btf_ext_header {
 *     __u16 magic; __u8 version; __u8 flags; __u32 hdr_len;
 *     __u32 func_info_off, func_info_len;   // offsets relative to the end of the header
 *     __u32 line_info_off, line_info_len;
 *     __u32 core_relo_off, core_relo_len;   // present when hdr_len >= 32
 *   };
 *
 * Each subsection is a u32 record size followed by blocks of
 * { __u32 sec_name_off; __u32 num_info; records[num_info] }. Records may be larger than the fields
 * known here (newer compilers append fields): libbpf requires at least the minimum size and a
 * multiple of 4, and reads only the prefix it knows. Offsets of instructions are in bytes.
 */

export interface FuncInfo {
  insnOff: number;
  typeId: number;
}
export interface LineInfo {
  insnOff: number;
  fileNameOff: number;
  lineOff: number;
  /** line_col: line number << 10 | column (10 bits). */
  lineCol: number;
}

/** The records of one ELF section, in file order. */
export interface ExtSection<T> {
  /** Offset of the section name in the object's .BTF strings. */
  secNameOff: number;
  records: T[];
  /** Byte offset of the block in .BTF.ext, for error messages. */
  offset: number;
}

export interface ExtInfo<T> {
  recordSize: number;
  sections: ExtSection<T>[];
}

export interface BtfExt {
  littleEndian: boolean;
  hdrLen: number;
  funcInfo: ExtInfo<FuncInfo>;
  lineInfo: ExtInfo<LineInfo>;
  coreRelo: ExtInfo<CoreRelo>;
}

const BTF_MAGIC = 0xeb9f;
const MIN_FUNC_INFO = 8;
const MIN_LINE_INFO = 16;
const MIN_CORE_RELO = 16;
const HDR_WITH_LINE_INFO = 24;
const HDR_WITH_CORE_RELO = 32;

function fail(reason: string, offset: number, section = '.BTF.ext'): never {
  throw new ParseError('btf.ext', reason, { offset, section });
}

/** btf_ext__new: parses .BTF.ext (either byte order), checking every bound libbpf checks. */
export function parseBtfExt(data: Uint8Array): BtfExt {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (data.length < 8) fail(`truncated header: ${data.length} bytes`, 0);
  let littleEndian: boolean;
  if (view.getUint16(0, true) === BTF_MAGIC) littleEndian = true;
  else if (view.getUint16(0, false) === BTF_MAGIC) littleEndian = false;
  else fail(`bad magic 0x${view.getUint16(0, false).toString(16).padStart(4, '0')}`, 0);
  const u32 = (off: number) => view.getUint32(off, littleEndian);
  const version = data[2]!;
  const flags = data[3]!;
  const hdrLen = u32(4);
  if (version !== 1) fail(`unsupported version ${version}`, 2);
  if (flags !== 0) fail(`unsupported flags 0x${flags.toString(16)}`, 3);
  if (hdrLen > data.length) fail(`header length ${hdrLen} exceeds the section (${data.length} bytes)`, 4);
  if (hdrLen < HDR_WITH_LINE_INFO) fail(`header length ${hdrLen} is shorter than ${HDR_WITH_LINE_INFO}`, 4);
  if (hdrLen === data.length) fail('no data after the header', 4);

  // func_info and line_info records (hundreds per object, which `corematrix relocate` never reads)
  // are decoded on first use; their bounds are checked here all the same.
  const sub = <T>(
    name: string,
    fieldOff: number,
    minRecord: number,
    read: (p: number) => T,
    lazy = false,
  ): ExtInfo<T> => {
    const off = u32(fieldOff);
    const len = u32(fieldOff + 4);
    const info: ExtInfo<T> = { recordSize: 0, sections: [] };
    if (len === 0) return info;
    if (off % 4 !== 0) fail(`${name} subsection is not aligned to 4 bytes`, fieldOff);
    const start = hdrLen + off;
    if (start + len > data.length) {
      fail(`${name} subsection (off ${off}, len ${len}) runs past the end of .BTF.ext`, fieldOff);
    }
    if (len < 4) fail(`${name} subsection has no record size`, start);
    const recordSize = u32(start);
    if (recordSize < minRecord || recordSize % 4 !== 0) {
      fail(`${name} record size ${recordSize} is invalid (minimum ${minRecord}, multiple of 4)`, start);
    }
    info.recordSize = recordSize;
    let p = start + 4;
    const end = start + len;
    if (p === end) fail(`${name} subsection has no records`, p);
    while (p < end) {
      if (end - p < 8) fail(`${name} block header truncated`, p);
      const secNameOff = u32(p);
      const num = u32(p + 4);
      if (num === 0) fail(`${name} block has no records`, p + 4);
      if (8 + num * recordSize > end - p)
        fail(`${name} block of ${num} records runs past the subsection`, p + 4);
      const first = p + 8;
      const decode = (): T[] => {
        const records: T[] = new Array(num);
        for (let i = 0, q = first; i < num; i++, q += recordSize) records[i] = read(q);
        return records;
      };
      if (lazy) info.sections.push(lazyRecords({ secNameOff, offset: p }, decode));
      else info.sections.push({ secNameOff, records: decode(), offset: p });
      p += 8 + num * recordSize;
    }
    return info;
  };

  return {
    littleEndian,
    hdrLen,
    funcInfo: sub('func_info', 8, MIN_FUNC_INFO, (p) => ({ insnOff: u32(p), typeId: u32(p + 4) }), true),
    lineInfo: sub(
      'line_info',
      16,
      MIN_LINE_INFO,
      (p) => ({
        insnOff: u32(p),
        fileNameOff: u32(p + 4),
        lineOff: u32(p + 8),
        lineCol: u32(p + 12),
      }),
      true,
    ),
    coreRelo:
      hdrLen >= HDR_WITH_CORE_RELO
        ? sub('core_relo', 24, MIN_CORE_RELO, (p) => ({
            insnOff: u32(p),
            typeId: u32(p + 4),
            accessStrOff: u32(p + 8),
            kind: u32(p + 12),
          }))
        : { recordSize: 0, sections: [] },
  };
}

/** A section whose `records` are decoded on first read (then a plain, writable property). */
function lazyRecords<T>(section: Omit<ExtSection<T>, 'records'>, decode: () => T[]): ExtSection<T> {
  const settle = (records: T[]): void => {
    Object.defineProperty(section, 'records', {
      value: records,
      writable: true,
      enumerable: true,
      configurable: true,
    });
  };
  Object.defineProperty(section, 'records', {
    enumerable: true,
    configurable: true,
    get(): T[] {
      const records = decode();
      settle(records);
      return records;
    },
    set(records: T[]) {
      settle(records);
    },
  });
  return section as ExtSection<T>;
}
