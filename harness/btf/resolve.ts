/**
 * Following chains of type references: sizes, modifiers, typedefs. BTF that passed Btf.parse can
 * still loop (a typedef of itself, an array of itself), and the kernel's own verifier is the only
 * one that rejects that, so every walk here is bounded and reports a loop as a ParseError naming
 * the type id it started from.
 */
import { ParseError } from '../errors.js';
import type { Btf } from './btf.js';
import type { TypeId } from './types.js';
import { KIND, MAX_RESOLVE_DEPTH } from './wire.js';

export interface ResolveSizeOptions {
  /** Bytes in a pointer; by default what the BTF's `long` says, as libbpf's btf__pointer_size guesses. */
  pointerSize?: number;
}

/**
 * btf__resolve_size: the size in bytes of a type, through typedefs, modifiers, VARs, DECL_TAGs and
 * arrays (multiplying element counts). Undefined for what has no size: void, FWD, FUNC and
 * FUNC_PROTO. A chain longer than MAX_RESOLVE_DEPTH is a loop (libbpf gives up there too); a size
 * that does not fit in 32 bits is an error, as in libbpf (E2BIG).
 */
export function resolveSize(btf: Btf, id: TypeId, options: ResolveSizeOptions = {}): number | undefined {
  let nelems = 1;
  let current = id;
  for (let depth = 0; depth < MAX_RESOLVE_DEPTH; depth++) {
    const t = btf.type(current);
    switch (t.kind) {
      case 'void':
      case 'fwd':
      case 'func':
      case 'func_proto':
        return undefined;
      case 'int':
      case 'struct':
      case 'union':
      case 'enum':
      case 'enum64':
      case 'datasec':
      case 'float':
        return total(id, nelems, t.size);
      case 'ptr':
        return total(id, nelems, options.pointerSize ?? pointerSize(btf));
      case 'typedef':
      case 'volatile':
      case 'const':
      case 'restrict':
      case 'type_tag':
      case 'var':
      case 'decl_tag':
        current = t.type;
        break;
      case 'array':
        nelems *= t.nelems;
        if (nelems > 0xffffffff) throw tooBig(id);
        current = t.type;
        break;
    }
  }
  throw loop(id);
}

/** libbpf's skip_mods_and_typedefs: the id past any CONST/VOLATILE/RESTRICT/TYPE_TAG/TYPEDEF. */
export function skipModsAndTypedefs(btf: Btf, id: TypeId): TypeId {
  // libbpf walks without a limit; a real chain is short, so ids are only remembered (to tell a
  // loop from a long chain) once it gets longer than libbpf's other walks allow.
  let seen: Set<TypeId> | undefined;
  let current = id;
  for (let steps = 0; ; steps++) {
    const kind = btf.kindNumber(current);
    if (!isModOrTypedef(kind)) return current;
    if (steps >= MAX_RESOLVE_DEPTH) {
      seen ??= new Set();
      if (seen.has(current)) throw loop(id);
      seen.add(current);
    }
    current = refOf(btf, current);
  }
}

/**
 * btf__resolve_type: the id past modifiers, typedefs and VARs, at most MAX_RESOLVE_DEPTH of them.
 * Undefined when the chain ends in void or a FWD (libbpf: EINVAL).
 */
export function resolveType(btf: Btf, id: TypeId): TypeId | undefined {
  let current = id;
  for (let depth = 0; depth < MAX_RESOLVE_DEPTH; depth++) {
    const kind = btf.kindNumber(current);
    if (kind === KIND.UNKN || kind === KIND.FWD) return undefined;
    if (!isModOrTypedef(kind) && kind !== KIND.VAR) return current;
    current = refOf(btf, current);
  }
  throw loop(id);
}

const pointerSizes = new WeakMap<Btf, number>();

/**
 * libbpf's determine_ptr_size: the size of the first INT (by id) named like `long` that is 4 or 8
 * bytes, else 8 (libbpf falls back to its own pointer size; corematrix runs on 64-bit hosts).
 */
export function pointerSize(btf: Btf): number {
  let size = pointerSizes.get(btf);
  if (size !== undefined) return size;
  size = 8;
  for (let id = 1; id < btf.typeCount; id++) {
    if (btf.kindNumber(id) !== KIND.INT) continue;
    const t = btf.type(id);
    if (t.kind === 'int' && (t.size === 4 || t.size === 8) && LONG_NAMES.has(t.name)) {
      size = t.size;
      break;
    }
  }
  pointerSizes.set(btf, size);
  return size;
}

/** The spellings of `long` libbpf recognizes. */
const LONG_NAMES = new Set([
  'long',
  'long int',
  'int long',
  'unsigned long',
  'long unsigned',
  'unsigned long int',
  'unsigned int long',
  'long unsigned int',
  'long int unsigned',
  'int unsigned long',
  'int long unsigned',
]);

function isModOrTypedef(kind: number): boolean {
  return (
    kind === KIND.TYPEDEF ||
    kind === KIND.CONST ||
    kind === KIND.VOLATILE ||
    kind === KIND.RESTRICT ||
    kind === KIND.TYPE_TAG
  );
}

/** The type a TYPEDEF, modifier or VAR refers to. */
function refOf(btf: Btf, id: TypeId): TypeId {
  const t = btf.type(id);
  return 'type' in t ? t.type : 0;
}

function total(id: TypeId, nelems: number, size: number): number {
  const bytes = nelems * size;
  if (bytes > 0xffffffff) throw tooBig(id);
  return bytes;
}

function loop(id: TypeId): ParseError {
  return new ParseError('btf', `loop in type chain (more than ${MAX_RESOLVE_DEPTH} steps)`, { typeId: id });
}

/** A size that does not fit in 32 bits (libbpf's E2BIG), told apart from other malformed chains. */
export class SizeOverflowError extends ParseError {
  constructor(id: TypeId) {
    super('btf', 'size does not fit in 32 bits', { typeId: id });
    this.name = 'SizeOverflowError';
  }
}

function tooBig(id: TypeId): ParseError {
  return new SizeOverflowError(id);
}
