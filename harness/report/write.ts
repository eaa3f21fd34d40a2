/**
 * writeReportSet(dir, report): the reports of a run as files — report.json, index.html, junit.xml,
 * summary.md — in one directory. Every format is rendered (and report.json validated) before the
 * first file is written, so a report that cannot be rendered leaves the directory as it was; each
 * file then goes in atomically (temporary file + rename), report.json last: a reader that finds a
 * new report.json finds the formats rendered from it beside it.
 */

import path from 'node:path';
import type { ReportDiff } from './diff.js';
import { renderHtml } from './html.js';
import { serializeReport, writeFileAtomic } from './json.js';
import { renderJunit } from './junit.js';
import { renderMarkdown } from './markdown.js';
import type { Report } from './schema.js';

export type ReportFormat = 'json' | 'html' | 'junit' | 'markdown';

export const REPORT_FORMATS: readonly ReportFormat[] = ['json', 'html', 'junit', 'markdown'];

/** The file each format is written to, inside the reports directory. */
export const REPORT_FILES: Readonly<Record<ReportFormat, string>> = {
  json: 'report.json',
  html: 'index.html',
  junit: 'junit.xml',
  markdown: 'summary.md',
};

export interface WriteReportSetOptions {
  /** A diff against a baseline: summary.md then lists regressions, fixes and new fields first. */
  diff?: ReportDiff;
  /** Which files to write (default: all four), always in the order of REPORT_FORMATS. */
  formats?: readonly ReportFormat[];
}

function render(format: ReportFormat, report: Report, diff: ReportDiff | undefined): string {
  switch (format) {
    case 'json':
      return serializeReport(report);
    case 'html':
      return renderHtml(report);
    case 'junit':
      return renderJunit(report);
    case 'markdown':
      return renderMarkdown(report, diff === undefined ? {} : { diff });
  }
}

/** Writes the chosen formats of `report` into `dir` (created if needed); resolves to the paths written. */
export async function writeReportSet(
  dir: string,
  report: Report,
  options: WriteReportSetOptions = {},
): Promise<string[]> {
  const wanted = new Set(options.formats ?? REPORT_FORMATS);
  // report.json last (see above); the others in a fixed order whatever order they were asked in.
  const order = [...REPORT_FORMATS.filter((f) => f !== 'json'), 'json' as const].filter((f) => wanted.has(f));
  const files = order.map((format) => ({
    file: path.join(dir, REPORT_FILES[format]),
    text: render(format, report, options.diff),
  }));
  for (const { file, text } of files) await writeFileAtomic(file, text);
  return REPORT_FORMATS.filter((f) => wanted.has(f)).map((f) => path.join(dir, REPORT_FILES[f]));
}
