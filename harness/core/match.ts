import type { Btf } from '../btf/btf.js';
import type { TypeId } from '../btf/types.js';
import { resolveSize, skipModsAndTypedefs, typeOrFail } from './btf-walk.js';
import { fieldsAreCompatible, typesAreCompatible, typesMatch } from './compat.js';
import { CoreFailure, E2BIG, EINVAL } from './errno.js';
import { isEnumvalBased, isFieldBased, isTypeBased, RELO_KIND } from './kinds.js';
import { hasEssentialNameOf } from './names.js';
import { type Accessor, CORE_SPEC_MAX_LEN, type CoreSpec, emptySpec, isFlexArray } from './spec.js';

/**
 * bpf_core_spec_match: tries to match a local spec against one candidate target type. Returns the
 * target spec (with its own raw spec and bit offset) when the candidate matches, undefined when it
 * does not, and throws CoreFailure where libbpf returns an error.
 */
export function matchSpec(local: CoreSpec, targBtf: Btf, targRootId: TypeId): CoreSpec | undefined {
  const targ = emptySpec(targBtf, targRootId, local.reloKind);

  if (isTypeBased(local.reloKind)) {
    const ok =
      local.reloKind === RELO_KIND.TYPE_MATCHES
        ? typesMatch(local.btf, local.rootTypeId, targBtf, targRootId)
        : typesAreCompatible(local.btf, local.rootTypeId, targBtf, targRootId);
    return ok ? targ : undefined;
  }

  const first = local.spec[0]!;
  if (isEnumvalBased(local.reloKind)) {
    const t = skipModsAndTypedefs(targBtf, targRootId);
    if (t.type.kind !== 'enum' && t.type.kind !== 'enum64') return undefined;
    const matches = hasEssentialNameOf(first.name!);
    const idx = t.type.values.findIndex((v) => matches(v.name));
    if (idx < 0) return undefined;
    targ.spec.push({ typeId: t.id, idx, name: t.type.values[idx]!.name });
    targ.rawSpec.push(idx);
    return targ;
  }
  if (!isFieldBased(local.reloKind))
    throw new CoreFailure(EINVAL, `unknown relocation kind ${local.reloKind}`);

  let targId = targRootId;
  for (let i = 0; i < local.spec.length; i++) {
    const localAcc = local.spec[i]!;
    const t = skipModsAndTypedefs(targBtf, targId);
    targId = t.id;
    if (localAcc.name !== undefined) {
      const next = matchMember(local.btf, localAcc, targBtf, targId, targ);
      if (next === undefined) return undefined;
      targId = next;
      continue;
    }
    // An array index. For i = 0 the root itself is the "element" (a pointer indexed as an array).
    if (i > 0) {
      if (t.type.kind !== 'array') return undefined;
      const parent = targ.spec[targ.spec.length - 1]!;
      if (!isFlexArray(targBtf, parent, t.type.nelems) && localAcc.idx >= t.type.nelems) return undefined;
      targId = skipModsAndTypedefs(targBtf, t.type.type).id;
    }
    if (targ.rawSpec.length === CORE_SPEC_MAX_LEN) throw new CoreFailure(E2BIG, 'target spec too deep');
    targ.spec.push({ typeId: targId, idx: localAcc.idx, name: undefined });
    targ.rawSpec.push(localAcc.idx);
    targ.bitOffset += localAcc.idx * resolveSize(targBtf, targId) * 8;
  }
  return targ;
}

/**
 * bpf_core_match_member: finds the target member with the local accessor's name, searching
 * anonymous structs/unions depth-first in member order, extending the target spec as it goes.
 * Returns the member's type id, or undefined when there is no compatible match.
 *
 * The first member with the name decides. Mirrored exactly, including one libbpf quirk: when that
 * member is found inside an anonymous struct/union and is not field-compatible, libbpf's search
 * returns "not found" to the enclosing level without undoing the inner level's speculative raw-spec
 * entry and bit offset, and the enclosing level goes on searching with that state (its undo step pops
 * the inner entry and subtracts its own member's offset). Reproducing this keeps offsets and specs
 * identical to libbpf's even in that corner.
 */
function matchMember(
  localBtf: Btf,
  localAcc: Accessor,
  targBtf: Btf,
  targId: TypeId,
  targ: CoreSpec,
): TypeId | undefined {
  const out = { next: 0 };
  return searchMember(localBtf, localAcc, targBtf, targId, targ, out) ? out.next : undefined;
}

function searchMember(
  localBtf: Btf,
  localAcc: Accessor,
  targBtf: Btf,
  targId: TypeId,
  targ: CoreSpec,
  out: { next: TypeId },
): boolean {
  const tt = skipModsAndTypedefs(targBtf, targId);
  targId = tt.id;
  const t = tt.type;
  if (t.kind !== 'struct' && t.kind !== 'union') return false;

  const localStruct = typeOrFail(localBtf, localAcc.typeId);
  if (localStruct.kind !== 'struct' && localStruct.kind !== 'union') {
    throw new CoreFailure(EINVAL, `local accessor type [${localAcc.typeId}] is not a struct or union`);
  }
  const localName = localStruct.members[localAcc.idx]!.name;
  const localType = localStruct.members[localAcc.idx]!.type;
  for (let i = 0; i < t.members.length; i++) {
    const m = t.members[i]!;
    if (targ.rawSpec.length === CORE_SPEC_MAX_LEN) throw new CoreFailure(E2BIG, 'target spec too deep');
    // Speculate that this member is the one; undone below if it is not.
    targ.bitOffset += m.bitOffset;
    targ.rawSpec.push(i);
    if (m.name === '') {
      if (searchMember(localBtf, localAcc, targBtf, m.type, targ, out)) return true;
    } else if (m.name === localName) {
      targ.spec.push({ typeId: targId, idx: i, name: m.name });
      out.next = m.type;
      if (fieldsAreCompatible(localBtf, localType, targBtf, m.type)) return true;
      targ.spec.pop();
      return false;
    }
    targ.bitOffset -= m.bitOffset;
    targ.rawSpec.pop();
  }
  return false;
}
