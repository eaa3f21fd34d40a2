import type { Btf } from '../btf/btf.js';
import { pointerSize } from '../btf/resolve.js';
import type { TypeId } from '../btf/types.js';
import { resolveSize, skipModsAndTypedefs } from '../core/btf-walk.js';
import { CoreFailure } from '../core/errno.js';
import { essentialName } from '../core/names.js';
import { STB, STT } from '../elf/constants.js';
import type { ElfSymbol } from '../elf/elf.js';
import { type OpenError, openError } from './data.js';

/**
 * Externs as bpf_object__collect_externs finds them: undefined global/weak NOTYPE symbols, each
 * matched by name to an extern VAR or FUNC of .BTF and classified by the DATASEC holding it —
 * .kconfig (values libbpf fills from the kernel config or itself) or .ksyms (kernel variables and
 * kfuncs, resolved against the kernel's BTF or kallsyms). Sorted as libbpf sorts them: Kconfig
 * externs first, by alignment (descending), size, name; then kernel symbols by name.
 */

/** How libbpf reads a Kconfig value into the extern (enum kcfg_type). */
export type KconfigType = 'bool' | 'tristate' | 'char' | 'int' | 'char_array';

/**
 * Where a Kconfig extern's value comes from at load time (bpf_object__resolve_externs):
 * - 'config': CONFIG_* from the kernel config;
 * - 'virtual': LINUX_KERNEL_VERSION, LINUX_HAS_BPF_COOKIE, LINUX_HAS_SYSCALL_WRAPPER, set by libbpf;
 * - 'weak-zero': another LINUX_* that is weak: left zero;
 * - 'unrecognized': any other name; libbpf fails the load ("unrecognized virtual extern").
 */
export type KconfigSource = 'config' | 'virtual' | 'weak-zero' | 'unrecognized';

export interface KconfigInfo {
  type: KconfigType;
  /** btf__resolve_size of the variable's type. */
  size: number;
  /** btf__align_of of the variable's type. */
  align: number;
  /** For int and char: the BTF int is signed. */
  signed: boolean;
  /** Offset of the value in the .kconfig map (laid out in sorted order, each aligned). */
  dataOffset: number;
  source: KconfigSource;
}

export interface KsymInfo {
  /**
   * The variable's or function's type past modifiers and typedefs (for a kfunc its FUNC_PROTO);
   * 0 for a typeless ksym (`extern const void sym __ksym`), whose address comes from kallsyms.
   */
  typeId: TypeId;
  /** A typeless ksym: resolved from /proc/kallsyms, not the kernel's BTF. */
  typeless: boolean;
  /** An extern FUNC: a kfunc call. */
  kfunc: boolean;
}

export interface BpfExtern {
  /** The BTF VAR/FUNC name (as libbpf uses it). */
  name: string;
  /** The name without a ___flavor suffix (libbpf's essent_name). */
  essentialName: string;
  type: 'kconfig' | 'ksym';
  /** Index of the ELF symbol. */
  symbolIndex: number;
  /** STB_WEAK: may stay unresolved (zero / not called) without failing the load. */
  weak: boolean;
  /** The extern VAR or FUNC in .BTF. */
  btfId: TypeId;
  btfKind: 'var' | 'func';
  /** The DATASEC holding it: '.kconfig' or '.ksyms'. */
  section: string;
  kconfig?: KconfigInfo;
  ksym?: KsymInfo;
}

export interface ExternsResult {
  /** In libbpf's order; a relocation's extern index is a position here. */
  externs: BpfExtern[];
  /** The .kconfig map's size (end of the last Kconfig extern), 0 when there are none. */
  kconfigSize: number;
  errors: OpenError[];
}

const VIRTUAL_KCONFIG = new Set([
  'LINUX_KERNEL_VERSION',
  'LINUX_HAS_BPF_COOKIE',
  'LINUX_HAS_SYSCALL_WRAPPER',
]);

/** sym_is_extern: undefined, global or weak, NOTYPE. */
export function symIsExtern(sym: ElfSymbol): boolean {
  return sym.shndx === 0 && (sym.bind === STB.GLOBAL || sym.bind === STB.WEAK) && sym.type === STT.NOTYPE;
}

export function collectExterns(btf: Btf | undefined, symbols: readonly ElfSymbol[]): ExternsResult {
  const errors: OpenError[] = [];
  const fail = (errno: OpenError['errno'], message: string) =>
    errors.push(openError('externs', errno, message));
  const externs: BpfExtern[] = [];
  for (const sym of symbols) {
    if (!symIsExtern(sym) || sym.name === '') continue;
    const found = findExternBtfId(btf, sym.name);
    if (typeof found === 'string') {
      fail(
        found === 'ESRCH' ? 'ESRCH' : found,
        `failed to find BTF for extern '${sym.name}': -${errnoNumber(found)}`,
      );
      continue;
    }
    const b = btf as Btf;
    const t = b.type(found);
    if (t.kind !== 'var' && t.kind !== 'func') continue;
    const secId = findExternSecBtfId(b, found);
    if (secId === undefined) {
      fail('ENOENT', `failed to find BTF for extern '${sym.name}' [${found}] section: -2`);
      continue;
    }
    const section = b.name(secId);
    const ext: BpfExtern = {
      name: t.name,
      essentialName: essentialName(t.name),
      type: 'ksym',
      symbolIndex: sym.index,
      weak: sym.bind === STB.WEAK,
      btfId: found,
      btfKind: t.kind,
      section,
    };
    if (section === '.kconfig') {
      if (t.kind === 'func') {
        fail('ENOTSUP', `extern function ${t.name} is unsupported under .kconfig section`);
        continue;
      }
      ext.type = 'kconfig';
      let size: number;
      try {
        size = resolveSize(b, t.type);
      } catch (e) {
        if (!(e instanceof CoreFailure)) throw e;
        fail(
          e.errno === 7 ? 'E2BIG' : 'EINVAL',
          `failed to resolve size of extern (kcfg) '${sym.name}': -${e.errno}`,
        );
        continue;
      }
      if (size <= 0) {
        fail('EINVAL', `failed to resolve size of extern (kcfg) '${sym.name}': ${size}`);
        continue;
      }
      const align = alignOf(b, t.type);
      if (align <= 0) {
        fail('EINVAL', `failed to determine alignment of extern (kcfg) '${sym.name}': ${align}`);
        continue;
      }
      const kt = kconfigType(b, t.type);
      if (kt === undefined) {
        fail('ENOTSUP', `extern (kcfg) '${sym.name}': type is unsupported`);
        continue;
      }
      ext.kconfig = {
        type: kt.type,
        size,
        align,
        signed: kt.signed,
        dataOffset: 0,
        source: kconfigSource(t.name, ext.weak),
      };
    } else if (section === '.ksyms') {
      let typeId = 0;
      try {
        typeId = skipModsAndTypedefs(b, t.type).id;
      } catch (e) {
        if (!(e instanceof CoreFailure)) throw e;
      }
      ext.ksym = { typeId, typeless: typeId === 0, kfunc: t.kind === 'func' };
    } else {
      fail('ENOTSUP', `unrecognized extern section '${section}'`);
      continue;
    }
    externs.push(ext);
  }

  externs.sort(compareExterns);

  let kconfigSize = 0;
  for (const ext of externs) {
    if (ext.kconfig === undefined) continue;
    ext.kconfig.dataOffset = roundUp(kconfigSize, ext.kconfig.align);
    kconfigSize = ext.kconfig.dataOffset + ext.kconfig.size;
  }

  // Every VAR/FUNC of the .ksyms and .kconfig DATASECs must be one of the externs.
  if (btf !== undefined) {
    const byName = new Set(externs.map((e) => e.name));
    for (const [secName, what] of [
      ['.ksyms', 'ksym'],
      ['.kconfig', 'kcfg'],
    ] as const) {
      if (!externs.some((e) => e.section === secName)) continue;
      const secId = btf.findByNameKind(secName, 'datasec');
      if (secId === undefined) continue;
      const sec = btf.type(secId);
      if (sec.kind !== 'datasec') continue;
      for (const v of sec.vars) {
        const vt = btf.type(v.type);
        if (byName.has(vt.name)) continue;
        fail(
          'ESRCH',
          what === 'ksym'
            ? `failed to find extern definition for BTF ${vt.kind} '${vt.name}'`
            : `failed to find extern definition for BTF var '${vt.name}'`,
        );
      }
    }
  }
  return { externs, kconfigSize, errors };
}

function errnoNumber(name: 'ESRCH' | 'EINVAL' | 'ENOENT'): number {
  return name === 'ESRCH' ? 3 : name === 'EINVAL' ? 22 : 2;
}

/** find_extern_btf_id: the first VAR or FUNC with the name; it must be extern. */
function findExternBtfId(btf: Btf | undefined, name: string): TypeId | 'ESRCH' | 'EINVAL' | 'ENOENT' {
  if (btf === undefined) return 'ESRCH';
  for (const id of btf.findByName(name)) {
    const t = btf.type(id);
    if (t.kind === 'var') return t.linkage === 'extern' && t.linkageRaw === 2 ? id : 'EINVAL';
    if (t.kind === 'func') return t.linkageRaw === 2 ? id : 'EINVAL';
  }
  return 'ENOENT';
}

/** find_extern_sec_btf_id: the first DATASEC listing the extern. */
function findExternSecBtfId(btf: Btf, id: TypeId): TypeId | undefined {
  for (let i = 1; i < btf.typeCount; i++) {
    if (btf.kind(i) !== 'datasec') continue;
    const t = btf.type(i);
    if (t.kind === 'datasec' && t.vars.some((v) => v.type === id)) return i;
  }
  return undefined;
}

/** find_kcfg_type. */
function kconfigType(btf: Btf, id: TypeId): { type: KconfigType; signed: boolean } | undefined {
  let t: ReturnType<typeof skipModsAndTypedefs>['type'];
  try {
    t = skipModsAndTypedefs(btf, id).type;
  } catch (e) {
    if (e instanceof CoreFailure) return undefined;
    throw e;
  }
  switch (t.kind) {
    case 'int': {
      if ((t.encoding & 4) !== 0) return t.size === 1 ? { type: 'bool', signed: false } : undefined;
      const signed = (t.encoding & 1) !== 0;
      if (t.size === 1) return { type: 'char', signed };
      if (t.size < 1 || t.size > 8 || (t.size & (t.size - 1)) !== 0) return undefined;
      return { type: 'int', signed };
    }
    case 'enum':
      return t.size === 4 && t.name === 'libbpf_tristate' ? { type: 'tristate', signed: false } : undefined;
    case 'enum64':
      return t.name === 'libbpf_tristate' ? { type: 'tristate', signed: false } : undefined;
    case 'array':
      if (t.nelems === 0) return undefined;
      return kconfigType(btf, t.type)?.type === 'char' ? { type: 'char_array', signed: false } : undefined;
    default:
      return undefined;
  }
}

function kconfigSource(name: string, weak: boolean): KconfigSource {
  if (name.startsWith('CONFIG_')) return 'config';
  if (VIRTUAL_KCONFIG.has(name)) return 'virtual';
  if (name.startsWith('LINUX_') && weak) return 'weak-zero';
  return 'unrecognized';
}

/** btf__align_of; 0 where libbpf fails (a kind without alignment, or a loop). */
export function alignOf(btf: Btf, id: TypeId, depth = 0): number {
  if (depth > 64 || !btf.has(id)) return 0;
  const t = btf.type(id);
  switch (t.kind) {
    case 'int':
    case 'enum':
    case 'enum64':
    case 'float':
      return Math.min(pointerSize(btf), t.size);
    case 'ptr':
      return pointerSize(btf);
    case 'typedef':
    case 'volatile':
    case 'const':
    case 'restrict':
    case 'type_tag':
    case 'array':
      return alignOf(btf, t.type, depth + 1);
    case 'struct':
    case 'union': {
      let maxAlign = 1;
      for (const m of t.members) {
        const a = alignOf(btf, m.type, depth + 1);
        if (a <= 0) return a;
        maxAlign = Math.max(maxAlign, a);
        if (m.bitfieldSize === 0 && m.bitOffset % (8 * a) !== 0) return 1;
      }
      return t.size % maxAlign !== 0 ? 1 : maxAlign;
    }
    default:
      return 0;
  }
}

/** cmp_externs: Kconfig before ksyms; Kconfig by alignment (desc) and size (asc); then by name. */
function compareExterns(a: BpfExtern, b: BpfExtern): number {
  if (a.type !== b.type) return a.type === 'kconfig' ? -1 : 1;
  if (a.kconfig !== undefined && b.kconfig !== undefined) {
    if (a.kconfig.align !== b.kconfig.align) return b.kconfig.align - a.kconfig.align;
    if (a.kconfig.size !== b.kconfig.size) return a.kconfig.size - b.kconfig.size;
  }
  return compareBytes(a.name, b.name);
}

/** strcmp: byte order, not UTF-16 code unit order. */
export function compareBytes(a: string, b: string): number {
  if (a === b) return 0;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return Buffer.compare(x, y);
}

function roundUp(n: number, align: number): number {
  return Math.ceil(n / align) * align;
}
