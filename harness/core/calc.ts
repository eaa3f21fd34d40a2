import type { Btf } from '../btf/btf.js';
import type { TypeId } from '../btf/types.js';
import { resolveSize, skipModsAndTypedefs, typeOrFail } from './btf-walk.js';
import { CoreFailure, E2BIG, EINVAL, EOPNOTSUPP } from './errno.js';
import {
  type CoreRelo,
  isEnumvalBased,
  isFieldBased,
  isTypeBased,
  RELO_KIND,
  reloKindName,
} from './kinds.js';
import { matchSpec } from './match.js';
import { type CoreSpec, formatSpec, parseSpec } from './spec.js';

/** A candidate target type: a type id in one of the target BTFs (vmlinux or a module). */
export interface Candidate {
  btf: Btf;
  id: TypeId;
  /** Which BTF it came from, for messages: 'vmlinux' or the module's name. */
  btfName: string;
}

/**
 * The answer for one relocation (struct bpf_core_relo_res): what the instruction is expected to
 * hold (`origVal`, computed against the local BTF), what to write (`newVal`, against the target),
 * whether to poison it instead, and whether to check `origVal` first.
 */
export interface RelocationResult {
  origVal: bigint;
  newVal: bigint;
  poison: boolean;
  validate: boolean;
  /** Set when a load/store's memory size would have to change in a way that loses the value. */
  failMemszAdjust: boolean;
  /** Memory sizes for load/store size adjustment (0 when not applicable). */
  origSize: number;
  newSize: number;
  origTypeId: TypeId;
  newTypeId: TypeId;
}

/** What libbpf's debug log says about one candidate, in order. */
export interface CandidateVerdict {
  candidate: Candidate;
  matched: boolean;
  /** The candidate spec as libbpf formats it. */
  spec: string;
}

export type CalcOutcome =
  | {
      kind: 'ok';
      result: RelocationResult;
      localSpec: CoreSpec;
      /** The spec of the first matching candidate; undefined when none matched (or none searched). */
      targetSpec: CoreSpec | undefined;
      verdicts: CandidateVerdict[];
      /** The candidate list after pruning (libbpf keeps only the matching ones, if any matched). */
      candidates: readonly Candidate[];
    }
  | {
      kind: 'error';
      errno: number;
      /** libbpf's words for the failure. */
      message: string;
      localSpec: CoreSpec | undefined;
      verdicts: CandidateVerdict[];
      candidates: readonly Candidate[];
    };

/** The value a poisoned relocation's instruction gets (0xbad2310, "bad relo"). */
export const POISON_IMM = 195896080;

interface FieldValue {
  val: bigint;
  fieldSize: number;
  typeId: TypeId;
  validate: boolean;
}

const POISON = Symbol('poison');

/**
 * bpf_core_calc_field_relo: one side (local or target) of a field relocation. `spec` undefined
 * means no target matched: FIELD_EXISTS gives 0, everything else asks for poisoning.
 */
function calcFieldValue(relo: CoreRelo, spec: CoreSpec | undefined): FieldValue | typeof POISON {
  if (relo.kind === RELO_KIND.FIELD_EXISTS) {
    return { val: spec === undefined ? 0n : 1n, fieldSize: 0, typeId: 0, validate: true };
  }
  if (spec === undefined) return POISON;
  const btf = spec.btf;
  const acc = spec.spec[spec.spec.length - 1]!;

  if (acc.name === undefined) {
    // An array element access (a[n]): offset and size of the element.
    if (relo.kind === RELO_KIND.FIELD_BYTE_OFFSET) {
      const elemId = innermostElement(btf, acc.typeId);
      return {
        val: BigInt(Math.floor(spec.bitOffset / 8)),
        fieldSize: sizeOrEinval(btf, elemId),
        typeId: acc.typeId,
        validate: true,
      };
    }
    if (relo.kind === RELO_KIND.FIELD_BYTE_SIZE) {
      return { val: BigInt(sizeOrEinval(btf, acc.typeId)), fieldSize: 0, typeId: 0, validate: true };
    }
    throw new CoreFailure(
      EINVAL,
      `relo ${relo.kind} at insn #${Math.floor(relo.insnOff / 8)} can't be applied to array access`,
    );
  }

  const holder = typeOrFail(btf, acc.typeId);
  if (holder.kind !== 'struct' && holder.kind !== 'union') {
    throw new CoreFailure(EINVAL, `accessor type [${acc.typeId}] is not a struct or union`);
  }
  const member = holder.members[acc.idx]!;
  const fieldType = skipModsAndTypedefs(btf, member.type);
  const mt = fieldType.type;
  const bitOff = spec.bitOffset;
  let bitSize = member.bitfieldSize;
  const bitfield = bitSize > 0;
  let byteSize: number;
  let byteOff: number;
  if (bitfield) {
    // The smallest naturally aligned load, starting from the member type's size, covering the bits.
    byteSize = 'size' in mt ? mt.size : 0;
    if (byteSize === 0) throw new CoreFailure(EINVAL, `bitfield of unsized type [${fieldType.id}]`);
    byteOff = Math.floor(Math.floor(bitOff / 8) / byteSize) * byteSize;
    while (bitOff + bitSize - byteOff * 8 > byteSize * 8) {
      if (byteSize >= 8) {
        throw new CoreFailure(
          E2BIG,
          `relo ${relo.kind} at insn #${Math.floor(relo.insnOff / 8)} can't be satisfied for bitfield`,
        );
      }
      byteSize *= 2;
      byteOff = Math.floor(Math.floor(bitOff / 8) / byteSize) * byteSize;
    }
  } else {
    byteSize = sizeOrEinval(btf, fieldType.id);
    byteOff = Math.floor(bitOff / 8);
    bitSize = byteSize * 8;
  }
  // For bitfields the compiler's load may legitimately differ from libbpf's choice, so only the
  // unambiguous values (signedness, right shift) are validated.
  let validate = !bitfield;
  let val: bigint;
  let fieldSize = 0;
  let typeId = 0;
  switch (relo.kind) {
    case RELO_KIND.FIELD_BYTE_OFFSET:
      val = BigInt(byteOff);
      if (!bitfield) {
        fieldSize = sizeOrEinval(btf, innermostElement(btf, fieldType.id));
        typeId = fieldType.id;
      }
      break;
    case RELO_KIND.FIELD_BYTE_SIZE:
      val = BigInt(byteSize);
      break;
    case RELO_KIND.FIELD_SIGNED:
      val =
        ((mt.kind === 'enum' || mt.kind === 'enum64') && mt.kindFlag) ||
        (mt.kind === 'int' && (mt.encoding & 1) !== 0)
          ? 1n
          : 0n;
      validate = true;
      break;
    case RELO_KIND.FIELD_LSHIFT_U64:
      // libbpf computes the shift for the byte order it runs on; BPF targets here are little-endian
      // hosts loading for a little-endian kernel.
      val = BigInt.asUintN(64, BigInt(64 - (bitOff + bitSize - byteOff * 8)));
      break;
    case RELO_KIND.FIELD_RSHIFT_U64:
      val = BigInt(64 - bitSize);
      validate = true;
      break;
    default:
      throw new CoreFailure(EOPNOTSUPP, 'unsupported field relocation');
  }
  return { val, fieldSize, typeId, validate };
}

function innermostElement(btf: Btf, id: TypeId): TypeId {
  let t = skipModsAndTypedefs(btf, id);
  for (let n = 0; t.type.kind === 'array'; n++) {
    if (n > 1 << 16) throw new CoreFailure(EINVAL, 'loop in array element chain');
    t = skipModsAndTypedefs(btf, t.type.type);
  }
  return t.id;
}

function sizeOrEinval(btf: Btf, id: TypeId): number {
  try {
    return resolveSize(btf, id);
  } catch (e) {
    if (e instanceof CoreFailure) throw new CoreFailure(EINVAL, e.message);
    throw e;
  }
}

/** bpf_core_calc_type_relo: type-based kinds; no target means 0. */
function calcTypeValue(relo: CoreRelo, spec: CoreSpec | undefined): { val: bigint; validate: boolean } {
  if (spec === undefined) return { val: 0n, validate: true };
  switch (relo.kind) {
    case RELO_KIND.TYPE_ID_TARGET:
      // The linker may renumber local type ids, so the instruction's value is not checked.
      return { val: BigInt(spec.rootTypeId), validate: false };
    case RELO_KIND.TYPE_EXISTS:
    case RELO_KIND.TYPE_MATCHES:
      return { val: 1n, validate: true };
    case RELO_KIND.TYPE_SIZE:
      return { val: BigInt(sizeOrEinval(spec.btf, spec.rootTypeId)), validate: true };
    default:
      throw new CoreFailure(EOPNOTSUPP, 'unsupported type relocation');
  }
}

/** bpf_core_calc_enumval_relo: ENUM values are s32 sign-extended to u64, ENUM64 values as stored. */
function calcEnumvalValue(relo: CoreRelo, spec: CoreSpec | undefined): bigint | typeof POISON {
  switch (relo.kind) {
    case RELO_KIND.ENUMVAL_EXISTS:
      return spec === undefined ? 0n : 1n;
    case RELO_KIND.ENUMVAL_VALUE: {
      if (spec === undefined) return POISON;
      const acc = spec.spec[0]!;
      const t = typeOrFail(spec.btf, acc.typeId);
      if (t.kind !== 'enum' && t.kind !== 'enum64') throw new CoreFailure(EINVAL, 'enumerator of a non-enum');
      const v = t.values[acc.idx]!.value;
      // btf_enum.val is __s32: it widens to u64 with sign extension whatever the enum's signedness.
      return t.kind === 'enum' ? BigInt.asUintN(64, BigInt.asIntN(32, v)) : BigInt.asUintN(64, v);
    }
    default:
      throw new CoreFailure(EOPNOTSUPP, 'unsupported enumval relocation');
  }
}

function emptyResult(): RelocationResult {
  return {
    origVal: 0n,
    newVal: 0n,
    poison: false,
    validate: true,
    failMemszAdjust: false,
    origSize: 0,
    newSize: 0,
    origTypeId: 0,
    newTypeId: 0,
  };
}

/**
 * bpf_core_calc_relo: the result for one (local spec, target spec) pair; `targ` undefined when no
 * candidate matched.
 */
export function calcRelo(relo: CoreRelo, local: CoreSpec, targ: CoreSpec | undefined): RelocationResult {
  const res = emptyResult();
  if (isFieldBased(relo.kind)) {
    const orig = calcFieldValue(relo, local);
    if (orig === POISON) {
      res.poison = true;
      return res;
    }
    res.origVal = orig.val;
    res.origSize = orig.fieldSize;
    res.origTypeId = orig.typeId;
    res.validate = orig.validate;
    const next = calcFieldValue(relo, targ);
    if (next === POISON) {
      res.poison = true;
      return res;
    }
    res.newVal = next.val;
    res.newSize = next.fieldSize;
    res.newTypeId = next.typeId;
    if (res.origSize !== res.newSize) {
      // Changing a load's width keeps the value only for pointers (32-bit kernels) and unsigned
      // integers (zero extension); anything else is marked, and a load/store is then poisoned.
      const ot = typeOrFail(local.btf, res.origTypeId);
      const nt = typeOrFail(targ!.btf, res.newTypeId);
      const bothPtr = ot.kind === 'ptr' && nt.kind === 'ptr';
      const bothUnsigned = ot.kind === 'int' && nt.kind === 'int' && ot.encoding !== 1 && nt.encoding !== 1;
      if (!bothPtr && !bothUnsigned) res.failMemszAdjust = true;
    }
  } else if (isTypeBased(relo.kind)) {
    const orig = calcTypeValue(relo, local);
    res.origVal = orig.val;
    res.validate = orig.validate;
    res.newVal = calcTypeValue(relo, targ).val;
  } else if (isEnumvalBased(relo.kind)) {
    const orig = calcEnumvalValue(relo, local);
    const next = orig === POISON ? POISON : calcEnumvalValue(relo, targ);
    if (orig === POISON || next === POISON) {
      res.poison = true;
      return res;
    }
    res.origVal = orig;
    res.newVal = next;
  } else {
    throw new CoreFailure(
      EOPNOTSUPP,
      `unrecognized CO-RE relocation ${reloKindName(relo.kind)} (${relo.kind}) at insn #${Math.floor(relo.insnOff / 8)}`,
    );
  }
  return res;
}

/**
 * bpf_core_calc_relo_insn: decides one relocation against its candidates.
 *
 * 1. Parse the local access spec (a malformed one is an error: libbpf refuses the object).
 * 2. TYPE_ID_LOCAL needs no target: the local id itself, unvalidated.
 * 3. Anonymous local roots cannot be searched for (EOPNOTSUPP).
 * 4. Match the spec against every candidate in order; every matching candidate must agree on the
 *    bit offset ("field offset ambiguity") and on poison and new value ("relocation decision
 *    ambiguity"), else it is an error.
 * 5. If any candidate matched, only the matching ones survive for later relocations of the same
 *    root type (libbpf prunes its cached list in place; here the survivors are returned).
 * 6. If none matched, compute against "no target": 0 for existence kinds, poison for the rest.
 */
export function calcReloInsn(
  relo: CoreRelo,
  localBtf: Btf,
  accessString: string,
  candidates: readonly Candidate[],
): CalcOutcome {
  const verdicts: CandidateVerdict[] = [];
  let local: CoreSpec | undefined;
  try {
    const localType = typeOrFail(localBtf, relo.typeId);
    try {
      local = parseSpec(localBtf, relo, accessString);
    } catch (e) {
      if (!(e instanceof CoreFailure)) throw e;
      const errno = e.errno;
      throw new CoreFailure(
        EINVAL,
        `parsing [${relo.typeId}] ${localType.kind} ${localType.name || '<anon>'} + ${accessString} failed: -${errno}`,
      );
    }
    if (relo.kind === RELO_KIND.TYPE_ID_LOCAL) {
      const res = emptyResult();
      res.validate = false;
      res.origVal = BigInt(local.rootTypeId);
      res.newVal = BigInt(local.rootTypeId);
      return { kind: 'ok', result: res, localSpec: local, targetSpec: undefined, verdicts, candidates };
    }
    if (localType.name === '') {
      throw new CoreFailure(
        EOPNOTSUPP,
        `<${reloKindName(relo.kind)}> (${relo.kind}) relocation doesn't support anonymous types`,
      );
    }

    let targRes: RelocationResult | undefined;
    let targSpec: CoreSpec | undefined;
    const survivors: Candidate[] = [];
    for (let i = 0; i < candidates.length; i++) {
      const cand = candidates[i]!;
      const candSpec = matchSpec(local, cand.btf, cand.id);
      verdicts.push(candidateVerdict(cand, candSpec, local));
      if (candSpec === undefined) continue;
      const candRes = calcRelo(relo, local, candSpec);
      if (targRes === undefined) {
        targRes = candRes;
        targSpec = candSpec;
      } else if (candSpec.bitOffset !== targSpec!.bitOffset) {
        throw new CoreFailure(
          EINVAL,
          `field offset ambiguity: ${candSpec.bitOffset} != ${targSpec!.bitOffset}`,
        );
      } else if (candRes.poison !== targRes.poison || candRes.newVal !== targRes.newVal) {
        throw new CoreFailure(
          EINVAL,
          `relocation decision ambiguity: ${candRes.poison ? 'failure' : 'success'} ${candRes.newVal} != ${
            targRes.poison ? 'failure' : 'success'
          } ${targRes.newVal}`,
        );
      }
      survivors.push(cand);
    }
    if (targRes === undefined) {
      targRes = calcRelo(relo, local, undefined);
      return { kind: 'ok', result: targRes, localSpec: local, targetSpec: undefined, verdicts, candidates };
    }
    return {
      kind: 'ok',
      result: targRes,
      localSpec: local,
      targetSpec: targSpec,
      verdicts,
      candidates: survivors,
    };
  } catch (e) {
    if (!(e instanceof CoreFailure)) throw e;
    return { kind: 'error', errno: e.errno, message: e.message, localSpec: local, verdicts, candidates };
  }
}

/**
 * A candidate's verdict, its spec formatted when first read: relocation itself never reads it (a
 * fresh process formats ~500 of them for the case suite, for nothing).
 */
function candidateVerdict(
  candidate: Candidate,
  candSpec: CoreSpec | undefined,
  local: CoreSpec,
): CandidateVerdict {
  let spec: string | undefined;
  return {
    candidate,
    matched: candSpec !== undefined,
    get spec() {
      spec ??= formatSpec(candSpec ?? emptyFor(local, candidate));
      return spec;
    },
  };
}

/**
 * A non-matching candidate's spec as libbpf prints it: whatever bpf_core_spec_match had filled in
 * before giving up. Only the root is certain, so only the root is shown.
 */
function emptyFor(local: CoreSpec, cand: Candidate): CoreSpec {
  return {
    btf: cand.btf,
    rootTypeId: cand.id,
    reloKind: local.reloKind,
    spec: [],
    rawSpec: [],
    bitOffset: 0,
  };
}
