/**
 * summary.md from report.json: short Markdown for a PR comment or $GITHUB_STEP_SUMMARY. With a
 * baseline diff, regressions come first; then the unmet expectations (matrix.yaml `expect:`, case
 * files) and how many were met; then, with a diff, fixes and new needs-guard fields; then the grid
 * (objects × kernels, a status emoji and word per cell); then the fields that need a guard, each
 * with its fix and the kernels where it fails; then why the failing cells fail.
 *
 * Names come from objects and BTF: every one is escaped (Markdown punctuation backslash-escaped,
 * `<`, `>` and `&` as entities, line breaks flattened), so a name cannot open a link, an image, a
 * table cell, raw HTML, a mention or an emoji code; accesses and fixes are code spans (outside
 * tables), where nothing is markup.
 */

import { programOutcome } from './build.js';
import type { ReportDiff } from './diff.js';
import type { Report, ReportCellStatus } from './schema.js';

export const STATUS_LABEL: Record<ReportCellStatus, string> = {
  ok: '✅ ok',
  'needs-guard': '⚠️ needs guard',
  failing: '❌ failing',
  error: '⛔ error',
  infra_error: '🔧 infra error',
};

const ENTITY: Record<string, string> = { '<': '&lt;', '>': '&gt;', '&': '&amp;' };

/** Text safe anywhere in Markdown, table cells included. */
export function mdEscape(s: string): string {
  return s
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, '')
    .replace(/\r\n|[\r\n\t]/g, ' ')
    .replace(/[<>&]|[\\`*_{}[\]()#+\-.!|~:@"'$=^%?/,;]/g, (c) => ENTITY[c] ?? `\\${c}`);
}

/**
 * Inline code (outside tables): nothing inside a code span is markup, so only its delimiter needs
 * care: a run of backticks longer than any in the text, padded by spaces.
 */
export function mdCode(s: string): string {
  const flat = s
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, '')
    .replace(/\r\n|[\r\n\t]/g, ' ');
  const longest = Math.max(0, ...(flat.match(/`+/g) ?? []).map((r) => r.length));
  const fence = '`'.repeat(longest + 1);
  return `${fence} ${flat} ${fence}`;
}

export interface MarkdownOptions {
  diff?: ReportDiff;
  /** Longest list shown per section (default 30): PR comments are limited in size. */
  maxItems?: number;
  title?: string;
}

function list<T>(items: readonly T[], max: number, line: (t: T) => string): string[] {
  const out = items.slice(0, max).map((t) => `- ${line(t)}`);
  if (items.length > max) out.push(`- … and ${items.length - max} more (see report.json)`);
  return out;
}

/** The unmet expectations, each with where it is declared and what broke it, then the counts. */
function expectationLines(report: Report, max: number): string[] {
  const all = report.expectations ?? [];
  if (all.length === 0) return [];
  const e = mdEscape;
  const failed = all.filter((x) => x.status === 'failed');
  const count = (s: string) => all.filter((x) => x.status === s).length;
  const counts = `${count('passed')} met, ${failed.length} unmet${count('skipped') === 0 ? '' : `, ${count('skipped')} not checked in this run`}`;
  if (failed.length === 0) return [`Expectations: ${counts}.`, ''];
  return [
    `### ❌ ${failed.length} unmet expectation${failed.length === 1 ? '' : 's'}`,
    '',
    ...list(failed, max, (x) => {
      const lines = (x.message ?? 'unmet').split('\n');
      const more = lines.length > 1 ? ` (and ${lines.length - 1} more)` : '';
      return `**${e(x.name)}** (${e(x.source)}): ${e(lines[0] ?? '')}${more}`;
    }),
    '',
    `Expectations: ${counts}.`,
    '',
  ];
}

export function renderMarkdown(report: Report, options: MarkdownOptions = {}): string {
  const max = options.maxItems ?? 30;
  const e = mdEscape;
  const out: string[] = [];
  const counts = new Map<ReportCellStatus, number>();
  for (const c of report.cells) counts.set(c.status, (counts.get(c.status) ?? 0) + 1);
  out.push(`## ${options.title === undefined ? 'corematrix' : e(options.title)}`, '');
  out.push(
    `${report.objects.length} objects × ${report.kernels.length} kernels (${report.run.tiers.join(' + ')} tier${report.run.tiers.length === 1 ? '' : 's'}): ` +
      (Object.keys(STATUS_LABEL) as ReportCellStatus[])
        .filter((s) => counts.has(s))
        .map((s) => `${counts.get(s)} ${STATUS_LABEL[s]}`)
        .join(', '),
    '',
  );

  const d = options.diff;
  const expectations = expectationLines(report, max);
  if (d === undefined) out.push(...expectations);
  else {
    if (d.regressions.length > 0) {
      out.push(`### ❌ ${d.regressions.length} regression${d.regressions.length === 1 ? '' : 's'}`, '');
      out.push(
        ...list(
          d.regressions,
          max,
          (r) =>
            `**${e(r.object)}** ${e(r.program)} on ${e(r.kernel)}: was ${r.was}, now ${r.now}: ${e(r.cause)}`,
        ),
        '',
      );
    } else out.push('No regressions against the baseline.', '');
    out.push(...expectations);
    if (d.fixes.length > 0) {
      out.push(`### ✅ ${d.fixes.length} fixed`, '');
      out.push(
        ...list(d.fixes, max, (r) => `**${e(r.object)}** ${e(r.program)} on ${e(r.kernel)} now loads`),
        '',
      );
    }
    if (d.newNeedsGuard.length > 0) {
      out.push(
        `### ⚠️ ${d.newNeedsGuard.length} new field${d.newNeedsGuard.length === 1 ? '' : 's'} needing a guard`,
        '',
      );
      out.push(
        ...list(d.newNeedsGuard, max, (f) => `${mdCode(f.access)} in ${e(f.object)} on ${e(f.kernel)}`),
        '',
      );
    }
    const k: string[] = [];
    if (d.kernelsAdded.length > 0) k.push(`kernels added: ${d.kernelsAdded.map(e).join(', ')}`);
    if (d.kernelsRemoved.length > 0) k.push(`kernels removed: ${d.kernelsRemoved.map(e).join(', ')}`);
    if (k.length > 0) out.push(`${k.join('; ')}.`, '');
  }

  // The grid.
  const cell = new Map(report.cells.map((c) => [`${c.object}\0${c.kernel}`, c]));
  out.push(`| object | ${report.kernels.map((k) => e(k.name)).join(' | ')} |`);
  out.push(`|---|${report.kernels.map(() => '---').join('|')}|`);
  for (const o of report.objects) {
    const row = report.kernels.map((k) => {
      const c = cell.get(`${o.name}\0${k.name}`);
      return c === undefined ? '—' : STATUS_LABEL[c.status];
    });
    out.push(`| ${e(o.name)} | ${row.join(' | ')} |`);
  }
  out.push('');

  // Fields that need a guard: one line per object × access × fix, with its kernels.
  const guards = new Map<
    string,
    { object: string; access: string; fix?: string; programs: Set<string>; kernels: string[] }
  >();
  for (const c of report.cells) {
    for (const p of c.programs) {
      for (const r of p.relocations) {
        if (r.classification !== 'needs-guard') continue;
        const key = `${c.object}\0${r.access}\0${r.fix ?? ''}`;
        let g = guards.get(key);
        if (g === undefined) {
          g = { object: c.object, access: r.access, programs: new Set(), kernels: [] };
          if (r.fix !== undefined) g.fix = r.fix;
          guards.set(key, g);
        }
        g.programs.add(p.name);
        if (!g.kernels.includes(c.kernel)) g.kernels.push(c.kernel);
      }
    }
  }
  if (guards.size > 0) {
    out.push('### Fields that need a guard', '');
    out.push(
      ...list(
        [...guards.values()],
        max,
        (g) =>
          `${mdCode(g.access)} in ${e(g.object)} (${[...g.programs].map(e).join(', ')}) fails on ${g.kernels.map(e).join(', ')}` +
          (g.fix === undefined ? '' : `: ${mdCode(g.fix)}`),
      ),
      '',
    );
  }

  // Why failing cells fail.
  const failing = report.cells.filter(
    (c) => c.status === 'failing' || c.status === 'error' || c.status === 'infra_error',
  );
  if (failing.length > 0) {
    out.push('### Failing cells', '');
    out.push(
      ...list(failing, max, (c) => {
        const why =
          c.status === 'error'
            ? (c.error ?? 'libbpf refuses the object')
            : c.status === 'infra_error'
              ? (c.infra?.reason ?? 'the VM failed')
              : c.programs
                  .filter((p) => programOutcome(p) === 'fails')
                  .map((p) => {
                    const cause =
                      p.vm !== undefined && p.vm.verdict !== 'infra_error' && p.vm.verdict !== 'loaded'
                        ? (p.vm.cause ?? p.vm.verdict)
                        : (p.static?.reasons[0]?.message ?? 'predicted rejected');
                    return `${p.name}: ${cause}`;
                  })
                  .join('; ');
        return `${STATUS_LABEL[c.status]} **${e(c.object)}** on ${e(c.kernel)}: ${e(why)}`;
      }),
      '',
    );
  }
  return `${out.join('\n').trimEnd()}\n`;
}
