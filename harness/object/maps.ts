import type { Btf } from '../btf/btf.js';
import type { CompositeType, Member, TypeId, VarSecinfo } from '../btf/types.js';
import { resolveSize, skipModsAndTypedefs } from '../core/btf-walk.js';
import { CoreFailure } from '../core/errno.js';
import { STB, STT } from '../elf/constants.js';
import type { Elf, ElfRelocation, ElfSymbol } from '../elf/elf.js';
import { isParseError } from '../errors.js';
import {
  type FixedDatasecs,
  type GlobalDataMap,
  type InternalMapKind,
  kernelObjectName,
  type OpenError,
  openError,
  type SectionLayout,
} from './data.js';

/**
 * Maps as bpf_object__open creates them: BTF-defined maps from the .maps section
 * (bpf_object__init_user_btf_maps / parse_btf_map_def), the global data maps (see data.ts), and,
 * for objects still using them, legacy `struct bpf_map_def` records from a "maps" section (read as
 * libbpf before v1.0 did; libbpf 1.x refuses such objects, which data.ts reports).
 */

/** BPF_MAP_TYPE_* names by number (include/uapi/linux/bpf.h, as in libbpf 1.7). */
export const MAP_TYPE_NAMES: readonly string[] = [
  'UNSPEC',
  'HASH',
  'ARRAY',
  'PROG_ARRAY',
  'PERF_EVENT_ARRAY',
  'PERCPU_HASH',
  'PERCPU_ARRAY',
  'STACK_TRACE',
  'CGROUP_ARRAY',
  'LRU_HASH',
  'LRU_PERCPU_HASH',
  'LPM_TRIE',
  'ARRAY_OF_MAPS',
  'HASH_OF_MAPS',
  'DEVMAP',
  'SOCKMAP',
  'CPUMAP',
  'XSKMAP',
  'SOCKHASH',
  'CGROUP_STORAGE',
  'REUSEPORT_SOCKARRAY',
  'PERCPU_CGROUP_STORAGE',
  'QUEUE',
  'STACK',
  'SK_STORAGE',
  'DEVMAP_HASH',
  'STRUCT_OPS',
  'RINGBUF',
  'INODE_STORAGE',
  'TASK_STORAGE',
  'BLOOM_FILTER',
  'USER_RINGBUF',
  'CGRP_STORAGE',
  'ARENA',
  'INSN_ARRAY',
].map((n) => `BPF_MAP_TYPE_${n}`);

export const MAP_TYPE = {
  ARRAY: 2,
  PROG_ARRAY: 3,
  ARRAY_OF_MAPS: 12,
  HASH_OF_MAPS: 13,
  RINGBUF: 27,
  USER_RINGBUF: 31,
  ARENA: 33,
} as const;

export function mapTypeName(type: number): string {
  return MAP_TYPE_NAMES[type] ?? `BPF_MAP_TYPE_${type} (unknown)`;
}

/** A map definition: what parse_btf_map_def (or a legacy bpf_map_def) says. */
export interface MapDef {
  type: number;
  typeName: string;
  keySize: number;
  valueSize: number;
  /** BTF ids of the key and value types (`__type(key, …)`); 0 when only sizes were given. */
  keyTypeId: TypeId;
  valueTypeId: TypeId;
  /** max_entries as declared. */
  maxEntries: number;
  /**
   * max_entries as libbpf creates the map: ring buffers are rounded up to a power-of-2 multiple of
   * the page size (adjust_ringbuf_sz, here for 4 KiB pages).
   */
  createMaxEntries: number;
  mapFlags: number;
  numaNode: number;
  pinning: 'none' | 'by_name';
  mapExtra: bigint;
  /** Which members the definition had (libbpf's MAP_DEF_* parts), in definition order. */
  parts: string[];
}

/** A slot of a map-in-map or prog array filled at load time (`.values = { … }`). */
export interface InitialSlot {
  slot: number;
  kind: 'map' | 'prog';
  /** The map or program name. */
  name: string;
}

export interface BpfMap extends MapDef {
  /**
   * The map's name as libbpf shows it (bpf_map__name, skeleton field names): the variable name,
   * or for global data the internal map name (the section name for .data.* / .rodata.*).
   */
  name: string;
  /** The name the map is created with in the kernel (at most 15 bytes; libbpf's map->name). */
  kernelName: string;
  /** The variable (BTF maps) or section (global data) it comes from. */
  realName: string;
  kind: 'btf' | 'legacy' | InternalMapKind;
  /** ELF section of the definition (for .kconfig: the symbol table, as in libbpf). */
  sectionIndex: number;
  section: string;
  /** Offset of the definition within its section. */
  sectionOffset: number;
  /** For BTF maps: the index of its VAR in the .maps DATASEC. */
  btfVarIndex?: number;
  /** For map-in-map: the inner map definition (named '<map>.inner'). */
  inner?: MapDef & { name: string };
  /** For map-in-map and prog arrays: initial contents from `.values` (.rel.maps). */
  initialSlots?: InitialSlot[];
  /** For global data maps: the data/rodata/bss/kconfig details. */
  data?: GlobalDataMap;
  /** Where libbpf fails on this definition (the map is listed with what was parsed until then). */
  error?: OpenError;
}

const PAGE_SIZE = 4096;
const U32_MAX = 0xffffffff;

function emptyDef(): MapDef {
  return {
    type: 0,
    typeName: mapTypeName(0),
    keySize: 0,
    valueSize: 0,
    keyTypeId: 0,
    valueTypeId: 0,
    maxEntries: 0,
    createMaxEntries: 0,
    mapFlags: 0,
    numaNode: 0,
    pinning: 'none',
    mapExtra: 0n,
    parts: [],
  };
}

/** adjust_ringbuf_sz. */
export function adjustRingbufSize(size: number, pageSize = PAGE_SIZE): number {
  if (size === 0) return 0;
  const pages = size / pageSize;
  if (size % pageSize === 0 && (pages & (pages - 1)) === 0) return size;
  for (let mul = 1; mul <= Math.floor(U32_MAX / pageSize); mul *= 2) {
    if (mul * pageSize > size) return mul * pageSize;
  }
  return size;
}

function finishDef(def: MapDef): void {
  def.typeName = mapTypeName(def.type);
  def.createMaxEntries =
    def.type === MAP_TYPE.RINGBUF || def.type === MAP_TYPE.USER_RINGBUF
      ? adjustRingbufSize(def.maxEntries)
      : def.maxEntries;
}

class MapDefError extends Error {
  constructor(
    readonly errno: OpenError['errno'],
    message: string,
  ) {
    super(message);
  }
}

function skipMods(btf: Btf, id: TypeId): TypeId {
  try {
    return skipModsAndTypedefs(btf, id).id;
  } catch (e) {
    if (e instanceof CoreFailure) throw new MapDefError('EINVAL', e.message);
    throw e;
  }
}

/** get_map_field_int: `int (*name)[N]` encodes N. */
function fieldInt(btf: Btf, mapName: string, m: Member): number {
  const ptr = btf.type(skipMods(btf, m.type));
  if (ptr.kind !== 'ptr') {
    throw new MapDefError('EINVAL', `map '${mapName}': attr '${m.name}': expected PTR, got ${ptr.kind}.`);
  }
  const arr = btf.type(ptr.type);
  if (arr.kind !== 'array') {
    throw new MapDefError('EINVAL', `map '${mapName}': attr '${m.name}': expected ARRAY, got ${arr.kind}.`);
  }
  return arr.nelems;
}

/** get_map_field_long: an int field, or a one-value enum (`__ulong`) for 64-bit values. */
function fieldLong(btf: Btf, mapName: string, m: Member): bigint {
  const t = skipMods(btf, m.type);
  const tt = btf.type(t);
  if (tt.kind === 'ptr') return BigInt(fieldInt(btf, mapName, m));
  if (tt.kind !== 'enum' && tt.kind !== 'enum64') {
    throw new MapDefError(
      'EINVAL',
      `map '${mapName}': attr '${m.name}': expected ENUM or ENUM64, got ${tt.kind}.`,
    );
  }
  const only = tt.values.length === 1 ? tt.values[0] : undefined;
  if (only === undefined)
    throw new MapDefError('EINVAL', `map '${mapName}': attr '${m.name}': invalid __ulong`);
  // libbpf reads the raw bits (u32 for ENUM, u64 for ENUM64).
  return tt.kind === 'enum' ? BigInt.asUintN(32, only.value) : BigInt.asUintN(64, only.value);
}

function typedSize(
  btf: Btf,
  mapName: string,
  what: 'key' | 'value',
  m: Member,
): { size: number; typeId: TypeId } {
  const t = btf.type(m.type);
  if (t.kind !== 'ptr')
    throw new MapDefError('EINVAL', `map '${mapName}': ${what} spec is not PTR: ${t.kind}.`);
  try {
    return { size: resolveSize(btf, t.type), typeId: t.type };
  } catch (e) {
    if (!(e instanceof CoreFailure)) throw e;
    throw new MapDefError(
      e.errno === 7 ? 'E2BIG' : 'EINVAL',
      `map '${mapName}': can't determine ${what} size for type [${t.type}]: -${e.errno}.`,
    );
  }
}

/**
 * parse_btf_map_def: reads the members of a map definition struct into `def`; for a map-in-map,
 * the inner definition into `inner` (undefined while parsing an inner definition). Throws
 * MapDefError where libbpf fails, leaving what was parsed so far in `def`.
 */
function parseMapDef(
  btf: Btf,
  mapName: string,
  defType: CompositeType,
  def: MapDef,
  inner: MapDef | undefined,
): void {
  const isInner = inner === undefined;
  const members = defType.members;
  for (let i = 0; i < members.length; i++) {
    const m = members[i]!;
    switch (m.name) {
      case 'type':
        def.type = fieldInt(btf, mapName, m);
        def.parts.push('type');
        break;
      case 'max_entries':
        def.maxEntries = fieldInt(btf, mapName, m);
        def.parts.push('max_entries');
        break;
      case 'map_flags':
        def.mapFlags = fieldInt(btf, mapName, m);
        def.parts.push('map_flags');
        break;
      case 'numa_node':
        def.numaNode = fieldInt(btf, mapName, m);
        def.parts.push('numa_node');
        break;
      case 'key_size':
      case 'value_size': {
        const what = m.name === 'key_size' ? 'key' : 'value';
        const sz = fieldInt(btf, mapName, m);
        const current = what === 'key' ? def.keySize : def.valueSize;
        if (current !== 0 && current !== sz) {
          throw new MapDefError('EINVAL', `map '${mapName}': conflicting ${what} size ${current} != ${sz}.`);
        }
        if (what === 'key') def.keySize = sz;
        else def.valueSize = sz;
        def.parts.push(m.name);
        break;
      }
      case 'key':
      case 'value': {
        const what = m.name;
        const { size, typeId } = typedSize(btf, mapName, what, m);
        const current = what === 'key' ? def.keySize : def.valueSize;
        if (current !== 0 && current !== size) {
          throw new MapDefError(
            'EINVAL',
            `map '${mapName}': conflicting ${what} size ${current} != ${size}.`,
          );
        }
        if (what === 'key') {
          def.keySize = size;
          def.keyTypeId = typeId;
        } else {
          def.valueSize = size;
          def.valueTypeId = typeId;
        }
        def.parts.push(what);
        break;
      }
      case 'values': {
        const isMapInMap = def.type === MAP_TYPE.ARRAY_OF_MAPS || def.type === MAP_TYPE.HASH_OF_MAPS;
        const isProgArray = def.type === MAP_TYPE.PROG_ARRAY;
        const desc = isMapInMap ? 'map-in-map inner' : 'prog-array value';
        if (isInner)
          throw new MapDefError('ENOTSUP', `map '${mapName}': multi-level inner maps not supported.`);
        if (i !== members.length - 1) {
          throw new MapDefError('EINVAL', `map '${mapName}': '${m.name}' member should be last.`);
        }
        if (!isMapInMap && !isProgArray) {
          throw new MapDefError('ENOTSUP', `map '${mapName}': should be map-in-map or prog-array.`);
        }
        if (def.valueSize !== 0 && def.valueSize !== 4) {
          throw new MapDefError('EINVAL', `map '${mapName}': conflicting value size ${def.valueSize} != 4.`);
        }
        def.valueSize = 4;
        const arr = btf.type(m.type);
        if (arr.kind !== 'array' || arr.nelems !== 0) {
          throw new MapDefError('EINVAL', `map '${mapName}': ${desc} spec is not a zero-sized array.`);
        }
        const ptr = skipMods(btf, arr.type);
        const ptrType = btf.type(ptr);
        if (ptrType.kind !== 'ptr') {
          throw new MapDefError(
            'EINVAL',
            `map '${mapName}': ${desc} def is of unexpected kind ${ptrType.kind}.`,
          );
        }
        const target = btf.type(skipMods(btf, ptrType.type));
        if (isProgArray) {
          if (target.kind !== 'func_proto') {
            throw new MapDefError(
              'EINVAL',
              `map '${mapName}': prog-array value def is of unexpected kind ${target.kind}.`,
            );
          }
          continue;
        }
        if (target.kind !== 'struct') {
          throw new MapDefError(
            'EINVAL',
            `map '${mapName}': map-in-map inner def is of unexpected kind ${target.kind}.`,
          );
        }
        parseMapDef(btf, `${mapName}.inner`, target, inner, undefined);
        def.parts.push('inner_map');
        break;
      }
      case 'pinning': {
        if (isInner) throw new MapDefError('EINVAL', `map '${mapName}': inner def can't be pinned.`);
        const val = fieldInt(btf, mapName, m);
        if (val !== 0 && val !== 1) {
          throw new MapDefError('EINVAL', `map '${mapName}': invalid pinning value ${val}.`);
        }
        def.pinning = val === 1 ? 'by_name' : 'none';
        def.parts.push('pinning');
        break;
      }
      case 'map_extra':
        def.mapExtra = fieldLong(btf, mapName, m);
        def.parts.push('map_extra');
        break;
      default:
        // libbpf opens strictly unless relaxed_maps is set (bpftool, skeletons: strict).
        throw new MapDefError('ENOTSUP', `map '${mapName}': unknown field '${m.name}'.`);
    }
  }
  if (def.type === 0) throw new MapDefError('EINVAL', `map '${mapName}': map type isn't specified.`);
}

export interface MapsResult {
  maps: BpfMap[];
  /** The .maps DATASEC's type id (0 when none). */
  mapsDatasecId: TypeId;
  errors: OpenError[];
}

/** bpf_object__init_user_btf_maps: one map per VAR of the .maps DATASEC, in DATASEC order. */
export function collectBtfMaps(
  elf: Elf,
  btf: Btf | undefined,
  datasecs: FixedDatasecs,
  layout: SectionLayout,
): MapsResult {
  const maps: BpfMap[] = [];
  const errors: OpenError[] = [];
  const result: MapsResult = { maps, mapsDatasecId: 0, errors };
  if (layout.mapsIndex < 0) return result;
  const section = elf.sections[layout.mapsIndex]!;
  const dataSize = section.size;
  const secId = btf === undefined ? undefined : firstDatasec(btf, '.maps');
  if (btf === undefined || secId === undefined) {
    errors.push(openError('maps', 'ENOENT', "DATASEC '.maps' not found."));
    return result;
  }
  result.mapsDatasecId = secId;
  const sec = datasecs.get(secId);
  if (sec === undefined) return result;
  const fail = (errno: OpenError['errno'], message: string): false => {
    errors.push(openError('maps', errno, message));
    return false;
  };
  const initMap = (vi: VarSecinfo, varIdx: number): boolean => {
    const v = btf.type(vi.type);
    const name = v.name;
    if (name === '') return fail('EINVAL', `map #${varIdx}: empty name.`);
    if (vi.offset + vi.size > dataSize) return fail('EINVAL', `map '${name}' BTF data is corrupted.`);
    if (v.kind !== 'var') return fail('EINVAL', `map '${name}': unexpected var kind ${v.kind}.`);
    if (v.linkageRaw !== 1) {
      const linkage = ['static', 'global', 'extern'][v.linkageRaw] ?? 'unknown';
      return fail('EOPNOTSUPP', `map '${name}': unsupported map linkage ${linkage}.`);
    }
    let defId: TypeId;
    try {
      defId = skipModsAndTypedefs(btf, v.type).id;
    } catch (e) {
      if (!(e instanceof CoreFailure)) throw e;
      return fail('EINVAL', `map '${name}': unexpected def kind var.`);
    }
    const defType = btf.type(defId);
    // libbpf prints the VAR's kind here, not the definition's.
    if (defType.kind !== 'struct') return fail('EINVAL', `map '${name}': unexpected def kind var.`);
    if (defType.size > vi.size) return fail('EINVAL', `map '${name}': invalid def size.`);

    const def = emptyDef();
    const inner = emptyDef();
    const map: BpfMap = {
      ...def,
      name,
      kernelName: kernelObjectName(name),
      realName: name,
      kind: 'btf',
      sectionIndex: section.index,
      section: section.name,
      sectionOffset: vi.offset,
      btfVarIndex: varIdx,
    };
    try {
      parseMapDef(btf, name, defType, def, inner);
    } catch (e) {
      if (!(e instanceof MapDefError)) throw e;
      map.error = openError('maps', e.errno, e.message);
      errors.push(map.error);
    }
    finishDef(def);
    Object.assign(map, def);
    if (def.parts.includes('inner_map')) {
      finishDef(inner);
      map.inner = { ...inner, name: `${name}.inner` };
    }
    maps.push(map);
    return true;
  };
  sec.vars.forEach((vi, varIdx) => {
    initMap(vi, varIdx);
  });

  const arenas = maps.filter((m) => m.type === MAP_TYPE.ARENA);
  for (const extra of arenas.slice(1)) {
    errors.push(
      openError(
        'maps',
        'EINVAL',
        `map '${extra.name}': only single ARENA map is supported (map '${arenas[0]!.name}' is also ARENA)`,
      ),
    );
  }
  if (layout.arenaIndex >= 0 && arenas.length === 0) {
    errors.push(
      openError(
        'maps',
        'ENOENT',
        'elf: sec \'.addr_space.1\': to use global __arena variables the ARENA map should be explicitly declared in SEC(".maps")',
      ),
    );
  }
  return result;
}

function firstDatasec(btf: Btf, name: string): TypeId | undefined {
  for (let id = 1; id < btf.typeCount; id++) {
    if (btf.kind(id) === 'datasec' && btf.name(id) === name) return id;
  }
  return undefined;
}

/** A global data map as a BpfMap (BPF_MAP_TYPE_ARRAY of one element holding the section). */
export function globalDataAsMap(elf: Elf, data: GlobalDataMap): BpfMap {
  return {
    ...emptyDef(),
    type: MAP_TYPE.ARRAY,
    typeName: mapTypeName(MAP_TYPE.ARRAY),
    keySize: 4,
    valueSize: data.size,
    valueTypeId: data.btfValueTypeId,
    maxEntries: 1,
    createMaxEntries: 1,
    mapFlags: data.mapFlags,
    name: data.name,
    kernelName: data.kernelName,
    realName: data.realName,
    kind: data.kind,
    sectionIndex: data.sectionIndex,
    section: elf.sections[data.sectionIndex]?.name ?? '',
    sectionOffset: 0,
    data,
  };
}

const LEGACY_DEF_SIZE = 20; // struct bpf_map_def: type, key_size, value_size, max_entries, map_flags

/**
 * Legacy map definitions (SEC("maps"), struct bpf_map_def) as libbpf v0.x read them
 * (bpf_object__init_user_maps): one per non-section symbol of the section, all of the same size.
 */
export function collectLegacyMaps(
  elf: Elf,
  layout: SectionLayout,
  symbols: readonly ElfSymbol[],
): MapsResult {
  const maps: BpfMap[] = [];
  const errors: OpenError[] = [];
  const result: MapsResult = { maps, mapsDatasecId: 0, errors };
  if (layout.legacyMapsIndex < 0) return result;
  const section = elf.sections[layout.legacyMapsIndex]!;
  const data = elf.contents(section);
  const syms = symbols.filter((s) => s.shndx === section.index && s.type !== STT.SECTION);
  if (data.length === 0 || syms.length === 0 || data.length % syms.length !== 0) {
    errors.push(openError('maps', 'EINVAL', 'elf: unable to determine legacy map definition size'));
    return result;
  }
  const defSize = data.length / syms.length;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (const sym of syms) {
    const off = Number(sym.value);
    const map: BpfMap = {
      ...emptyDef(),
      name: sym.name,
      kernelName: kernelObjectName(sym.name),
      realName: sym.name,
      kind: 'legacy',
      sectionIndex: section.index,
      section: section.name,
      sectionOffset: off,
    };
    maps.push(map);
    if (sym.bind === STB.LOCAL) {
      map.error = openError('maps', 'ENOTSUP', `map '${sym.name}' (legacy): static maps are not supported`);
      errors.push(map.error);
      continue;
    }
    if (off + defSize > data.length) {
      map.error = openError('maps', 'EINVAL', `corrupted maps section: last map "${sym.name}" too small`);
      errors.push(map.error);
      continue;
    }
    const fields = [0, 0, 0, 0, 0];
    for (let i = 0; i < 5 && i * 4 + 4 <= defSize; i++)
      fields[i] = view.getUint32(off + i * 4, elf.littleEndian);
    if (
      defSize > LEGACY_DEF_SIZE &&
      data.subarray(off + LEGACY_DEF_SIZE, off + defSize).some((b) => b !== 0)
    ) {
      map.error = openError(
        'maps',
        'EINVAL',
        `maps section: "${sym.name}" has unrecognized, non-zero options`,
      );
      errors.push(map.error);
    }
    const [type, keySize, valueSize, maxEntries, mapFlags] = fields as [
      number,
      number,
      number,
      number,
      number,
    ];
    Object.assign(map, { type, keySize, valueSize, maxEntries, mapFlags });
    map.parts = ['type', 'key_size', 'value_size', 'max_entries', 'map_flags'];
    finishDef(map);
  }
  return result;
}

/**
 * bpf_object__collect_map_relos: the `.values = { … }` slots of map-in-maps and prog arrays, from
 * .rel.maps. `programs` are the object's programs (targets must be entry points, not .text).
 */
export function collectMapRelos(
  elf: Elf,
  btf: Btf | undefined,
  layout: SectionLayout,
  maps: BpfMap[],
  mapsDatasecId: TypeId,
  datasecs: FixedDatasecs,
  programs: readonly {
    name: string;
    sectionIndex: number;
    sectionInsnOffset: number;
    isSubprogram: boolean;
  }[],
  symbols: readonly ElfSymbol[],
): OpenError[] {
  const errors: OpenError[] = [];
  const relSection = elf.sections.find(
    (s) => layout.roles[s.index] === 'relo' && s.info === layout.mapsIndex && layout.mapsIndex >= 0,
  );
  if (relSection === undefined) return errors;
  const fail = (errno: OpenError['errno'], message: string): false => {
    errors.push(openError('relocs', errno, message, relSection.name));
    return false;
  };
  if (btf === undefined || mapsDatasecId === 0) {
    fail('EINVAL', '.maps relocations without a .maps DATASEC');
    return errors;
  }
  const sec = datasecs.get(mapsDatasecId);
  if (sec === undefined) return errors;
  let rels: ReturnType<Elf['relocations']>;
  try {
    rels = elf.relocations(relSection);
  } catch (e) {
    if (!isParseError(e)) throw e;
    fail('LIBBPF_ERRNO__FORMAT', `.maps relocations: ${e.message}`);
    return errors;
  }
  const relocate = (rel: ElfRelocation, i: number): boolean => {
    const sym = symbols[rel.symbol];
    if (sym === undefined)
      return fail('LIBBPF_ERRNO__FORMAT', `.maps relo #${i}: symbol ${rel.symbol} not found`);
    const name = sym.name;
    const rOff = Number(rel.offset);
    let map: BpfMap | undefined;
    let vi: (typeof sec.vars)[number] | undefined;
    for (const m of maps) {
      if (m.kind !== 'btf' || m.btfVarIndex === undefined) continue;
      const v = sec.vars[m.btfVarIndex];
      if (v !== undefined && v.offset <= rOff && rOff + 8 <= v.offset + v.size) {
        map = m;
        vi = v;
        break;
      }
    }
    if (map === undefined || vi === undefined) {
      return fail('EINVAL', `.maps relo #${i}: cannot find map '${name}' at rel->r_offset ${rOff}`);
    }
    const isMapInMap = map.type === MAP_TYPE.ARRAY_OF_MAPS || map.type === MAP_TYPE.HASH_OF_MAPS;
    const isProgArray = map.type === MAP_TYPE.PROG_ARRAY;
    let kind: InitialSlot['kind'];
    if (isMapInMap) {
      if (sym.shndx !== layout.mapsIndex) {
        return fail('LIBBPF_ERRNO__RELOC', `.maps relo #${i}: '${name}' isn't a BTF-defined map`);
      }
      if (map.type === MAP_TYPE.HASH_OF_MAPS && map.keySize !== 4) {
        return fail('EINVAL', `.maps relo #${i}: hash-of-maps '${map.name}' should have key size 4.`);
      }
      if (!maps.some((m) => (name.startsWith('.') ? m.realName === name : m.name === name))) {
        return fail('ESRCH', `.maps relo #${i}: '${name}' isn't a valid map reference`);
      }
      kind = 'map';
    } else if (isProgArray) {
      const prog = programs.find((p) => p.name === name);
      if (prog === undefined)
        return fail('ESRCH', `.maps relo #${i}: '${name}' isn't a valid program reference`);
      if (
        prog.sectionIndex !== sym.shndx ||
        BigInt(prog.sectionInsnOffset * 8) !== sym.value ||
        prog.isSubprogram
      ) {
        return fail('LIBBPF_ERRNO__RELOC', `.maps relo #${i}: '${name}' isn't an entry-point program`);
      }
      kind = 'prog';
    } else {
      return fail('EINVAL', `.maps relo #${i}: map '${map.name}' is neither a map-in-map nor a prog array`);
    }
    // libbpf fails silently (-EINVAL) on the checks below.
    const v = btf.type(vi.type);
    let def: ReturnType<Btf['type']> | undefined;
    try {
      def = v.kind === 'var' ? skipModsAndTypedefs(btf, v.type).type : undefined;
    } catch (e) {
      if (!(e instanceof CoreFailure)) throw e;
    }
    const last = def?.kind === 'struct' ? def.members[def.members.length - 1] : undefined;
    if (last === undefined || last.name !== 'values') {
      return fail('EINVAL', `.maps relo #${i}: map '${map.name}' has no trailing 'values' member`);
    }
    const moff = Math.floor(last.bitOffset / 8);
    if (rOff - vi.offset < moff || (rOff - vi.offset - moff) % 8 !== 0) {
      return fail('EINVAL', `.maps relo #${i}: offset ${rOff} is not a 'values' slot of map '${map.name}'`);
    }
    const slot = (rOff - vi.offset - moff) / 8;
    map.initialSlots ??= [];
    const existing = map.initialSlots.findIndex((s) => s.slot === slot);
    if (existing >= 0) map.initialSlots.splice(existing, 1);
    map.initialSlots.push({ slot, kind, name });
    map.initialSlots.sort((a, b) => a.slot - b.slot);
    return true;
  };
  rels.forEach((rel, i) => {
    relocate(rel, i);
  });
  return errors;
}
