/**
 * The decoded BTF model. Types refer to each other by type id (0 is void), as libbpf does: CO-RE
 * results are type ids, and a kernel BTF of ~125k types is decoded lazily, one type at a time.
 * `Btf.type(id)` turns an id into one of these records.
 */

export type TypeId = number;

export type Kind =
  | 'void'
  | 'int'
  | 'ptr'
  | 'array'
  | 'struct'
  | 'union'
  | 'enum'
  | 'fwd'
  | 'typedef'
  | 'volatile'
  | 'const'
  | 'restrict'
  | 'func'
  | 'func_proto'
  | 'var'
  | 'datasec'
  | 'float'
  | 'decl_tag'
  | 'type_tag'
  | 'enum64';

/** Kind names in BTF_KIND_* order, so `KIND_BY_NUMBER[BTF_KIND_STRUCT] === 'struct'`. */
export const KIND_BY_NUMBER: readonly Kind[] = [
  'void',
  'int',
  'ptr',
  'array',
  'struct',
  'union',
  'enum',
  'fwd',
  'typedef',
  'volatile',
  'const',
  'restrict',
  'func',
  'func_proto',
  'var',
  'datasec',
  'float',
  'decl_tag',
  'type_tag',
  'enum64',
];

export type Linkage = 'static' | 'global' | 'extern';
export const LINKAGE_BY_NUMBER: readonly Linkage[] = ['static', 'global', 'extern'];

interface Base {
  id: TypeId;
  /** '' for anonymous types. */
  name: string;
  /** Raw kind_flag bit; its meaning per kind is also decoded into the fields below. */
  kindFlag: boolean;
}

export interface VoidType extends Base {
  kind: 'void';
}

export interface IntType extends Base {
  kind: 'int';
  /** Bytes. */
  size: number;
  /** BTF_INT_ENCODING: SIGNED=1, CHAR=2, BOOL=4 (raw, so unknown bits survive a round trip). */
  encoding: number;
  /** BTF_INT_OFFSET: legacy bit offset, 0 in any modern BTF. */
  bitsOffset: number;
  /** BTF_INT_BITS. */
  bits: number;
}

/** PTR, TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG: a name (maybe '') and the type they refer to. */
export interface RefType extends Base {
  kind: 'ptr' | 'typedef' | 'volatile' | 'const' | 'restrict' | 'type_tag';
  type: TypeId;
}

export interface ArrayType extends Base {
  kind: 'array';
  type: TypeId;
  indexType: TypeId;
  nelems: number;
}

export interface Member {
  name: string;
  type: TypeId;
  /** Bit offset from the start of the struct (for kind_flag structs, the low 24 bits). */
  bitOffset: number;
  /** Bitfield width when the struct has kind_flag set, else 0. */
  bitfieldSize: number;
}

export interface CompositeType extends Base {
  kind: 'struct' | 'union';
  size: number;
  members: Member[];
}

export interface EnumValue {
  name: string;
  /**
   * The value as stored: for ENUM the raw 32 bits (read as signed when the enum is signed, else
   * unsigned); for ENUM64 the 64-bit value (signed or unsigned likewise).
   */
  value: bigint;
}

/** ENUM and ENUM64: kind_flag set means signed. */
export interface EnumType extends Base {
  kind: 'enum' | 'enum64';
  size: number;
  signed: boolean;
  values: EnumValue[];
}

export interface FwdType extends Base {
  kind: 'fwd';
  /** kind_flag: 0 = struct, 1 = union. */
  fwdKind: 'struct' | 'union';
}

export interface FuncType extends Base {
  kind: 'func';
  /** The FUNC_PROTO. */
  type: TypeId;
  linkage: Linkage;
  /** Raw vlen, in case it holds a linkage value this version does not know. */
  linkageRaw: number;
}

export interface Param {
  name: string;
  /** 0 for the trailing `...` of a variadic function. */
  type: TypeId;
}

export interface FuncProtoType extends Base {
  kind: 'func_proto';
  /** Return type, 0 for void. */
  returnType: TypeId;
  params: Param[];
}

export interface VarType extends Base {
  kind: 'var';
  type: TypeId;
  linkage: Linkage;
  linkageRaw: number;
}

export interface VarSecinfo {
  type: TypeId;
  offset: number;
  size: number;
}

export interface DatasecType extends Base {
  kind: 'datasec';
  size: number;
  vars: VarSecinfo[];
}

export interface FloatType extends Base {
  kind: 'float';
  size: number;
}

export interface DeclTagType extends Base {
  kind: 'decl_tag';
  type: TypeId;
  /** -1: the tag applies to the type itself; else the member or parameter index. */
  componentIdx: number;
}

export type BtfType =
  | VoidType
  | IntType
  | RefType
  | ArrayType
  | CompositeType
  | EnumType
  | FwdType
  | FuncType
  | FuncProtoType
  | VarType
  | DatasecType
  | FloatType
  | DeclTagType;

/** A type as the builder takes it: everything but the id, which the builder assigns. */
export type NewType = BtfType extends infer T ? (T extends BtfType ? Omit<T, 'id'> : never) : never;

export function isComposite(t: BtfType): t is CompositeType {
  return t.kind === 'struct' || t.kind === 'union';
}
export function isEnum(t: BtfType): t is EnumType {
  return t.kind === 'enum' || t.kind === 'enum64';
}
/** Kinds that only qualify another type (skipped by skip_mods_and_typedefs together with typedef). */
export function isModifier(t: BtfType): t is RefType {
  return t.kind === 'volatile' || t.kind === 'const' || t.kind === 'restrict' || t.kind === 'type_tag';
}
export function hasRefType(t: BtfType): t is RefType {
  return (
    t.kind === 'ptr' ||
    t.kind === 'typedef' ||
    t.kind === 'volatile' ||
    t.kind === 'const' ||
    t.kind === 'restrict' ||
    t.kind === 'type_tag'
  );
}
