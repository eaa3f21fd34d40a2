/**
 * BTF → C header: the vmlinux.h every CO-RE program includes, as `bpftool btf dump file F format c`
 * writes it. The approach follows libbpf's btf_dump.c (read for structure, written anew here):
 *
 *  1. Ordering. A depth-first walk from every type puts the named definitions (struct, union, enum,
 *     typedef, fwd) into an emit queue so that whatever has to be complete before a definition
 *     ("strong" dependency: embedded by value, or reached through an anonymous type that is
 *     written inline) comes first. What is only reached through a pointer ("weak") can wait and is
 *     satisfied by a forward declaration.
 *  2. Emission. Each queued definition is written; on the way, named structs that are referred to
 *     but not yet defined get a forward declaration, and anonymous structs, unions and enums are
 *     written inline where they are used.
 *
 * Layout is where this departs from libbpf. libbpf decides `packed` from its own guess of each
 * type's alignment (btf__align_of) and inserts padding with heuristics; that guess can disagree
 * with what the compiler will do to the text we print (e.g. `__int128` is 16-aligned for the BPF
 * target, a bitfield may straddle its storage unit, a union may be larger than its members). Here
 * the alignment of every type is computed as clang will see the *emitted* C, a struct or union is
 * packed exactly when natural layout of that C could not land every member where the BTF says,
 * and gaps are filled with unnamed bitfields that never straddle their own unit, so their
 * placement does not depend on layout rules at all.
 *
 * Duplicate names (two different `struct foo` in one BTF) become `foo___2`, `foo___3`, … in the
 * order they are first written, as libbpf names them; `onDefinition` reports every name given.
 */
import { NotSupportedError, ParseError } from '../errors.js';
import type { Btf } from './btf.js';
import { pointerSize, resolveSize } from './resolve.js';
import type { BtfType, CompositeType, EnumType, FuncProtoType, Member, TypeId } from './types.js';
import { KIND } from './wire.js';

export interface CHeaderOptions {
  /** Include-guard macro; '' writes no guard. */
  guard: string;
  /** Wrap the definitions in clang's preserve_access_index pragma (so every field access is CO-RE). */
  preserveAccessIndex: boolean;
  /**
   * For split BTF (a module's): 'omit' writes only what the module adds, naming base types as the
   * base's own header does, so the result compiles after the base's vmlinux.h; 'include' writes
   * base and module types as one header.
   */
  baseTypes: 'omit' | 'include';
  /**
   * Called for each named struct, union, enum and typedef definition written, with its C spelling
   * (`struct foo___2`, `enum bar`, `baz_t`), so callers can refer to renamed duplicates.
   */
  onDefinition: ((id: TypeId, spelling: string) => void) | undefined;
}

export const DEFAULT_C_HEADER_OPTIONS: CHeaderOptions = {
  guard: '__VMLINUX_H__',
  preserveAccessIndex: true,
  baseTypes: 'omit',
  onDefinition: undefined,
};

/** Writes the C header for `btf` in chunks to `write`. */
export function writeCHeader(
  btf: Btf,
  write: (chunk: string) => void,
  options: Partial<CHeaderOptions> = {},
): void {
  const opts: CHeaderOptions = { ...DEFAULT_C_HEADER_OPTIONS, ...options };
  const out = new Output(write);
  if (opts.guard !== '') out.put(`#ifndef ${opts.guard}\n#define ${opts.guard}\n\n`);
  if (opts.preserveAccessIndex) {
    out.put(
      '#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n' +
        '#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)\n' +
        '#endif\n\n',
    );
  }
  const writer = new CWriter(btf, out, opts.onDefinition);
  guardRecursion(() => {
    let first = 1;
    if (btf.base !== undefined && opts.baseTypes === 'omit') {
      // Walk the base silently so that base types count as written and get the names the base's
      // own header gives them (duplicate numbering depends on the order names are first used).
      out.silent = true;
      for (let id = 1; id < btf.firstId; id++) writer.dumpType(id);
      out.silent = false;
      first = btf.firstId;
    }
    for (let id = first; id < btf.typeCount; id++) writer.dumpType(id);
  });
  if (opts.preserveAccessIndex) {
    out.put('#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n#pragma clang attribute pop\n#endif\n\n');
  }
  if (opts.guard !== '') out.put(`#endif /* ${opts.guard} */\n`);
  out.flush();
}

/** The whole header as one string. */
export function cHeader(btf: Btf, options: Partial<CHeaderOptions> = {}): string {
  const chunks: string[] = [];
  writeCHeader(btf, (c) => chunks.push(c), options);
  return chunks.join('');
}

/** Buffers output into chunks of about 64 KiB; `silent` drops output (and skips no work). */
class Output {
  silent = false;
  private buf = '';
  constructor(private readonly sink: (chunk: string) => void) {}
  put(s: string): void {
    if (this.silent) return;
    this.buf += s;
    if (this.buf.length >= 1 << 16) this.flush();
  }
  flush(): void {
    if (this.buf.length > 0) this.sink(this.buf);
    this.buf = '';
  }
}

/**
 * Deep or looping type graphs in malformed input must end in a typed error, never a RangeError:
 * recursion is bounded by MAX_DEPTH, but a stack overflow (smaller stacks) or a definition too
 * large for a JS string (millions of members) are caught here as a last resort. Whatever was
 * written before the error stays written.
 */
function guardRecursion(fn: () => void): void {
  try {
    fn();
  } catch (e) {
    if (e instanceof RangeError && /call stack/i.test(e.message)) {
      throw new ParseError('btf', `cannot write as C: type graph too deep (${e.message})`, {}, { cause: e });
    }
    if (e instanceof RangeError && /string length/i.test(e.message)) {
      throw new NotSupportedError('c-header-size', `a definition is too large to write as C (${e.message})`);
    }
    throw e;
  }
}

// Per-type ordering state (NOT_ORDERED is 0).
const ORDERING = 1;
const ORDERED = 2;
// Per-type emission state.
const NOT_EMITTED = 0;
const EMITTING = 1;
const EMITTED = 2;

/** Gaps are written one unnamed bitfield of at most 64 bits a line; beyond 1 MiB that is absurd. */
const MAX_PADDING_BITS = 8 << 20;

/** Recursion deeper than this through one type chain means a loop in malformed BTF. */
const MAX_DEPTH = 2000;

/** GCC's internal Arm SIMD element types, which kernels built by GCC may refer to by name. */
const MISSING_BASE_TYPES: ReadonlyMap<string, string> = new Map([
  ['__Poly8_t', 'unsigned char'],
  ['__Poly16_t', 'unsigned short'],
  ['__Poly64_t', 'unsigned long long'],
  ['__Poly128_t', 'unsigned __int128'],
]);

interface Layout {
  packed: boolean;
  /** Alignment clang gives the emitted definition, in bytes. */
  align: number;
}

class CWriter {
  private readonly order: Uint8Array;
  private readonly emitState: Uint8Array;
  private readonly fwdEmitted: Uint8Array;
  private readonly referenced: Uint8Array;
  private readonly names: (string | undefined)[];
  /** struct/union/enum tags seen so far → occurrences. */
  private readonly tagCounts = new Map<string, number>();
  /** Ordinary identifiers (typedef names and enumerators) seen so far → occurrences. */
  private readonly identCounts = new Map<string, number>();
  private readonly layouts: (Layout | null | undefined)[];
  private readonly ptrSize: number;
  private readonly queue: TypeId[] = [];

  constructor(
    private readonly btf: Btf,
    private readonly out: Output,
    private readonly onDefinition: ((id: TypeId, spelling: string) => void) | undefined,
  ) {
    const n = btf.typeCount;
    this.order = new Uint8Array(n);
    this.emitState = new Uint8Array(n);
    this.fwdEmitted = new Uint8Array(n);
    this.referenced = new Uint8Array(n);
    this.names = new Array(n);
    this.layouts = new Array(n);
    this.order[0] = ORDERED;
    this.emitState[0] = EMITTED;
    this.ptrSize = pointerSize(btf);
    this.markReferenced();
  }

  /** Writes `id` and everything it needs that has not been written yet. */
  dumpType(id: TypeId): void {
    // Functions, variables, sections and decl tags are not written (and half of a kernel's types
    // are FUNCs: not decoding them saves a good share of the time).
    const kind = this.btf.kindNumber(id);
    if (kind === KIND.FUNC || kind === KIND.VAR || kind === KIND.DATASEC || kind === KIND.DECL_TAG) return;
    this.queue.length = 0;
    this.orderType(id, false, 0);
    for (const queued of this.queue) this.emitType(queued, 0, 0);
  }

  private type(id: TypeId): BtfType {
    return this.btf.type(id);
  }

  /** A type graph C cannot spell: a cycle not broken by a pointer to a named struct, or a chain too long. */
  private loop(id: TypeId, what: string): never {
    throw new ParseError('btf', `cannot write as C: ${what}`, { typeId: id });
  }

  /**
   * Which types some other type refers to. An anonymous enum nobody refers to is a top-level
   * declaration of constants and is written on its own; a referenced one is written inline.
   */
  private markReferenced(): void {
    const ref = this.referenced;
    for (let id = 1; id < this.btf.typeCount; id++) {
      // Only whether an enum is referenced matters, and a FUNC refers to nothing but its prototype.
      if (this.btf.kindNumber(id) === KIND.FUNC) continue;
      const t = this.type(id);
      switch (t.kind) {
        case 'ptr':
        case 'typedef':
        case 'volatile':
        case 'const':
        case 'restrict':
        case 'type_tag':
        case 'func':
        case 'var':
        case 'decl_tag':
          ref[t.type] = 1;
          break;
        case 'array':
          ref[t.type] = 1;
          ref[t.indexType] = 1;
          break;
        case 'struct':
        case 'union':
          for (const m of t.members) ref[m.type] = 1;
          break;
        case 'func_proto':
          ref[t.returnType] = 1;
          for (const p of t.params) ref[p.type] = 1;
          break;
        case 'datasec':
          for (const v of t.vars) ref[v.type] = 1;
          break;
        default:
          break;
      }
    }
  }

  // ---- Pass 1: ordering -------------------------------------------------------------------------

  /**
   * Queues the named definitions `id` depends on, then `id` itself if it is one. `viaPtr` says the
   * path here went through a pointer, so a named struct or union only needs to be declared.
   * Returns whether the path needs complete definitions (true) or declarations suffice (false).
   */
  private orderType(id: TypeId, viaPtr: boolean, depth: number): boolean {
    const state = this.order[id]!;
    if (state === ORDERED) return true;
    if (depth > MAX_DEPTH) this.loop(id, `type chain deeper than ${MAX_DEPTH} (a loop?)`);
    const t = this.type(id);
    if (state === ORDERING) {
      // A named struct that (indirectly) points to itself: a forward declaration breaks the cycle.
      if ((t.kind === 'struct' || t.kind === 'union') && viaPtr && t.name !== '') return false;
      this.loop(id, 'the type contains itself other than through a pointer to a named struct');
    }
    const next = depth + 1;
    switch (t.kind) {
      case 'int':
      case 'float':
        this.order[id] = ORDERED;
        return false;
      case 'ptr': {
        const strong = this.orderType(t.type, true, next);
        // Once seen, a pointer never forces anything again: its target is queued on its own.
        this.order[id] = ORDERED;
        return strong;
      }
      // Arrays, qualifiers and function prototypes are strong or weak depending on the path that
      // reaches them, so they are never marked; loops through them end at MAX_DEPTH.
      case 'array':
        return this.orderType(t.type, false, next);
      case 'volatile':
      case 'const':
      case 'restrict':
      case 'type_tag':
        return this.orderType(t.type, viaPtr, next);
      case 'struct':
      case 'union': {
        // A named struct behind a pointer can be declared; an anonymous one is written inline,
        // so its members are needed whichever way it is reached.
        if (viaPtr && t.name !== '') return false;
        this.order[id] = ORDERING;
        for (const m of t.members) this.orderType(m.type, false, next);
        if (t.name !== '') this.queue.push(id);
        this.order[id] = ORDERED;
        return true;
      }
      case 'enum':
      case 'enum64':
      case 'fwd':
        if (t.name !== '' || this.referenced[id] === 0) this.queue.push(id);
        this.order[id] = ORDERED;
        return true;
      case 'typedef': {
        // Not marked ORDERING: `typedef struct s s_t; struct s { s_t *next; };` re-enters it.
        const strong = this.orderType(t.type, viaPtr, next);
        // Only a pointer to it is needed for now; it is queued when reached otherwise.
        if (viaPtr && !strong) return false;
        this.queue.push(id);
        this.order[id] = ORDERED;
        return true;
      }
      case 'func_proto': {
        let strong = this.orderType(t.returnType, viaPtr, next);
        for (const p of t.params) if (this.orderType(p.type, viaPtr, next)) strong = true;
        return strong;
      }
      default:
        // func, var, datasec, decl_tag: not written.
        this.order[id] = ORDERED;
        return false;
    }
  }

  // ---- Pass 2: emission -------------------------------------------------------------------------

  /**
   * Writes what `id` needs before it can be used inside `containerId` (0: at top level, where
   * queued definitions are written in full).
   */
  private emitType(id: TypeId, containerId: TypeId, depth: number): void {
    const state = this.emitState[id]!;
    if (state === EMITTED) return;
    if (depth > MAX_DEPTH) this.loop(id, `type chain deeper than ${MAX_DEPTH} (a loop?)`);
    const t = this.type(id);
    const next = depth + 1;
    const topLevel = containerId === 0;

    if (state === EMITTING) {
      // Reached again while being written: a pointer cycle. Declare it so the cycle compiles.
      if (this.fwdEmitted[id] === 1) return;
      if (t.kind === 'struct' || t.kind === 'union') {
        if (id === containerId || t.name === '') return;
        this.out.put(`${this.compositeTag(t)};\n\n`);
        this.fwdEmitted[id] = 1;
      } else if (t.kind === 'typedef') {
        this.emitTypedefDef(t.id, t.name, t.type);
        this.fwdEmitted[id] = 1;
      }
      return;
    }

    switch (t.kind) {
      case 'int': {
        const alias = MISSING_BASE_TYPES.get(t.name);
        if (alias !== undefined) this.out.put(`typedef ${alias} ${t.name};\n\n`);
        this.emitState[id] = EMITTED;
        break;
      }
      case 'enum':
      case 'enum64':
        if (topLevel) {
          this.out.put(`${this.enumDef(t, 0)};\n\n`);
          if (t.name !== '') this.defined(id, `enum ${this.tagName(id)}`);
        }
        this.emitState[id] = EMITTED;
        break;
      case 'ptr':
      case 'volatile':
      case 'const':
      case 'restrict':
      case 'type_tag':
      case 'array':
        this.emitType(t.type, containerId, next);
        break;
      case 'fwd':
        this.out.put(`${t.fwdKind} ${t.name};\n\n`);
        this.emitState[id] = EMITTED;
        break;
      case 'typedef':
        this.emitState[id] = EMITTING;
        this.emitType(t.type, id, next);
        // If a pointer cycle already forced the typedef out, it must not be written twice.
        if (this.fwdEmitted[id] === 0) this.emitTypedefDef(id, t.name, t.type);
        this.emitState[id] = EMITTED;
        break;
      case 'struct':
      case 'union':
        this.emitState[id] = EMITTING;
        if (topLevel || t.name === '') {
          // Members are written out here (in full for anonymous inline types), so whatever they
          // name must be declared first. Anonymous types belong to the enclosing definition.
          const inner = t.name === '' ? containerId : id;
          for (const m of t.members) this.emitType(m.type, inner, next);
        } else if (this.fwdEmitted[id] === 0 && id !== containerId) {
          this.out.put(`${this.compositeTag(t)};\n\n`);
          this.fwdEmitted[id] = 1;
        }
        if (topLevel) {
          this.out.put(`${this.compositeDef(t, 0)};\n\n`);
          this.emitState[id] = EMITTED;
          if (t.name !== '') this.defined(id, this.compositeTag(t));
        } else {
          this.emitState[id] = NOT_EMITTED;
        }
        break;
      case 'func_proto':
        this.emitType(t.returnType, containerId, next);
        for (const p of t.params) this.emitType(p.type, containerId, next);
        break;
      default:
        break;
    }
  }

  private emitTypedefDef(id: TypeId, name: string, target: TypeId): void {
    // The compiler provides __builtin_va_list itself; redefining it does not compile. Where the
    // kernel's differs from BPF's (a pointer), declarations spell out the kernel's instead.
    if (name === '__builtin_va_list') return;
    const cName = this.identName(id);
    // Old GCC describes __gnuc_va_list as a typedef of void.
    if (target === 0 && cName === '__gnuc_va_list') {
      this.out.put('typedef __builtin_va_list __gnuc_va_list;\n\n');
    } else {
      this.out.put(`typedef ${this.declaration(target, cName, 0, 0)};\n\n`);
    }
    this.defined(id, cName);
  }

  /** Reports a definition written (not one walked silently for a split BTF's base). */
  private defined(id: TypeId, spelling: string): void {
    if (!this.out.silent) this.onDefinition?.(id, spelling);
  }

  // ---- Names ------------------------------------------------------------------------------------

  /** The C tag of a struct, union or enum: its BTF name, or `name___N` for the Nth of that name. */
  private tagName(id: TypeId): string {
    return this.uniqueName(id, this.tagCounts);
  }

  /** The C name of a typedef, numbered like tags but among typedefs and enumerators. */
  private identName(id: TypeId): string {
    return this.uniqueName(id, this.identCounts);
  }

  private uniqueName(id: TypeId, counts: Map<string, number>): string {
    const cached = this.names[id];
    if (cached !== undefined) return cached;
    const t = this.type(id);
    let name = t.name;
    // A forward declaration or a body-less enum names an existing type rather than a new one.
    const declaresOnly = t.kind === 'fwd' || (t.kind === 'enum' && t.values.length === 0);
    if (name !== '' && !declaresOnly) name = numbered(name, counts);
    this.names[id] = name;
    return name;
  }

  private compositeTag(t: CompositeType): string {
    return t.name === '' ? t.kind : `${t.kind} ${this.tagName(t.id)}`;
  }

  // ---- Definitions ------------------------------------------------------------------------------

  private enumDef(t: EnumType, lvl: number): string {
    let s = t.name === '' ? 'enum' : `enum ${this.tagName(t.id)}`;
    if (t.values.length === 0) return s;
    s += ' {';
    const pad = indent(lvl + 1);
    for (const v of t.values) {
      s += `\n${pad}${numbered(v.name, this.identCounts)} = ${enumLiteral(t, v.value)},`;
    }
    s += `\n${indent(lvl)}}`;
    return s + enumSizeAttribute(t);
  }

  /** A struct or union definition, `lvl` tabs deep, with padding and packing to match the BTF. */
  private compositeDef(t: CompositeType, lvl: number, asAnonymous = false): string {
    const isStruct = t.kind === 'struct';
    const { packed, align } = this.layout(t.id);
    const memberIndent = indent(lvl + 1);
    let s = `${asAnonymous ? t.kind : this.compositeTag(t)} {`;
    let cur = 0; // bits laid out so far (structs)
    let end = 0; // bits the largest member covers (unions)
    for (const m of t.members) {
      const unnamed = m.name === '' ? this.unnamedMember(m) : undefined;
      if (unnamed === 'skip') continue;
      const size = this.sizeOf(m.type);
      if (isStruct) {
        const off = m.bitOffset;
        if (!this.landsNaturally(cur, off, m, packed)) s += this.padding(cur, off, memberIndent, t.id);
        cur = m.bitfieldSize !== 0 ? off + m.bitfieldSize : off + size * 8;
      } else {
        end = Math.max(end, m.bitfieldSize !== 0 ? m.bitfieldSize : size * 8);
      }
      if (unnamed !== undefined && unnamed !== 'inline') {
        // Written as an anonymous copy of the type's body, which C11 flattens the same way.
        s += `\n${memberIndent}${this.compositeDef(unnamed, lvl + 1, true)}`;
      } else {
        s += `\n${memberIndent}${this.declaration(m.type, m.name, lvl + 1, 0)}`;
      }
      if (m.bitfieldSize !== 0) s += `: ${m.bitfieldSize}`;
      s += ';';
    }
    const sizeBits = t.size * 8;
    if (isStruct) {
      // The compiler rounds the size up to the alignment; pad only when that is not enough.
      if (cur < sizeBits && (packed || roundUp(cur, align * 8) !== sizeBits)) {
        s += this.padding(cur, sizeBits, memberIndent, t.id);
      }
    } else if (end < sizeBits && (packed || roundUp(end, align * 8) !== sizeBits)) {
      // A union member always starts at 0: an anonymous struct of unnamed bitfields stretches it.
      s += `\n${memberIndent}struct {${this.padding(0, sizeBits, indent(lvl + 2), t.id)}\n${memberIndent}};`;
    }
    s += t.members.length > 0 || t.size > 0 ? `\n${indent(lvl)}}` : '}';
    if (packed) s += ' __attribute__((packed))';
    return s;
  }

  /**
   * How to write a member without a name. An anonymous struct or union is written inline as usual
   * ('inline'). One of a named type, or of a typedef (`struct base;` inside a struct, which kernels
   * built with -fms-extensions have), would be a mere declaration in standard C and the member
   * would vanish, so its body is copied into an anonymous one (the type returned). Anything else
   * (an unnamed bitfield) only occupies space: it is left to padding ('skip').
   */
  private unnamedMember(m: Member): CompositeType | 'inline' | 'skip' {
    if (m.bitfieldSize !== 0) return 'skip';
    let id = m.type;
    let viaTypedef = false;
    for (let depth = 0; depth <= MAX_DEPTH; depth++) {
      const t = this.type(id);
      if (t.kind === 'struct' || t.kind === 'union') return t.name === '' && !viaTypedef ? 'inline' : t;
      if (t.kind === 'typedef') viaTypedef = true;
      else if (
        t.kind !== 'const' &&
        t.kind !== 'volatile' &&
        t.kind !== 'restrict' &&
        t.kind !== 'type_tag'
      ) {
        return 'skip';
      }
      id = t.type;
    }
    return this.loop(id, `type chain deeper than ${MAX_DEPTH} (a loop?)`);
  }

  /** Whether a member declared right after `cur` bits lands on `off` without explicit padding. */
  private landsNaturally(cur: number, off: number, m: Member, packed: boolean): boolean {
    if (cur === off) return true;
    if (cur > off || packed || m.bitfieldSize !== 0) return false;
    return roundUp(cur, this.alignOf(m.type) * 8) === off;
  }

  /**
   * Unnamed bitfields covering bits [from, to). Each one stays within one naturally aligned unit
   * of its own type, so it is placed exactly where it starts in packed and unpacked records alike
   * (and, being unnamed, does not change the record's alignment).
   */
  private padding(from: number, to: number, pad: string, id: TypeId): string {
    if (to - from > MAX_PADDING_BITS) {
      throw new NotSupportedError(
        'c-padding',
        `type [${id}] needs ${Math.ceil((to - from) / 8)} bytes of padding, too large to write as unnamed bitfields`,
      );
    }
    const longName = this.ptrSize === 8 ? 'long' : 'long long';
    let s = '';
    let cur = from;
    while (cur < to) {
      const chunk = Math.min(to - cur, 64 - (cur % 64));
      let unit = 8;
      while (Math.floor(cur / unit) !== Math.floor((cur + chunk - 1) / unit)) unit *= 2;
      const typeName = unit === 8 ? 'char' : unit === 16 ? 'short' : unit === 32 ? 'int' : longName;
      s += `\n${pad}${typeName}: ${chunk};`;
      cur += chunk;
    }
    return s;
  }

  // ---- Layout -----------------------------------------------------------------------------------

  /** Size in bytes of a type as a member (btf__resolve_size; 0 for what has no size). */
  private sizeOf(id: TypeId): number {
    return resolveSize(this.btf, id, { pointerSize: this.ptrSize }) ?? 0;
  }

  /** Alignment in bytes clang gives the C we write for `id` (BPF target: 64-bit, `long` = 8). */
  private alignOf(id: TypeId): number {
    for (let depth = 0; depth <= MAX_DEPTH; depth++) {
      const t = this.type(id);
      switch (t.kind) {
        case 'int':
        case 'float':
        case 'enum':
        case 'enum64':
          // Integer, enum and floating types are aligned to their size (__int128 to 16).
          return naturalAlign(t.size);
        case 'ptr':
          return this.ptrSize;
        case 'struct':
        case 'union':
          return this.layout(id).align;
        case 'array':
        case 'typedef':
        case 'volatile':
        case 'const':
        case 'restrict':
        case 'type_tag':
          id = t.type;
          break;
        default:
          return 1;
      }
    }
    return this.loop(id, `type chain deeper than ${MAX_DEPTH} (a loop?)`);
  }

  /**
   * Whether a struct or union must be written packed, and the alignment its definition then has.
   * Natural layout reproduces the BTF when every non-bitfield member sits at a multiple of its
   * alignment, no bitfield straddles a unit of its type (the compiler would move it to the next
   * one), and the size is a multiple of the largest alignment; otherwise packing (alignment 1)
   * plus explicit padding reproduces any layout.
   */
  private layout(id: TypeId): Layout {
    const known = this.layouts[id];
    if (known !== undefined) {
      if (known === null) this.loop(id, 'struct or union contains itself');
      return known;
    }
    this.layouts[id] = null;
    const t = this.type(id) as CompositeType;
    let maxAlign = 1;
    let packed = false;
    for (const m of t.members) {
      if (m.name === '' && this.unnamedMember(m) === 'skip') continue;
      const a = this.alignOf(m.type);
      maxAlign = Math.max(maxAlign, a);
      const unit = a * 8;
      if (m.bitfieldSize === 0) {
        if (m.bitOffset % unit !== 0) packed = true;
      } else if (Math.floor(m.bitOffset / unit) !== Math.floor((m.bitOffset + m.bitfieldSize - 1) / unit)) {
        packed = true;
      }
    }
    if (t.size % maxAlign !== 0) packed = true;
    const result: Layout = { packed, align: packed ? 1 : maxAlign };
    this.layouts[id] = result;
    return result;
  }

  // ---- Declarations -----------------------------------------------------------------------------

  /**
   * `type declarator` in C syntax: `declarator` is what has been built so far around the name
   * (`*name`, `name[4]`, `(*name)(int)`), working from the outermost BTF type inwards, the way C
   * reads declarations from the name outwards. Qualifiers of a pointer go after its `*`, those of
   * anything else before the type name.
   */
  private declaration(id: TypeId, declarator: string, lvl: number, depth: number): string {
    if (depth > MAX_DEPTH) this.loop(id, `type chain deeper than ${MAX_DEPTH} (a loop?)`);
    const next = depth + 1;
    const t = this.type(id);
    switch (t.kind) {
      case 'void':
        return withDeclarator('void', declarator);
      case 'int':
      case 'float':
        return withDeclarator(t.name === '' ? anonymousIntName(t.size) : t.name, declarator);
      case 'struct':
      case 'union':
        return withDeclarator(t.name === '' ? this.compositeDef(t, lvl) : this.compositeTag(t), declarator);
      case 'enum':
      case 'enum64':
        return withDeclarator(t.name === '' ? this.enumDef(t, lvl) : `enum ${this.tagName(id)}`, declarator);
      case 'fwd':
        return withDeclarator(`${t.fwdKind} ${t.name}`, declarator);
      case 'typedef':
        if (t.name === '__builtin_va_list' && !this.isBuiltinVaList(t.type)) {
          // Written as what it is in the kernel's ABI, so that structs holding a va_list keep their size.
          return this.declaration(t.type, declarator, lvl, next);
        }
        return withDeclarator(this.identName(id), declarator);
      case 'ptr': {
        const inner = `*${declarator}`;
        // A pointer to an array or function binds tighter than [] and () do: parenthesize.
        const target = this.skipQualifiers(t.type, next);
        const targetKind = this.btf.kindNumber(target);
        const wrapped = targetKind === KIND.ARRAY || targetKind === KIND.FUNC_PROTO ? `(${inner})` : inner;
        return this.declaration(t.type, wrapped, lvl, next);
      }
      case 'volatile':
      case 'const':
      case 'restrict':
      case 'type_tag': {
        const qualifier =
          t.kind === 'type_tag'
            ? t.kindFlag
              ? `__attribute__((${t.name}))`
              : `__attribute__((btf_type_tag("${t.name}")))`
            : t.kind;
        const targetKind = this.btf.kindNumber(this.skipQualifiers(t.type, next));
        // Qualifiers on arrays and functions are GCC artefacts with no C spelling: dropped.
        if (targetKind === KIND.ARRAY || targetKind === KIND.FUNC_PROTO) {
          return this.declaration(t.type, declarator, lvl, next);
        }
        if (targetKind === KIND.PTR) {
          // After the `*`, spaced as libbpf writes it: `char * const p`.
          return this.declaration(t.type, ` ${qualifier}${spaced(declarator)}`, lvl, next);
        }
        // Before a plain type: `const int x`; a type tag goes after it, where clang applies it
        // to that type rather than to the declaration.
        if (t.kind === 'type_tag') {
          const base = this.declaration(t.type, '', lvl, next);
          return withDeclarator(`${base} ${qualifier}`, declarator);
        }
        // libbpf writes a type's qualifiers innermost first (`volatile const int` for const →
        // volatile → int): this one goes after those of the type it qualifies.
        const inner = this.declaration(t.type, declarator, lvl, next);
        const lead = /^(?:(?:const|volatile|restrict) )*/.exec(inner)![0];
        return `${lead}${qualifier} ${inner.slice(lead.length)}`;
      }
      case 'array':
        return this.declaration(t.type, `${declarator}[${t.nelems}]`, lvl, next);
      case 'func_proto': {
        const inner = `${declarator}(${this.params(t, lvl, next)})`;
        // libbpf puts a space before a function pointer's parenthesis, also after a returned
        // pointer's `*`: `struct rq * (*find)(…)`.
        return this.declaration(t.returnType, declarator.startsWith('(') ? ` ${inner}` : inner, lvl, next);
      }
      default:
        throw new ParseError('btf', `a ${t.kind} cannot be part of a C type`, { typeId: id });
    }
  }

  private params(t: FuncProtoType, lvl: number, depth: number): string {
    const ps = t.params;
    // clang writes `f(void)` as a single void parameter.
    if (ps.length === 0 || (ps.length === 1 && ps[0]!.type === 0)) return 'void';
    const parts: string[] = [];
    for (let i = 0; i < ps.length; i++) {
      const p = ps[i]!;
      // A trailing void parameter marks a variadic function.
      if (p.type === 0 && i === ps.length - 1) parts.push('...');
      else parts.push(this.declaration(p.type, p.name, lvl, depth));
    }
    return parts.join(', ');
  }

  /**
   * Whether the kernel's __builtin_va_list (a typedef of `target`) is laid out like BPF's own, a
   * pointer. x86-64's is `struct __va_list_tag [1]` (24 bytes), arm64's a 32-byte struct.
   */
  private isBuiltinVaList(target: TypeId): boolean {
    for (let i = 0; i <= MAX_DEPTH; i++) {
      const t = this.type(target);
      if (t.kind === 'ptr' || t.kind === 'void') return true;
      if (t.kind !== 'typedef' && t.kind !== 'const' && t.kind !== 'volatile') return false;
      target = t.type;
    }
    return this.loop(target, `type chain deeper than ${MAX_DEPTH} (a loop?)`);
  }

  /** Follows const/volatile/restrict/type_tag to the type they qualify. */
  private skipQualifiers(id: TypeId, depth: number): TypeId {
    for (let i = 0; i <= MAX_DEPTH; i++) {
      const k = this.btf.kindNumber(id);
      if (k !== KIND.CONST && k !== KIND.VOLATILE && k !== KIND.RESTRICT && k !== KIND.TYPE_TAG) return id;
      id = (this.type(id) as { type: TypeId }).type;
    }
    return this.loop(id, `qualifier chain longer than ${MAX_DEPTH} (at depth ${depth}; a loop?)`);
  }
}

function withDeclarator(base: string, declarator: string): string {
  return `${base}${spaced(declarator)}`;
}

/** A declarator as it follows what comes before it: after one space (some already start with it). */
function spaced(declarator: string): string {
  return declarator === '' || declarator.startsWith(' ') ? declarator : ` ${declarator}`;
}

/** `name`, or `name___N` when this is the Nth (N > 1) occurrence of the name. */
function numbered(name: string, counts: Map<string, number>): string {
  const n = (counts.get(name) ?? 0) + 1;
  counts.set(name, n);
  return n > 1 ? `${name}___${n}` : name;
}

const INDENTS = Array.from({ length: 16 }, (_, i) => '\t'.repeat(i));

function indent(lvl: number): string {
  return INDENTS[lvl] ?? '\t'.repeat(lvl);
}

function roundUp(x: number, to: number): number {
  return Math.ceil(x / to) * to;
}

function naturalAlign(size: number): number {
  // 1, 2, 4, 8, 16 as themselves; anything odd (malformed) to the largest power of two dividing it.
  if (size <= 0) return 1;
  let a = 1;
  while (a < 16 && size % (a * 2) === 0) a *= 2;
  return a;
}

function anonymousIntName(size: number): string {
  switch (size) {
    case 1:
      return 'unsigned char';
    case 2:
      return 'unsigned short';
    case 4:
      return 'unsigned int';
    case 8:
      return 'unsigned long long';
    default:
      return 'unsigned __int128';
  }
}

const INT64_MIN = -(1n << 63n);

function enumLiteral(t: EnumType, value: bigint): string {
  if (t.kind === 'enum') return value.toString();
  // The most negative 64-bit value has no literal: its magnitude overflows `long long`.
  if (value === INT64_MIN) return '(-9223372036854775807LL - 1)';
  return t.signed ? `${value}LL` : `${value}ULL`;
}

/**
 * C gives an enum the size of the first of int, unsigned int, long that holds all its values;
 * a mode attribute forces any other size the BTF records.
 */
function enumSizeAttribute(t: EnumType): string {
  let fitsInt = true;
  for (const v of t.values) {
    if (v.value < -(1n << 31n) || v.value >= 1n << 32n) fitsInt = false;
  }
  const natural = fitsInt ? 4 : 8;
  if (t.size === natural) return '';
  switch (t.size) {
    case 1:
      return ' __attribute__((mode(byte)))';
    case 2:
      return ' __attribute__((mode(HI)))';
    case 4:
      return ' __attribute__((mode(SI)))';
    case 8:
      return ' __attribute__((mode(word)))';
    default:
      return '';
  }
}
