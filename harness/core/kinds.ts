/**
 * CO-RE relocation kinds (enum bpf_core_relo_kind in include/uapi/linux/bpf.h) and the names libbpf
 * prints for them (core_relo_kind_str in libbpf's relo_core.c).
 */

export const RELO_KIND = {
  FIELD_BYTE_OFFSET: 0,
  FIELD_BYTE_SIZE: 1,
  FIELD_EXISTS: 2,
  FIELD_SIGNED: 3,
  FIELD_LSHIFT_U64: 4,
  FIELD_RSHIFT_U64: 5,
  TYPE_ID_LOCAL: 6,
  TYPE_ID_TARGET: 7,
  TYPE_EXISTS: 8,
  TYPE_SIZE: 9,
  ENUMVAL_EXISTS: 10,
  ENUMVAL_VALUE: 11,
  TYPE_MATCHES: 12,
} as const;

export type ReloKindName =
  | 'byte_off'
  | 'byte_sz'
  | 'field_exists'
  | 'signed'
  | 'lshift_u64'
  | 'rshift_u64'
  | 'local_type_id'
  | 'target_type_id'
  | 'type_exists'
  | 'type_size'
  | 'enumval_exists'
  | 'enumval_value'
  | 'type_matches';

const NAMES: readonly ReloKindName[] = [
  'byte_off',
  'byte_sz',
  'field_exists',
  'signed',
  'lshift_u64',
  'rshift_u64',
  'local_type_id',
  'target_type_id',
  'type_exists',
  'type_size',
  'enumval_exists',
  'enumval_value',
  'type_matches',
];

/** libbpf's name for a relocation kind; 'unknown' outside 0..12, as libbpf prints it. */
export function reloKindName(kind: number): ReloKindName | 'unknown' {
  return NAMES[kind] ?? 'unknown';
}

export function isFieldBased(kind: number): boolean {
  return kind >= RELO_KIND.FIELD_BYTE_OFFSET && kind <= RELO_KIND.FIELD_RSHIFT_U64;
}

export function isTypeBased(kind: number): boolean {
  return (
    kind === RELO_KIND.TYPE_ID_LOCAL ||
    kind === RELO_KIND.TYPE_ID_TARGET ||
    kind === RELO_KIND.TYPE_EXISTS ||
    kind === RELO_KIND.TYPE_MATCHES ||
    kind === RELO_KIND.TYPE_SIZE
  );
}

export function isEnumvalBased(kind: number): boolean {
  return kind === RELO_KIND.ENUMVAL_EXISTS || kind === RELO_KIND.ENUMVAL_VALUE;
}

/** One record of .BTF.ext's core_relo subsection (struct bpf_core_relo). */
export interface CoreRelo {
  /** Byte offset of the instruction in its ELF section. */
  insnOff: number;
  /** Local root type id, in the object's own BTF (not stripped of typedefs). */
  typeId: number;
  /** Offset of the access string ("0:1:2") in the object's BTF string section. */
  accessStrOff: number;
  kind: number;
}
