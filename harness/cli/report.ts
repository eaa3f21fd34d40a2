/**
 * The report commands: `report render`, `diff`, `merge` (and `plan`, which belongs to the runner:
 * harness/cli/run.ts). Each reads report.json files only — never an object or a kernel — so a
 * report can be re-rendered, compared or merged on a machine that did not run it.
 *
 * Exit codes: a report that is missing or unreadable, or shards that do not fit together, are bad
 * usage (2); a file that is not a report this corematrix reads is bad input (1); `diff` exits 1
 * when NEW has regressions against OLD.
 */

import { UsageError } from '../errors.js';
import { diffReports } from '../report/diff.js';
import { renderDiffText } from '../report/diff-text.js';
import { readReport } from '../report/json.js';
import { renderMarkdown } from '../report/markdown.js';
import { mergeReports } from '../report/merge.js';
import type { Report } from '../report/schema.js';
import { type ReportFormat, type WriteReportSetOptions, writeReportSet } from '../report/write.js';
import { EXIT, type Invocation } from './main.js';
import type { Output } from './output.js';

export interface ReportIo {
  out: Output;
  stderr: (text: string) => void;
}

type ReportInvocation = Extract<Invocation, { command: 'report render' | 'diff' | 'merge' | 'plan' }>;

export async function reportCommand(invocation: ReportInvocation, io: ReportIo): Promise<number> {
  switch (invocation.command) {
    case 'report render':
      return render(invocation, io);
    case 'diff':
      return diff(invocation, io);
    case 'merge':
      return merge(invocation, io);
    case 'plan': {
      // plan is the runner's: it knows the matrix and its cells.
      const { planCommand } = await import('./run.js');
      return planCommand(invocation, io);
    }
  }
}

const RENDERED: readonly ReportFormat[] = ['html', 'junit', 'markdown'];

async function render(
  invocation: Extract<Invocation, { command: 'report render' }>,
  io: ReportIo,
): Promise<number> {
  const report = await readReport(invocation.report);
  // report.json itself is the input: rendering never rewrites it.
  const formats = RENDERED.filter((f) => invocation.formats.includes(f));
  await writeSet(invocation.out, report, { formats }, io);
  return EXIT.ok;
}

async function diff(invocation: Extract<Invocation, { command: 'diff' }>, io: ReportIo): Promise<number> {
  if (invocation.json && invocation.markdown) throw new UsageError('diff: --json and --markdown: choose one');
  const old = await readReport(invocation.old);
  const now = await readReport(invocation.now);
  const changes = diffReports(old, now);
  if (invocation.json) io.out.write(`${JSON.stringify(changes, null, 2)}\n`);
  // summary.md of NEW with the diff first: what a PR comment or $GITHUB_STEP_SUMMARY shows.
  else if (invocation.markdown) io.out.write(renderMarkdown(now, { diff: changes }));
  else io.out.write(renderDiffText(changes));
  return changes.regressions.length > 0 ? EXIT.badInput : EXIT.ok;
}

async function merge(invocation: Extract<Invocation, { command: 'merge' }>, io: ReportIo): Promise<number> {
  const shards: Report[] = [];
  // One at a time: the first bad file is the one named.
  for (const file of invocation.reports) shards.push(await readReport(file));
  await writeSet(invocation.out, mergeReports(shards, invocation.reports), {}, io);
  return EXIT.ok;
}

/** writeReportSet, printing each file written; a directory it cannot write to is named in one line. */
async function writeSet(
  dir: string,
  report: Report,
  options: WriteReportSetOptions,
  io: ReportIo,
): Promise<void> {
  let written: string[];
  try {
    written = await writeReportSet(dir, report, options);
  } catch (e) {
    const error = e as NodeJS.ErrnoException;
    if (!(e instanceof Error) || typeof error.code !== 'string' || typeof error.syscall !== 'string') throw e;
    throw new UsageError(
      `cannot write the reports: ${error.code}${error.path === undefined ? '' : ` (${error.path})`}`,
      {
        cause: e,
        file: dir,
      },
    );
  }
  for (const file of written) io.out.write(`${file}\n`);
}
