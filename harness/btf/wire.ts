/**
 * The BTF wire format, as include/uapi/linux/btf.h defines it. Only constants and record sizes live
 * here; decoding is in parse.ts and encoding in builder.ts.
 *
 *   struct btf_header {
 *     __u16 magic;     // 0xeB9F, byte-swapped when the blob is of the other byte order
 *     __u8  version;   // 1
 *     __u8  flags;
 *     __u32 hdr_len;   // offsets below are relative to the end of the header
 *     __u32 type_off;  __u32 type_len;
 *     __u32 str_off;   __u32 str_len;
 *   };
 *
 *   struct btf_type {
 *     __u32 name_off;
 *     __u32 info;      // bits 0-15 vlen, 24-28 kind, 31 kind_flag
 *     union { __u32 size; __u32 type; };
 *   };  // followed by kind-specific data
 */

export const BTF_MAGIC = 0xeb9f;
export const BTF_VERSION = 1;
/** sizeof(struct btf_header) */
export const BTF_HEADER_LEN = 24;
/** sizeof(struct btf_type) */
export const BTF_TYPE_LEN = 12;
/** libbpf's BTF_MAX_NAME_OFFSET: string offsets are 24 bits wide in practice. */
export const BTF_MAX_NAME_OFFSET = 0xffffff;
/** libbpf's MAX_RESOLVE_DEPTH: how deep modifier/typedef chains are followed before giving up. */
export const MAX_RESOLVE_DEPTH = 32;

/** BTF_KIND_* numbers. */
export const KIND = {
  UNKN: 0,
  INT: 1,
  PTR: 2,
  ARRAY: 3,
  STRUCT: 4,
  UNION: 5,
  ENUM: 6,
  FWD: 7,
  TYPEDEF: 8,
  VOLATILE: 9,
  CONST: 10,
  RESTRICT: 11,
  FUNC: 12,
  FUNC_PROTO: 13,
  VAR: 14,
  DATASEC: 15,
  FLOAT: 16,
  DECL_TAG: 17,
  TYPE_TAG: 18,
  ENUM64: 19,
} as const;
export const MAX_KIND = KIND.ENUM64;

/** The names bpftool and libbpf print for each kind (btf_kind_str). */
export const KIND_NAMES = [
  'UNKNOWN',
  'INT',
  'PTR',
  'ARRAY',
  'STRUCT',
  'UNION',
  'ENUM',
  'FWD',
  'TYPEDEF',
  'VOLATILE',
  'CONST',
  'RESTRICT',
  'FUNC',
  'FUNC_PROTO',
  'VAR',
  'DATASEC',
  'FLOAT',
  'DECL_TAG',
  'TYPE_TAG',
  'ENUM64',
] as const;

/** BTF_INT_ENCODING bits (bits 24-27 of the INT's trailing u32). */
export const INT_SIGNED = 1 << 0;
export const INT_CHAR = 1 << 1;
export const INT_BOOL = 1 << 2;

/** Linkage of FUNC (stored in vlen) and VAR (trailing u32). */
export const LINKAGE = { STATIC: 0, GLOBAL: 1, EXTERN: 2 } as const;

export function infoKind(info: number): number {
  return (info >>> 24) & 0x1f;
}
export function infoVlen(info: number): number {
  return info & 0xffff;
}
export function infoKindFlag(info: number): boolean {
  return info >>> 31 === 1;
}
export function makeInfo(kind: number, vlen: number, kindFlag: boolean): number {
  return ((kindFlag ? 1 << 31 : 0) | (kind << 24) | (vlen & 0xffff)) >>> 0;
}

/** Bytes that follow `struct btf_type` for a kind with `vlen` entries; -1 for an unknown kind. */
export function trailingSize(kind: number, vlen: number): number {
  switch (kind) {
    case KIND.INT:
      return 4;
    case KIND.PTR:
    case KIND.FWD:
    case KIND.TYPEDEF:
    case KIND.VOLATILE:
    case KIND.CONST:
    case KIND.RESTRICT:
    case KIND.FUNC:
    case KIND.FLOAT:
    case KIND.TYPE_TAG:
      return 0;
    case KIND.ARRAY:
      return 12; // struct btf_array { type, index_type, nelems }
    case KIND.STRUCT:
    case KIND.UNION:
      return vlen * 12; // struct btf_member { name_off, type, offset }
    case KIND.ENUM:
      return vlen * 8; // struct btf_enum { name_off, s32 val }
    case KIND.FUNC_PROTO:
      return vlen * 8; // struct btf_param { name_off, type }
    case KIND.VAR:
      return 4; // struct btf_var { linkage }
    case KIND.DATASEC:
      return vlen * 12; // struct btf_var_secinfo { type, offset, size }
    case KIND.DECL_TAG:
      return 4; // struct btf_decl_tag { s32 component_idx }
    case KIND.ENUM64:
      return vlen * 12; // struct btf_enum64 { name_off, val_lo32, val_hi32 }
    default:
      return -1;
  }
}
