import type { Btf } from '../btf/btf.js';
import type { TypeId } from '../btf/types.js';
import { resolveSize, skipModsAndTypedefs, typeOrFail } from './btf-walk.js';
import { CoreFailure, E2BIG, EINVAL } from './errno.js';
import { type CoreRelo, isEnumvalBased, isFieldBased, isTypeBased, reloKindName } from './kinds.js';

/** libbpf's BPF_CORE_SPEC_MAX_LEN: how many accessors an access string may have. */
export const CORE_SPEC_MAX_LEN = 64;

/**
 * One high-level step of an access: a named member (`name` set) or an array index (`name`
 * undefined). `typeId` is the struct/union holding the member, or the array's element type.
 */
export interface Accessor {
  typeId: TypeId;
  idx: number;
  name: string | undefined;
}

/**
 * An access spec (struct bpf_core_spec). For the C access
 *
 *   struct sample { int __unimportant; struct { int __1; int __2; int a[7]; }; };
 *   &s->a[3]   // access string "0:1:2:3"
 *
 * the raw spec is [0, 1, 2, 3] (one entry per access-string index, anonymous members included) and
 * the high-level spec has three accessors: s[0], the named member `a`, and element 3.
 */
export interface CoreSpec {
  btf: Btf;
  rootTypeId: TypeId;
  reloKind: number;
  spec: Accessor[];
  rawSpec: number[];
  /** Bit offset of the accessed field from the root pointer. */
  bitOffset: number;
}

export function emptySpec(btf: Btf, rootTypeId: TypeId, reloKind: number): CoreSpec {
  return { btf, rootTypeId, reloKind, spec: [], rawSpec: [], bitOffset: 0 };
}

/**
 * bpf_core_parse_spec: parse an access string against the local BTF into a spec, computing the
 * field's bit offset along the way.
 *
 * 1. Type-based kinds must have the access string "0" and no accessors.
 * 2. Otherwise the string is decimal indices separated by ':' (no empty string, no leading ':',
 *    no negative index, at most CORE_SPEC_MAX_LEN of them).
 * 3. Enum-value kinds: one index, the enumerator of an enum (or enum64) root.
 * 4. Field kinds: the first index treats the root pointer as an array; each further index is a
 *    member of a struct/union (anonymous members only extend the raw spec) or an element of an
 *    array (bounds-checked unless it is a flexible array member).
 */
export function parseSpec(btf: Btf, relo: CoreRelo, accessString: string): CoreSpec {
  if (accessString === '' || accessString.startsWith(':')) {
    throw new CoreFailure(EINVAL, `malformed access string '${accessString}'`);
  }
  const spec = emptySpec(btf, relo.typeId, relo.kind);
  if (isTypeBased(relo.kind)) {
    if (accessString !== '0') {
      throw new CoreFailure(EINVAL, `type-based relocation with access string '${accessString}' (want '0')`);
    }
    return spec;
  }

  spec.rawSpec = parseAccessString(accessString);
  const root = skipModsAndTypedefs(btf, relo.typeId);
  let id = root.id;
  let accessIdx = spec.rawSpec[0]!;
  spec.spec.push({ typeId: id, idx: accessIdx, name: undefined });

  if (isEnumvalBased(relo.kind)) {
    const t = root.type;
    if (
      (t.kind !== 'enum' && t.kind !== 'enum64') ||
      spec.rawSpec.length > 1 ||
      accessIdx >= t.values.length
    ) {
      throw new CoreFailure(EINVAL, `enum value access '${accessString}' does not name an enumerator`);
    }
    spec.spec[0]!.name = t.values[accessIdx]!.name;
    return spec;
  }
  if (!isFieldBased(relo.kind)) {
    throw new CoreFailure(EINVAL, `unknown relocation kind ${relo.kind}`);
  }

  spec.bitOffset = accessIdx * resolveSize(btf, id) * 8;
  for (let i = 1; i < spec.rawSpec.length; i++) {
    const t = skipModsAndTypedefs(btf, id);
    id = t.id;
    accessIdx = spec.rawSpec[i]!;
    const type = t.type;
    if (type.kind === 'struct' || type.kind === 'union') {
      if (accessIdx >= type.members.length) {
        throw new CoreFailure(EINVAL, `member index ${accessIdx} out of range for [${id}]`);
      }
      const m = type.members[accessIdx]!;
      spec.bitOffset += m.bitOffset;
      if (memberHasName(btf, id, accessIdx, m.name)) {
        spec.spec.push({ typeId: id, idx: accessIdx, name: m.name });
      }
      id = m.type;
    } else if (type.kind === 'array') {
      const elem = skipModsAndTypedefs(btf, type.type);
      id = elem.id;
      const flex = isFlexArray(btf, spec.spec[spec.spec.length - 1]!, type.nelems);
      if (!flex && accessIdx >= type.nelems) {
        throw new CoreFailure(EINVAL, `array index ${accessIdx} out of bounds (${type.nelems} elements)`);
      }
      spec.spec.push({ typeId: id, idx: accessIdx, name: undefined });
      spec.bitOffset += accessIdx * resolveSize(btf, id) * 8;
    } else {
      throw new CoreFailure(
        EINVAL,
        `relo for [${relo.typeId}] ${accessString} (at idx ${i}) captures type [${id}] of unexpected kind ${btf.kind(id)}`,
      );
    }
  }
  return spec;
}

/**
 * libbpf distinguishes a member with no name (name_off 0: an anonymous struct/union, skipped in the
 * high-level spec) from one whose name_off points at an empty string (an error). The decoded model
 * has '' for both, so the raw record decides.
 */
function memberHasName(btf: Btf, structId: TypeId, idx: number, name: string): boolean {
  if (name !== '') return true;
  if (memberNameOffset(btf, structId, idx) !== 0) {
    throw new CoreFailure(EINVAL, `member ${idx} of [${structId}] has an empty name`);
  }
  return false;
}

function memberNameOffset(btf: Btf, structId: TypeId, idx: number): number {
  let owner = btf;
  while (structId < owner.firstId && owner.base !== undefined) owner = owner.base;
  const rec = owner.recordBytes(structId);
  const view = new DataView(rec.buffer, rec.byteOffset, rec.byteLength);
  return view.getUint32(12 + idx * 12, owner.littleEndian);
}

function parseAccessString(s: string): number[] {
  const raw: number[] = [];
  let i = 0;
  while (i < s.length) {
    if (s[i] === ':') i++;
    // sscanf("%d"): optional sign, then digits; a negative index is rejected afterwards.
    const m = /^[+-]?\d+/.exec(s.slice(i));
    if (m === null) throw new CoreFailure(EINVAL, `malformed access string '${s}'`);
    const value = Number(m[0]);
    if (value < 0 || !Number.isSafeInteger(value) || value > 0x7fffffff) {
      throw new CoreFailure(EINVAL, `bad index in access string '${s}'`);
    }
    if (raw.length === CORE_SPEC_MAX_LEN) throw new CoreFailure(E2BIG, `access string '${s}' is too long`);
    raw.push(value);
    i += m[0].length;
  }
  if (raw.length === 0) throw new CoreFailure(EINVAL, `empty access string`);
  return raw;
}

/**
 * is_flex_arr: an array of 0 elements reached through a named member that is the last member of
 * its struct may be indexed past its declared bounds.
 */
export function isFlexArray(btf: Btf, parent: Accessor, nelems: number): boolean {
  if (parent.name === undefined || nelems > 0) return false;
  const t = typeOrFail(btf, parent.typeId);
  return (t.kind === 'struct' || t.kind === 'union') && parent.idx === t.members.length - 1;
}

/**
 * bpf_core_format_spec: the spec as libbpf's debug log prints it, e.g.
 * `<byte_off> [40] struct task_struct.tgid (0:85 @ offset 1428)`.
 */
export function formatSpec(spec: CoreSpec): string {
  const btf = spec.btf;
  const root = btf.has(spec.rootTypeId) ? btf.type(spec.rootTypeId) : undefined;
  const kindStr = root === undefined ? 'unknown' : root.kind;
  let out = `<${reloKindName(spec.reloKind)}> [${spec.rootTypeId}] ${kindStr} ${root?.name || '<anon>'}`;
  if (isTypeBased(spec.reloKind)) return out;
  if (isEnumvalBased(spec.reloKind)) {
    const t = skipModsAndTypedefs(btf, spec.rootTypeId).type;
    if ((t.kind === 'enum' || t.kind === 'enum64') && spec.rawSpec.length > 0) {
      const e = t.values[spec.rawSpec[0]!];
      if (e !== undefined) out += `::${e.name} = ${formatEnumValue(t.kind, t.signed, e.value)}`;
    }
    return out;
  }
  for (let i = 0; i < spec.spec.length; i++) {
    const acc = spec.spec[i]!;
    if (acc.name !== undefined) out += `.${acc.name}`;
    else if (i > 0 || acc.idx > 0) out += `[${acc.idx}]`;
  }
  out += ` (${spec.rawSpec.join(':')}`;
  const byte = Math.floor(spec.bitOffset / 8);
  out += spec.bitOffset % 8 !== 0 ? ` @ offset ${byte}.${spec.bitOffset % 8})` : ` @ offset ${byte})`;
  return out;
}

/**
 * libbpf prints a 32-bit enum value with %d or %u of the raw 32 bits, and an enum64 value with
 * %lld or %llu of the 64-bit value.
 */
function formatEnumValue(kind: 'enum' | 'enum64', signed: boolean, value: bigint): string {
  const bits = kind === 'enum' ? 32 : 64;
  return (signed ? BigInt.asIntN(bits, value) : BigInt.asUintN(bits, value)).toString();
}

/** The access in C-like form for reports: `struct task_struct.tgid`, `enum foo::BAR`. */
export function describeAccess(spec: CoreSpec): string {
  return describeFormattedAccess(formatSpec(spec));
}

/** `describeAccess` of a spec from its `formatSpec` text (for a caller that has both). */
export function describeFormattedAccess(full: string): string {
  // Drop the "<kind> [id] " prefix and the raw-spec suffix.
  const withoutPrefix = full.replace(/^<[^>]*> \[\d+\] /, '');
  return withoutPrefix.replace(/ \([\d:]+ @ offset [\d.]+\)$/, '').replace(/ = -?\d+$/, '');
}
