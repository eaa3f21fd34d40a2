import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { diffReports } from './diff.js';
import { caseObjects, staticSuiteReport } from './fixture.js';
import { readReport } from './json.js';
import type { Report } from './schema.js';
import { writeReportSet } from './write.js';

const root = await fs.mkdtemp(path.join(os.tmpdir(), 'corematrix-write-'));
afterAll(() => fs.rm(root, { recursive: true, force: true }));
const hasCases = caseObjects().length > 0;

let n = 0;
const freshDir = () => path.join(root, `set-${++n}`, 'nested');

const readSet = (dir: string) =>
  Promise.all(
    ['report.json', 'index.html', 'junit.xml', 'summary.md'].map((f) =>
      fs.readFile(path.join(dir, f), 'utf8'),
    ),
  );

/** The suite report with the first program that loads somewhere turned into a failure there. */
function withRegression(report: Report): Report {
  const r: Report = structuredClone(report);
  for (const c of r.cells) {
    const p = c.programs.find((x) => x.static?.verdict === 'loads');
    if (c.status !== 'ok' || p?.static === undefined) continue;
    p.static = {
      verdict: 'rejected',
      reasons: [{ source: 'feature', message: 'helper bpf_made_up_for_this_test missing' }],
      unknown: [],
    };
    c.status = 'failing';
    return r;
  }
  throw new Error('no ok cell to break');
}

describe.skipIf(!hasCases)('writeReportSet', () => {
  it('writes the four files into a directory it creates; report.json reads back equal', async () => {
    const report = await staticSuiteReport();
    const dir = freshDir();
    const written = await writeReportSet(dir, report);
    expect(written).toEqual(
      ['report.json', 'index.html', 'junit.xml', 'summary.md'].map((f) => path.join(dir, f)),
    );
    expect((await fs.readdir(dir)).sort()).toEqual(['index.html', 'junit.xml', 'report.json', 'summary.md']);
    expect(await readReport(path.join(dir, 'report.json'))).toEqual(report);

    const html = await fs.readFile(path.join(dir, 'index.html'), 'utf8');
    expect(html.startsWith('<!DOCTYPE html>') || html.startsWith('<!doctype html>')).toBe(true);
    // Self-contained: nothing fetched from anywhere (no URL, no external script, style or image).
    expect(html).not.toMatch(/https?:\/\/|\bsrc\s*=|<link\b|@import/i);
    for (const o of report.objects) expect(html).toContain(o.name);

    const junit = await fs.readFile(path.join(dir, 'junit.xml'), 'utf8');
    const lint = spawnSync('xmllint', ['--noout', '-'], { input: junit, encoding: 'utf8' });
    if (lint.error === undefined) expect(lint.stderr).toBe('');
    const suites = spawnSync(
      'python3',
      [
        '-c',
        "import sys, xml.etree.ElementTree as ET; print(len(ET.fromstring(sys.stdin.buffer.read()).findall('testsuite')))",
      ],
      { input: junit, encoding: 'utf8' },
    );
    expect(suites.stderr).toBe('');
    expect(Number(suites.stdout)).toBe(report.kernels.length);

    const md = await fs.readFile(path.join(dir, 'summary.md'), 'utf8');
    expect(md).toContain(`${report.objects.length} objects × ${report.kernels.length} kernels`);
    expect(md).not.toContain('regression');
  });

  it('puts the diff in summary.md, regressions first', async () => {
    const old = await staticSuiteReport();
    const now = withRegression(old);
    const diff = diffReports(old, now);
    expect(diff.regressions).toHaveLength(1);
    const dir = freshDir();
    await writeReportSet(dir, now, { diff });
    const md = await fs.readFile(path.join(dir, 'summary.md'), 'utf8');
    expect(md).toContain('1 regression');
    expect(md.indexOf('1 regression')).toBeLessThan(md.indexOf('| object |'));
    expect(md).toContain('bpf\\_made\\_up\\_for\\_this\\_test');
  });

  it('writes only the formats asked for, and leaves no temporary file', async () => {
    const report = await staticSuiteReport();
    const dir = freshDir();
    const written = await writeReportSet(dir, report, { formats: ['markdown', 'html'] });
    expect(written).toEqual([path.join(dir, 'index.html'), path.join(dir, 'summary.md')]);
    expect((await fs.readdir(dir)).sort()).toEqual(['index.html', 'summary.md']);
  });

  it('replaces an earlier set; an invalid report writes nothing and leaves the old set intact', async () => {
    const report = await staticSuiteReport();
    const dir = freshDir();
    await writeReportSet(dir, withRegression(report));
    const before = await readSet(dir);
    const broken = structuredClone(report) as unknown as { cells: { status: string }[] };
    broken.cells[0]!.status = 'purple';
    await expect(writeReportSet(dir, broken as unknown as Report)).rejects.toThrow();
    const after = await readSet(dir);
    expect(after).toEqual(before);
    expect((await fs.readdir(dir)).sort()).toEqual(['index.html', 'junit.xml', 'report.json', 'summary.md']);

    await writeReportSet(dir, report);
    expect(await readReport(path.join(dir, 'report.json'))).toEqual(report);
    expect(await fs.readFile(path.join(dir, 'summary.md'), 'utf8')).not.toEqual(before[3]);
  });
});
