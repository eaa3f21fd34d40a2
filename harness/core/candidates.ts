import type { Btf } from '../btf/btf.js';
import type { TypeId } from '../btf/types.js';
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

const essentialIndexes = new WeakMap<Btf, Map<string, TypeId[]>>();

/** Own types of a BTF grouped by essential name, in id order (the order libbpf's scan finds them). */
function essentialIndex(btf: Btf): Map<string, TypeId[]> {
  let index = essentialIndexes.get(btf);
  if (index !== undefined) return index;
  index = new Map();
  for (let id = btf.firstId; id < btf.typeCount; id++) {
    const name = btf.name(id);
    if (name === '') continue;
    const key = essentialName(name);
    const ids = index.get(key);
    if (ids === undefined) index.set(key, [id]);
    else ids.push(id);
  }
  essentialIndexes.set(btf, index);
  return index;
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
  const add = (btf: Btf, btfName: string) => {
    for (const id of essentialIndex(btf).get(key) ?? []) {
      if (kindsCoreCompatible(btf.type(id), local)) found.push({ btf, id, btfName });
    }
  };
  add(targets.vmlinux, 'vmlinux');
  if (found.length > 0 || targets.vmlinuxOverride) return found;
  for (const mod of targets.modules) add(mod.btf, mod.name);
  return found;
}
