import type { Btf } from '../btf/btf.js';
import type { BtfType, TypeId } from '../btf/types.js';
import { skipModsAndTypedefs, typeOrFail } from './btf-walk.js';
import { CoreFailure, EINVAL } from './errno.js';
import { essentialNamesEqual } from './names.js';

/**
 * The three type-compatibility relations of libbpf's CO-RE (relo_core.c). Each returns true/false
 * where libbpf returns 1/0, and throws CoreFailure where it returns a negative errno.
 */

function isAnyEnum(t: BtfType): boolean {
  return t.kind === 'enum' || t.kind === 'enum64';
}

/** btf_kind_core_compat: same kind, or both enums of either width. */
export function kindsCoreCompatible(a: BtfType, b: BtfType): boolean {
  return a.kind === b.kind || (isAnyEnum(a) && isAnyEnum(b));
}

const MAX_DEPTH = 32;

/**
 * __bpf_core_types_are_compat: used by TYPE_EXISTS, TYPE_SIZE and TYPE_ID_TARGET (and ksym
 * matching). Root names were already matched by the candidate search; below the root only the
 * shape counts: any two structs/unions/enums/fwds are compatible, ints unless they use the legacy
 * bit offset, pointers and arrays recurse, function prototypes compare arity, arguments and return
 * type. `level` bounds the recursion through function arguments.
 */
export function typesAreCompatible(
  localBtf: Btf,
  localId: TypeId,
  targBtf: Btf,
  targId: TypeId,
  level = MAX_DEPTH,
): boolean {
  if (!kindsCoreCompatible(typeOrFail(localBtf, localId), typeOrFail(targBtf, targId))) return false;
  for (let depth = MAX_DEPTH - 1; ; depth--) {
    if (depth < 0) throw new CoreFailure(EINVAL, 'type compatibility check too deep');
    const local = skipModsAndTypedefs(localBtf, localId);
    const targ = skipModsAndTypedefs(targBtf, targId);
    localId = local.id;
    targId = targ.id;
    const lt = local.type;
    const tt = targ.type;
    if (!kindsCoreCompatible(lt, tt)) return false;
    switch (lt.kind) {
      case 'void':
      case 'struct':
      case 'union':
      case 'enum':
      case 'enum64':
      case 'fwd':
        return true;
      case 'int':
        // Only the deprecated bitfield-like ints (non-zero BTF_INT_OFFSET) are refused.
        return lt.bitsOffset === 0 && tt.kind === 'int' && tt.bitsOffset === 0;
      case 'ptr':
        localId = lt.type;
        targId = (tt as typeof lt).type;
        continue;
      case 'array':
        localId = lt.type;
        targId = (tt as typeof lt).type;
        continue;
      case 'func_proto': {
        const tp = tt as typeof lt;
        if (lt.params.length !== tp.params.length) return false;
        for (let i = 0; i < lt.params.length; i++) {
          if (level <= 0) throw new CoreFailure(EINVAL, 'function prototype compatibility check too deep');
          const lp = skipModsAndTypedefs(localBtf, lt.params[i]!.type).id;
          const tpid = skipModsAndTypedefs(targBtf, tp.params[i]!.type).id;
          if (!typesAreCompatible(localBtf, lp, targBtf, tpid, level - 1)) return false;
        }
        localId = skipModsAndTypedefs(localBtf, lt.returnType).id;
        targId = skipModsAndTypedefs(targBtf, tp.returnType).id;
        continue;
      }
      default:
        // libbpf warns "unexpected kind %s relocated" and answers "not compatible".
        return false;
    }
  }
}

/**
 * bpf_core_fields_are_compat: the types of a local and a target member with the same name. Any
 * two structs/unions match; pointers and floats always; fwds and enums need equal essential names
 * unless one is anonymous; ints unless they use the legacy bit offset; arrays recurse on elements.
 */
export function fieldsAreCompatible(localBtf: Btf, localId: TypeId, targBtf: Btf, targId: TypeId): boolean {
  for (let n = 0; ; n++) {
    if (n > 1 << 16) throw new CoreFailure(EINVAL, 'loop in array element chain');
    const lt = skipModsAndTypedefs(localBtf, localId).type;
    const tt = skipModsAndTypedefs(targBtf, targId).type;
    const composite = (t: BtfType) => t.kind === 'struct' || t.kind === 'union';
    if (composite(lt) && composite(tt)) return true;
    if (!kindsCoreCompatible(lt, tt)) return false;
    switch (lt.kind) {
      case 'ptr':
      case 'float':
        return true;
      case 'fwd':
      case 'enum':
      case 'enum64':
        return lt.name === '' || tt.name === '' || essentialNamesEqual(lt.name, tt.name);
      case 'int':
        return lt.bitsOffset === 0 && tt.kind === 'int' && tt.bitsOffset === 0;
      case 'array':
        localId = lt.type;
        targId = (tt as typeof lt).type;
        continue;
      default:
        return false;
    }
  }
}

/**
 * bpf_core_names_match: an anonymous target matches only an anonymous local; otherwise the
 * essential names must be equal.
 */
function namesMatch(localName: string, targName: string): boolean {
  if (targName === '') return localName === '';
  return essentialNamesEqual(localName, targName);
}

/**
 * __bpf_core_types_match (TYPE_MATCHES): stricter than compatibility. Names must match at every
 * level; kinds must be equal except that behind a pointer a struct/union matches a fwd of the same
 * flavour and enum matches enum64; ints need equal size and signedness; composites need every
 * local member, by name, to match a target member; arrays need equal lengths; function prototypes
 * equal arity with matching arguments and return type.
 */
export function typesMatch(
  localBtf: Btf,
  localId: TypeId,
  targBtf: Btf,
  targId: TypeId,
  behindPtr = false,
  level = MAX_DEPTH,
): boolean {
  if (level <= 0) throw new CoreFailure(EINVAL, 'type match check too deep');
  for (let depth = MAX_DEPTH - 1; ; depth--) {
    if (depth < 0) throw new CoreFailure(EINVAL, 'type match check too deep');
    const local = skipModsAndTypedefs(localBtf, localId);
    const targ = skipModsAndTypedefs(targBtf, targId);
    localId = local.id;
    targId = targ.id;
    const lt = local.type;
    const tt = targ.type;
    if (!namesMatch(lt.name, tt.name)) return false;
    switch (lt.kind) {
      case 'void':
        return tt.kind === 'void';
      case 'fwd': {
        const localUnion = lt.kindFlag;
        if (behindPtr) {
          if (tt.kind === 'fwd') return localUnion === tt.kindFlag;
          return (tt.kind === 'struct' && !localUnion) || (tt.kind === 'union' && localUnion);
        }
        return tt.kind === 'fwd' && localUnion === tt.kindFlag;
      }
      case 'enum':
      case 'enum64': {
        if (tt.kind !== 'enum' && tt.kind !== 'enum64') return false;
        if (lt.size !== tt.size || lt.values.length > tt.values.length) return false;
        return lt.values.every((lv) => tt.values.some((tv) => namesMatch(lv.name, tv.name)));
      }
      case 'struct':
      case 'union': {
        if (behindPtr) {
          if (lt.kind === tt.kind) return true;
          if (tt.kind !== 'fwd') return false;
          return (lt.kind === 'union') === tt.kindFlag;
        }
        if (lt.kind !== tt.kind) return false;
        return compositesMatch(localBtf, lt, targBtf, tt as typeof lt, behindPtr, level);
      }
      case 'int': {
        if (tt.kind !== 'int') return false;
        return lt.size === tt.size && (lt.encoding & 1) === (tt.encoding & 1);
      }
      case 'ptr':
        if (tt.kind !== 'ptr') return false;
        behindPtr = true;
        localId = lt.type;
        targId = tt.type;
        continue;
      case 'array':
        if (tt.kind !== 'array' || lt.nelems !== tt.nelems) return false;
        localId = lt.type;
        targId = tt.type;
        continue;
      case 'func_proto': {
        if (tt.kind !== 'func_proto' || lt.params.length !== tt.params.length) return false;
        for (let i = 0; i < lt.params.length; i++) {
          if (!typesMatch(localBtf, lt.params[i]!.type, targBtf, tt.params[i]!.type, behindPtr, level - 1)) {
            return false;
          }
        }
        localId = lt.returnType;
        targId = tt.returnType;
        continue;
      }
      default:
        return false;
    }
  }
}

function compositesMatch(
  localBtf: Btf,
  lt: Extract<BtfType, { kind: 'struct' | 'union' }>,
  targBtf: Btf,
  tt: Extract<BtfType, { kind: 'struct' | 'union' }>,
  behindPtr: boolean,
  level: number,
): boolean {
  if (lt.members.length > tt.members.length) return false;
  for (const lm of lt.members) {
    let matched = false;
    for (const tm of tt.members) {
      if (!namesMatch(lm.name, tm.name)) continue;
      if (typesMatch(localBtf, lm.type, targBtf, tm.type, behindPtr, level - 1)) {
        matched = true;
        break;
      }
    }
    if (!matched) return false;
  }
  return true;
}
