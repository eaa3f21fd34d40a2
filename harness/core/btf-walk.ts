import type { Btf } from '../btf/btf.js';
import {
  resolveSize as btfResolveSize,
  skipModsAndTypedefs as btfSkipModsAndTypedefs,
  SizeOverflowError,
} from '../btf/resolve.js';
import type { BtfType, TypeId } from '../btf/types.js';
import { isParseError } from '../errors.js';
import { CoreFailure, E2BIG, EINVAL } from './errno.js';

/**
 * The BTF walks of harness/btf/resolve.ts with the answers libbpf's CO-RE code gets from them:
 * where libbpf sees a negative errno, these throw CoreFailure with it (EINVAL for a type without
 * size or a looping chain, E2BIG for a size beyond 32 bits).
 */

/** skip_mods_and_typedefs: the first type past modifiers and typedefs, with its id. */
export function skipModsAndTypedefs(btf: Btf, id: TypeId): { type: BtfType; id: TypeId } {
  typeOrFail(btf, id);
  // Called for nearly every step of every relocation: no closure per call (asCoreFailure).
  let skipped: TypeId;
  try {
    skipped = btfSkipModsAndTypedefs(btf, id);
  } catch (e) {
    throw coreFailureOf(e);
  }
  return { type: typeOrFail(btf, skipped), id: skipped };
}

export function typeOrFail(btf: Btf, id: TypeId): BtfType {
  if (!btf.has(id)) throw new CoreFailure(EINVAL, `type id [${id}] out of range`);
  // Called for every type the engine looks at: no closure per call, unlike asCoreFailure.
  try {
    return btf.type(id);
  } catch (e) {
    throw coreFailureOf(e);
  }
}

/** btf__resolve_size. */
export function resolveSize(btf: Btf, id: TypeId): number {
  typeOrFail(btf, id);
  const size = asCoreFailure(() => btfResolveSize(btf, id));
  if (size === undefined) throw new CoreFailure(EINVAL, `type [${id}] (${btf.kind(id)}) has no size`);
  return size;
}

function asCoreFailure<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw coreFailureOf(e);
  }
}

/** What libbpf's errno is for an error of the BTF walks (anything else is rethrown as it is). */
function coreFailureOf(e: unknown): unknown {
  if (e instanceof SizeOverflowError) return new CoreFailure(E2BIG, e.message);
  if (isParseError(e)) return new CoreFailure(EINVAL, e.message);
  return e;
}
