import type { Btf } from '../btf/btf.js';
import type { BtfType, TypeId } from '../btf/types.js';
import { MAX_RESOLVE_DEPTH } from '../btf/wire.js';
import { CoreFailure, E2BIG, EINVAL } from './errno.js';

/**
 * The BTF walks CO-RE needs, with libbpf's exact semantics (skip_mods_and_typedefs,
 * btf__resolve_size in libbpf's btf.c). They return libbpf's answers, including its errors, as
 * CoreFailure. Where libbpf would loop forever on a cyclic modifier chain (it trusts the BTF), these
 * stop after a bounded walk and fail with EINVAL instead.
 */

const MAX_MOD_CHAIN = 1 << 16;

/** Follows const/volatile/restrict/type_tag and typedefs; returns the first other type and its id. */
export function skipModsAndTypedefs(btf: Btf, id: TypeId): { type: BtfType; id: TypeId } {
  let t = typeOrFail(btf, id);
  for (let n = 0; ; n++) {
    switch (t.kind) {
      case 'volatile':
      case 'const':
      case 'restrict':
      case 'type_tag':
      case 'typedef':
        if (n === MAX_MOD_CHAIN) throw new CoreFailure(EINVAL, `loop in the modifier chain of [${id}]`);
        id = t.type;
        t = typeOrFail(btf, id);
        break;
      default:
        return { type: t, id };
    }
  }
}

export function typeOrFail(btf: Btf, id: TypeId): BtfType {
  if (!btf.has(id)) throw new CoreFailure(EINVAL, `type id [${id}] out of range`);
  return btf.type(id);
}

const U32_MAX = 0xffffffff;

/** btf__resolve_size: the byte size of a type, through modifiers, typedefs, vars and arrays. */
export function resolveSize(btf: Btf, id: TypeId): number {
  let nelems = 1;
  let size = -1;
  let t = typeOrFail(btf, id);
  for (let i = 0; i < MAX_RESOLVE_DEPTH && t.kind !== 'void'; i++) {
    switch (t.kind) {
      case 'int':
      case 'struct':
      case 'union':
      case 'enum':
      case 'enum64':
      case 'datasec':
      case 'float':
        size = t.size;
        break;
      case 'ptr':
        size = pointerSize(btf);
        break;
      case 'typedef':
      case 'volatile':
      case 'const':
      case 'restrict':
      case 'type_tag':
      case 'var':
      case 'decl_tag':
        t = typeOrFail(btf, t.type);
        continue;
      case 'array':
        if (nelems !== 0 && t.nelems > Math.floor(U32_MAX / nelems)) {
          throw new CoreFailure(E2BIG, `array [${t.id}] is too large`);
        }
        nelems *= t.nelems;
        t = typeOrFail(btf, t.type);
        continue;
      default:
        throw new CoreFailure(EINVAL, `type [${t.id}] (${t.kind}) has no size`);
    }
    break;
  }
  if (size < 0) throw new CoreFailure(EINVAL, `cannot resolve the size of [${id}]`);
  if (nelems !== 0 && size > Math.floor(U32_MAX / nelems)) {
    throw new CoreFailure(E2BIG, `size of [${id}] overflows 32 bits`);
  }
  return nelems * size;
}

const pointerSizes = new WeakMap<Btf, number>();

/**
 * libbpf's determine_ptr_size: the size of `long` in this BTF (a pointer has the same size in the
 * kernel ABIs BPF targets), else 8 (the size on the 64-bit hosts corematrix runs on).
 */
export function pointerSize(btf: Btf): number {
  let size = pointerSizes.get(btf);
  if (size !== undefined) return size;
  size = 8;
  for (const name of LONG_NAMES) {
    const id = btf.findByNameKind(name, 'int');
    if (id === undefined) continue;
    const t = btf.type(id);
    if (t.kind === 'int' && (t.size === 4 || t.size === 8)) {
      size = t.size;
      break;
    }
  }
  pointerSizes.set(btf, size);
  return size;
}

// libbpf's long_aliases: every spelling of `long` a compiler may have recorded.
const LONG_NAMES = [
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
];
