import type { Btf } from '../btf/btf.js';
import {
  BTF_HEADER_LEN,
  BTF_MAGIC,
  BTF_VERSION,
  infoKind,
  infoVlen,
  KIND,
  makeInfo,
  trailingSize,
} from '../btf/wire.js';
import { fixupDatasecs } from '../object/data.js';
import type { BpfExtern } from '../object/externs.js';
import type { BpfObject } from '../object/object.js';
import type { KernelFeatures } from './features.js';

/**
 * The object's BTF as libbpf hands it to BPF_BTF_LOAD for a given kernel:
 *
 * - open time (bpf_object__collect_externs, bpf_object_fixup_btf): a `dummy_ksym` VAR when .ksyms
 *   holds kfuncs; .ksyms entries turned into 4-byte allocated variables (kfuncs global, their
 *   unnamed parameters named); .kconfig variables allocated at their offsets in the .kconfig map;
 *   every other DATASEC's size and variable offsets from the ELF (clang leaves them 0), hidden
 *   variables made static, variables sorted by offset;
 * - prepare time (bpf_object__sanitize_and_load_btf): hidden global subprograms' FUNCs made
 *   static, then bpf_object__sanitize_btf for what the kernel lacks (see features.ts).
 *
 * libbpf edits the blob in place and appends new types and strings, so every existing type id and
 * string offset is kept: func_info and line_info refer to both. This module does the same on a
 * copy, record by record (BtfBuilder would lay the strings out anew and break line_info's offsets).
 */

export interface LoadBtfResult {
  bytes: Uint8Array;
  /** What was sanitized, e.g. "3 DECL_TAG → INT" (for reports and tests). */
  sanitized: string[];
}

const BTF_VAR_STATIC = 0;
const BTF_VAR_GLOBAL_ALLOCATED = 1;
const BTF_FUNC_STATIC = 0;
const BTF_FUNC_GLOBAL = 1;

/** A mutable copy of a BTF blob: one word array per type, the string bytes, appended strings. */
class RawBtf {
  /** records[id - 1]: the record's 32-bit words. */
  readonly records: Uint32Array[] = [];
  private strings: Uint8Array;
  private strLen: number;
  private readonly stringIndex = new Map<string, number>();

  constructor(readonly btf: Btf) {
    const raw = btf.raw;
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const le = btf.littleEndian;
    const { hdrLen, typeOff, typeLen, strOff, strLen } = btf.header;
    let p = hdrLen + typeOff;
    const end = p + typeLen;
    while (p < end) {
      const info = view.getUint32(p + 4, le);
      const words = 3 + trailingSize(infoKind(info), infoVlen(info)) / 4;
      const rec = new Uint32Array(words);
      for (let i = 0; i < words; i++) rec[i] = view.getUint32(p + i * 4, le);
      this.records.push(rec);
      p += words * 4;
    }
    const s = hdrLen + strOff;
    this.strings = Uint8Array.from(raw.subarray(s, s + strLen));
    this.strLen = strLen;
  }

  get typeCount(): number {
    return this.records.length + 1;
  }

  rec(id: number): Uint32Array {
    const r = this.records[id - 1];
    if (r === undefined) throw new RangeError(`no BTF type [${id}]`);
    return r;
  }

  kind(id: number): number {
    return id === 0 ? 0 : infoKind(this.rec(id)[1]!);
  }

  vlen(id: number): number {
    return infoVlen(this.rec(id)[1]!);
  }

  name(off: number): string {
    const end = this.strings.indexOf(0, off);
    return new TextDecoder().decode(this.strings.subarray(off, end < 0 ? this.strLen : end));
  }

  /** btf__add_str: an existing string's offset, else appended. */
  addString(s: string): number {
    const known = this.stringIndex.get(s) ?? this.btf.strings.find(s);
    if (known !== undefined) return known;
    const bytes = new TextEncoder().encode(s);
    if (this.strLen + bytes.length + 1 > this.strings.length) {
      const grown = new Uint8Array((this.strLen + bytes.length + 1) * 2);
      grown.set(this.strings.subarray(0, this.strLen));
      this.strings = grown;
    }
    const off = this.strLen;
    this.strings.set(bytes, off);
    this.strings[off + bytes.length] = 0;
    this.strLen += bytes.length + 1;
    this.stringIndex.set(s, off);
    return off;
  }

  /** Rewrites the string at `off` in place, byte by byte (libbpf edits names this way). */
  editString(off: number, fn: (byte: number, index: number) => number): void {
    for (let i = off; i < this.strLen && this.strings[i] !== 0; i++)
      this.strings[i] = fn(this.strings[i]!, i - off);
  }

  add(words: number[]): number {
    this.records.push(Uint32Array.from(words));
    return this.records.length;
  }

  /** btf__find_by_name_kind over the current types. */
  findByNameKind(name: string, kind: number): number | undefined {
    for (let id = 1; id < this.typeCount; id++) {
      if (this.kind(id) === kind && this.name(this.rec(id)[0]!) === name) return id;
    }
    return undefined;
  }

  encode(): Uint8Array {
    const typeLen = this.records.reduce((n, r) => n + r.length * 4, 0);
    const out = new Uint8Array(BTF_HEADER_LEN + typeLen + this.strLen);
    const view = new DataView(out.buffer);
    const le = this.btf.littleEndian;
    view.setUint16(0, BTF_MAGIC, le);
    view.setUint8(2, BTF_VERSION);
    view.setUint8(3, 0);
    view.setUint32(4, BTF_HEADER_LEN, le);
    view.setUint32(8, 0, le);
    view.setUint32(12, typeLen, le);
    view.setUint32(16, typeLen, le);
    view.setUint32(20, this.strLen, le);
    let p = BTF_HEADER_LEN;
    for (const r of this.records) {
      for (const w of r) {
        view.setUint32(p, w, le);
        p += 4;
      }
    }
    out.set(this.strings.subarray(0, this.strLen), p);
    return out;
  }
}

/** find_int_btf_id: the first INT of 32 bits. */
function findIntId(raw: RawBtf): number {
  for (let id = 1; id < raw.typeCount; id++) {
    if (raw.kind(id) === KIND.INT && (raw.rec(id)[3]! & 0xff) === 32) return id;
  }
  return 0;
}

function sortSecinfos(rec: Uint32Array): void {
  const n = infoVlen(rec[1]!);
  const entries: [number, number, number][] = [];
  for (let i = 0; i < n; i++) entries.push([rec[3 + i * 3]!, rec[4 + i * 3]!, rec[5 + i * 3]!]);
  entries.sort((a, b) => a[1] - b[1]);
  entries.forEach((e, i) => {
    rec.set(e, 3 + i * 3);
  });
}

/** The object's BTF after libbpf's open-time fixups (what bpf_object__open leaves in obj->btf). */
function openFixups(obj: BpfObject, raw: RawBtf): void {
  const btf = obj.btf!;
  const externs: readonly BpfExtern[] = obj.externs;
  // add_dummy_ksym_var
  const ksymsId = raw.findByNameKind('.ksyms', KIND.DATASEC);
  let dummyVarId = 0;
  if (ksymsId !== undefined) {
    const sec = raw.rec(ksymsId);
    const n = infoVlen(sec[1]!);
    let hasFunc = false;
    for (let i = 0; i < n; i++) if (raw.kind(sec[3 + i * 3]!) === KIND.FUNC) hasFunc = true;
    if (hasFunc) {
      dummyVarId = raw.add([
        raw.addString('dummy_ksym'),
        makeInfo(KIND.VAR, 0, false),
        findIntId(raw),
        BTF_VAR_GLOBAL_ALLOCATED,
      ]);
    }
  }
  // bpf_object__collect_externs: .ksyms entries become 4-byte allocated variables.
  if (ksymsId !== undefined && externs.some((e) => e.type === 'ksym')) {
    const intId = findIntId(raw);
    const sec = raw.rec(ksymsId);
    const n = infoVlen(sec[1]!);
    const dummyName = dummyVarId === 0 ? 0 : raw.rec(dummyVarId)[0]!;
    for (let i = 0; i < n; i++) {
      const vid = sec[3 + i * 3]!;
      const vt = raw.rec(vid);
      if (infoKind(vt[1]!) === KIND.FUNC) {
        const proto = raw.rec(vt[2]!);
        const params = infoVlen(proto[1]!);
        for (let j = 0; j < params; j++) {
          if (proto[4 + j * 2] !== 0 && proto[3 + j * 2] === 0) proto[3 + j * 2] = dummyName;
        }
        sec[3 + i * 3] = dummyVarId;
        vt[1] = ((vt[1]! & ~0xffff) | BTF_FUNC_GLOBAL) >>> 0;
      } else {
        vt[3] = BTF_VAR_GLOBAL_ALLOCATED;
        vt[2] = intId;
      }
      sec[4 + i * 3] = i * 4;
      sec[5 + i * 3] = 4;
    }
    sec[2] = n * 4;
  }
  const kconfigId = raw.findByNameKind('.kconfig', KIND.DATASEC);
  if (kconfigId !== undefined && externs.some((e) => e.type === 'kconfig')) {
    const sec = raw.rec(kconfigId);
    const n = infoVlen(sec[1]!);
    let size = 0;
    for (const e of externs) if (e.kconfig !== undefined) size = e.kconfig.dataOffset + e.kconfig.size;
    sec[2] = size;
    for (let i = 0; i < n; i++) {
      const vt = raw.rec(sec[3 + i * 3]!);
      const ext = externs.find((e) => e.name === raw.name(vt[0]!) && e.type === 'kconfig');
      if (ext === undefined) continue;
      vt[3] = BTF_VAR_GLOBAL_ALLOCATED;
      sec[4 + i * 3] = ext.kconfig!.dataOffset;
    }
  }
  // bpf_object_fixup_btf
  const { datasecs } = fixupDatasecs(obj.elf, btf, obj.elf.symbols());
  for (const [id, fixed] of datasecs) {
    const sec = raw.rec(id);
    if (fixed.name === '.kconfig' || fixed.name === '.ksyms') {
      sortSecinfos(sec);
      continue;
    }
    sec[2] = fixed.size;
    fixed.vars.forEach((v, i) => {
      sec.set([v.type, v.offset, v.size], 3 + i * 3);
    });
    for (const varId of fixed.staticVars) raw.rec(varId)[3] = BTF_VAR_STATIC;
  }
}

/**
 * The BTF blob BPF_BTF_LOAD gets on this kernel; undefined when the object has no BTF or the
 * kernel takes none.
 */
export function btfForLoad(obj: BpfObject, features: KernelFeatures): LoadBtfResult | undefined {
  if (obj.btf === undefined || !features.btf) return undefined;
  const raw = new RawBtf(obj.btf);
  openFixups(obj, raw);

  // Hidden (visibility("hidden")) global subprograms: FUNC made static.
  for (const prog of obj.programs) {
    if (!prog.markBtfStatic || !prog.isSubprogram) continue;
    for (let id = 1; id < raw.typeCount; id++) {
      const r = raw.rec(id);
      if (infoKind(r[1]!) !== KIND.FUNC || infoVlen(r[1]!) !== BTF_FUNC_GLOBAL) continue;
      if (raw.name(r[0]!) !== prog.name) continue;
      r[1] = makeInfo(KIND.FUNC, BTF_FUNC_STATIC, false);
      break;
    }
  }
  return sanitize(raw, features);
}

/** bpf_object__sanitize_btf. */
function sanitize(raw: RawBtf, f: KernelFeatures): LoadBtfResult {
  const counts = new Map<string, number>();
  const note = (what: string) => counts.set(what, (counts.get(what) ?? 0) + 1);
  let enum64Placeholder = 0;
  for (let id = 1; id < raw.typeCount; id++) {
    const t = raw.rec(id);
    const kind = infoKind(t[1]!);
    const vlen = infoVlen(t[1]!);
    if ((!f.btfDatasec && kind === KIND.VAR) || (!f.btfDeclTag && kind === KIND.DECL_TAG)) {
      t[1] = makeInfo(KIND.INT, 0, false);
      t[2] = 1;
      t[3] = 8; // BTF_INT_ENC(0, 0, 8)
      note(kind === KIND.VAR ? 'VAR → INT' : 'DECL_TAG → INT');
    } else if (!f.btfDatasec && kind === KIND.DATASEC) {
      raw.editString(t[0]!, (b) => (b === 0x2e || b === 0x3f ? 0x5f : b));
      t[1] = makeInfo(KIND.STRUCT, vlen, false);
      for (let j = 0; j < vlen; j++) {
        const type = t[3 + j * 3]!;
        const offset = t[4 + j * 3]!;
        t[3 + j * 3] = raw.rec(type)[0]!;
        t[4 + j * 3] = type;
        t[5 + j * 3] = (offset * 8) >>> 0;
      }
      note('DATASEC → STRUCT');
    } else if (!f.btfQmarkDatasec && kind === KIND.DATASEC && raw.name(t[0]!).startsWith('?')) {
      raw.editString(t[0]!, (b, i) => (i === 0 ? 0x5f : b));
      note("DATASEC '?' → '_'");
    } else if (!f.btfFunc && kind === KIND.FUNC_PROTO) {
      t[1] = makeInfo(KIND.ENUM, vlen, false);
      t[2] = 4;
      note('FUNC_PROTO → ENUM');
    } else if (!f.btfFunc && kind === KIND.FUNC) {
      t[1] = makeInfo(KIND.TYPEDEF, 0, false);
      note('FUNC → TYPEDEF');
    } else if (!f.btfGlobalFunc && kind === KIND.FUNC) {
      if (vlen !== BTF_FUNC_STATIC) note('global FUNC → static');
      t[1] = makeInfo(KIND.FUNC, 0, false);
    } else if (!f.btfFloat && kind === KIND.FLOAT) {
      t[0] = 0;
      t[1] = makeInfo(KIND.STRUCT, 0, false);
      note('FLOAT → STRUCT');
    } else if (!f.btfTypeTag && kind === KIND.TYPE_TAG) {
      t[0] = 0;
      t[1] = makeInfo(KIND.CONST, 0, false);
      note('TYPE_TAG → CONST');
    } else if (!f.btfEnum64 && kind === KIND.ENUM) {
      if (t[1]! >>> 31 === 1) note('signed ENUM → unsigned');
      t[1] = makeInfo(KIND.ENUM, vlen, false);
    } else if (!f.btfEnum64 && kind === KIND.ENUM64) {
      if (enum64Placeholder === 0) {
        // btf__add_int(btf, "enum64_placeholder", 1, 0)
        enum64Placeholder = raw.add([
          raw.addString('enum64_placeholder'),
          makeInfo(KIND.INT, 0, false),
          1,
          8,
        ]);
      }
      t[1] = makeInfo(KIND.UNION, vlen, false);
      for (let j = 0; j < vlen; j++) {
        t[4 + j * 3] = enum64Placeholder;
        t[5 + j * 3] = 0;
      }
      note('ENUM64 → UNION');
    }
  }
  return { bytes: raw.encode(), sanitized: [...counts].map(([what, n]) => `${n} ${what}`) };
}
