/**
 * report.json on disk: written atomically (a temporary file beside it, renamed in: a reader never
 * sees half a report), read back validated. A file that is not a report, or of a schemaVersion this
 * corematrix does not know, is refused with one line naming the file.
 */

import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ParseError, UsageError } from '../errors.js';
import { REPORT_SCHEMA_VERSION, type Report, ReportSchema } from './schema.js';

/** The report as report.json holds it: validated, two-space indented, a final newline. */
export function serializeReport(report: Report): string {
  return `${JSON.stringify(ReportSchema.parse(report), null, 2)}\n`;
}

export async function writeReport(file: string, report: Report): Promise<void> {
  await writeFileAtomic(file, serializeReport(report));
}

/**
 * Writes `text` to `file` through a temporary file beside it, renamed in: a reader sees the old
 * file or the new one, never half of one. The directory is created if needed.
 */
export async function writeFileAtomic(file: string, text: string): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const temp = path.join(
    path.dirname(file),
    `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`,
  );
  try {
    await fs.writeFile(temp, text);
    await fs.rename(temp, file);
  } catch (e) {
    await fs.rm(temp, { force: true });
    throw e;
  }
}

function refused(file: string, reason: string, cause?: unknown): ParseError {
  const e = new ParseError('report', reason, {}, cause === undefined ? undefined : { cause });
  e.file = file;
  return e;
}

/** Parses report.json's text; `file` names it in errors. */
export function parseReport(text: string, file: string): Report {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw refused(file, `not JSON: ${e instanceof Error ? e.message : String(e)}`, e);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw refused(file, 'not a corematrix report (not a JSON object)');
  }
  const version = (raw as { schemaVersion?: unknown }).schemaVersion;
  if (version === undefined) throw refused(file, 'not a corematrix report (no schemaVersion)');
  if (version !== REPORT_SCHEMA_VERSION) {
    throw refused(
      file,
      `schemaVersion ${JSON.stringify(version)} is not one this corematrix reads (it reads ${REPORT_SCHEMA_VERSION}); use the corematrix that wrote it`,
    );
  }
  const parsed = ReportSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue === undefined || issue.path.length === 0 ? '' : `${issue.path.join('.')}: `;
    const more =
      parsed.error.issues.length > 1 ? ` (and ${parsed.error.issues.length - 1} more problems)` : '';
    throw refused(file, `invalid report: ${where}${issue?.message ?? 'invalid'}${more}`);
  }
  return parsed.data;
}

export async function readReport(file: string): Promise<Report> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(code === 'ENOENT' ? 'no such report' : `cannot read: ${(e as Error).message}`, {
      cause: e,
      file,
    });
  }
  return parseReport(text, file);
}
