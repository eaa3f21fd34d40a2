/**
 * One matrix cell of the VM tier: a set of objects on one kernel. Each object is parsed and planned
 * on the host for that kernel (harness/loader), the plans go into one LoadPlan, the kernel boots
 * with an initramfs holding the agent as init and the plan as /plan.bin, the agent's results come
 * back over the guest's ttyS1 (a serial port of its own: no kernel message can break a frame), and
 * every program gets a verdict with its cause in plain words:
 *
 * - `loaded`, `rejected` (the kernel said no: errno and the verifier log's first lines),
 * - `refused-before-load` (what libbpf would refuse before PROG_LOAD: the loader's problem),
 * - `infra_error` (the VM or the agent failed: panic, no init, timeout, agent dead mid-run; after
 *   the pool's retries; the console's tail says what happened).
 *
 * The agent prints nothing on the console when its results go to ttyS1, so the run's phases are
 * split by the kernel's own lines: "Run /corematrix-agent as init process" (boot → load) and
 * "reboot: Power down" (load → shutdown; the agent powers off when done).
 */

import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { Btf } from '../btf/btf.js';
import type { RelocationRecord } from '../core/relocate.js';
import type { KernelConfig } from '../kernels/config.js';
import type { KconfigInput } from '../loader/kconfig.js';
import { type PlanKernel, type PlanProblem, planObject } from '../loader/loader.js';
import type { KernelSource } from '../matrix/kernels.js';
import { type BpfObject, parseBpfObject } from '../object/object.js';
import type { LoadPlan, PlannedObject, PlannedProgram } from './plan.js';
import { encodePlan } from './plan-encoding.js';
import { VmPool } from './pool.js';
import { type AgentOutput, AgentOutputParser, type AgentResult, type ObjectReport } from './protocol.js';
import type { ConsoleWatch, OutcomeKind, VmExecutor } from './qemu.js';
import type { RunOptions, RunOutcome, VmFile } from './run.js';

/** libbpf's poison for a failed CO-RE relocation: `call 0xbad2310` ("invalid func unknown#195896080"). */
export const POISON_CALL_CORE = 0xbad2310;
/** libbpf's poison for a weak kfunc the kernel lacks: kfunc call imm 2002000000 + extern index. */
export const POISON_CALL_KFUNC_BASE = 2002000000;

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** scripts/build-agent.sh's output. */
export const AGENT_BIN = path.join(repo, 'build', 'agent', 'corematrix-agent');
export const LIBBPF_LOADER_BIN = path.join(repo, 'build', 'agent', 'libbpf-loader');

/** A kernel given by its files (the VM tier needs an image to boot). */
export interface CellKernelFiles {
  name: string;
  vmlinuz: string;
  /** The kernel's vmlinux BTF: parsed, or a raw BTF file. */
  btf: Btf | string;
  /** Its config: parsed, raw values, or a config file (plain or gzip). */
  config: KernelConfig | Map<string, string> | string;
  /** `uname -r`. */
  release: string;
  /** The upstream version when the release lacks it (Debian "6.1.176"); from the config otherwise. */
  version?: string;
}

export type Verdict = 'loaded' | 'rejected' | 'refused-before-load' | 'infra_error';

export interface ProgramVerdict {
  object: string;
  program: string;
  section?: string;
  verdict: Verdict;
  errno?: number;
  /** "EACCES" for errno 13. */
  errnoName?: string;
  /** Where a rejection happened: the object's BTF, one of its maps, or the program itself. */
  stage?: 'btf' | 'map' | 'prog';
  /** The first lines of the verifier log (rejected), its statistics (loaded), the console tail (infra). */
  logHead: string;
  /** The whole log as the agent sent it. */
  log: string;
  /** Why, in plain words. */
  cause: string;
  insnsProcessed?: number;
  /** PROG_LOAD's time in the VM. */
  loadNs?: number;
  /** Things the static plan could not decide or does not do (they may explain a surprise). */
  notes?: string[];
}

export interface CellPhases {
  /** Host: parsing and planning the objects, encoding the plan. */
  plan: number;
  /** QEMU start → the kernel runs the agent. */
  boot?: number;
  /** The agent's run: loading everything. */
  load?: number;
  /** The agent's power off → QEMU gone. */
  shutdown?: number;
  /** The VM, start to end (the last attempt). */
  vm: number;
  /** Everything, retries included. */
  total: number;
}

export interface CellInfra {
  kind: OutcomeKind | 'agent-incomplete';
  reason: string;
  consoleTail: string;
  /** VM runs made (1 + retries). */
  attempts: number;
}

export interface CellResult {
  kernel: string;
  release: string;
  status: 'ok' | 'infra_error';
  infra?: CellInfra;
  accel?: string;
  phases: CellPhases;
  programs: ProgramVerdict[];
  /** The agent's output as parsed (absent when no VM ran). */
  agent?: AgentOutput;
}

export interface CellOptions {
  /** VM timeout, boot and load (default 120 s). */
  timeoutMs?: number;
  memoryMb?: number;
  /** The VM's CPUs (default 1): also the possible-CPU count libbpf sizes perf event arrays with. */
  cpus?: number;
  /** Runs the VM (at most N at once, retries per its policy); a pool of one by default. */
  pool?: VmPool;
  /** Verifier log lines kept in `logHead` (default 8). */
  logLines?: number;
  /** The agent binary (default build/agent/corematrix-agent). */
  agent?: string;
  signal?: AbortSignal;
  /** Where QEMU runs (default: on this host); harness/container's `containerExecutor` runs it in a container. */
  executor?: VmExecutor;
  /** Last word on the VM run (tests inject faults here). */
  adjustRun?: (o: RunOptions) => RunOptions;
}

export interface CellInput {
  kernel: KernelSource | CellKernelFiles;
  /** Object files; reported by the path given. */
  objects: readonly string[];
  options?: CellOptions;
}

// ---------------------------------------------------------------------------------------------
// The kernel

interface OpenedKernel {
  name: string;
  vmlinuz: string;
  plan: PlanKernel;
}

async function openKernel(k: KernelSource | CellKernelFiles): Promise<OpenedKernel> {
  if ('open' in k) {
    const r = await k.open();
    if (r.vmlinuz === undefined) throw new CellInputError(`kernel ${k.name}: no image to boot (${r.source})`);
    if (r.btf === undefined || r.release === undefined || r.config === undefined) {
      throw new CellInputError(
        `kernel ${k.name}: ${r.detail ?? `${r.state}: its BTF, config or release is unknown`}`,
      );
    }
    return {
      name: k.name,
      vmlinuz: r.vmlinuz,
      plan: {
        btf: r.btf,
        config: r.config,
        release: r.release,
        ...(r.config.version === undefined ? {} : { version: r.config.version }),
      },
    };
  }
  const btf = typeof k.btf === 'string' ? Btf.parse(new Uint8Array(await fs.readFile(k.btf))) : k.btf;
  let config: KconfigInput;
  let version = k.version;
  if (typeof k.config === 'string') {
    const bytes = await fs.readFile(k.config);
    config = (bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes).toString('latin1');
    version ??= /^# Linux\/\S+ (\S+) Kernel Configuration$/m.exec(config)?.[1];
  } else {
    config = k.config;
    if (!(k.config instanceof Map)) version ??= k.config.version;
  }
  return {
    name: k.name,
    vmlinuz: k.vmlinuz,
    plan: { btf, config, release: k.release, ...(version === undefined ? {} : { version }) },
  };
}

/** The input cannot make a cell (a kernel without an image, …): bad input, not an infra error. */
export class CellInputError extends Error {
  override name = 'CellInputError';
}

// ---------------------------------------------------------------------------------------------
// Planning

interface ObjectEntry {
  name: string;
  obj: BpfObject | undefined;
  /** Why the object could not even be parsed. */
  parseError?: string;
  problems: PlanProblem[];
  plan: PlannedObject | undefined;
  records: RelocationRecord[];
  /** The object's programs, in ELF order (entry programs only). */
  programs: { name: string; section: string }[];
}

const BPF_MAP_TYPE_PERF_EVENT_ARRAY = 4;

/**
 * What only the VM knows, filled in as libbpf does it at load time: a perf event array without
 * max_entries gets the number of possible CPUs (bpf_object__create_map; the kernel refuses 0 with
 * EINVAL). The VM's possible CPUs are its QEMU CPUs (-smp N: maxcpus = N).
 */
export function withVmFacts(plan: PlannedObject, cpus: number): PlannedObject {
  if (!plan.maps.some((m) => m.type === BPF_MAP_TYPE_PERF_EVENT_ARRAY && m.maxEntries === 0)) return plan;
  return {
    ...plan,
    maps: plan.maps.map((m) =>
      m.type === BPF_MAP_TYPE_PERF_EVENT_ARRAY && m.maxEntries === 0 ? { ...m, maxEntries: cpus } : m,
    ),
  };
}

/**
 * Every entry program is planned, those loaded by default and those that are not (SEC("?…")): the
 * VM tier loads each program on its own, as a user space that autoloads just that one.
 */
function allAutoload(obj: BpfObject): BpfObject {
  if (obj.programs.every((p) => p.isSubprogram || p.autoload)) return obj;
  return Object.create(obj, {
    programs: { value: obj.programs.map((p) => (p.isSubprogram ? p : { ...p, autoload: true })) },
  }) as BpfObject;
}

async function planOne(file: string, kernel: PlanKernel): Promise<ObjectEntry> {
  let obj: BpfObject;
  try {
    obj = allAutoload(parseBpfObject(new Uint8Array(await fs.readFile(file)), { path: file }));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new CellInputError(`${file}: no such file`);
    return {
      name: file,
      obj: undefined,
      parseError: e instanceof Error ? e.message : String(e),
      problems: [],
      plan: undefined,
      records: [],
      programs: [],
    };
  }
  const result = planObject(obj, kernel, { name: file });
  return {
    name: file,
    obj,
    problems: result.problems,
    plan: result.plan,
    records: result.relocation?.records ?? [],
    programs: obj.programs.filter((p) => !p.isSubprogram).map((p) => ({ name: p.name, section: p.section })),
  };
}

// ---------------------------------------------------------------------------------------------
// The VM run

/** Console signs of the kernel itself: it runs the init, and the init powered the machine off. */
export function kernelLineWatch(): ConsoleWatch {
  let window = '';
  let started = false;
  let done = false;
  return (chunk) => {
    window = (window + Buffer.from(chunk).toString('latin1')).slice(-4096);
    const said: { started?: boolean; done?: boolean } = {};
    if (!started && /Run \S+ as init process/.test(window)) {
      started = true;
      said.started = true;
    }
    if (!done && /reboot: (Power down|Restarting system)/.test(window)) {
      done = true;
      said.done = true;
    }
    if (started) window = window.slice(-64);
    return said;
  };
}

/** Markers that never match: the watch above decides. */
const NO_MARKERS = { started: '\u0000corematrix-unused-start', done: '\u0000corematrix-unused-done' };

export interface InitRun {
  vmlinuz: string;
  /** The init binary's path in the initramfs. */
  init: string;
  files: VmFile[];
  kernelArgs?: string[];
  timeoutMs?: number;
  memoryMb?: number;
  cpus?: number;
  signal?: AbortSignal;
  executor?: VmExecutor;
}

/**
 * Boots a static init (the agent or the libbpf loader) that writes its framed results to ttyS1 and
 * powers off; returns the VM outcome (after the pool's retries) and the parsed results.
 */
export async function runResultInit(
  r: InitRun,
  pool: VmPool,
  adjust: (o: RunOptions) => RunOptions = (o) => o,
): Promise<{ outcome: RunOutcome & { retried: RunOutcome[] }; output: AgentOutput }> {
  const run = adjust({
    kernel: r.vmlinuz,
    init: r.init,
    files: r.files,
    kernelArgs: ['CMX_OUT=/dev/ttyS1', ...(r.kernelArgs ?? [])],
    resultPort: true,
    markers: NO_MARKERS,
    timeoutMs: r.timeoutMs ?? 120_000,
    ...(r.memoryMb === undefined ? {} : { memoryMb: r.memoryMb }),
    ...(r.cpus === undefined ? {} : { cpus: r.cpus }),
    ...(r.signal === undefined ? {} : { signal: r.signal }),
    ...(r.executor === undefined ? {} : { executor: r.executor }),
  });
  // A fresh watch per attempt: the pool may run it again.
  const outcome = await pool.run({
    ...run,
    get watch() {
      return run.watch ?? kernelLineWatch();
    },
  } as RunOptions);
  const parser = new AgentOutputParser();
  parser.push(outcome.results ?? new Uint8Array(0));
  return { outcome, output: parser.finish() };
}

// ---------------------------------------------------------------------------------------------
// Verdicts and causes

const ERRNO: Record<number, string> = {
  1: 'EPERM',
  2: 'ENOENT',
  3: 'ESRCH',
  4: 'EINTR',
  7: 'E2BIG',
  9: 'EBADF',
  11: 'EAGAIN',
  12: 'ENOMEM',
  13: 'EACCES',
  14: 'EFAULT',
  16: 'EBUSY',
  17: 'EEXIST',
  19: 'ENODEV',
  22: 'EINVAL',
  28: 'ENOSPC',
  38: 'ENOSYS',
  95: 'EOPNOTSUPP',
  524: 'ENOTSUPP',
};

export function errnoName(errno: number): string {
  return ERRNO[errno] ?? `errno ${errno}`;
}

/** The first `n` lines of a log that say something (no blank lines). */
export function firstLines(log: string, n: number): string {
  return log
    .split('\n')
    .filter((l) => l.trim() !== '')
    .slice(0, n)
    .join('\n');
}

/**
 * The verifier's own verdict: the block of lines just before the statistics that are neither
 * instruction dumps, source lines nor register states; its first line (the kernel says the most
 * specific thing first, e.g. "invalid access to map value, …" before "R0 min value is outside …").
 */
function verifierComplaint(log: string): string | undefined {
  const lines = log.split('\n').map((l) => l.trim());
  const end = lines.findIndex((l) => /^processed \d+ insns/.test(l));
  const upto = (end < 0 ? lines : lines.slice(0, end)).filter(
    (l) => l !== '' && !/^(verification time|stack depth|-- |Validating )/.test(l),
  );
  const context = (l: string) =>
    /^\d+: /.test(l) ||
    l.startsWith(';') ||
    /^(R\d+(_[rwD]+)?=|frame\d|from \d+ to \d+|last_idx|regs=|parent didn't|mark_precise)/.test(l);
  let first: string | undefined;
  for (let i = upto.length - 1; i >= 0; i--) {
    const l = upto[i]!;
    if (context(l)) {
      if (first !== undefined) break;
      continue;
    }
    first = l;
  }
  return first;
}

/** Function start → name, from the program's func_info (records of insn_off, FUNC type id). */
function functionLayout(
  obj: BpfObject | undefined,
  prog: PlannedProgram,
): { offset: number; name: string }[] {
  const info = prog.funcInfo;
  if (obj?.btf === undefined || info === undefined) return [{ offset: 0, name: prog.name }];
  const v = new DataView(info.records.buffer, info.records.byteOffset, info.records.byteLength);
  const out: { offset: number; name: string }[] = [];
  for (let p = 0; p + 8 <= info.records.length; p += info.recordSize) {
    out.push({ offset: v.getUint32(p, true), name: obj.btf.name(v.getUint32(p + 4, true)) });
  }
  return out.sort((a, b) => a.offset - b.offset);
}

/** The CO-RE relocation libbpf poisoned at final instruction `insn` of the program. */
function poisonedRecord(
  entry: ObjectEntry,
  prog: PlannedProgram,
  insn: number,
): RelocationRecord | undefined {
  const layout = functionLayout(entry.obj, prog);
  let fn = layout[0];
  for (const f of layout) if (f.offset <= insn) fn = f;
  const poisoned = entry.records.filter((r) => r.result === 'poisoned');
  if (fn !== undefined) {
    const exact = poisoned.find((r) => r.function === fn.name && r.insn === insn - fn.offset);
    if (exact !== undefined) return exact;
  }
  // No func_info (an old kernel): a poisoned record of this program's own code, if unique.
  const own = poisoned.filter((r) => r.function === prog.name && r.insn === insn);
  return own.length === 1 ? own[0] : undefined;
}

/** Plain words for a rejection, from the verifier log and what the plan knows. */
export function rejectionCause(
  r: AgentResult,
  entry: ObjectEntry | undefined,
  prog: PlannedProgram | undefined,
  report?: ObjectReport,
): string {
  const errno = r.errno === undefined ? '' : errnoName(r.errno);
  if (r.stage === 'map') {
    const failed = (prog?.maps ?? []).map((i) => report?.maps[i]).find((m) => m !== undefined && !m.created);
    if (failed === undefined) return `a map it uses could not be created (${errno})`;
    const how =
      failed.step === undefined || failed.step === 'create' ? 'created' : `made (${failed.step} failed)`;
    return `map ${failed.name} could not be ${how}: ${errnoName(failed.errno ?? r.errno ?? 0)}`;
  }
  if (r.stage === 'btf') return `the object's BTF was refused (${errno})`;
  const log = r.log;
  const core = new RegExp(`^(\\d+): \\(85\\) call unknown#${POISON_CALL_CORE}\\b`, 'm').exec(log);
  if (core !== null || log.includes(`invalid func unknown#${POISON_CALL_CORE}`)) {
    const insn = core === null ? undefined : Number(core[1]);
    const rec =
      insn === undefined || entry === undefined || prog === undefined
        ? undefined
        : poisonedRecord(entry, prog, insn);
    const what =
      rec === undefined
        ? 'a CO-RE relocation'
        : `CO-RE relocation ${rec.access} (${rec.kind}, ${rec.function} insn ${rec.insn}, relo #${rec.index})`;
    return `invalid func unknown#${POISON_CALL_CORE} at insn ${insn ?? '?'} → failed ${what} on a reachable path`;
  }
  const kfunc = /invalid func unknown#(200200\d{4})|call unknown#(200200\d{4})/.exec(log);
  if (kfunc !== null) {
    const index = Number(kfunc[1] ?? kfunc[2]) - POISON_CALL_KFUNC_BASE;
    const name = entry?.obj?.externs[index]?.name;
    return `call to weak kfunc ${name ?? `#${index}`}, which the kernel lacks, on a reachable path`;
  }
  const unknownFunc = /unknown func (\S+)/.exec(log);
  if (unknownFunc !== null)
    return `unknown func ${unknownFunc[1]}: the kernel lacks this helper (or it is not allowed for this program type)`;
  const complaint = verifierComplaint(log);
  if (complaint !== undefined) return complaint;
  if (r.errno === 22 && log.trim() === '')
    return 'EINVAL without a verifier log: the kernel refused the program attributes (type, attach type or flags)';
  return `${errno} without a verifier log`;
}

// ---------------------------------------------------------------------------------------------
// The cell

export async function loadOnKernel(input: CellInput): Promise<CellResult> {
  const t0 = performance.now();
  const options = input.options ?? {};
  const lines = options.logLines ?? 8;
  const kernel = await openKernel(input.kernel);
  const entries: ObjectEntry[] = [];
  for (const file of input.objects) entries.push(await planOne(file, kernel.plan));

  const cpus = options.cpus ?? 1;
  const plan: LoadPlan = {
    version: 1,
    kernel: kernel.name,
    objects: entries.flatMap((e) =>
      e.plan === undefined || e.plan.programs.length === 0 ? [] : [withVmFacts(e.plan, cpus)],
    ),
  };
  const bytes = encodePlan(plan);
  const planMs = Math.round(performance.now() - t0);

  const programs: ProgramVerdict[] = [];
  const refused = (e: ObjectEntry, p: { name: string; section: string }, cause: string, notes: string[]) =>
    programs.push({
      object: e.name,
      program: p.name,
      section: p.section,
      verdict: 'refused-before-load',
      logHead: '',
      log: '',
      cause,
      ...(notes.length === 0 ? {} : { notes }),
    });
  const base: Omit<CellResult, 'status' | 'programs'> = {
    kernel: kernel.name,
    release: kernel.plan.release,
    phases: { plan: planMs, vm: 0, total: 0 },
  };
  const plannedCount = plan.objects.reduce((n, o) => n + o.programs.length, 0);

  let outcome: (RunOutcome & { retried: RunOutcome[] }) | undefined;
  let output: AgentOutput | undefined;
  if (plannedCount > 0) {
    const agentPath = options.agent ?? AGENT_BIN;
    const ran = await runResultInit(
      {
        vmlinuz: kernel.vmlinuz,
        init: '/corematrix-agent',
        files: [
          { path: '/corematrix-agent', bytes: await fs.readFile(agentPath), mode: 0o755 },
          { path: '/plan.bin', bytes },
        ],
        ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
        ...(options.memoryMb === undefined ? {} : { memoryMb: options.memoryMb }),
        cpus,
        ...(options.signal === undefined ? {} : { signal: options.signal }),
        ...(options.executor === undefined ? {} : { executor: options.executor }),
      },
      options.pool ?? new VmPool({ concurrency: 1 }),
      options.adjustRun,
    );
    outcome = ran.outcome;
    output = ran.output;
  }

  // An infra fault: the VM or the agent failed, so nothing the agent said is the whole story.
  let infra: CellInfra | undefined;
  if (outcome !== undefined && output !== undefined) {
    const unusable = output.errors.find((e) => e.kind === 'agent-error' && e.object === undefined);
    if (!output.complete || unusable !== undefined) {
      const said = unusable?.message ?? output.errors.map((e) => e.message).join('; ');
      infra = {
        kind: outcome.kind === 'completed' ? 'agent-incomplete' : outcome.kind,
        reason:
          outcome.kind === 'completed'
            ? `the agent ended without all its results: ${said}`
            : `${outcome.reason}${output.hello === undefined ? '' : ` (after ${output.results.length} results)`}`,
        consoleTail: outcome.consoleTail,
        attempts: 1 + outcome.retried.length,
      };
    }
  }

  const results = new Map<string, AgentResult>();
  for (const r of output?.results ?? []) results.set(`${r.object}\0${r.program}`, r);

  for (const e of entries) {
    if (e.obj === undefined) {
      programs.push({
        object: e.name,
        program: '*',
        verdict: 'refused-before-load',
        logHead: '',
        log: '',
        cause: `not a BPF object corematrix can read: ${e.parseError ?? ''}`,
      });
      continue;
    }
    const objectProblems = e.problems.filter((p) => p.program === undefined);
    if (e.programs.length === 0) {
      programs.push({
        object: e.name,
        program: '*',
        verdict: 'refused-before-load',
        logHead: '',
        log: '',
        cause: objectProblems[0]?.message ?? 'the object has no programs',
      });
      continue;
    }
    for (const p of e.programs) {
      const mine = e.problems.filter((q) => q.program === p.name);
      const notes = [...objectProblems, ...mine]
        .filter((q) => q.severity !== 'refused')
        .map((q) => q.message);
      const refusal = mine.find((q) => q.severity === 'refused');
      const planned = e.plan?.programs.find((q) => q.name === p.name);
      if (refusal !== undefined || planned === undefined) {
        refused(e, p, refusal === undefined ? 'not planned' : refusalCause(refusal), notes);
        continue;
      }
      const r = results.get(`${e.name}\0${p.name}`);
      if (infra !== undefined || r === undefined) {
        const tail = infra?.consoleTail ?? outcome?.consoleTail ?? '';
        programs.push({
          object: e.name,
          program: p.name,
          section: p.section,
          verdict: 'infra_error',
          logHead: firstLines(tail.split('\n').slice(-lines).join('\n'), lines),
          log: tail,
          cause: infra === undefined ? 'the agent sent no result for it' : `${infra.kind}: ${infra.reason}`,
          ...(notes.length === 0 ? {} : { notes }),
        });
        continue;
      }
      const v: ProgramVerdict = {
        object: e.name,
        program: p.name,
        section: p.section,
        verdict: r.verdict,
        logHead: firstLines(r.log, lines),
        log: r.log,
        cause:
          r.verdict === 'loaded'
            ? 'the verifier accepted it'
            : rejectionCause(
                r,
                e,
                planned,
                output?.objects.find((o) => o.object === e.name),
              ),
      };
      if (r.errno !== undefined) {
        v.errno = r.errno;
        v.errnoName = errnoName(r.errno);
      }
      if (r.stage !== undefined) v.stage = r.stage;
      if (r.insnsProcessed !== undefined) v.insnsProcessed = r.insnsProcessed;
      if (r.loadNs !== undefined) v.loadNs = r.loadNs;
      if (notes.length > 0) v.notes = notes;
      programs.push(v);
    }
  }

  const result: CellResult = {
    ...base,
    status: infra === undefined ? 'ok' : 'infra_error',
    programs,
  };
  if (infra !== undefined) result.infra = infra;
  if (outcome !== undefined) {
    result.accel = outcome.accel;
    const ph = outcome.phases;
    if (ph.boot !== undefined) result.phases.boot = ph.boot;
    if (ph.run !== undefined) result.phases.load = ph.run;
    if (ph.shutdown !== undefined) result.phases.shutdown = ph.shutdown;
    result.phases.vm = ph.total;
  }
  if (output !== undefined) result.agent = output;
  result.phases.total = Math.round(performance.now() - t0);
  return result;
}

/** A loader problem in plain words (attach targets, CO-RE, externs keep the loader's own words). */
function refusalCause(p: PlanProblem): string {
  return p.message;
}
