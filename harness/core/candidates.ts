import type { Btf } from '../btf/btf.js';
import type { TypeId } from '../btf/types.js';
import { KIND } from '../btf/wire.js';
import { typeOrFail } from './btf-walk.js';
import type { Candidate } from './calc.js';
import { kindsCoreCompatible } from './compat.js';
import { CoreFailure, EINVAL } from './errno.js';
import { essentialName } from './names.js';

/**
 * The kernel types relocations are resolved against: vmlinux's BTF and, when the kernel has them,
 * its modules' split BTFs.
 */
export interface TargetBtfs {
  vmlinux: Btf;
  modules: readonly { name: string; btf: Btf }[];
  /**
   * True when vmlinux was given explicitly (libbpf's btf_custom_path): libbpf then never looks at
   * module BTFs, even when vmlinux has no candidate.
   */
  vmlinuxOverride: boolean;
}

/**
 * Own types of a BTF whose essential name is `key`, in id order (the order libbpf's linear scan
 * finds them): types named `key` itself (unless that name has a flavor of its own) and types named
 * by a flavor of it.
 */
function typesWithEssentialName(btf: Btf, key: string, kinds: number): TypeId[] {
  const ids: TypeId[] = [];
  const own = (id: TypeId) => id >= btf.firstId;
  if (essentialName(key) === key)
    for (const id of btf.findByNameInKinds(key, kinds)) if (own(id)) ids.push(id);
  for (const id of btf.idsWithFlavoredNames(kinds)) if (essentialName(btf.name(id)) === key) ids.push(id);
  return ids.sort((a, b) => a - b);
}

/** The kinds (a mask of `1 << BTF_KIND_*`) CO-RE compatible with a local type's (kindsCoreCompatible). */
function compatibleKinds(localBtf: Btf, localId: TypeId): number {
  const kind = localBtf.kindNumber(localId);
  return kind === KIND.ENUM || kind === KIND.ENUM64 ? (1 << KIND.ENUM) | (1 << KIND.ENUM64) : 1 << kind;
}

/**
 * bpf_core_find_cands: target types whose essential name equals the local root type's and whose
 * kind is CO-RE compatible (equal, or enum/enum64), looking at vmlinux first and at modules only if
 * vmlinux has none. The local root is not stripped of typedefs: a local typedef finds target
 * typedefs. An anonymous local root cannot be searched for (EINVAL).
 */
export function findCandidates(localBtf: Btf, localId: TypeId, targets: TargetBtfs): Candidate[] {
  const local = typeOrFail(localBtf, localId);
  if (local.name === '') throw new CoreFailure(EINVAL, 'anonymous type has no candidates');
  const key = essentialName(local.name);
  const found: Candidate[] = [];
  // Only types of a compatible kind can be candidates: the search looks at no other.
  const kinds = compatibleKinds(localBtf, localId);
  const add = (btf: Btf, btfName: string) => {
    for (const id of typesWithEssentialName(btf, key, kinds)) {
      if (kindsCoreCompatible(btf.type(id), local)) found.push({ btf, id, btfName });
    }
  };
  add(targets.vmlinux, 'vmlinux');
  if (found.length > 0 || targets.vmlinuxOverride) return found;
  for (const mod of targets.modules) add(mod.btf, mod.name);
  return found;
}
