import type { Btf } from '../btf/btf.js';
import type { BtfExt } from '../object/btf-ext.js';
import { type BpfProgram, type CoreBpfObject, programAt } from '../object/object-core.js';
import { typeOrFail } from './btf-walk.js';
import { type CalcOutcome, type Candidate, calcReloInsn, type RelocationResult } from './calc.js';
import { findCandidates, type TargetBtfs } from './candidates.js';
import { CoreFailure, EINVAL, ERRNO_NAMES } from './errno.js';
import { type CoreRelo, RELO_KIND, type ReloKindName, reloKindName } from './kinds.js';
import { INSN_SIZE, Instructions, type PatchRecord, patchInsn } from './patch.js';
import { describeFormattedAccess, formatSpec } from './spec.js';

/** What happened to one CO-RE relocation, in libbpf's processing order. */
export interface RelocationRecord {
  /** ELF section of the instruction. */
  section: string;
  /** Position of the record among its section's core_relo records (libbpf's "relo #N"). */
  index: number;
  /** The program or subprogram holding the instruction. */
  function: string;
  /** Instruction index from the function's first instruction. */
  insn: number;
  kind: ReloKindName | 'unknown';
  /** The access in C terms, e.g. `struct task_struct.tgid`. */
  access: string;
  /** The raw access string, e.g. `0:85`. */
  spec: string;
  /** libbpf's formatted local spec (`<byte_off> [40] struct task_struct.tgid (0:85 @ offset 1428)`). */
  localSpec: string | undefined;
  /** The first matching candidate's spec, when one matched. */
  targetSpec: string | undefined;
  result: 'patched' | 'poisoned' | 'error';
  /** For `patched`: the instruction's value before and after, as libbpf logs them. */
  old?: bigint;
  new?: bigint;
  memSize?: { old: number; new: number };
  /** For `error`: what libbpf would say. */
  message?: string;
  errno?: number;
  /** The relocation's computed values (absent for errors). */
  calc?: RelocationResult;
  /** The raw record, for later analysis. */
  relo: CoreRelo;
}

export interface ObjectRelocation {
  records: RelocationRecord[];
  /**
   * Set when libbpf would refuse the object: the first relocation that failed (it is also the last
   * record, since libbpf stops there).
   */
  failed: RelocationRecord | undefined;
  /** Patched copies of the executable sections, by ELF section index. */
  sections: Map<number, Uint8Array>;
}

/**
 * bpf_object__relocate_core: applies every CO-RE relocation of an object against a target BTF set.
 *
 * Records are processed per .BTF.ext section and in record order. A record whose instruction
 * belongs to no program (an eliminated weak subprogram) or to a program that is not loaded by
 * default (SEC("?…")) is skipped, as libbpf skips it. Candidates are searched once per local root
 * type and pruned as relocations of that type match (so the order matters, as in libbpf). The first
 * error ends the processing: libbpf refuses the whole object.
 */
export function relocateObject(obj: CoreBpfObject, targets: TargetBtfs): ObjectRelocation {
  const sections = new Map<number, Uint8Array>();
  const records: RelocationRecord[] = [];
  const result: ObjectRelocation = { records, failed: undefined, sections };
  const btf = obj.btf;
  const ext = obj.btfExt;
  if (btf === undefined || ext === undefined) return result;

  const insnsBySection = new Map<number, Instructions>();
  const instructions = (sectionIndex: number): Instructions => {
    let insns = insnsBySection.get(sectionIndex);
    if (insns === undefined) {
      const bytes = Uint8Array.from(obj.elf.contents(obj.elf.sections[sectionIndex]!));
      sections.set(sectionIndex, bytes);
      insns = new Instructions(bytes, obj.littleEndian);
      insnsBySection.set(sectionIndex, insns);
    }
    return insns;
  };
  const candidateCache = new Map<number, readonly Candidate[]>();
  // Each root type's candidates are found by name: with several of them to look up, vmlinux's
  // names are hashed once instead of searched for one by one.
  if (distinctRootTypes(ext) >= INDEX_NAMES_AT) targets.vmlinux.indexNames();

  for (const extSection of ext.coreRelo.sections) {
    const secName = btf.strings.has(extSection.secNameOff) ? btf.strings.get(extSection.secNameOff) : '';
    if (secName === '') {
      result.failed = errorRecord(
        `.BTF.ext core_relo section name at ${extSection.secNameOff} is empty`,
        EINVAL,
      );
      records.push(result.failed);
      return result;
    }
    const elfSection = obj.elf.sectionHeader(secName);
    for (let i = 0; i < extSection.records.length; i++) {
      const relo = extSection.records[i]!;
      if (relo.insnOff % INSN_SIZE !== 0) {
        result.failed = errorRecord(
          `relo #${i} of section '${secName}': insn_off ${relo.insnOff} is not aligned`,
          EINVAL,
          {
            section: secName,
            index: i,
            relo,
          },
        );
        records.push(result.failed);
        return result;
      }
      const sectionInsn = relo.insnOff / INSN_SIZE;
      const prog = elfSection === undefined ? undefined : programAt(obj, elfSection.index, sectionInsn);
      if (prog === undefined || !prog.autoload) continue;
      const record = relocateOne(
        btf,
        relo,
        i,
        secName,
        prog,
        sectionInsn,
        targets,
        candidateCache,
        instructions,
      );
      records.push(record);
      if (record.result === 'error') {
        result.failed = record;
        return result;
      }
    }
  }
  return result;
}

/** How many distinct root types make hashing vmlinux's names cheaper than searching for each. */
const INDEX_NAMES_AT = 4;

/** Root types whose candidates an object's records would search for (at most INDEX_NAMES_AT). */
function distinctRootTypes(ext: BtfExt): number {
  const ids = new Set<number>();
  for (const section of ext.coreRelo.sections) {
    for (const relo of section.records) {
      if (relo.kind === RELO_KIND.TYPE_ID_LOCAL) continue;
      ids.add(relo.typeId);
      if (ids.size >= INDEX_NAMES_AT) return ids.size;
    }
  }
  return ids.size;
}

function relocateOne(
  btf: Btf,
  relo: CoreRelo,
  index: number,
  section: string,
  prog: BpfProgram,
  sectionInsn: number,
  targets: TargetBtfs,
  candidateCache: Map<number, readonly Candidate[]>,
  instructions: (sectionIndex: number) => Instructions,
): RelocationRecord {
  const insn = sectionInsn - prog.sectionInsnOffset;
  const accessString = btf.strings.has(relo.accessStrOff) ? btf.strings.get(relo.accessStrOff) : '';
  const site: RecordSite = {
    section,
    index,
    function: prog.name,
    insn,
    kind: reloKindName(relo.kind),
    spec: accessString,
    relo,
  };
  const fail = (message: string, errno: number, outcome?: CalcOutcome): RelocationRecord => {
    const localSpec = outcome?.localSpec === undefined ? undefined : formatSpec(outcome.localSpec);
    const record = newRecord(
      site,
      accessOf(btf, relo, accessString, localSpec),
      localSpec,
      undefined,
      'error',
    );
    record.message = `${message}: -${ERRNO_NAMES[errno] ?? errno}`;
    record.errno = errno;
    return record;
  };

  // bpf_core_resolve_relo: the local type must exist; candidates are searched once per root type.
  let localType: ReturnType<typeof typeOrFail>;
  try {
    localType = typeOrFail(btf, relo.typeId);
  } catch (e) {
    if (e instanceof CoreFailure) return fail(`local type [${relo.typeId}] does not exist`, e.errno);
    throw e;
  }
  let candidates = candidateCache.get(relo.typeId);
  if (relo.kind !== RELO_KIND.TYPE_ID_LOCAL && candidates === undefined) {
    try {
      candidates = findCandidates(btf, relo.typeId, targets);
    } catch (e) {
      if (!(e instanceof CoreFailure)) throw e;
      return fail(
        `target candidate search failed for [${relo.typeId}] ${localType.kind} ${localType.name}`,
        e.errno,
      );
    }
    candidateCache.set(relo.typeId, candidates);
  }

  const outcome = calcReloInsn(relo, btf, accessString, candidates ?? []);
  if (outcome.kind === 'error') return fail(outcome.message, outcome.errno, outcome);
  if (candidates !== undefined) candidateCache.set(relo.typeId, outcome.candidates);

  let patch: PatchRecord;
  try {
    patch = patchInsn(instructions(prog.sectionIndex), sectionInsn, outcome.result);
  } catch (e) {
    if (!(e instanceof CoreFailure)) throw e;
    return fail(e.message, e.errno, outcome);
  }
  const localSpec = formatSpec(outcome.localSpec);
  const targetSpec = outcome.targetSpec === undefined ? undefined : formatSpec(outcome.targetSpec);
  const record = newRecord(
    site,
    accessOf(btf, relo, accessString, localSpec),
    localSpec,
    targetSpec,
    patch.action,
  );
  record.calc = outcome.result;
  if (patch.action === 'patched') {
    record.old = patch.old;
    record.new = patch.new;
    if (patch.memSize !== undefined) record.memSize = patch.memSize;
  }
  return record;
}

/** What every record of one relocation shares: where it is. */
type RecordSite = Pick<
  RelocationRecord,
  'section' | 'index' | 'function' | 'insn' | 'kind' | 'spec' | 'relo'
>;

/**
 * A record, field by field. Not `{ ...site, … }`: a fresh process runs this code unoptimized, where
 * an object spread costs ~5 µs, a tenth of a relocation's whole work.
 */
function newRecord(
  site: RecordSite,
  access: string,
  localSpec: string | undefined,
  targetSpec: string | undefined,
  result: RelocationRecord['result'],
): RelocationRecord {
  return {
    section: site.section,
    index: site.index,
    function: site.function,
    insn: site.insn,
    kind: site.kind,
    spec: site.spec,
    relo: site.relo,
    access,
    localSpec,
    targetSpec,
    result,
  };
}

/** The access in C terms: from the local spec's formatted text when there is one. */
function accessOf(btf: Btf, relo: CoreRelo, accessString: string, localSpec: string | undefined): string {
  if (localSpec !== undefined) return describeFormattedAccess(localSpec);
  const t = btf.has(relo.typeId) ? btf.type(relo.typeId) : undefined;
  return t === undefined
    ? `[${relo.typeId}] + ${accessString}`
    : `${t.kind} ${t.name || '<anon>'} + ${accessString}`;
}

function errorRecord(
  message: string,
  errno: number,
  where: { section?: string; index?: number; relo?: CoreRelo } = {},
): RelocationRecord {
  return {
    section: where.section ?? '',
    index: where.index ?? -1,
    function: '',
    insn: -1,
    kind: where.relo === undefined ? 'unknown' : reloKindName(where.relo.kind),
    access: '',
    spec: '',
    localSpec: undefined,
    targetSpec: undefined,
    result: 'error',
    message,
    errno,
    relo: where.relo ?? { insnOff: 0, typeId: 0, accessStrOff: 0, kind: -1 },
  };
}
