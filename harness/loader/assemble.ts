import type { ExtInfo } from '../object/btf-ext.js';
import type { InsnReloc, InsnRelocKind } from '../object/insn-relocs.js';
import { type BpfObject, type BpfProgram, programAt } from '../object/object.js';
import type { MapReference } from '../vm/plan.js';
import {
  BPF_FUNC,
  BPF_PSEUDO_BTF_ID,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_FUNC,
  BPF_PSEUDO_KFUNC_CALL,
  BPF_PSEUDO_MAP_FD,
  BPF_PSEUDO_MAP_VALUE,
} from './uapi.js';

/**
 * Program assembly as bpf_object__relocate does it for one entry program: the subprograms it uses
 * (bpf-to-bpf calls and callbacks, transitively) appended in libbpf's order, call and callback
 * offsets fixed, func_info/line_info gathered and shifted to the final layout, then the data
 * relocations (maps, global data, externs, kfuncs) applied to the whole.
 */

const INSN = 8;
const BPF_JMP_CALL = 0x85;
const BPF_LD_IMM64 = 0x18;
/** libbpf's POISON_CALL_KFUNC_BASE: an unresolved weak kfunc call becomes helper #2002000000+N. */
export const POISON_CALL_KFUNC_BASE = 2002000000;

/** What an extern resolved to on the kernel under test (bpf_object__resolve_externs). */
export interface ResolvedExtern {
  /** ext->is_set. */
  set: boolean;
  /** For typed ksyms and kfuncs: the id in the kernel's vmlinux BTF. */
  btfId?: number;
  /** For typeless ksyms: the kallsyms address. */
  addr?: bigint;
}

export interface AssembleContext {
  obj: BpfObject;
  /** Executable sections after CO-RE relocation (sections without CO-RE patches come from the ELF). */
  sections: ReadonlyMap<number, Uint8Array>;
  /** Index in `obj.externs` → resolution. */
  externs: readonly ResolvedExtern[];
  /** Index of the .kconfig map in the object's maps (-1 when none). */
  kconfigMap: number;
  /** Kernel takes func_info/line_info (FEAT_BTF_FUNC) and the object has .BTF.ext. */
  btfExtInfo: boolean;
  /** Kernel has bpf_probe_read_kernel & co (else they become bpf_probe_read). */
  probeReadKern: boolean;
}

export interface AssembledProgram {
  insns: Uint8Array;
  mapReferences: MapReference[];
  /** Subprograms appended, in order, with their first instruction in the final layout. */
  subprograms: { name: string; offset: number }[];
  funcInfo?: { recordSize: number; records: Uint8Array };
  lineInfo?: { recordSize: number; records: Uint8Array };
  /** Where libbpf fails this program's relocation (bpf_object__relocate fails the object). */
  error?: string;
  /** Things corematrix does not do (yet) for this program. */
  unsupported: string[];
}

interface Reloc {
  kind: InsnRelocKind;
  /** Instruction index within the current program (main: its final layout). */
  insn: number;
  src: InsnReloc;
  /** The symbol's value (libbpf's relo->sym_off). */
  symOff: number;
}

/** An instruction array with field accessors (either byte order). */
class Insns {
  view: DataView;
  constructor(
    public bytes: Uint8Array,
    readonly le: boolean,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  get count(): number {
    return this.bytes.length / INSN;
  }
  code(i: number): number {
    return this.bytes[i * INSN]!;
  }
  src(i: number): number {
    const r = this.bytes[i * INSN + 1]!;
    return this.le ? r >> 4 : r & 0xf;
  }
  dst(i: number): number {
    const r = this.bytes[i * INSN + 1]!;
    return this.le ? r & 0xf : r >> 4;
  }
  setRegs(i: number, dst: number, src: number): void {
    this.bytes[i * INSN + 1] = this.le ? (src << 4) | dst : (dst << 4) | src;
  }
  setSrc(i: number, src: number): void {
    this.setRegs(i, this.dst(i), src);
  }
  off(i: number): number {
    return this.view.getInt16(i * INSN + 2, this.le);
  }
  setOff(i: number, v: number): void {
    this.view.setInt16(i * INSN + 2, v, this.le);
  }
  imm(i: number): number {
    return this.view.getInt32(i * INSN + 4, this.le);
  }
  setImm(i: number, v: number): void {
    this.view.setInt32(i * INSN + 4, v | 0, this.le);
  }
  append(more: Uint8Array): void {
    const grown = new Uint8Array(this.bytes.length + more.length);
    grown.set(this.bytes);
    grown.set(more, this.bytes.length);
    this.bytes = grown;
    this.view = new DataView(grown.buffer);
  }
}

/** Per-object facts shared by every program's assembly. */
export class Assembler {
  private readonly code = new Map<BpfProgram, Uint8Array>();
  private readonly relocs = new Map<BpfProgram, Reloc[]>();
  private readonly extSecIndex = new Map<number, number>();
  private readonly extRaw: Uint8Array | undefined;

  constructor(private readonly ctx: AssembleContext) {
    const { obj } = ctx;
    const symbols = obj.elf.symbols();
    for (const prog of obj.programs) {
      const section =
        ctx.sections.get(prog.sectionIndex) ?? obj.elf.contents(obj.elf.sections[prog.sectionIndex]!);
      this.code.set(
        prog,
        Uint8Array.from(
          section.subarray(prog.sectionInsnOffset * INSN, (prog.sectionInsnOffset + prog.insnCount) * INSN),
        ),
      );
    }
    for (const r of obj.insnRelocs) {
      if (r.kind === undefined) continue;
      const prog = programAt(obj, r.sectionIndex, r.sectionInsn);
      if (prog === undefined) continue;
      const list = this.relocs.get(prog) ?? [];
      list.push({ kind: r.kind, insn: r.insn, src: r, symOff: Number(symbols[r.symbolIndex]?.value ?? 0n) });
      this.relocs.set(prog, list);
    }
    // libbpf sorts each program's relocations by instruction (bpf_object__sort_relos), then marks
    // ld_imm64s of functions as BPF_PSEUDO_FUNC in every program's own copy.
    for (const [prog, list] of this.relocs) {
      list.sort((a, b) => a.insn - b.insn || RELO_ORDER.indexOf(a.kind) - RELO_ORDER.indexOf(b.kind));
      const insns = new Insns(this.code.get(prog)!, obj.littleEndian);
      for (const r of list) if (r.kind === 'subprog_addr') insns.setSrc(r.insn, BPF_PSEUDO_FUNC);
    }
    const ext = obj.btfExt;
    if (ext !== undefined && obj.btf !== undefined) {
      this.extRaw = obj.elf.section('.BTF.ext');
      for (const info of [ext.funcInfo, ext.lineInfo]) {
        for (const sec of info.sections) {
          const name = obj.btf.strings.has(sec.secNameOff) ? obj.btf.strings.get(sec.secNameOff) : '';
          const idx = obj.elf.sectionHeader(name)?.index;
          if (idx !== undefined) this.extSecIndex.set(sec.offset, idx);
        }
      }
    }
  }

  /** bpf_object__relocate_calls + bpf_object__relocate_data + bpf_object__sanitize_prog for `main`. */
  assemble(main: BpfProgram): AssembledProgram {
    const { obj } = this.ctx;
    const insns = new Insns(Uint8Array.from(this.code.get(main)!), obj.littleEndian);
    const subOff = new Map<BpfProgram, number>();
    const relocs: Reloc[] = [...(this.relocs.get(main) ?? [])];
    const out: AssembledProgram = { insns: insns.bytes, mapReferences: [], subprograms: [], unsupported: [] };
    const info = {
      func: undefined as { recordSize: number; parts: Uint8Array[] } | undefined,
      line: undefined as { recordSize: number; parts: Uint8Array[] } | undefined,
    };
    const offOf = (p: BpfProgram) => (p === main ? 0 : (subOff.get(p) ?? 0));

    const relocCode = (prog: BpfProgram): string | undefined => {
      const err = this.relocExtInfo(main, prog, offOf(prog), info);
      if (err !== undefined) return err;
      const own = this.relocs.get(prog) ?? [];
      const base = offOf(prog);
      for (let i = 0; i < prog.insnCount; i++) {
        const at = base + i;
        const isCall =
          insns.code(at) === BPF_JMP_CALL &&
          insns.src(at) === BPF_PSEUDO_CALL &&
          insns.dst(at) === 0 &&
          insns.off(at) === 0;
        const isFunc = insns.code(at) === BPF_LD_IMM64 && insns.src(at) === BPF_PSEUDO_FUNC;
        if (!isCall && !isFunc) continue;
        const relo = own.find((r) => r.insn === i);
        if (relo?.kind === 'extern_call') continue;
        if (relo !== undefined && relo.kind !== 'call' && relo.kind !== 'subprog_addr') {
          return `prog '${prog.name}': unexpected relo for insn #${i}, type ${RELO_ORDER.indexOf(relo.kind)}`;
        }
        let subInsn: number;
        if (relo !== undefined) {
          subInsn =
            relo.kind === 'call'
              ? Math.trunc(relo.symOff / INSN) + insns.imm(at) + 1
              : Math.trunc((relo.symOff + insns.imm(at)) / INSN);
        } else if (isFunc) {
          return `prog '${prog.name}': missing subprog addr relo for insn #${i}`;
        } else {
          subInsn = prog.sectionInsnOffset + i + insns.imm(at) + 1;
        }
        const sub = programAt(obj, obj.layout.textIndex, subInsn);
        if (sub === undefined || obj.layout.textIndex === 0) {
          return `prog '${prog.name}': no .text section found yet sub-program call exists`;
        }
        if (sub !== main && !subOff.has(sub)) {
          // bpf_object__append_subprog_code
          const off = insns.count;
          subOff.set(sub, off);
          insns.append(this.code.get(sub)!);
          for (const r of this.relocs.get(sub) ?? []) relocs.push({ ...r, insn: r.insn + off });
          out.subprograms.push({ name: sub.name, offset: off });
          const e = relocCode(sub);
          if (e !== undefined) return e;
        }
        insns.setImm(at, offOf(sub) - at - 1);
      }
      return undefined;
    };
    const err = relocCode(main);
    if (err !== undefined) return { ...out, error: err };

    // bpf_object__relocate_data
    for (const r of relocs) {
      const i = r.insn;
      switch (r.kind) {
        case 'map':
          insns.setSrc(i, BPF_PSEUDO_MAP_FD);
          insns.setImm(i, 0);
          out.mapReferences.push({ insn: i, map: r.src.mapIndex!, kind: 'fd', offset: 0 });
          break;
        case 'data': {
          const offset = (insns.imm(i) + r.symOff) | 0;
          insns.setImm(i + 1, offset);
          insns.setSrc(i, BPF_PSEUDO_MAP_VALUE);
          insns.setImm(i, 0);
          out.mapReferences.push({ insn: i, map: r.src.mapIndex!, kind: 'value', offset });
          break;
        }
        case 'extern_ld64': {
          const ext = obj.externs[r.src.externIndex!]!;
          const res = this.ctx.externs[r.src.externIndex!] ?? { set: false };
          if (ext.type === 'kconfig') {
            const offset = ext.kconfig?.dataOffset ?? 0;
            insns.setSrc(i, BPF_PSEUDO_MAP_VALUE);
            insns.setImm(i, 0);
            insns.setImm(i + 1, offset);
            out.mapReferences.push({ insn: i, map: this.ctx.kconfigMap, kind: 'value', offset });
          } else if (ext.ksym !== undefined && ext.ksym.typeId !== 0 && res.set) {
            insns.setSrc(i, BPF_PSEUDO_BTF_ID);
            insns.setImm(i, res.btfId ?? 0);
            insns.setImm(i + 1, 0); // vmlinux: no BTF object fd
          } else {
            const addr = res.addr ?? 0n;
            insns.setImm(i, Number(BigInt.asIntN(32, addr)));
            insns.setImm(i + 1, Number(BigInt.asIntN(32, addr >> 32n)));
          }
          break;
        }
        case 'extern_call': {
          const res = this.ctx.externs[r.src.externIndex!] ?? { set: false };
          insns.setSrc(i, BPF_PSEUDO_KFUNC_CALL);
          if (res.set) {
            insns.setImm(i, res.btfId ?? 0);
            insns.setOff(i, 0);
          } else {
            // poison_kfunc_call: an invalid helper call naming the extern.
            insns.bytes[i * INSN] = BPF_JMP_CALL;
            insns.setRegs(i, 0, 0);
            insns.setOff(i, 0);
            insns.setImm(i, POISON_CALL_KFUNC_BASE + r.src.externIndex!);
          }
          break;
        }
        case 'subprog_addr':
          if (insns.src(i) !== BPF_PSEUDO_FUNC) return { ...out, error: `prog '${main.name}': bad insn` };
          break;
        case 'call':
          break;
        case 'arena':
          out.unsupported.push(`global __arena variable (insn ${i}): arena maps are not planned yet`);
          break;
        case 'insn_array':
          out.unsupported.push(`jump table (insn ${i}): .jumptables maps are not planned yet`);
          break;
      }
    }

    // bpf_object__sanitize_prog: helper fallbacks for kernels before 5.5.
    if (!this.ctx.probeReadKern) {
      for (let i = 0; i < insns.count; i++) {
        if (insns.code(i) !== BPF_JMP_CALL || insns.src(i) !== 0 || insns.dst(i) !== 0) continue;
        const id = insns.imm(i);
        if (id === BPF_FUNC.probe_read_kernel || id === BPF_FUNC.probe_read_user) {
          insns.setImm(i, BPF_FUNC.probe_read);
        } else if (id === BPF_FUNC.probe_read_kernel_str || id === BPF_FUNC.probe_read_user_str) {
          insns.setImm(i, BPF_FUNC.probe_read_str);
        }
      }
    }

    out.insns = insns.bytes;
    for (const [key, value] of [
      ['funcInfo', info.func],
      ['lineInfo', info.line],
    ] as const) {
      if (value === undefined) continue;
      const total = value.parts.reduce((n, p) => n + p.length, 0);
      const records = new Uint8Array(total);
      let p = 0;
      for (const part of value.parts) {
        records.set(part, p);
        p += part.length;
      }
      out[key] = { recordSize: value.recordSize, records };
    }
    return out;
  }

  /** reloc_prog_func_and_line_info; returns libbpf's error when it fails the relocation. */
  private relocExtInfo(
    main: BpfProgram,
    prog: BpfProgram,
    subOff: number,
    info: {
      func: { recordSize: number; parts: Uint8Array[] } | undefined;
      line: { recordSize: number; parts: Uint8Array[] } | undefined;
    },
  ): string | undefined {
    const ext = this.ctx.obj.btfExt;
    if (!this.ctx.btfExtInfo || ext === undefined) return undefined;
    for (const [which, extInfo, what] of [
      ['func', ext.funcInfo, 'function'],
      ['line', ext.lineInfo, 'line'],
    ] as const) {
      if (main !== prog && info[which] === undefined) continue;
      const part = this.adjust(prog, subOff, extInfo);
      if (part === undefined) {
        // -ENOENT: fatal once the main program had some; else this kind of info is dropped.
        if (info[which] !== undefined) return `prog '${prog.name}': missing .BTF.ext ${what} info.`;
        continue;
      }
      info[which] ??= { recordSize: extInfo.recordSize, parts: [] };
      info[which].parts.push(part);
    }
    return undefined;
  }

  /** adjust_prog_btf_ext_info: `prog`'s records, insn_off in instructions of the final layout. */
  private adjust(
    prog: BpfProgram,
    subOff: number,
    info: ExtInfo<{ insnOff: number }>,
  ): Uint8Array | undefined {
    const raw = this.extRaw;
    if (raw === undefined) return undefined;
    const le = this.ctx.obj.littleEndian;
    for (const sec of info.sections) {
      if (this.extSecIndex.get(sec.offset) !== prog.sectionIndex) continue;
      let first = -1;
      let last = -1;
      const records = sec.records;
      for (let i = 0; i < records.length; i++) {
        const insn = Math.trunc(records[i]!.insnOff / INSN);
        if (insn < prog.sectionInsnOffset) continue;
        if (insn >= prog.sectionInsnOffset + prog.insnCount) break;
        if (first < 0) first = i;
        last = i;
      }
      if (first < 0) return undefined;
      const size = info.recordSize;
      const blockRecords = sec.offset + 8;
      const part = Uint8Array.from(
        raw.subarray(blockRecords + first * size, blockRecords + (last + 1) * size),
      );
      const view = new DataView(part.buffer);
      const adj = subOff - prog.sectionInsnOffset;
      for (let p = 0; p < part.length; p += size) {
        view.setUint32(p, Math.trunc(view.getUint32(p, le) / INSN) + adj, le);
      }
      return part;
    }
    return undefined;
  }
}

/** libbpf's enum reloc_type order (ties between relocations of one instruction). */
const RELO_ORDER: readonly InsnRelocKind[] = [
  'map',
  'call',
  'data',
  'extern_ld64',
  'extern_call',
  'subprog_addr',
  'arena',
  'insn_array',
];
