/**
 * Guard analysis: for a planned program on one kernel, which CO-RE relocations are fine, which
 * failed behind a guard the verifier will find dead, and which failed on a reachable path (the
 * verifier rejects the program at the poisoned instruction: "invalid func unknown#195896080").
 *
 * Records name their instruction relative to their function (entry program or subprogram); the
 * final layout appends subprograms, and func_info says where each function starts (as
 * harness/vm/cell.ts maps a verifier log's instruction back to a record).
 */

import type { Btf } from '../btf/btf.js';
import { POISON_IMM } from '../core/calc.js';
import type { RelocationRecord } from '../core/relocate.js';
import type { PlannedObject, PlannedProgram } from '../vm/plan.js';
import { buildCfg, decodeInsns, isHelperCall } from './cfg.js';
import { propagateConstants } from './constprop.js';

/** libbpf's poison for a weak kfunc the kernel lacks: helper call 2002000000 + extern index. */
export const POISON_CALL_KFUNC_BASE = 2002000000;
const BPF_F_RDONLY_PROG = 0x80;

export interface FunctionStart {
  name: string;
  /** First instruction in the final layout. */
  offset: number;
  /** A global function: the verifier checks it on its own, with unknown arguments. */
  global?: boolean;
}

/**
 * Function starts from the program's func_info (names and linkage from the object's BTF);
 * undefined without either.
 */
export function functionLayout(prog: PlannedProgram, btf?: Btf): FunctionStart[] | undefined {
  const info = prog.funcInfo;
  if (btf === undefined || info === undefined) return undefined;
  const v = new DataView(info.records.buffer, info.records.byteOffset, info.records.byteLength);
  const out: FunctionStart[] = [];
  for (let p = 0; p + 8 <= info.records.length; p += info.recordSize) {
    const offset = v.getUint32(p, true);
    const id = v.getUint32(p + 4, true);
    let global = false;
    try {
      const t = btf.type(id);
      global = t.kind === 'func' && t.linkage === 'global';
    } catch {
      // not a FUNC: leave it static
    }
    out.push({ name: btf.name(id), offset, ...(offset > 0 && global ? { global } : {}) });
  }
  return out.sort((a, b) => a.offset - b.offset);
}

/** The values of the frozen read-only maps of a planned object (.rodata, .kconfig), by map index. */
export function readOnlyValuesOf(obj: PlannedObject): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  for (const [i, m] of obj.maps.entries()) {
    if (m.freeze && (m.flags & BPF_F_RDONLY_PROG) !== 0 && m.initialValue !== undefined) {
      out.set(i, m.initialValue);
    }
  }
  return out;
}

/**
 * The final instruction(s) of each record of this program's functions (records of functions the
 * program does not hold are left out). Without function names (no func_info or no BTF), a
 * subprogram's record is placed at every function start `starts` offers whose instruction fits:
 * a poisoned record where a poison call sits, any other at every candidate.
 */
export function mapRecords(
  prog: PlannedProgram,
  records: readonly RelocationRecord[],
  layout: readonly FunctionStart[] | undefined,
  starts: readonly number[] = [],
  isPoisonAt: (insn: number) => boolean = () => true,
): { record: RelocationRecord; insns: number[] }[] {
  const out: { record: RelocationRecord; insns: number[] }[] = [];
  for (const r of records) {
    const main = r.function === prog.name && r.section === prog.section;
    if (main) {
      out.push({ record: r, insns: [r.insn] });
      continue;
    }
    if (layout !== undefined) {
      const fn = layout.find((f) => f.name === r.function && f.offset > 0);
      if (fn !== undefined) out.push({ record: r, insns: [fn.offset + r.insn] });
      continue;
    }
    const fits = starts
      .filter((s) => s > 0)
      .map((s) => s + r.insn)
      .filter((i) => r.result !== 'poisoned' || isPoisonAt(i));
    if (fits.length > 0) out.push({ record: r, insns: fits });
  }
  return out;
}

export type GuardStatus = 'resolved' | 'guarded' | 'needs-guard' | 'error';

export interface GuardClassification {
  record: RelocationRecord;
  status: GuardStatus;
  /** The access in C terms, e.g. `struct request.rq_disk`. */
  access: string;
  /** The record's instruction in the final layout (undefined when it cannot be placed). */
  insn: number | undefined;
  /** For needs-guard: what would make it portable. */
  fix?: string;
  /** Plain words. */
  reason: string;
}

export interface PoisonCall {
  insn: number;
  kind: 'core' | 'kfunc';
  /** For kfunc: the extern's index in the object. */
  externIndex?: number;
  /** For core: the record it belongs to, when known. */
  record?: RelocationRecord;
}

export interface GuardReport {
  relocations: GuardClassification[];
  /** Poison calls on a reachable path (each makes the verifier reject the program). */
  reachablePoison: PoisonCall[];
  /** Conditional jumps the constants decide: the edge never taken. */
  deadEdges: { from: number; to: number }[];
  reachableCount: number;
  /** Problems in the instruction stream. */
  problems: string[];
}

export interface ClassifyInput {
  program: PlannedProgram;
  /** The object's CO-RE records (those of other programs' functions are ignored). */
  records: readonly RelocationRecord[];
  /** Frozen read-only map values by map index (readOnlyValuesOf). */
  readOnlyValues?: ReadonlyMap<number, Uint8Array>;
  /** The object's BTF: names func_info's functions. */
  btf?: Btf;
  /** The function layout, when known otherwise (overrides func_info). */
  functions?: readonly FunctionStart[];
  /** The instructions' byte order (planned programs are little-endian). */
  littleEndian?: boolean;
}

const FIELD_KINDS = new Set(['byte_off', 'byte_sz', 'field_exists', 'signed', 'lshift_u64', 'rshift_u64']);
const TYPE_KINDS = new Set(['local_type_id', 'target_type_id', 'type_exists', 'type_size', 'type_matches']);
const ENUM_KINDS = new Set(['enumval_exists', 'enumval_value']);

/** A concrete fix for a failed relocation on a reachable path. */
export function suggestFix(r: RelocationRecord): string {
  const access = r.access;
  if (FIELD_KINDS.has(r.kind)) {
    const m = /^(struct|union) (\S+?)\.(.+)$/.exec(access);
    if (m !== null) {
      const [, tag, type, field] = m as unknown as [string, string, string, string];
      const base = type.replace(/___[^_].*$/, '');
      return (
        `guard it: if (bpf_core_field_exists(((${tag} ${type} *)p)->${field})) { … } ` +
        `and in the else branch read this kernel's layout through a flavor ` +
        `(${tag} ${base}___other { … } __attribute__((preserve_access_index)), naming the field as this kernel does)`
      );
    }
    return `guard it with bpf_core_field_exists(…) on ${access}`;
  }
  if (TYPE_KINDS.has(r.kind)) {
    const t = access.replace(/\..*$/, '');
    return `guard it: if (bpf_core_type_exists(${t})) { … }`;
  }
  if (ENUM_KINDS.has(r.kind)) {
    const m = /^(enum \S+?)::(\S+)/.exec(access);
    if (m !== null) return `guard it: if (bpf_core_enum_value_exists(${m[1]}, ${m[2]})) { … }`;
    return `guard it with bpf_core_enum_value_exists(…) on ${access}`;
  }
  return `guard ${access} with a bpf_core_*_exists check`;
}

export function classifyRelocations(input: ClassifyInput): GuardReport {
  const prog = input.program;
  const le = input.littleEndian ?? true;
  const insns = decodeInsns(prog.insns, le);
  const cfg = buildCfg(insns);
  const layout = input.functions ?? functionLayout(prog, input.btf);
  // Without the layout, linkage is unknown: every callee is taken as global (unknown arguments).
  const globals = new Set<number>();
  if (layout === undefined) for (const f of cfg.functions) globals.add(f.start);
  else for (const f of layout) if (f.global === true && f.offset > 0) globals.add(f.offset);
  globals.delete(0);
  const mapValues = new Map<number, { map: number; offset: number }>();
  for (const r of prog.mapReferences)
    if (r.kind === 'value') mapValues.set(r.insn, { map: r.map, offset: r.offset });
  const cp = propagateConstants({
    cfg,
    insns,
    littleEndian: le,
    mapValues,
    ...(input.readOnlyValues === undefined ? {} : { readOnlyValues: input.readOnlyValues }),
    globalFunctions: globals,
  });

  const isPoisonAt = (i: number): boolean => {
    const x = insns[i];
    return x !== undefined && isHelperCall(x) && x.imm === POISON_IMM;
  };
  const starts = cfg.functions.map((f) => f.start);
  const relocations: GuardClassification[] = [];
  const byInsn = new Map<number, RelocationRecord>();
  for (const { record: r, insns: at } of mapRecords(prog, input.records, layout, starts, isPoisonAt)) {
    const base = { record: r, access: r.access };
    if (r.result === 'error') {
      relocations.push({
        ...base,
        insn: at[0],
        status: 'error',
        reason: r.message ?? 'libbpf refuses the object',
      });
      continue;
    }
    if (r.result === 'patched') {
      relocations.push({ ...base, insn: at[0], status: 'resolved', reason: 'relocated' });
      continue;
    }
    for (const i of at) byInsn.set(i, r);
    const placed = at.filter(isPoisonAt);
    const live = placed.find((i) => cp.reachable(i));
    if (placed.length === 0) {
      relocations.push({
        ...base,
        insn: at[0],
        status: 'needs-guard',
        fix: suggestFix(r),
        reason: `failed (${r.kind}) and no poisoned instruction was found for it: assumed reachable`,
      });
    } else if (live !== undefined) {
      relocations.push({
        ...base,
        insn: live,
        status: 'needs-guard',
        fix: suggestFix(r),
        reason: `failed (${r.kind}) and poisoned insn ${live} is reachable: the verifier rejects the program`,
      });
    } else {
      relocations.push({
        ...base,
        insn: placed[0],
        status: 'guarded',
        reason: `failed (${r.kind}) but poisoned insn ${placed.join(', ')} is on a dead path`,
      });
    }
  }

  const reachablePoison: PoisonCall[] = [];
  let reachableCount = 0;
  for (let i = 0; i < insns.length; i++) {
    if (!cp.reachable(i)) continue;
    reachableCount++;
    const x = insns[i]!;
    if (!isHelperCall(x)) continue;
    if (x.imm === POISON_IMM) {
      // A poisoned ld_imm64 is two poison calls (libbpf poisons both halves): one record.
      const rec = byInsn.get(i) ?? (isPoisonAt(i - 1) ? byInsn.get(i - 1) : undefined);
      reachablePoison.push({ insn: i, kind: 'core', ...(rec === undefined ? {} : { record: rec }) });
    } else if (x.imm >= POISON_CALL_KFUNC_BASE && x.imm < POISON_CALL_KFUNC_BASE + 1000000) {
      reachablePoison.push({ insn: i, kind: 'kfunc', externIndex: x.imm - POISON_CALL_KFUNC_BASE });
    }
  }
  return { relocations, reachablePoison, deadEdges: cp.deadEdges, reachableCount, problems: cfg.problems };
}
