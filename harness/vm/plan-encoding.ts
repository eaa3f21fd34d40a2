/**
 * The binary encoding of a LoadPlan (plan.ts) that the in-VM agent (agent/corematrix-agent.c)
 * reads from the initramfs. Simple enough for C to parse with memcpy and no library: versioned,
 * little-endian, counts and length-prefixed blobs, no alignment, a CRC32 at the end.
 *
 * Layout, version 1 (every integer little-endian; `str` and `blob` are a u32 byte length followed
 * by that many bytes, strings in UTF-8 without a NUL):
 *
 *   file     := magic[8] = "CMXPLAN\0"
 *               u32 version                    PLAN_VERSION (1)
 *               u32 total_size                 bytes of the whole file, trailing CRC included
 *               str kernel
 *               u32 object_count, object[object_count]
 *               u32 crc32                      IEEE CRC32 (zlib's) of every byte before it
 *   object   := str name
 *               u32 flags                      bit 0: has BTF
 *               blob btf                       empty when absent
 *               u32 map_count, map[map_count]
 *               u32 program_count, program[program_count]
 *   map      := str name                       at most 15 bytes
 *               u32 type, key_size, value_size, max_entries, map_flags
 *               u32 present                    bit 0 numa_node, bit 1 map_extra, bit 2 inner_map,
 *                                              bit 3 initial_value, bit 4 freeze
 *               u32 numa_node                  0 when absent
 *               u64 map_extra                  0 when absent
 *               u32 btf_key_type_id, btf_value_type_id
 *               u32 inner_map                  index in the object's maps; 0 when absent
 *               blob initial_value             empty when absent
 *               u32 slot_count, slot[slot_count]
 *   slot     := u32 key, u32 kind (1 = map, 2 = program), u32 index (in the object's maps/programs)
 *   program  := str name, str section
 *               u32 type, expected_attach_type, attach_btf_id, prog_flags, kern_version
 *               str license
 *               blob insns                     8 bytes per instruction
 *               u32 ref_count, ref[ref_count]
 *               u32 used_map_count, u32 map_index[used_map_count]
 *               u32 present                    bit 0 func_info, bit 1 line_info
 *               u32 func_info_rec_size, blob func_info   (0 and empty when absent)
 *               u32 line_info_rec_size, blob line_info
 *   ref      := u32 insn, u32 map, u32 kind (1 = fd, 2 = value), u32 offset
 *
 * The same description is in agent/README.md; the two must change together (with PLAN_VERSION).
 */
import { crc32 } from 'node:zlib';
import { CorematrixError } from '../errors.js';
import {
  type LoadPlan,
  type MapReference,
  PLAN_VERSION,
  type PlannedMap,
  type PlannedObject,
  type PlannedProgram,
} from './plan.js';

export const PLAN_MAGIC = 'CMXPLAN\0';

const OBJECT_HAS_BTF = 1;
const MAP_NUMA_NODE = 1;
const MAP_EXTRA = 2;
const MAP_INNER_MAP = 4;
const MAP_INITIAL_VALUE = 8;
const MAP_FREEZE = 16;
const PROG_FUNC_INFO = 1;
const PROG_LINE_INFO = 2;
const SLOT_MAP = 1;
const SLOT_PROGRAM = 2;
const REF_FD = 1;
const REF_VALUE = 2;
/** BPF_OBJ_NAME_LEN - 1: the kernel wants map and program names NUL-terminated in 16 bytes. */
const MAX_MAP_NAME = 15;

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

class Writer {
  private buf = new Uint8Array(4096);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u32(value: number, what: string): void {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
      throw invalid(`${what} = ${value} is not a u32`);
    }
    this.reserve(4);
    this.view.setUint32(this.length, value, true);
    this.length += 4;
  }

  u64(value: bigint, what: string): void {
    if (value < 0n || value > 0xffffffffffffffffn) throw invalid(`${what} = ${value} is not a u64`);
    this.reserve(8);
    this.view.setBigUint64(this.length, value, true);
    this.length += 8;
  }

  bytes(bytes: Uint8Array): void {
    this.reserve(bytes.length);
    this.buf.set(bytes, this.length);
    this.length += bytes.length;
  }

  blob(bytes: Uint8Array | undefined, what: string): void {
    const b = bytes ?? new Uint8Array(0);
    this.u32(b.length, `${what} length`);
    this.bytes(b);
  }

  str(s: string, what: string): void {
    this.blob(utf8.encode(s), what);
  }

  patchU32(at: number, value: number): void {
    this.view.setUint32(at, value, true);
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

function invalid(message: string): CorematrixError {
  return new CorematrixError('usage', `load plan: ${message}`);
}

/** Encodes a plan for the agent. Throws a CorematrixError ('usage') for a plan the agent could not use. */
export function encodePlan(plan: LoadPlan): Uint8Array {
  if (plan.version !== PLAN_VERSION) throw invalid(`version ${plan.version}, expected ${PLAN_VERSION}`);
  const w = new Writer();
  w.bytes(utf8.encode(PLAN_MAGIC));
  w.u32(PLAN_VERSION, 'version');
  const sizeAt = w.length;
  w.u32(0, 'total size');
  w.str(plan.kernel, 'kernel');
  w.u32(plan.objects.length, 'object count');
  for (const object of plan.objects) encodeObject(w, object);
  w.patchU32(sizeAt, w.length + 4);
  const body = w.finish();
  const out = new Uint8Array(body.length + 4);
  out.set(body);
  new DataView(out.buffer).setUint32(body.length, crc32(body), true);
  return out;
}

function encodeObject(w: Writer, object: PlannedObject): void {
  const where = `object ${object.name}`;
  w.str(object.name, `${where}: name`);
  w.u32(object.btf === undefined ? 0 : OBJECT_HAS_BTF, `${where}: flags`);
  w.blob(object.btf, `${where}: btf`);
  w.u32(object.maps.length, `${where}: map count`);
  for (const map of object.maps) encodeMap(w, map, object, `${where}: map ${map.name}`);
  w.u32(object.programs.length, `${where}: program count`);
  for (const program of object.programs) {
    encodeProgram(w, program, object, `${where}: program ${program.name}`);
  }
}

function checkIndex(index: number, count: number, what: string): void {
  if (!Number.isInteger(index) || index < 0 || index >= count) {
    throw invalid(`${what} ${index} is out of range (0..${count - 1})`);
  }
}

function encodeMap(w: Writer, map: PlannedMap, object: PlannedObject, where: string): void {
  const name = utf8.encode(map.name);
  if (name.length > MAX_MAP_NAME) throw invalid(`${where}: name longer than ${MAX_MAP_NAME} bytes`);
  w.blob(name, `${where}: name`);
  w.u32(map.type, `${where}: type`);
  w.u32(map.keySize, `${where}: key size`);
  w.u32(map.valueSize, `${where}: value size`);
  w.u32(map.maxEntries, `${where}: max entries`);
  w.u32(map.flags, `${where}: flags`);
  let present = 0;
  if (map.numaNode !== undefined) present |= MAP_NUMA_NODE;
  if (map.mapExtra !== undefined) present |= MAP_EXTRA;
  if (map.innerMap !== undefined) present |= MAP_INNER_MAP;
  if (map.initialValue !== undefined) present |= MAP_INITIAL_VALUE;
  if (map.freeze) present |= MAP_FREEZE;
  w.u32(present, `${where}: present`);
  w.u32(map.numaNode ?? 0, `${where}: numa node`);
  w.u64(map.mapExtra ?? 0n, `${where}: map extra`);
  w.u32(map.btfKeyTypeId, `${where}: btf key type id`);
  w.u32(map.btfValueTypeId, `${where}: btf value type id`);
  if (map.innerMap !== undefined) checkIndex(map.innerMap, object.maps.length, `${where}: inner map`);
  w.u32(map.innerMap ?? 0, `${where}: inner map`);
  w.blob(map.initialValue, `${where}: initial value`);
  const slots = map.initialSlots ?? [];
  w.u32(slots.length, `${where}: slot count`);
  for (const slot of slots) {
    w.u32(slot.key, `${where}: slot key`);
    if ((slot.map === undefined) === (slot.program === undefined)) {
      throw invalid(`${where}: slot ${slot.key} must name exactly one of a map and a program`);
    }
    if (slot.map !== undefined) {
      checkIndex(slot.map, object.maps.length, `${where}: slot ${slot.key} map`);
      w.u32(SLOT_MAP, `${where}: slot kind`);
      w.u32(slot.map, `${where}: slot map`);
    } else {
      checkIndex(slot.program!, object.programs.length, `${where}: slot ${slot.key} program`);
      w.u32(SLOT_PROGRAM, `${where}: slot kind`);
      w.u32(slot.program!, `${where}: slot program`);
    }
  }
}

function encodeProgram(w: Writer, program: PlannedProgram, object: PlannedObject, where: string): void {
  w.str(program.name, `${where}: name`);
  w.str(program.section, `${where}: section`);
  w.u32(program.type, `${where}: type`);
  w.u32(program.expectedAttachType, `${where}: expected attach type`);
  w.u32(program.attachBtfId, `${where}: attach btf id`);
  w.u32(program.flags, `${where}: flags`);
  w.u32(program.kernVersion, `${where}: kern version`);
  w.str(program.license, `${where}: license`);
  if (program.insns.length % 8 !== 0) throw invalid(`${where}: instructions are not a multiple of 8 bytes`);
  const insnCount = program.insns.length / 8;
  w.blob(program.insns, `${where}: insns`);
  w.u32(program.mapReferences.length, `${where}: map reference count`);
  for (const ref of program.mapReferences) {
    if (!Number.isInteger(ref.insn) || ref.insn < 0 || ref.insn + 1 >= insnCount) {
      throw invalid(`${where}: map reference at instruction ${ref.insn} is not inside the program`);
    }
    checkIndex(ref.map, object.maps.length, `${where}: map reference map`);
    w.u32(ref.insn, `${where}: map reference insn`);
    w.u32(ref.map, `${where}: map reference map`);
    w.u32(ref.kind === 'fd' ? REF_FD : REF_VALUE, `${where}: map reference kind`);
    w.u32(ref.offset, `${where}: map reference offset`);
  }
  w.u32(program.maps.length, `${where}: used map count`);
  for (const m of program.maps) {
    checkIndex(m, object.maps.length, `${where}: used map`);
    w.u32(m, `${where}: used map`);
  }
  let present = 0;
  if (program.funcInfo !== undefined) present |= PROG_FUNC_INFO;
  if (program.lineInfo !== undefined) present |= PROG_LINE_INFO;
  w.u32(present, `${where}: present`);
  for (const [info, what] of [
    [program.funcInfo, 'func info'],
    [program.lineInfo, 'line info'],
  ] as const) {
    if (info !== undefined && (info.recordSize === 0 || info.records.length % info.recordSize !== 0)) {
      throw invalid(`${where}: ${what} is not a whole number of ${info.recordSize}-byte records`);
    }
    w.u32(info?.recordSize ?? 0, `${where}: ${what} record size`);
    w.blob(info?.records, `${where}: ${what}`);
  }
}

class Reader {
  private readonly view: DataView;
  offset = 0;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private need(n: number, what: string): void {
    if (this.offset + n > this.bytes.length) {
      throw new CorematrixError('parse', `load plan: truncated at byte ${this.offset} reading ${what}`);
    }
  }

  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.offset, true);
    this.offset += 4;
    return v;
  }

  u64(what: string): bigint {
    this.need(8, what);
    const v = this.view.getBigUint64(this.offset, true);
    this.offset += 8;
    return v;
  }

  blob(what: string): Uint8Array {
    const n = this.u32(`${what} length`);
    this.need(n, what);
    const b = this.bytes.slice(this.offset, this.offset + n);
    this.offset += n;
    return b;
  }

  str(what: string): string {
    const b = this.blob(what);
    try {
      return utf8Decoder.decode(b);
    } catch {
      throw new CorematrixError('parse', `load plan: ${what} is not UTF-8`);
    }
  }

  count(what: string, minBytesEach: number): number {
    const n = this.u32(what);
    if (n * minBytesEach > this.bytes.length - this.offset) {
      throw new CorematrixError('parse', `load plan: ${what} ${n} does not fit in the rest of the file`);
    }
    return n;
  }
}

/** Decodes what encodePlan wrote (for tests and tools); throws a CorematrixError ('parse') on bad input. */
export function decodePlan(bytes: Uint8Array): LoadPlan {
  const fail = (m: string) => new CorematrixError('parse', `load plan: ${m}`);
  if (bytes.length < 24) throw fail(`${bytes.length} bytes is too short`);
  const magic = new TextDecoder('latin1').decode(bytes.subarray(0, 8));
  if (magic !== PLAN_MAGIC) throw fail('bad magic');
  const r = new Reader(bytes);
  r.offset = 8;
  const version = r.u32('version');
  if (version !== PLAN_VERSION) throw fail(`version ${version}, expected ${PLAN_VERSION}`);
  const size = r.u32('total size');
  if (size !== bytes.length) throw fail(`total size ${size} but ${bytes.length} bytes given`);
  const stored = new DataView(bytes.buffer, bytes.byteOffset + size - 4, 4).getUint32(0, true);
  if (stored !== crc32(bytes.subarray(0, size - 4))) throw fail('CRC32 mismatch');
  const body = new Reader(bytes.subarray(0, size - 4));
  body.offset = r.offset;
  const kernel = body.str('kernel');
  const objects: PlannedObject[] = [];
  const objectCount = body.count('object count', 16);
  for (let i = 0; i < objectCount; i++) objects.push(decodeObject(body));
  if (body.offset !== size - 4) throw fail(`${size - 4 - body.offset} trailing bytes`);
  return { version: PLAN_VERSION, kernel, objects };
}

function decodeObject(r: Reader): PlannedObject {
  const name = r.str('object name');
  const flags = r.u32('object flags');
  const btf = r.blob('object btf');
  const maps: PlannedMap[] = [];
  const mapCount = r.count('map count', 60);
  for (let i = 0; i < mapCount; i++) {
    const map: PlannedMap = {
      name: r.str('map name'),
      type: r.u32('map type'),
      keySize: r.u32('key size'),
      valueSize: r.u32('value size'),
      maxEntries: r.u32('max entries'),
      flags: r.u32('map flags'),
      btfKeyTypeId: 0,
      btfValueTypeId: 0,
      freeze: false,
    };
    const present = r.u32('map present');
    const numaNode = r.u32('numa node');
    const mapExtra = r.u64('map extra');
    map.btfKeyTypeId = r.u32('btf key type id');
    map.btfValueTypeId = r.u32('btf value type id');
    const innerMap = r.u32('inner map');
    const initialValue = r.blob('initial value');
    map.freeze = (present & MAP_FREEZE) !== 0;
    if (present & MAP_NUMA_NODE) map.numaNode = numaNode;
    if (present & MAP_EXTRA) map.mapExtra = mapExtra;
    if (present & MAP_INNER_MAP) map.innerMap = innerMap;
    if (present & MAP_INITIAL_VALUE) map.initialValue = initialValue;
    const slotCount = r.count('slot count', 12);
    if (slotCount > 0) {
      map.initialSlots = [];
      for (let s = 0; s < slotCount; s++) {
        const key = r.u32('slot key');
        const kind = r.u32('slot kind');
        const index = r.u32('slot index');
        if (kind === SLOT_MAP) map.initialSlots.push({ key, map: index });
        else if (kind === SLOT_PROGRAM) map.initialSlots.push({ key, program: index });
        else throw new CorematrixError('parse', `load plan: slot kind ${kind}`);
      }
    }
    maps.push(map);
  }
  const programs: PlannedProgram[] = [];
  const programCount = r.count('program count', 64);
  for (let i = 0; i < programCount; i++) {
    const program: PlannedProgram = {
      name: r.str('program name'),
      section: r.str('section'),
      type: r.u32('program type'),
      expectedAttachType: r.u32('expected attach type'),
      attachBtfId: r.u32('attach btf id'),
      flags: r.u32('program flags'),
      kernVersion: r.u32('kern version'),
      license: r.str('license'),
      insns: r.blob('insns'),
      mapReferences: [],
      maps: [],
    };
    const refCount = r.count('map reference count', 16);
    for (let j = 0; j < refCount; j++) {
      const insn = r.u32('reference insn');
      const map = r.u32('reference map');
      const kind = r.u32('reference kind');
      const offset = r.u32('reference offset');
      if (kind !== REF_FD && kind !== REF_VALUE) {
        throw new CorematrixError('parse', `load plan: map reference kind ${kind}`);
      }
      const ref: MapReference = { insn, map, kind: kind === REF_FD ? 'fd' : 'value', offset };
      program.mapReferences.push(ref);
    }
    const usedCount = r.count('used map count', 4);
    for (let j = 0; j < usedCount; j++) program.maps.push(r.u32('used map'));
    const present = r.u32('program present');
    const funcRecordSize = r.u32('func info record size');
    const funcRecords = r.blob('func info');
    const lineRecordSize = r.u32('line info record size');
    const lineRecords = r.blob('line info');
    if (present & PROG_FUNC_INFO) program.funcInfo = { recordSize: funcRecordSize, records: funcRecords };
    if (present & PROG_LINE_INFO) program.lineInfo = { recordSize: lineRecordSize, records: lineRecords };
    programs.push(program);
  }
  const object: PlannedObject = { name, maps, programs };
  if (flags & OBJECT_HAS_BTF) object.btf = btf;
  return object;
}
