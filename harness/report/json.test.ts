import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isCorematrixError, isParseError } from '../errors.js';
import { caseObjects, staticSuiteReport } from './fixture.js';
import { readReport, serializeReport, writeReport } from './json.js';
import type { Report } from './schema.js';

const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'corematrix-report-'));
afterAll(() => fs.rm(dir, { recursive: true, force: true }));

const tiny: Report = {
  schemaVersion: 1,
  generatedAt: '2026-01-01T00:00:00.000Z',
  corematrix: { version: 'test' },
  run: { tiers: ['static'], durationMs: 3 },
  kernels: [{ name: 'k', source: 'test', arch: 'x86_64' }],
  objects: [{ name: 'a.o', path: 'a.o', sha256: '00' }],
  cells: [{ kernel: 'k', object: 'a.o', status: 'ok', programs: [] }],
};

async function refusal(text: string): Promise<string> {
  const file = path.join(dir, `bad-${Math.random().toString(36).slice(2)}.json`);
  await fs.writeFile(file, text);
  try {
    await readReport(file);
  } catch (e) {
    expect(isParseError(e)).toBe(true);
    if (!isCorematrixError(e)) throw e;
    const line = e.describe();
    expect(line.startsWith(`${file}: report: `)).toBe(true);
    expect(line).not.toContain('\n');
    return line.slice(file.length + 2);
  }
  throw new Error('not refused');
}

describe('report.json', () => {
  it('round-trips; written atomically (no temporary file left; a reader sees the old or the new)', async () => {
    const file = path.join(dir, 'out', 'report.json');
    await writeReport(file, tiny);
    expect(await readReport(file)).toEqual(tiny);
    const other = { ...tiny, generatedAt: '2026-02-02T00:00:00.000Z' };
    const reads: Promise<Report>[] = [];
    const writes = Array.from({ length: 10 }, (_, i) => {
      reads.push(readReport(file));
      return writeReport(file, i % 2 === 0 ? other : tiny);
    });
    await Promise.all(writes);
    for (const r of await Promise.all(reads))
      expect([tiny.generatedAt, other.generatedAt]).toContain(r.generatedAt);
    expect(await fs.readdir(path.dirname(file))).toEqual(['report.json']);
  });

  it('refuses an invalid report before writing it', async () => {
    const file = path.join(dir, 'never.json');
    await expect(writeReport(file, { ...tiny, schemaVersion: 2 } as unknown as Report)).rejects.toThrow();
    await expect(fs.stat(file)).rejects.toThrow();
  });

  it('one line naming the file for bad JSON, non-reports, unknown versions and invalid fields', async () => {
    expect(await refusal('{"schemaVersion": 1,')).toMatch(/^report: not JSON: /);
    expect(await refusal('[1,2]')).toBe('report: not a corematrix report (not a JSON object)');
    expect(await refusal('{"name": "package"}')).toBe('report: not a corematrix report (no schemaVersion)');
    expect(await refusal(JSON.stringify({ ...tiny, schemaVersion: 2 }))).toBe(
      'report: schemaVersion 2 is not one this corematrix reads (it reads 1); use the corematrix that wrote it',
    );
    const bad = { ...tiny, cells: [{ ...tiny.cells[0], status: 'purple\nline' }] };
    expect(await refusal(JSON.stringify(bad))).toMatch(/^report: invalid report: cells\.0\.status: /);
  });

  it('a missing file is a usage error naming it', async () => {
    const file = path.join(dir, 'absent.json');
    await expect(readReport(file)).rejects.toMatchObject({ code: 'usage', file, message: 'no such report' });
  });

  it.skipIf(caseObjects().length === 0)('the case suite report round-trips unchanged', async () => {
    const report = await staticSuiteReport();
    const file = path.join(dir, 'suite.json');
    await writeReport(file, report);
    expect(await readReport(file)).toEqual(report);
    expect(serializeReport(await readReport(file))).toBe(await fs.readFile(file, 'utf8'));
  });
});
