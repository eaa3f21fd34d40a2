/**
 * `corematrix run`: the matrix runner's command line (the runner itself lives in harness/run/), and
 * `corematrix plan` (the shards of a run, for a CI system).
 *
 * Exit codes: 0 every expectation met and no regression against --baseline; 1 an unmet expectation
 * or a regression (with --strict-infra, also an infra error); 2 bad usage or configuration (a bad
 * matrix or case file, an unknown kernel, a bad --shard, an unreadable baseline). Infra errors
 * alone exit 0, and the summary says so.
 */

import { existsSync } from 'node:fs';
import path from 'node:path';
import { buildRunObjects } from '../build/for-run.js';
import { isParseError, oneLine, UsageError } from '../errors.js';
import { matrixKernelSources } from '../matrix/kernels.js';
import { isMatrixError, loadMatrix, type Matrix } from '../matrix/load.js';
import { readReport } from '../report/json.js';
import type { Report } from '../report/schema.js';
import { githubMatrix, parseShard } from '../report/shard.js';
import { writeReportSet } from '../report/write.js';
import { type CaseFile, findCaseFile, loadCaseFile } from '../run/case-files.js';
import { formatShardPlan, planRun, type RunPlan } from '../run/plan.js';
import { liveProgress, plainProgress } from '../run/progress.js';
import { type RunMatrixResult, runMatrix, type VmExecutor } from '../run/runner.js';
import { AGENT_BIN, loadOnKernel } from '../vm/cell.js';
import { progressIsLive } from './kernels.js';
import type { Output } from './output.js';

/** The flags as commander hands them over. */
export interface RunCommandFlags {
  matrix: string;
  tier?: 'static' | 'vm' | 'all';
  kernel?: string[];
  case?: string[];
  out?: string;
  baseline?: string;
  shard?: string;
  strictInfra: boolean;
  concurrency?: number;
  executor?: 'local' | 'container';
}

export interface RunCommandOptions extends RunCommandFlags {
  /** Kernel cache root (default $COREMATRIX_CACHE or ./kernels). */
  cache?: string;
}

export interface RunIo {
  out: Output;
  stderr: (text: string) => void;
  /** Whether stderr is a terminal (default: process.stderr's). */
  tty?: boolean;
}

const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/**
 * Where the VMs run: the one place the executor is chosen. `local`: QEMU on this host; `container`:
 * QEMU in a container of the executor image (harness/container, built or reused on first use),
 * through vm/cell.ts's CellOptions.executor seam. No engine to run containers is a usage error.
 */
export async function chooseExecutor(kind: 'local' | 'container'): Promise<VmExecutor> {
  if (kind === 'local') return loadOnKernel;
  const [{ engineAvailable }, { containerExecutor }] = await Promise.all([
    import('../container/engine.js'),
    import('../container/executor.js'),
  ]);
  const engine = await engineAvailable();
  if (!engine.ok) throw new UsageError(`--executor container: ${engine.reason}`);
  const executor = containerExecutor();
  return (input) => loadOnKernel({ ...input, options: { ...input.options, executor } });
}

/** The exit code of a finished run. */
export function runExitCode(r: {
  unmet: number;
  regressions: number;
  infra: number;
  strictInfra: boolean;
}): number {
  if (r.unmet > 0 || r.regressions > 0) return EXIT.failed;
  if (r.strictInfra && r.infra > 0) return EXIT.failed;
  return EXIT.ok;
}

export async function runCommand(o: RunCommandOptions, io: RunIo): Promise<number> {
  try {
    return await run(o, io);
  } catch (e) {
    if (!isMatrixError(e)) throw e;
    io.stderr(`corematrix: ${oneLine(e.describe())}\n`);
    return EXIT.usage;
  }
}

/**
 * The VM tier boots corematrix's agent as init: a fresh checkout has not built it yet, so it is
 * built on first use (scripts/build-agent.sh --agent-only: gcc -static, a few seconds), as Debian
 * kernels are fetched on first use.
 */
async function ensureAgent(io: RunIo): Promise<void> {
  if (existsSync(AGENT_BIN)) return;
  const script = path.join(path.dirname(path.dirname(path.dirname(AGENT_BIN))), 'scripts', 'build-agent.sh');
  io.stderr(
    `corematrix run: building the VM tier's agent (${path.relative(process.cwd(), script) || script} --agent-only)\n`,
  );
  const { execa } = await import('execa');
  const r = await execa('bash', [script, '--agent-only'], { reject: false, stdin: 'ignore', all: true });
  if (r.exitCode !== 0 || !existsSync(AGENT_BIN)) {
    const why =
      (r.all ?? '')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .at(-1) ?? `exit ${r.exitCode}`;
    throw new UsageError(
      `the VM tier needs its agent and building it failed (${oneLine(why)}); run ${script}, or use --tier static`,
      {
        file: AGENT_BIN,
      },
    );
  }
}

async function readBaseline(file: string): Promise<Report> {
  try {
    return await readReport(file);
  } catch (e) {
    // A baseline that is not a report is a mistake on the command line, like a missing one.
    if (isParseError(e)) throw new UsageError(`--baseline: ${e.message}`, { file, cause: e });
    throw e;
  }
}

async function caseFilesOf(plan: RunPlan, matrix: Matrix): Promise<CaseFile[]> {
  const out: CaseFile[] = [];
  for (const o of plan.objects) {
    const file = findCaseFile(o, matrix.dir);
    if (file !== undefined) out.push(await loadCaseFile(file, o.name));
  }
  return out;
}

async function run(o: RunCommandOptions, io: RunIo): Promise<number> {
  const matrix = loadMatrix(o.matrix);
  const executor = await chooseExecutor(o.executor ?? matrix.executor);
  const shard = o.shard === undefined ? undefined : parseShard(o.shard);
  const plan = planRun(matrix, {
    ...(o.tier === undefined ? {} : { tier: o.tier }),
    ...(o.kernel === undefined ? {} : { kernels: o.kernel }),
    ...(o.case === undefined ? {} : { cases: o.case }),
    ...(shard === undefined ? {} : { shard }),
  });
  const caseFiles = await caseFilesOf(plan, matrix);
  if (plan.cells.some((c) => c.tiers.includes('vm'))) await ensureAgent(io);
  const baseline =
    o.baseline === undefined ? undefined : { file: o.baseline, report: await readBaseline(o.baseline) };
  const out = path.resolve(o.out ?? matrix.reports);
  const live = progressIsLive(io.tty ?? process.stderr.isTTY);
  const progress = live
    ? liveProgress(io.stderr, { cells: plan.cells.length, columns: process.stderr.columns || 100 })
    : plainProgress(io.stderr);
  if (plan.cells.length === 0)
    throw new UsageError('nothing to run: no cell is left after the filters', { file: o.matrix });
  io.stderr(
    `corematrix run: ${plan.cells.length} cell(s), ${plan.kernels.length} kernel(s) × ${plan.objects.length} object(s), tiers ${plan.tiers.join(' + ')}${shard === undefined ? '' : `, shard ${shard.index}/${shard.count}`}\n`,
  );

  // The compiler axis (compilers: in the matrix): the planned sources built with each toolchain.
  const built = await buildRunObjects(matrix, plan.objects, (line) => io.stderr(`corematrix: ${line}\n`));
  const result = await runMatrix({
    matrix,
    plan,
    built,
    sources: matrixKernelSources(matrix, o.cache === undefined ? {} : { cache: o.cache }),
    caseFiles,
    concurrency: o.concurrency ?? matrix.concurrency,
    executor,
    ...(baseline === undefined ? {} : { baseline }),
    corematrixVersion: process.env.npm_package_version ?? '0.1.0',
    matrixLabel: o.matrix,
    onEvent: (e, cell) => progress.event(e, cell),
  });
  progress.finish();
  const written = await writeReportSet(
    out,
    result.report,
    result.diff === undefined ? {} : { diff: result.diff },
  );
  io.out.write(formatSummary(result, o, written));
  return runExitCode({
    unmet: result.expectations.filter((e) => e.state === 'unmet').length,
    regressions: result.diff?.regressions.length ?? 0,
    infra: result.infra.length,
    strictInfra: o.strictInfra,
  });
}

export function formatSummary(
  r: RunMatrixResult,
  o: Pick<RunCommandOptions, 'strictInfra' | 'baseline'>,
  written: string[],
): string {
  const lines: string[] = [];
  const cells = r.report.cells;
  const count = (s: string) => cells.filter((c) => c.status === s).length;
  const statuses = ['ok', 'needs-guard', 'failing', 'error', 'infra_error']
    .filter((s) => count(s) > 0)
    .map((s) => `${count(s)} ${s}`)
    .join(', ');
  lines.push(
    `${cells.length} cell(s) on ${r.report.kernels.length} kernel(s) × ${r.report.objects.length} object(s): ${statuses} (${(r.report.run.durationMs / 1000).toFixed(1)} s)`,
  );
  const met = r.expectations.filter((e) => e.state === 'met').length;
  const unmet = r.expectations.filter((e) => e.state === 'unmet');
  const unknown = r.expectations.filter((e) => e.state === 'unknown');
  if (r.expectations.length > 0) {
    lines.push(
      `expectations: ${met} met, ${unmet.length} unmet${unknown.length === 0 ? '' : `, ${unknown.length} not checked in this run`}`,
    );
    for (const e of unmet) {
      lines.push(`  UNMET ${e.name} (${e.source})`);
      for (const f of e.failures.slice(0, 10)) lines.push(`    ${oneLine(f)}`);
      if (e.failures.length > 10) lines.push(`    … and ${e.failures.length - 10} more`);
    }
  }
  if (r.diff !== undefined) {
    lines.push(
      `against ${o.baseline}: ${r.diff.regressions.length} regression(s), ${r.diff.fixes.length} fix(es), ${r.diff.newNeedsGuard.length} new needs-guard field(s)`,
    );
    for (const g of r.diff.regressions.slice(0, 20))
      lines.push(
        `  REGRESSION ${g.kernel}: ${g.object} ${g.program}: ${g.was} → ${g.now}${g.cause === '' ? '' : ` (${oneLine(g.cause)})`}`,
      );
  }
  if (r.infra.length > 0) {
    lines.push(
      `infra errors: ${r.infra.length} cell(s) (VM or kernel faults, not findings about the programs)${o.strictInfra ? '; --strict-infra makes them fail the run' : '; they do not fail the run without --strict-infra'}`,
    );
    for (const i of r.infra.slice(0, 10)) lines.push(`  ${i}`);
  }
  const html = written.find((f) => f.endsWith('index.html'));
  if (html !== undefined) {
    const rel = path.relative(process.cwd(), html);
    lines.push(`report: ${rel.startsWith('..') || path.isAbsolute(rel) ? html : rel}`);
  }
  return `${lines.join('\n')}\n`;
}

/** `corematrix plan --shards N [--format text|github]`. */
export async function planCommand(
  invocation: { matrix: string; shards: number; format: 'github' | 'text' },
  io: { out: Output; stderr: (text: string) => void },
): Promise<number> {
  let matrix: Matrix;
  try {
    matrix = loadMatrix(invocation.matrix);
  } catch (e) {
    if (!isMatrixError(e)) throw e;
    io.stderr(`corematrix: ${oneLine(e.describe())}\n`);
    return EXIT.usage;
  }
  if (invocation.format === 'github') io.out.write(`${JSON.stringify(githubMatrix(invocation.shards))}\n`);
  else io.out.write(formatShardPlan(matrix, invocation.shards));
  return EXIT.ok;
}
