/**
 * The matrix runner: a run plan (plan.ts) as a tree of tasks for @vitest/runner (through the
 * fence, vitest-adapter.ts), run, and the report built from what the tasks found.
 *
 * The tree:
 *
 *   kernel <name>            a suite per kernel, all side by side (concurrent)
 *     beforeAll              opens the kernel: fetches a Debian kernel on first use, reads its BTF
 *     vm: <n> objects        the VM tier, one boot for all the kernel's objects (a shared VmPool
 *                            caps the VMs at once); retried for infra errors only
 *     <object>               a task per cell: static verdicts + the VM's verdicts → a report cell
 *   expectations             after every kernel: builds the report, then
 *     <object>: <text>       a task per expectation (matrix.yaml and *.case.ts), per custom check,
 *     baseline               and, with --baseline, "no regressions"
 *
 * Retries: an infra fault of the VM tier (panic, timeout, no init, the agent's results cut short)
 * makes the vm task throw an error whose message starts `infra_error (<kind>)`; the task's retry
 * condition matches exactly those kinds, so the runner tries it again and nothing else. A rejected
 * program is a verdict, not an error: it never throws, so it is never retried. The pool itself does
 * not retry (its retries would hide the faults from the task).
 *
 * Faults stay in their kernel: a kernel that cannot be fetched or booted makes its cells
 * infra_error (a kernel whose files cannot be read: error), and the run goes on.
 */

import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { staticVerdicts } from '../analysis/verdict.js';
import type { BuiltObject } from '../build/build.js';
import { buildError } from '../build/report.js';
import { relocateObject } from '../core/relocate.js';
import { oneLine } from '../errors.js';
import { rawKconfig } from '../loader/kconfig.js';
import type { PlanKernel } from '../loader/loader.js';
import type { KernelSource, ResolvedKernel } from '../matrix/kernels.js';
import type { Matrix } from '../matrix/load.js';
import { type BpfObject, parseBpfObject } from '../object/object.js';
import {
  type BuildInput,
  buildReport,
  type CellInput,
  programOutcome,
  reportKernel,
} from '../report/build.js';
import { diffReports, type ReportDiff } from '../report/diff.js';
import type {
  Report,
  ReportCellStatus,
  ReportExpectation,
  ReportKernel,
  ReportObject,
} from '../report/schema.js';
import type { CellOptions, CellResult, CellInput as VmCellInput } from '../vm/cell.js';
import { DEFAULT_RETRY, VmPool } from '../vm/pool.js';
import { type CaseFile, checkContext } from './case-files.js';
import { type ExpectationResult, evaluateExpectation } from './expect.js';
import { type RunPlan, reportName } from './plan.js';
import {
  runTaskTree,
  type SuiteSpec,
  type TaskEvent,
  type TaskOutcome,
  type TaskSpec,
} from './vitest-adapter.js';

/** Runs the VM tier of one kernel: where the VMs run (harness/cli/run.ts chooses it). */
export type VmExecutor = (input: VmCellInput) => Promise<CellResult>;

/** Infra kinds worth another try: the pool's own list, plus results cut short. */
const RETRIED_KINDS = [...DEFAULT_RETRY.on, 'agent-incomplete'];
export const INFRA_RETRY = {
  count: DEFAULT_RETRY.retries,
  when: new RegExp(`^infra_error \\((${RETRIED_KINDS.join('|')})\\)`),
};

/** A kernel's files may need fetching (a Debian package, ~20 s; minutes on a slow mirror). */
const OPEN_TIMEOUT_MS = 10 * 60_000;

export interface CellSummary {
  status: ReportCellStatus;
  loaded: number;
  failed: number;
  programs: number;
  /** Why, for error and infra_error cells. */
  detail?: string;
}

export interface RunMatrixInput {
  matrix: Matrix;
  plan: RunPlan;
  /** Every kernel of the matrix (matrixKernelSources). */
  sources: readonly KernelSource[];
  caseFiles: readonly CaseFile[];
  /** The compiler axis' objects (harness/build buildCaseObjects): a source that did not compile has error cells. */
  built?: readonly BuiltObject[];
  /** VMs at once. */
  concurrency: number;
  executor: VmExecutor;
  baseline?: { file: string; report: Report };
  corematrixVersion: string;
  /** The matrix as the report names it (the path given). */
  matrixLabel: string;
  onEvent?: (event: TaskEvent, cell?: CellSummary) => void;
}

export interface ExpectationOutcome {
  name: string;
  /** Where it is declared: `MATRIX:LINE`, or the case file (as the report names files). */
  source: string;
  state: 'met' | 'unmet' | 'unknown';
  failures: string[];
  note?: string;
  /** The kernels whose cells it was checked on. */
  kernels: string[];
}

export interface RunMatrixResult {
  report: Report;
  diff?: ReportDiff;
  tasks: TaskOutcome[];
  expectations: ExpectationOutcome[];
  /** Cells whose VM tier faulted or whose kernel could not be opened: "kernel: object: why". */
  infra: string[];
}

class InfraError extends Error {
  override name = 'InfraError';
}

interface KernelState {
  source: KernelSource;
  resolved?: ResolvedKernel;
  plan?: PlanKernel;
  kconfig?: ReturnType<typeof rawKconfig>;
  btfSha256?: string;
  /** Why the kernel could not be opened; infra when it is the fetch's or the VM's fault. */
  fault?: { infra: boolean; message: string };
  vm?: CellResult;
  /** Why the VM tier gave no result (the vm task failed). */
  vmFault?: string;
}

interface ObjectState {
  name: string;
  path: string;
  sha256: string;
  obj?: BpfObject;
  error?: string;
}

function message(e: unknown): string {
  if (e instanceof Error)
    return 'describe' in e && typeof e.describe === 'function' ? e.describe() : e.message;
  return String(e);
}

async function readObject(name: string, file: string): Promise<ObjectState> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (e) {
    return { name, path: file, sha256: '', error: `cannot read the object: ${message(e)}` };
  }
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  try {
    return { name, path: file, sha256, obj: parseBpfObject(new Uint8Array(bytes), { path: name }) };
  } catch (e) {
    return { name, path: file, sha256, error: `not a BPF object corematrix can read: ${message(e)}` };
  }
}

/** A VM result standing for a kernel whose VM tier never ran: its cells are infra errors. */
function faultResult(kernel: string, release: string, reason: string): CellResult {
  return {
    kernel,
    release,
    status: 'infra_error',
    infra: { kind: 'no-init', reason, consoleTail: '', attempts: 0 },
    phases: { plan: 0, vm: 0, total: 0 },
    programs: [],
  };
}

export function summarizeCell(cell: Report['cells'][number]): CellSummary {
  const outcomes = cell.programs.map(programOutcome);
  const detail = cell.error ?? cell.infra?.reason;
  return {
    status: cell.status,
    loaded: outcomes.filter((o) => o === 'loads').length,
    failed: outcomes.filter((o) => o === 'fails').length,
    programs: cell.programs.length,
    ...(detail === undefined ? {} : { detail: oneLine(detail) }),
  };
}

export async function runMatrix(input: RunMatrixInput): Promise<RunMatrixResult> {
  const t0 = performance.now();
  const { matrix, plan } = input;
  const runsVm = (k: string) => plan.kernels.find((x) => x.name === k)?.tiers.includes('vm') === true;
  const runsStatic = (k: string) => plan.kernels.find((x) => x.name === k)?.tiers.includes('static') === true;
  const objects = new Map(
    (
      await Promise.all(
        plan.objects.map((o): ObjectState | Promise<ObjectState> => {
          const failed = input.built?.find((b) => b.name === o.name && b.error !== undefined);
          if (failed === undefined) return readObject(o.name, o.path);
          return { name: o.name, path: failed.source, sha256: failed.sha256, error: buildError(failed)! };
        }),
      )
    ).map((o) => [o.name, o]),
  );
  const plannedObjects = new Map(plan.objects.map((o) => [o.name, o]));
  const kernels = new Map<string, KernelState>();
  for (const k of plan.kernels) {
    const source = input.sources.find((s) => s.name === k.name);
    if (source === undefined) throw new Error(`kernel ${k.name} of the plan has no source`);
    kernels.set(k.name, { source });
  }
  const pool = new VmPool({ concurrency: input.concurrency, retry: { retries: 0, on: [] } });
  const vmTimeoutMs = (matrix.timeouts.boot + matrix.timeouts.load) * 1000;
  const vmKernels = plan.kernels.filter((k) => k.tiers.includes('vm')).length;
  // A vm task also waits for a free VM: its timeout covers the waves of VMs before it.
  const vmTaskTimeoutMs =
    vmTimeoutMs * Math.max(1, Math.ceil(vmKernels / Math.max(1, input.concurrency))) + 60_000;
  const cellTimeoutMs = matrix.timeouts.load * 1000;
  const cells = new Map<string, CellInput>();
  const summaries = new Map<string, CellSummary>();
  const cellKey = (kernel: string, object: string) => `${kernel}\u0000${object}`;
  let report: Report | undefined;
  let diff: ReportDiff | undefined;

  const kernelSuite = (name: string): SuiteSpec => {
    const state = kernels.get(name)!;
    const mine = plan.cells.filter((c) => c.kernel === name);
    const children: TaskSpec[] = [];
    const vmObjects = mine.filter((c) => c.tiers.includes('vm')).map((c) => c.object);
    if (vmObjects.length > 0) {
      children.push({
        kind: 'task',
        name: `vm: ${vmObjects.length} object(s)`,
        info: { role: 'vm', kernel: name, objects: vmObjects.length },
        timeoutMs: vmTaskTimeoutMs,
        retry: INFRA_RETRY,
        run: async ({ signal }) => {
          if (state.fault !== undefined) {
            state.vmFault = state.fault.message;
            throw new InfraError(`infra_error (kernel): ${state.fault.message}`);
          }
          const r = state.resolved!;
          const readable = vmObjects.filter((o) => objects.get(o)?.obj !== undefined);
          const byPath = new Map(readable.map((o) => [objects.get(o)!.path, o]));
          const options: CellOptions = { timeoutMs: vmTimeoutMs, pool, signal };
          state.vmFault = 'the VM tier did not finish';
          const result = await input.executor({
            kernel: {
              name,
              vmlinuz: r.vmlinuz!,
              btf: r.btf!,
              config: r.config!,
              release: r.release!,
              ...(state.plan?.version === undefined ? {} : { version: state.plan.version }),
            },
            objects: [...byPath.keys()],
            options,
          });
          // The executor reports objects by the path given; the report names them.
          result.programs = result.programs.map((p) => ({ ...p, object: byPath.get(p.object) ?? p.object }));
          state.vm = result;
          if (result.status === 'infra_error') {
            const kind = result.infra?.kind ?? 'unknown';
            state.vmFault = `${kind}: ${oneLine(result.infra?.reason ?? '')}`;
            throw new InfraError(`infra_error (${kind}): ${oneLine(result.infra?.reason ?? '')}`);
          }
          delete state.vmFault;
        },
      });
    }
    for (const c of mine) {
      children.push({
        kind: 'task',
        name: c.object,
        info: { role: 'cell', kernel: name, object: c.object },
        timeoutMs: cellTimeoutMs,
        run: () => {
          const cell = runCell(name, c.object, c.tiers.includes('static'), c.tiers.includes('vm'));
          cells.set(cellKey(name, c.object), cell);
          const built = buildReport({ ...reportFrame(), cells: [cell] }).cells[0]!;
          const summary = summarizeCell(built);
          summaries.set(cellKey(name, c.object), summary);
          if (built.status === 'infra_error') throw new InfraError(`infra_error: ${summary.detail ?? ''}`);
        },
      });
    }
    return {
      kind: 'suite',
      name: `kernel ${name}`,
      info: { role: 'kernel', kernel: name },
      concurrent: true,
      beforeAll: {
        timeoutMs: OPEN_TIMEOUT_MS,
        run: () =>
          openKernel(state, (line) =>
            input.onEvent?.({
              type: 'log',
              name: `kernel ${name}`,
              info: { role: 'kernel', kernel: name },
              note: line,
            }),
          ),
      },
      children,
    };
  };

  /** One cell from what the kernel's tiers found; never throws (faults become the cell's status). */
  const runCell = (kernel: string, objectName: string, staticTier: boolean, vmTier: boolean): CellInput => {
    const state = kernels.get(kernel)!;
    const object = objects.get(objectName)!;
    const subset = plannedObjects.get(objectName)?.programs;
    const pick = <T extends { program: string }>(list: T[]) =>
      subset === undefined ? list : list.filter((p) => p.program === '*' || subset.includes(p.program));
    const cell: CellInput = { kernel, object: objectName };
    if (object.obj === undefined) {
      cell.error = object.error ?? 'unreadable';
      return cell;
    }
    if (state.fault !== undefined) {
      if (state.fault.infra) cell.vm = faultResult(kernel, '', `kernel ${kernel}: ${state.fault.message}`);
      else cell.error = `kernel ${kernel}: ${state.fault.message}`;
      return cell;
    }
    if (staticTier && runsStatic(kernel)) {
      const ts = performance.now();
      try {
        cell.static = pick(
          staticVerdicts({
            name: objectName,
            obj: object.obj,
            kernelName: kernel,
            kernel: state.plan!,
            ...(state.kconfig === undefined ? {} : { kconfig: state.kconfig }),
          }),
        );
      } catch (e) {
        // Not the kernel's or the VM's fault: the cell says what went wrong, the run goes on.
        cell.error = `the static tier failed on this object: ${oneLine(message(e))}`;
      }
      cell.staticMs = Math.round(performance.now() - ts);
    }
    if (vmTier && runsVm(kernel)) {
      // The last try's result (with its console tail when it faulted), else why there is none.
      const vm =
        state.vm ??
        faultResult(kernel, state.resolved?.release ?? '', state.vmFault ?? 'the VM tier did not run');
      cell.vm = { ...vm, programs: pick(vm.programs.filter((p) => p.object === objectName)) };
      // Without the static tier nobody classified the object's CO-RE relocations: its records on
      // this kernel let the report classify them from the VM's verdicts (a rejected program's
      // unguarded access is still a needs-guard field, not an unexplained failure).
      if (cell.static === undefined && state.plan !== undefined) {
        try {
          cell.records = relocateObject(object.obj, {
            vmlinux: state.plan.btf,
            modules: [],
            vmlinuxOverride: true,
          }).records;
        } catch {
          // The VM's verdicts stand on their own; the relocations just go unclassified.
        }
      }
    }
    return cell;
  };

  const reportKernels = (): ReportKernel[] =>
    plan.kernels.map((k) => {
      const state = kernels.get(k.name)!;
      if (state.resolved === undefined)
        return { name: k.name, source: state.source.describe(), arch: 'x86_64' };
      return reportKernel(
        state.resolved,
        state.btfSha256 === undefined ? {} : { btfSha256: state.btfSha256 },
      );
    });
  const reportObjects = (): ReportObject[] =>
    plan.objects.map((o) => ({
      name: o.name,
      path: o.name,
      sha256: objects.get(o.name)?.sha256 ?? '',
      ...(o.compiler === undefined ? {} : { compiler: o.compiler }),
    }));
  const reportFrame = (): Omit<BuildInput, 'cells'> => ({
    corematrixVersion: input.corematrixVersion,
    tiers: [...plan.tiers],
    matrix: input.matrixLabel,
    ...(plan.shard === undefined ? {} : { shard: { ...plan.shard } }),
    durationMs: Math.round(performance.now() - t0),
    kernels: reportKernels(),
    objects: reportObjects(),
  });

  // Expectations: the matrix's and the case files', each about the objects it was declared for.
  // Each has its slot, in declaration order, filled by its task (settle) or, for a task that ended
  // without settling (a check past its time), from the task's outcome after the run.
  const expectationTasks: TaskSpec[] = [];
  const declared: { name: string; source: string }[] = [];
  const settled: (ExpectationOutcome | undefined)[] = [];
  const matrixDir = path.dirname(matrix.file);
  const expectationTask = (
    object: string,
    text: string,
    source: string,
    run: (settle: Settle) => Promise<void> | void,
  ): void => {
    const slot = declared.length;
    const name = `${object}: ${text}`;
    declared.push({ name, source });
    expectationTasks.push({
      kind: 'task',
      name,
      info: { role: 'expectation', object },
      timeoutMs: cellTimeoutMs,
      run: ({ skip }) =>
        run((found) => {
          const outcome = expectationOutcome({ name, source }, found);
          settled[slot] = outcome;
          if (outcome.note !== undefined) skip(outcome.note);
          if (outcome.state === 'unmet') throw new Error(`unmet: ${outcome.failures.join('; ')}`);
        }),
    });
  };
  for (const o of plan.objects) {
    for (const e of o.expect) {
      expectationTask(o.name, e.text, `${input.matrixLabel}:${e.at.line}`, (settle) => {
        settle(evaluateExpectation(e, [o.name], report!));
      });
    }
  }
  for (const cf of input.caseFiles) {
    if (!plannedObjects.has(cf.object)) continue;
    const source = reportName(matrixDir, cf.file);
    for (const e of cf.expectations) {
      expectationTask(cf.object, e.text, source, (settle) => {
        settle(evaluateExpectation(e, [cf.object], report!));
      });
    }
    for (const check of cf.checks) {
      expectationTask(cf.object, check.name, source, async (settle) => {
        const context = checkContext(cf.object, report!.kernels, report!.cells);
        const kernels = context.cells.map((c) => c.kernel);
        if (context.cells.length === 0)
          settle({ state: 'unknown', failures: [], skipped: ['no cell of it in this run'], kernels });
        let failure: string | undefined;
        try {
          if ((await check.fn(context)) === false) failure = 'the check returned false';
        } catch (e) {
          failure = `${message(e)} (${cf.file})`;
        }
        settle({
          state: failure === undefined ? 'met' : 'unmet',
          failures: failure === undefined ? [] : [failure],
          skipped: [],
          kernels,
        });
      });
    }
  }
  if (input.baseline !== undefined) {
    const baseline = input.baseline;
    expectationTasks.push({
      kind: 'task',
      name: `no regressions against ${baseline.file}`,
      info: { role: 'baseline' },
      timeoutMs: cellTimeoutMs,
      run: () => {
        diff = diffReports(baseline.report, report!);
        if (diff.regressions.length > 0) {
          throw new Error(
            `${diff.regressions.length} regression(s): ${diff.regressions
              .map(
                (r) =>
                  `${r.kernel}: ${r.object} ${r.program}: ${r.was} → ${r.now}${r.cause === '' ? '' : ` (${oneLine(r.cause)})`}`,
              )
              .join('; ')}`,
          );
        }
      },
    });
  }

  const root: SuiteSpec[] = [
    ...plan.kernels.map((k) => kernelSuite(k.name)),
    {
      kind: 'suite',
      name: 'expectations',
      info: { role: 'expectations' },
      beforeAll: {
        timeoutMs: 60_000,
        run: () => {
          // Every cell task recorded its cell (a cell whose task never ran is an infra error).
          const all = plan.cells.map(
            (c) =>
              cells.get(cellKey(c.kernel, c.object)) ?? {
                kernel: c.kernel,
                object: c.object,
                vm: faultResult(c.kernel, '', 'the cell did not run'),
              },
          );
          report = buildReport({ ...reportFrame(), cells: all });
        },
      },
      children: expectationTasks,
    },
  ];

  const tasks = await runTaskTree(root, {
    // Every kernel suite at once; the pool caps the VMs.
    maxConcurrency: Math.max(1, plan.kernels.length + 1),
    onEvent: (event) => {
      const summary =
        event.info.role === 'cell' && event.type === 'task-end'
          ? summaries.get(cellKey(event.info.kernel, event.info.object))
          : undefined;
      input.onEvent?.(event, summary);
    },
  });
  if (report === undefined) throw new Error('the expectations suite never built the report');
  report.run.durationMs = Math.round(performance.now() - t0);
  const expectations = declared.map(
    (d, slot) => settled[slot] ?? unsettledOutcome(d, tasks, declared.slice(0, slot)),
  );
  if (expectations.length > 0) report.expectations = expectations.map(reportExpectation);
  const infra = report.cells
    .filter((c) => c.status === 'infra_error')
    .map((c) => `${c.kernel}: ${c.object}: ${oneLine(c.infra?.reason ?? 'infra error')}`);
  return { report, ...(diff === undefined ? {} : { diff }), tasks, expectations, infra };
}

/** What an expectation or check found (evaluateExpectation's result, or a check's). */
export type ExpectationFinding = Pick<ExpectationResult, 'state' | 'failures' | 'skipped' | 'kernels'>;

/** What an expectation task calls with what it found. */
type Settle = (found: ExpectationFinding) => void;

/** An expectation's outcome from what it found: one with nothing to check has a note saying why. */
export function expectationOutcome(
  declared: { name: string; source: string },
  found: ExpectationFinding,
): ExpectationOutcome {
  const { state, failures, skipped, kernels } = found;
  if (state !== 'unknown') return { ...declared, state, failures, kernels };
  const why = skipped.length === 0 ? ' (its kernels or objects are not in it)' : `: ${skipped.join('; ')}`;
  return { ...declared, state, failures: [], note: `nothing to check in this run${why}`, kernels };
}

/**
 * The outcome of an expectation whose task ended without settling (it timed out): unmet, with the
 * task's error. Tasks of the same name are matched in order (`before`: the expectations declared
 * before this one).
 */
function unsettledOutcome(
  d: { name: string; source: string },
  tasks: readonly TaskOutcome[],
  before: readonly { name: string }[],
): ExpectationOutcome {
  const nth = before.filter((b) => b.name === d.name).length;
  const task = tasks.filter((t) => t.info.role === 'expectation' && t.name === d.name)[nth];
  const why = task?.errors[0] ?? 'its task did not run';
  return { ...d, state: 'unmet', failures: [oneLine(why)], kernels: [] };
}

/** An expectation as report.json keeps it. */
export function reportExpectation(o: ExpectationOutcome): ReportExpectation {
  const status = o.state === 'met' ? 'passed' : o.state === 'unmet' ? 'failed' : 'skipped';
  const message = o.state === 'unmet' ? o.failures.map(oneLine).join('\n') : o.note;
  return {
    name: o.name,
    source: o.source,
    status,
    ...(message === undefined || message === '' ? {} : { message }),
    ...(o.kernels.length === 0 ? {} : { kernels: [...o.kernels] }),
  };
}

/** Opens (fetching on first use) and reads a kernel; a failure is kept as the kernel's fault. */
async function openKernel(state: KernelState, log: (line: string) => void): Promise<void> {
  try {
    const r = await state.source.open({ fetch: true, log });
    state.resolved = r;
    if (r.btf === undefined || r.release === undefined || r.config === undefined) {
      state.fault = {
        infra: r.kind === 'debian',
        message: r.detail ?? `${r.state}: its BTF, config or release is unknown`,
      };
      return;
    }
    state.plan = {
      btf: r.btf,
      config: r.config,
      release: r.release,
      ...(r.config.version === undefined ? {} : { version: r.config.version }),
    };
    state.kconfig = rawKconfig(r.config);
    if (r.btfFile !== undefined)
      state.btfSha256 = createHash('sha256')
        .update(await fs.readFile(r.btfFile))
        .digest('hex');
  } catch (e) {
    // A Debian kernel that cannot be fetched is the network's or the archive's fault.
    state.fault = { infra: state.source.decl.kind === 'debian', message: oneLine(message(e)) };
  }
}
