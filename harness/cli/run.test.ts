/**
 * `corematrix run` and `corematrix plan` as a user runs them (the built CLI), on the static tier
 * (no VM: run.vm.test.ts boots them): expectations met and unmet, case files, baselines and
 * regressions, and every mistake on the command line or in the configuration as one line with
 * exit 2, leaving no reports behind.
 */

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readReport, writeReport } from '../report/json.js';
import { runCorematrix } from '../test-support/cli.js';
import { defaultDebianKernels } from '../test-support/kernels.js';

const repo = path.join(import.meta.dirname, '..', '..');
const KC = path.join(repo, 'build', 'cases', 'kernel_changes.bpf.o');
let dir: string;

/** A matrix of two Debian kernels (the default matrix's) and kernel_changes, with `extra` appended to its case. */
function matrix(name: string, expectYaml = '', kernels = ['bullseye', 'bookworm']): string {
  const decl: Record<string, string> = {
    bullseye: '  - name: bullseye\n    suite: bullseye\n    version: "5.10"\n',
    bookworm: '  - name: bookworm\n    suite: bookworm\n    version: "6.1"\n',
  };
  const file = path.join(dir, name);
  writeFileSync(
    file,
    `kernels:\n${kernels.map((k) => decl[k]).join('')}cases:\n  - path: ${KC}\n${expectYaml}tiers: [static]\n`,
  );
  return file;
}

/** A testsuite of a junit.xml as python3's xml.etree reads it: its counts and testcases. */
function junitSuite(
  file: string,
  suite: string,
): { tests: string; failures: string; cases: { classname: string; name: string; failure?: string }[] } {
  const script = `
import json, sys, xml.etree.ElementTree as ET
for s in ET.parse(sys.argv[1]).getroot().iter('testsuite'):
    if s.get('name') != sys.argv[2]: continue
    cases = []
    for tc in s.iter('testcase'):
        c = {'classname': tc.get('classname'), 'name': tc.get('name')}
        f = tc.find('failure')
        if f is not None: c['failure'] = f.get('message')
        cases.append(c)
    print(json.dumps({'tests': s.get('tests'), 'failures': s.get('failures'), 'cases': cases}))`;
  const r = spawnSync('python3', ['-c', script, file, suite], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'corematrix-run-cli-'));
  await defaultDebianKernels();
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('expectations decide the exit code', () => {
  test('met: exit 0, the four reports, the summary counts them', async () => {
    const m = matrix(
      'met.yaml',
      `    expect:
      - programs: [task_state_new_only]
        loads: ">= 5.14"
        rejected: "< 5.14"
      - field: struct request.rq_disk
        programs: [rq_disk_portable]
        is: guarded
        on: bookworm
`,
    );
    const out = path.join(dir, 'met');
    const r = await runCorematrix('run', '--matrix', m, '--out', out);
    expect(r.stderr).not.toMatch(/corematrix: /);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('expectations: 3 met, 0 unmet');
    expect(r.stdout).toContain(`report: ${path.join(out, 'index.html')}`);
    for (const f of ['report.json', 'index.html', 'junit.xml', 'summary.md'])
      expect(existsSync(path.join(out, f)), f).toBe(true);
    const report = await readReport(path.join(out, 'report.json'));
    expect(report.run).toMatchObject({ tiers: ['static'], matrix: m });
    expect(report.cells.map((c) => [c.kernel, c.status])).toEqual([
      ['bullseye', 'needs-guard'],
      ['bookworm', 'needs-guard'],
    ]);
    // Not a terminal: one line per finished cell on stderr.
    expect(r.stderr).toMatch(new RegExp(`^bullseye  ${KC}  needs-guard  18/23 loaded, 5 failed$`, 'm'));
  });

  test('unmet: exit 1, the expectation named with the kernel, program and relocation that broke it', async () => {
    const m = matrix(
      'unmet.yaml',
      '    expect:\n      - programs: [task_state_new_only]\n        loads: all\n',
    );
    const r = await runCorematrix('run', '--matrix', m, '--out', path.join(dir, 'unmet'));
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('expectations: 0 met, 1 unmet');
    expect(r.stdout).toContain(`UNMET ${KC}: task_state_new_only loads on all kernels`);
    expect(r.stdout).toMatch(/bullseye: \S+ task_state_new_only is rejected: .*struct task_struct\.__state/);
    expect(r.stderr).toMatch(/^FAILED .*task_state_new_only loads on all kernels: bullseye:/m);
    // The reports are written all the same: they show why. report.json keeps the expectation
    // (where the matrix states it: line 11, the entry under `expect:`), failed, with what broke it.
    const name = `${KC}: task_state_new_only loads on all kernels`;
    const report = await readReport(path.join(dir, 'unmet', 'report.json'));
    expect(report.expectations).toHaveLength(1);
    expect(report.expectations?.[0]).toMatchObject({
      name,
      source: `${m}:11`,
      status: 'failed',
      kernels: ['bullseye', 'bookworm'],
    });
    expect(report.expectations?.[0]?.message).toMatch(
      /^bullseye: \S+ task_state_new_only is rejected: .*struct task_struct\.__state[^\n]*$/,
    );
    // junit.xml, as a JUnit reader parses it: a suite "expectations" with the failing testcase.
    expect(junitSuite(path.join(dir, 'unmet', 'junit.xml'), 'expectations')).toEqual({
      tests: '1',
      failures: '1',
      cases: [{ classname: `${m}:11`, name, failure: report.expectations?.[0]?.message }],
    });
    // summary.md: the unmet expectation is the first section, before the grid.
    const summary = readFileSync(path.join(dir, 'unmet', 'summary.md'), 'utf8');
    const sections = summary.split('\n').filter((l) => l.startsWith('### ') || l.startsWith('| object'));
    expect(sections[0]).toBe('### ❌ 1 unmet expectation');
    expect(summary).toContain('task\\_state\\_new\\_only loads on all kernels** (');
    expect(existsSync(path.join(dir, 'unmet', 'index.html'))).toBe(true);
  });

  test('a case file next to the object: its expectations and checks run as tasks; a failing check exits 1', async () => {
    const cdir = mkdtempSync(path.join(dir, 'casefile-'));
    const obj = path.join(cdir, 'kernel_changes.bpf.o');
    writeFileSync(obj, readFileSync(KC));
    const m = path.join(cdir, 'matrix.yaml');
    writeFileSync(
      m,
      `kernels:\n  - name: bookworm\n    suite: bookworm\n    version: "6.1"\ncases: [kernel_changes.bpf.o]\ntiers: [static]\n`,
    );
    const caseFile = path.join(cdir, 'kernel_changes.case.ts');
    const write = (checkBody: string) =>
      writeFileSync(
        caseFile,
        `interface Api { expect(e: Record<string, unknown>): void; check(n: string, f: (c: { program(k: string, p: string): { static?: { verdict: string } } | undefined }) => unknown): void }
export default (c: Api): void => {
  c.expect({ programs: ['task_state_old_only'], rejected: 'bookworm' });
  c.check('old-only rejected on bookworm', (x) => { ${checkBody} });
};
`,
      );
    write(`return x.program('bookworm', 'task_state_old_only')?.static?.verdict === 'rejected';`);
    const ok = await runCorematrix('run', '--matrix', m, '--out', path.join(cdir, 'ok'));
    expect(ok.stdout).toContain('expectations: 2 met, 0 unmet');
    expect(ok.status).toBe(0);
    write(`throw new Error('deliberately broken');`);
    const bad = await runCorematrix('run', '--matrix', m, '--out', path.join(cdir, 'bad'));
    expect(bad.status).toBe(1);
    expect(bad.stdout).toContain('UNMET kernel_changes.bpf.o: old-only rejected on bookworm');
    expect(bad.stdout).toContain(`deliberately broken (${caseFile})`);
    // In report.json: the case file's expectation met, its check failed, both named by the case
    // file (relative to the matrix).
    const badReport = await readReport(path.join(cdir, 'bad', 'report.json'));
    expect(badReport.expectations?.map((x) => [x.name, x.source, x.status])).toEqual([
      ['kernel_changes.bpf.o: task_state_old_only rejected on bookworm', 'kernel_changes.case.ts', 'passed'],
      ['kernel_changes.bpf.o: old-only rejected on bookworm', 'kernel_changes.case.ts', 'failed'],
    ]);
    expect(badReport.expectations?.[1]?.message).toBe(`deliberately broken (${caseFile})`);
    // Mistakes in the file are configuration mistakes: one line naming it, exit 2, no reports.
    writeFileSync(caseFile, 'export default (c) => { c.expect({ loads: "=> 5" }) }\n');
    const wrong = await runCorematrix('run', '--matrix', m, '--out', path.join(cdir, 'wrong'));
    expect([wrong.status, wrong.stderr]).toEqual([
      2,
      `corematrix: ${caseFile}: expect #1: loads: "=> 5": "=> 5" is not a release comparison (e.g. ">= 5.14")\n`,
    ]);
    writeFileSync(caseFile, 'export default (c: Api) => { c.expect({ loads: all }\n');
    const syntax = await runCorematrix('run', '--matrix', m, '--out', path.join(cdir, 'syntax'));
    expect(syntax.status).toBe(2);
    expect(syntax.stderr).toMatch(new RegExp(`^corematrix: ${caseFile}: 2:\\d+: Expected .*\\n$`));
    expect(existsSync(path.join(cdir, 'wrong')) || existsSync(path.join(cdir, 'syntax'))).toBe(false);
  });
});

describe('baselines', () => {
  test('a program that loaded in the baseline and fails now is a regression: exit 1, listed first', async () => {
    const m = matrix('base.yaml');
    const first = path.join(dir, 'base1');
    expect((await runCorematrix('run', '--matrix', m, '--out', first)).status).toBe(0);
    // The baseline of an older build where task_state_new_only still loaded on bullseye.
    const old = await readReport(path.join(first, 'report.json'));
    const cell = old.cells.find((c) => c.kernel === 'bullseye')!;
    const p = cell.programs.find((x) => x.name === 'task_state_new_only')!;
    p.static = { verdict: 'loads', reasons: [], unknown: p.static?.unknown ?? [] };
    const baseline = path.join(dir, 'baseline.json');
    await writeReport(baseline, old);
    const r = await runCorematrix(
      'run',
      '--matrix',
      m,
      '--out',
      path.join(dir, 'base2'),
      '--baseline',
      baseline,
    );
    expect(r.status).toBe(1);
    expect(r.stdout).toContain(`against ${baseline}: 1 regression(s)`);
    expect(r.stdout).toMatch(
      /REGRESSION bullseye: \S+kernel_changes\.bpf\.o task_state_new_only: loads → needs-guard/,
    );
    const summary = readFileSync(path.join(dir, 'base2', 'summary.md'), 'utf8');
    expect(summary.indexOf('task\\_state\\_new\\_only')).toBeGreaterThan(-1);
    expect(summary.search(/regression/i)).toBeLessThan(summary.search(/\| *bullseye/));
    // Against itself: nothing changed, exit 0.
    const same = await runCorematrix(
      'run',
      '--matrix',
      m,
      '--out',
      path.join(dir, 'base3'),
      '--baseline',
      path.join(first, 'report.json'),
    );
    expect(same.status).toBe(0);
    expect(same.stdout).toContain('0 regression(s), 0 fix(es)');
  });
});

describe('mistakes: one line, exit 2, nothing written', () => {
  test.each([
    [['--shard', '4/3'], /^corematrix: --shard "4\/3": expected i\/n with 1 <= i <= n \(e\.g\. 1\/3\)\n$/],
    [
      ['--kernel', 'bulseye'],
      /^corematrix: \S+: no kernel named "bulseye" \(did you mean bullseye\?\); the matrix has: bullseye, bookworm\n$/,
    ],
    [
      ['--case', 'nothing-like-it'],
      /^corematrix: \S+: --case "nothing-like-it": no object of the matrix matches\n$/,
    ],
    [
      ['--baseline', '/nonexistent/report.json'],
      /^corematrix: \/nonexistent\/report\.json: no such report\n$/,
    ],
    [['--tier', 'both'], /^corematrix: .*both/],
  ])('%j', async (args, line) => {
    const out = path.join(dir, `mistake-${Math.random().toString(36).slice(2)}`);
    const r = await runCorematrix('run', '--matrix', matrix('mistakes.yaml'), '--out', out, ...args);
    expect(r.stderr).toMatch(line);
    expect(r.status).toBe(2);
    expect(existsSync(out)).toBe(false);
  });

  test('a baseline that is not a report', async () => {
    const file = path.join(dir, 'not-a-report.json');
    writeFileSync(file, '{"hello": 1}\n');
    const r = await runCorematrix(
      'run',
      '--matrix',
      matrix('mistakes.yaml'),
      '--baseline',
      file,
      '--out',
      path.join(dir, 'x'),
    );
    expect([r.status, r.stderr]).toEqual([
      2,
      `corematrix: ${file}: --baseline: report: not a corematrix report (no schemaVersion)\n`,
    ]);
  });

  test('an expectation naming a kernel the matrix lacks: FILE:LINE:COL', async () => {
    const m = matrix('badexpect.yaml', '    expect:\n      - status: ok\n        on: [sid]\n');
    const r = await runCorematrix('run', '--matrix', m);
    expect([r.status, r.stderr]).toEqual([
      2,
      `corematrix: ${m}:11:9: cases[0].expect[0]: no kernel named "sid"; the matrix has: bullseye, bookworm\n`,
    ]);
  });
});

describe('corematrix plan', () => {
  test('--format github: one job per shard; --format text: every cell of each shard', async () => {
    const m = matrix('plan.yaml');
    const gh = await runCorematrix('plan', '--matrix', m, '--shards', '3', '--format', 'github');
    expect(gh.status).toBe(0);
    expect(JSON.parse(gh.stdout)).toEqual({
      include: [{ shard: '1/3' }, { shard: '2/3' }, { shard: '3/3' }],
    });
    const text = await runCorematrix('plan', '--matrix', m, '--shards', '2');
    expect(text.status).toBe(0);
    expect(text.stdout).toBe(
      `shard 1/2: 1 cell(s)\n  bookworm  ${KC}  (static)\nshard 2/2: 1 cell(s)\n  bullseye  ${KC}  (static)\n`,
    );
    const bad = await runCorematrix('plan', '--matrix', path.join(dir, 'nope.yaml'), '--shards', '2');
    expect([bad.status, bad.stderr]).toEqual([
      2,
      `corematrix: ${path.join(dir, 'nope.yaml')}: cannot read the matrix: no such file\n`,
    ]);
  });
});

describe('progress on a terminal', () => {
  test('a live status line (cells done/total, ETA, kernels) redrawn in place; CI set: plain lines', async () => {
    const m = matrix('tty.yaml');
    const command = `${process.execPath} ${path.join(repo, 'bin', 'corematrix.js')} run --matrix ${m} --out ${path.join(dir, 'tty')}`;
    // script(1) gives the CLI a terminal for stdin, stdout and stderr.
    const inPty = (env: NodeJS.ProcessEnv) =>
      new Promise<{ status: number | null; output: string }>((resolve) => {
        const child = spawn('script', ['-qec', command, '/dev/null'], { cwd: repo, env });
        let output = '';
        child.stdout.on('data', (b: Buffer) => {
          output += b.toString();
        });
        child.on('close', (status) => resolve({ status, output }));
      });
    const { CI: _ci, ...env } = process.env;
    const live = await inPty(env);
    expect(live.status).toBe(0);
    expect(live.output).toMatch(/\r\x1b\[K\[1\/2 cells, \d+s, ETA \d+s\] (bullseye|bookworm) /);
    expect(live.output).toContain('\r\x1b[K[2/2 cells');
    // Cells that are not ok get a line of their own above the status.
    expect(live.output).toMatch(/\r\x1b\[Kbullseye {2}\S+kernel_changes\.bpf\.o {2}needs-guard/);
    const plain = await inPty({ ...env, CI: 'true' });
    expect(plain.status).toBe(0);
    expect(plain.output).not.toContain('\x1b[K');
    expect(plain.output).toMatch(
      /^bookworm {2}\S+kernel_changes\.bpf\.o {2}needs-guard {2}16\/23 loaded, 7 failed\r?$/m,
    );
  });
});
